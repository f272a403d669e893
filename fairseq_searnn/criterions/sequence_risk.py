"""``sequence_risk``: sequence-level expected risk mixed with the label-smoothed token loss
(Edunov, Ott, Auli, Grangier, Ranzato, NAACL 2018, "Risk" and the weighted combination).

One training step: the candidate set of every source, generated online by the current model (no
grad, eval mode; a beam search by fairseq's ``SequenceGenerator``, or keyed ancestral samples
from the engine, :func:`fairseq_searnn.search.risk.sample_candidates`), the reference added on
request, repeats masked; the costs of the candidates; one ordinary teacher-forced ``model(...)``
call on every candidate and the gold target (so distributed wrappers see a normal forward);
then per sentence ``w * token loss + (1 - w) * risk`` (:meth:`compute_loss`).
"""

import math

import torch
from fairseq import utils
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.logging import metrics
from fairseq.sequence_generator import SequenceGenerator

from fairseq_searnn import keyed_random
from fairseq_searnn.criterions.searnn import require_incremental, teacher_forced
from fairseq_searnn.criterions.sequence_risk_config import SequenceRiskConfig, check
from fairseq_searnn.search import (
    Search,
    SearchConfig,
    content,
    eval_mode,
    length_bound,
    objective,
    precision,
    prev_output_tokens,
    risk,
)

_SUMMED = ("loss", "nll_loss", "ntokens", "nsentences", "sample_size", "risk_sentences",
           "risk_sum", "risk_min_cost", "risk_top_cost", "risk_candidates",
           "searnn_greedy_cost", "searnn_greedy_sentences")


