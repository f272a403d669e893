"""SeaRNN criterions: ``searnn_ll``, ``searnn_kl`` (full) and ``searnn_sll``, ``searnn_skl``
(sampled candidates, softmax restricted to them, or the full softmax with
``--searnn-sampled-softmax full``). Leblond et al., ICLR 2018.

One training step: the roll-in (no grad, eval mode), one ordinary teacher-forced
``model(...)`` call on ``[EOS] + roll-in[:-1]`` (so distributed wrappers see a normal forward),
candidates (sampled from that call's detached scores), roll-outs and cost vectors (no grad, eval
mode), then the per-cell loss summed over cells. :meth:`collect_costs` runs the search alone.
"""

import logging
import math

import torch
from fairseq import utils
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.logging import metrics

from fairseq_searnn.criterions.searnn_config import SearnnConfig, alpha, check, search_config
from fairseq_searnn.schedules import Schedulable, ScheduleDefaults
from fairseq_searnn.search import (
    Search,
    allowed_tokens,
    content,
    emittable_tokens,
    interleaved,
    objective,
)

logger = logging.getLogger(__name__)

_SUMMED = ("loss", "nll_loss", "ntokens", "nsentences", "sample_size", "searnn_cells",
           "searnn_min_cost", "searnn_ref_cost", "searnn_rollouts", "searnn_learned_rollouts",
           "searnn_search_time", "searnn_greedy_cost", "searnn_greedy_sentences",
           "searnn_mle_active", "searnn_target_ref_mass", "searnn_target_entropy")
#: full criterions on a larger candidate vocabulary get a warning (cost grows with it)
FULL_VOCAB_WARNING = 300


class SearnnCriterion(FairseqCriterion, Schedulable):
    """Shared SeaRNN criterion; subclasses fix the loss and whether candidates are sampled."""

    loss_name = "kl"
    sampled = False

    def __init__(self, task, cfg: SearnnConfig):
        super().__init__(task)
        tgt_dict = task.target_dictionary
        symbols = emittable_tokens if self.sampled else allowed_tokens
        vocab = len(symbols(tgt_dict))
        fixed = bool(getattr(task, "fixed_length_outputs", False))
        check(cfg, sampled=self.sampled, vocab=vocab,
              fixed_length=fixed or cfg.searnn_fixed_length)
        self.cfg = cfg
        self.sentence_avg = cfg.sentence_avg is True  # unresolved "${optimization...}": off
        self.search = Search(search_config(cfg, fixed), tgt_dict)
        self.eos = tgt_dict.eos()
        self.target_name = cfg.searnn_loss or self.loss_name
        self.base_alpha = alpha(cfg)  # before any schedule
        self.alpha = self.base_alpha
        self.rollin_ref_prob = cfg.rollin_ref_prob  # mixed roll-in; scheduled by the task
        self.mle_only = False  # set by the task during warm-up updates
        self._described = False  # the first training batch's cost is logged once
        if not self.sampled and vocab > FULL_VOCAB_WARNING:
            logger.warning(
                f"{type(self).__name__} tries all {vocab} symbols of the target dictionary at "
                f"every cell: a roll-out each. With a vocabulary this size use the sampled "
                f"criterions (searnn_sll / searnn_skl with --searnn-tokens K).")

    def schedule_defaults(self) -> ScheduleDefaults:
        """What a task can schedule: the mixed roll-in's reference probability (None when the
        roll-in is not mixed) and alpha (None for LL, which has none)."""
        mixed = str(self.cfg.rollin) == "mixed"
        return ScheduleDefaults(rollin_ref_prob=self.cfg.rollin_ref_prob if mixed else None,
                                alpha=None if self.target_name == "ll" else self.base_alpha)

    def set_schedule(self, rollin_ref_prob=None, alpha=None, mle_only=None):
        """Called by tasks with schedules (``searnn_translation``) before each step: the mixed
        roll-in's reference probability, the KL/LLCAS/hinge alpha, and whether the step is a
        cross-entropy warm-up step. ``None`` leaves a value unchanged."""
        if rollin_ref_prob is not None:
            if not 0.0 <= rollin_ref_prob <= 1.0:
                raise ValueError(f"roll-in reference probability {rollin_ref_prob} not in [0, 1]")
            self.rollin_ref_prob = float(rollin_ref_prob)
        if alpha is not None:
            if alpha <= 0:
                raise ValueError(f"alpha must be > 0, got {alpha}")
            self.alpha = float(alpha)
        if mle_only is not None:
            self.mle_only = bool(mle_only)

    def collect_costs(self, model, sample):
        """Cost vectors for ``sample`` (no grad, eval mode): a ``SearchResult``."""
        require_incremental(model)
        return self.search.collect(model, sample, seed=torch.initial_seed())

    def forward(self, model, sample, reduce=True):
        """The SeaRNN loss summed over cells (``reduce=False``: per cell, ``[B, T]``, plus the
        token cross-entropy per target position with ``--searnn-mle-weight``)."""
        if not model.training and not self.cfg.searnn_full_valid_loss:
            return self._cheap_valid(model, sample, reduce)
        if self.mle_only:
            return self._mle(model, sample, reduce)
        require_incremental(model)
        batch = self.search.roll_in(model, sample, seed=torch.initial_seed(),
                                    rollin_ref_prob=self.rollin_ref_prob)  # roll-in
        lprobs, gold = self._score(model, sample, batch)  # the one forward with grad
        # cells, candidates, roll-outs, costs; sampled sets drawn from this pass's scores
        res = self.search.finish(batch, lprobs.detach() if self.search.needs_scores else None)
        per_cell, cells, tiebreak = self.compute_loss(lprobs, res)
        tokens = _nll(gold, sample["target"], self.padding_idx, reduce=False)
        w = self.cfg.searnn_mle_weight
        if w > 0:
            per_cell = objective.mix(per_cell, self._token_loss(gold, sample, tokens), w)
        log = self._log(sample, loss=per_cell.sum(), nll=tokens.sum(), cells=int(cells.sum()))
        log.update(self._search_stats(res, cells, tiebreak))
        if not self._described:
            self._describe(res, cells)
        return (per_cell.sum() if reduce else per_cell), log["sample_size"], log

    def _score(self, model, sample, batch):
        """Log-probabilities ``[B, T, V]`` at the roll-in's cells (with grad) and on the gold
        prefixes (for the token NLL: with grad when ``--searnn-mle-weight`` trains on it)."""
        net_input, pad = sample["net_input"], self.padding_idx
        gold_prev = net_input["prev_output_tokens"]
        if self.cfg.rollin == "reference":
            lprobs = teacher_forced(model, net_input, [gold_prev], pad=pad)[0]
            return lprobs, lprobs
        if self.cfg.searnn_mle_weight > 0:  # both passes in one model(...) call, as DDP expects
            lprobs, gold = teacher_forced(model, net_input, [batch.prev_output_tokens,
                                                              gold_prev], pad=pad)
            return lprobs, gold
        lprobs = teacher_forced(model, net_input, [batch.prev_output_tokens], pad=pad)[0]
        with torch.no_grad():  # the gold NLL, for logging only
            gold = teacher_forced(model, net_input, [gold_prev], pad=pad)[0]
        return lprobs, gold

    def compute_loss(self, lprobs, res):
        """Per-cell loss ``[B, T]`` (0 outside the rolled-out cells) from the log-probabilities
        ``lprobs: [B, T, V]`` and the search result; also the cells ``[B, T]`` and the LL
        tie-breaking draws used (None for KL)."""
        return objective.cell_losses(lprobs, res, self.target_name, sampled=self.sampled,
                                     alpha=self.alpha, eos=self.eos,
                                     sampled_softmax=str(self.cfg.searnn_sampled_softmax))

    def _search_stats(self, res, cells, tiebreak) -> dict:
        """Sums over the rolled-out cells for logging: costs, roll-outs and the target."""
        return objective.search_stats(res, cells, self.target_name, alpha=self.alpha,
                                      tiebreak=tiebreak)

    def _describe(self, res, cells) -> None:
        """Log once what a training batch costs: cells, roll-outs, learned share."""
        self._described = True
        B = max(res.rollin.size(0), 1)
        rollouts = max(res.stats["rollouts"], 1.0)
        logger.info(
            f"SeaRNN batch of {B} sentences: roll-in length {res.rollin.size(1)} (longest), "
            f"{float(cells.sum()) / B:.1f} cells and {res.stats['rollouts'] / B:.1f} roll-outs "
            f"per sentence, {100 * res.stats['learned_rollouts'] / rollouts:.0f}% of them "
            f"decoded by the model; search {res.stats['search_time']:.2f} s")

    def _mle(self, model, sample, reduce=True):
        """Token cross-entropy on the gold target (warm-up updates)."""
        lprobs = model.get_normalized_probs(model(**sample["net_input"]), log_probs=True)
        tokens = _nll(lprobs.float(), sample["target"], self.padding_idx, reduce=False)
        loss = self._token_loss(lprobs.float(), sample, tokens)
        log = self._log(sample, loss=loss.sum(), nll=tokens.sum(), cells=sample["ntokens"])
        log["searnn_mle_active"] = log["nsentences"]
        return (loss.sum() if reduce else loss), log["sample_size"], log

    def _token_loss(self, lprobs, sample, nll):
        """The token-level term ``[B, T]``: the gold NLL ``nll``, label-smoothed as fairseq's
        ``label_smoothed_cross_entropy`` with ``--searnn-mle-label-smoothing``."""
        eps = self.cfg.searnn_mle_label_smoothing
        if eps == 0:
            return nll
        return objective.token_loss(lprobs, sample["target"], self.padding_idx, eps)

    def _cheap_valid(self, model, sample, reduce=True):
        """Validation: gold NLL (as ``loss``) and the cost of the greedy decoding (bounded by
        the source as fairseq-generate: ``--rollout-max-len-a/-b``, default 0 / 200)."""
        require_incremental(model)
        pad = self.padding_idx
        lprobs = model.get_normalized_probs(model(**sample["net_input"]), log_probs=True)
        tokens = _nll(lprobs.float(), sample["target"], pad, reduce=False)
        nll = tokens.sum()
        log = self._log(sample, loss=nll, nll=nll, cells=sample["ntokens"])
        c = self.cfg  # the source-based bound: the training bound reads the target
        hyp = self.search.greedy(model, sample, max_len_a=c.rollout_max_len_a or 0.0,
                                 max_len_b=200 if c.rollout_max_len_b is None
                                 else c.rollout_max_len_b)
        ref = content(sample["target"], pad, self.eos)
        cost = self.search.cost_fn(content(hyp, pad, self.eos), ref, pad)
        log.update(searnn_greedy_cost=cost.sum().data, searnn_greedy_sentences=cost.numel())
        return (nll if reduce else tokens), log["sample_size"], log

    def _log(self, sample, loss, nll, cells):
        """Logging output; ``sample_size`` is ``cells`` (cells, or target tokens outside the
        SeaRNN loss) or, with ``--sentence-avg``, the number of sentences."""
        nsentences = sample["target"].size(0)
        log = dict.fromkeys(_SUMMED, 0)
        log.update(loss=loss.data, nll_loss=nll.data, ntokens=sample["ntokens"],
                   nsentences=nsentences, searnn_cells=cells,
                   sample_size=nsentences if self.sentence_avg else cells)
        return log

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        total = {k: sum(float(log.get(k, 0)) for log in logging_outputs) for k in _SUMMED}
        size, ntok, cells = total["sample_size"], total["ntokens"], total["searnn_cells"]
        metrics.log_scalar("loss", total["loss"] / max(size, 1) / math.log(2), size, round=3)
        metrics.log_scalar("nll_loss", total["nll_loss"] / max(ntok, 1) / math.log(2), ntok,
                           round=3)
        metrics.log_derived("ppl", lambda m: utils.get_perplexity(m["nll_loss"].avg))
        ratios = objective.summarize(total)
        if ratios:
            rollouts = total["searnn_rollouts"]
            for name in ("min_cost", "ref_cost"):
                metrics.log_scalar(name, ratios[name], cells, round=4)
            for name in ("target_ref_mass", "target_entropy"):
                metrics.log_scalar(name, ratios[name], cells, round=3)
            metrics.log_scalar("learned_share", ratios["learned_share"], rollouts, round=3)
            metrics.log_scalar("rollouts_per_s", ratios["rollouts_per_s"], round=1)
        if total["searnn_greedy_sentences"] > 0:
            n = total["searnn_greedy_sentences"]
            metrics.log_scalar("greedy_cost", total["searnn_greedy_cost"] / n, n, round=4)
        n = total["nsentences"]
        metrics.log_scalar("mle_active", total["searnn_mle_active"] / max(n, 1), n, round=2)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