@register_criterion("sequence_risk", dataclass=SequenceRiskConfig)
class SequenceRiskCriterion(FairseqCriterion):
    """Expected risk over online candidate sets + label-smoothed token cross-entropy."""

    def __init__(self, task, cfg: SequenceRiskConfig):
        super().__init__(task)
        check(cfg)
        self.cfg = cfg
        self.tgt_dict = task.target_dictionary
        self.eos = self.tgt_dict.eos()
        self.sentence_avg = cfg.sentence_avg is True  # unresolved "${optimization...}": off
        # the engine's decoding (length bound, low-precision copy, greedy validation, cost)
        self.search = Search(SearchConfig(cost=str(cfg.risk_cost), max_len_a=cfg.risk_max_len_a,
                                          max_len_b=cfg.risk_max_len_b,
                                          decode_dtype=str(cfg.risk_decode_dtype)),
                             self.tgt_dict)
        self._generator = None  # (model, options, SequenceGenerator) of the beam candidates

    def forward(self, model, sample, reduce=True):
        """The loss summed over sentences (``reduce=False``: ``[B]`` per sentence)."""
        require_incremental(precision.unwrap(model))
        if not model.training:
            return self._valid(model, sample, reduce)
        cand, mask, costs = self.candidates(model, sample, seed=torch.initial_seed())
        per_sentence, log = self.compute_loss(model, sample, cand, mask, costs)
        return (per_sentence.sum() if reduce else per_sentence), log["sample_size"], log

    def candidates(self, model, sample, seed: int):
        """The candidate sets of ``sample`` (no grad, eval mode): ``candidates: [B, K, L]``
        (EOS-terminated, pad after; slot 0 the reference with ``--risk-add-reference``),
        ``mask: [B, K]`` (first occurrences) and ``costs: [B, K]``."""
        net_input, target, pad = sample["net_input"], sample["target"], self.padding_idx
        source = precision.unwrap(model)
        device = target.device
        with precision.decoding(self.search.decode_dtype, precision.device_of(source)):
            decoding = self.search.decoding_model(source)
            with eval_mode(decoding):
                if str(self.cfg.risk_candidates) == "beam":
                    cand = self._beam(decoding, sample)
                else:
                    ids = sample.get("id")
                    if ids is None:  # not a fairseq batch: key sentences by their source
                        ids = keyed_random.sequence_key(net_input["src_tokens"], pad)
                    keys = keyed_random.hash_keys(seed, ids.to(device))
                    ref_len = content(target, pad, self.eos).ne(pad).sum(1)
                    max_len = length_bound(self.search.cfg,
                                           net_input["src_lengths"].to(device), ref_len)
                    cand = risk.sample_candidates(decoding, net_input, self.cfg.risk_size, keys,
                                                  max_len, pad=pad, eos=self.eos)
        if self.cfg.risk_add_reference:
            cand = risk.with_reference(cand, target, pad)
        B, K, L = cand.shape
        hyp = content(cand.reshape(B * K, L), pad, self.eos)
        ref = content(target, pad, self.eos).repeat_interleave(K, 0)
        costs = self.search.cost_fn(hyp, ref, pad).view(B, K).to(device)
        return cand, risk.first_occurrences(cand, pad), costs

    def generator(self, model) -> SequenceGenerator:
        """fairseq's beam search over ``model`` for ``--risk-size`` hypotheses within
        ``--risk-max-len-a/-b``: built at the first call and reused while the model object and
        these options stay the same, rebuilt when one changes."""
        options = (self.cfg.risk_size, self.cfg.risk_max_len_a, self.cfg.risk_max_len_b)
        cached = self._generator  # a tuple: not a submodule (its model's weights are not ours)
        if cached is None or cached[0] is not model or cached[1] != options:
            n, a, b = options
            built = SequenceGenerator([model], self.tgt_dict, beam_size=n, max_len_a=a,
                                      max_len_b=b)
            self._generator = cached = (model, options, built)
        return cached[2]

    def _beam(self, model, sample):
        """``[B, n, L]`` the ``n`` hypotheses of fairseq's beam search (``--risk-size``), best
        first, bounded by ``int(a * src_len + b)`` tokens (src_len: the batch's source width)."""
        n, pad = self.cfg.risk_size, self.padding_idx
        generator = self.generator(model)
        # what building it did: another generator may have changed the decoder's beam size
        generator.model.set_decoder_beam_size(generator.beam_size)
        hypos = generator.generate([model], {"net_input": sample["net_input"]})
        rows = [h["tokens"] for sentence in hypos for h in sentence[:n]]
        out = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=pad)
        return out.view(len(hypos), n, -1).to(sample["target"].device)

    def compute_loss(self, model, sample, cand, mask, costs):
        """Per sentence ``w * sum_t tokLS_t + (1 - w) * s * risk`` (``[B]``) and the logging
        output; ``s`` is the sentence's target tokens (``sample_size`` counts tokens), or 1
        with ``--sentence-avg``, so that the risk enters as a mean over sentences and the
        token loss per normalising unit.

        Args:
            cand: ``[B, K, L]`` candidates; mask: ``[B, K]`` the valid ones; costs: ``[B, K]``.
        """
        net_input, target, pad = sample["net_input"], sample["target"], self.padding_idx
        K = cand.size(1)
        prevs = [prev_output_tokens(cand[:, k], pad, self.eos) for k in range(K)]
        out = teacher_forced(model, net_input, prevs + [net_input["prev_output_tokens"]], pad)
        seq_lp = risk.sequence_logprobs(torch.stack(out[:K], 1), cand, pad)  # [B, K]
        expected = risk.expected_risk(seq_lp, costs, mask)  # [B]
        gold = out[K]
        nll = objective.token_nll(gold, target, pad)
        tokens = objective.token_loss(gold, target, pad, self.cfg.risk_label_smoothing)
        w = self.cfg.risk_mle_weight
        scale = 1.0 if self.sentence_avg else target.ne(pad).sum(1).to(expected)
        per_sentence = w * tokens.sum(1) + (1 - w) * scale * expected
        log = self._log(sample, per_sentence.sum(), nll.sum())
        masked = costs.masked_fill(~mask, float("inf"))
        top = seq_lp.detach().masked_fill(~mask, float("-inf")).argmax(-1, keepdim=True)
        log.update(risk_sentences=target.size(0), risk_sum=expected.sum().data,
                   risk_min_cost=masked.min(-1).values.sum().data,
                   risk_top_cost=costs.gather(-1, top).sum().data,
                   risk_candidates=int(mask.sum()))
        return per_sentence, log

    def _valid(self, model, sample, reduce=True):
        """Validation: gold NLL (as ``loss``; per sentence with ``reduce=False``) and the cost
        of the greedy decoding (fairseq-generate's bound: 200 tokens)."""
        pad, target = self.padding_idx, sample["target"]
        lprobs = model.get_normalized_probs(model(**sample["net_input"]), log_probs=True)
        nll = objective.token_nll(lprobs.float(), target, pad).sum(1)
        log = self._log(sample, nll.sum(), nll.sum())
        hyp = self.search.greedy(precision.unwrap(model), sample, max_len_a=0.0, max_len_b=200)
        cost = self.search.cost_fn(content(hyp, pad, self.eos), content(target, pad, self.eos),
                                   pad)
        log.update(searnn_greedy_cost=cost.sum().data, searnn_greedy_sentences=cost.numel())
        return (nll.sum() if reduce else nll), log["sample_size"], log

    def _log(self, sample, loss, nll):
        """Logging output with every key; ``sample_size``: target tokens, or sentences with
        ``--sentence-avg``."""
        nsentences = sample["target"].size(0)
        log = dict.fromkeys(_SUMMED, 0)
        log.update(loss=loss.data, nll_loss=nll.data, ntokens=sample["ntokens"],
                   nsentences=nsentences,
                   sample_size=nsentences if self.sentence_avg else sample["ntokens"])
        return log

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        total = {k: sum(float(log.get(k, 0)) for log in logging_outputs) for k in _SUMMED}
        size, ntok = total["sample_size"], total["ntokens"]
        metrics.log_scalar("loss", total["loss"] / max(size, 1) / math.log(2), size, round=3)
        metrics.log_scalar("nll_loss", total["nll_loss"] / max(ntok, 1) / math.log(2), ntok,
                           round=3)
        metrics.log_derived("ppl", lambda m: utils.get_perplexity(m["nll_loss"].avg))
        n = total["risk_sentences"]
        if n > 0:
            metrics.log_scalar("risk", total["risk_sum"] / n, n, round=4)
            metrics.log_scalar("min_cost", total["risk_min_cost"] / n, n, round=4)
            metrics.log_scalar("top_cost", total["risk_top_cost"] / n, n, round=4)
            metrics.log_scalar("candidates", total["risk_candidates"] / n, n, round=2)
        if total["searnn_greedy_sentences"] > 0:
            n = total["searnn_greedy_sentences"]
            metrics.log_scalar("greedy_cost", total["searnn_greedy_cost"] / n, n, round=4)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