def teacher_forced(model, net_input, prevs, pad):
    """Float log-probabilities ``[B, T_i, V]`` of one ``model(...)`` call teacher-forced on each
    decoder input of ``prevs`` (``[B, T_i]`` each): several inputs are interleaved per sentence
    (the source order stays sorted) into one batch of ``B * len(prevs)`` rows
    (:func:`fairseq_searnn.search.interleaved`)."""
    def score(repeat, stacked):
        rows = {k: repeat(v) for k, v in net_input.items() if k != "prev_output_tokens"}
        out = model(**rows, prev_output_tokens=stacked)
        return model.get_normalized_probs(out, log_probs=True).float()

    return interleaved(score, prevs, pad)


def _nll(lprobs, target, pad, reduce=True):
    """Token NLL of ``target: [B, T]`` under ``lprobs: [B, T, V]``, pad ignored: summed, or
    ``[B, T]`` (0 at pad)."""
    nll = objective.token_nll(lprobs, target, pad)
    return nll.sum() if reduce else nll


def require_incremental(model):
    """Raise ``ValueError`` unless ``model`` has a ``FairseqIncrementalDecoder``."""
    from fairseq.models import FairseqIncrementalDecoder

    decoder = getattr(model, "decoder", None)
    if not isinstance(decoder, FairseqIncrementalDecoder):
        raise ValueError(
            f"SeaRNN and sequence_risk criterions need an encoder-decoder model with a "
            f"FairseqIncrementalDecoder (got {type(decoder).__name__}): they decode "
            f"incrementally")


@register_criterion("searnn_ll", dataclass=SearnnConfig)
class SearnnLL(SearnnCriterion):
    """LL: log-loss on the minimum-cost token of every cell, full softmax (eq. 3)."""

    loss_name = "ll"


@register_criterion("searnn_kl", dataclass=SearnnConfig)
class SearnnKL(SearnnCriterion):
    """KL: cross-entropy to softmax(-alpha * costs), full softmax (eq. 4)."""

    loss_name = "kl"


@register_criterion("searnn_sll", dataclass=SearnnConfig)
class SearnnSLL(SearnnCriterion):
    """sLL: LL over K sampled candidates, softmax restricted to them (Section 5)."""

    loss_name, sampled = "ll", True


@register_criterion("searnn_skl", dataclass=SearnnConfig)
class SearnnSKL(SearnnCriterion):
    """sKL: KL over K sampled candidates, softmax restricted to them (Section 5)."""

    loss_name, sampled = "kl", True
