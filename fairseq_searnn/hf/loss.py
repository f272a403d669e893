"""The SeaRNN loss for ``transformers`` training loops: :class:`SearnnLoss`.

``loss = SearnnLoss(model, tokenizer, "skl", tokens=5)`` then ``loss(model, batch)`` on a
batch of ``input_ids``, ``attention_mask`` and ``labels`` (-100 after the end) returns the
loss per cell (or per sentence with ``sentence_avg``) and keeps the step's summed statistics
in :attr:`SearnnLoss.last_log` (:func:`fairseq_searnn.search.objective.summarize` turns sums
into the fairseq criterion's ratios). One step, as the fairseq criterion's: the roll-in (no
grad, eval mode, :class:`~fairseq_searnn.hf.host.HFHost`), one teacher-forced forward on the
roll-in with grad, cells, candidates, roll-outs and costs (no grad), the per-cell loss
(:mod:`fairseq_searnn.search.objective`).
"""

import dataclasses
import logging
from typing import Dict, Optional

import torch
from torch import Tensor

from fairseq_searnn.hf.dictionary import HFDictionary
from fairseq_searnn.hf.host import HFHost
from fairseq_searnn.hf.text_cost import TextCost
from fairseq_searnn.search import (
    APPENDIX_LOSSES,
    Search,
    SearchConfig,
    allowed_tokens,
    checks,
    content,
    emittable_tokens,
    interleaved,
    objective,
    precision,
    prev_output_tokens,
)

logger = logging.getLogger(__name__)
#: full losses on a larger candidate vocabulary get a warning (as the fairseq criterions)
FULL_VOCAB_WARNING = 300

#: loss name -> (per-cell loss, candidates sampled): the fairseq criterions searnn_*
LOSSES = {"ll": ("ll", False), "kl": ("kl", False), "sll": ("ll", True), "skl": ("kl", True)}
SEARCH_FIELDS = tuple(f.name for f in dataclasses.fields(SearchConfig))
IGNORE_INDEX = -100  # padding of ``labels`` in transformers batches


def eos_terminated(labels: Tensor, pad: int, eos: int) -> Tensor:
    """``[B, T]`` targets as the engine reads them (content, one EOS, pad after) from
    ``labels: [B, T']`` (-100 or pad after the end; a final EOS optional)."""
    body = content(labels.masked_fill(labels.eq(IGNORE_INDEX), pad), pad, eos)
    lengths = body.ne(pad).sum(1)
    out = torch.nn.functional.pad(body, (0, 1), value=pad)
    out[torch.arange(out.size(0), device=out.device), lengths] = eos
    return out


class SearnnLoss:
    """The SeaRNN loss of a ``transformers`` encoder-decoder model.

    Args:
        model: the model (or its config): the target vocabulary's size and special ids.
        tokenizer: its tokenizer (special ids, symbols; needed by ``text_cost``).
        loss: ``ll``, ``kl`` (every symbol a candidate), ``sll``, ``skl`` (``tokens`` drawn).
        alpha: KL / appendix losses' scale (default per cost: 200 BLEU, 50 Hamming / edit).
        appendix_loss: ``llcas`` or ``hinge`` instead of LL / KL.
        sampled_softmax: ``sll`` / ``skl``: the candidates' log-probabilities renormalised over
            them (``restricted``, the paper) or from the full softmax (``full``).
        mle_weight: w, ``(1 - w) * SeaRNN + w * token cross-entropy``; label_smoothing: of
            that token term (as fairseq's ``label_smoothed_cross_entropy``).
        text_cost: score roll-outs on the words of the detokenised text (:class:`TextCost`)
            instead of token ids.
        sentence_avg: divide by sentences instead of cells.
        search: the engine's settings (:class:`~fairseq_searnn.search.SearchConfig` fields:
            ``cost``, ``rollin``, ``rollout``, ``tokens``, ``cells``, ``reference``, ...).
    Raises ``ValueError`` naming the option for a bad value.
    """

    def __init__(self, model, tokenizer=None, loss: str = "kl", alpha: Optional[float] = None,
                 appendix_loss: Optional[str] = None, sampled_softmax: str = "restricted",
                 mle_weight: float = 0.0,
                 label_smoothing: float = 0.0, text_cost: bool = False,
                 sentence_avg: bool = False, **search):
        unknown = sorted(set(search) - set(SEARCH_FIELDS))
        if unknown:
            raise ValueError(f"unknown SeaRNN option(s) {', '.join(unknown)}; the search takes "
                             f"{', '.join(SEARCH_FIELDS)}")
        if loss not in LOSSES:
            raise ValueError(f"loss {loss!r} unknown; choose from {', '.join(LOSSES)}")
        if appendix_loss is not None and appendix_loss not in APPENDIX_LOSSES:
            raise ValueError(f"appendix_loss {appendix_loss!r} unknown; choose from "
                             f"{', '.join(APPENDIX_LOSSES)}")
        if text_cost and tokenizer is None:
            raise ValueError("text_cost needs the tokenizer (detokenised hypotheses)")
        cfg = SearchConfig(**search)
        if cfg.decode_dtype != "float32":
            raise ValueError("decode_dtype applies to fairseq models; a transformers model "
                             "decodes in its own dtype")
        self.dictionary = HFDictionary.from_model(model, tokenizer)
        base, self.sampled = LOSSES[loss]
        self.loss_name = appendix_loss or base
        vocab = len((emittable_tokens if self.sampled else allowed_tokens)(self.dictionary))
        settings = {**dataclasses.asdict(cfg), "alpha": alpha, "mle_weight": mle_weight,
                    "label_smoothing": label_smoothing, "sampled_softmax": sampled_softmax}
        for problem in checks.problems(settings, sampled=self.sampled, vocab=vocab,
                                       fixed_length=cfg.fixed_length, flag=str):
            raise ValueError(problem)
        if not self.sampled and vocab > FULL_VOCAB_WARNING:
            logger.warning(f"loss {loss!r} tries all {vocab} symbols of the vocabulary at every "
                           f"cell, a roll-out each: with a vocabulary this size use 'sll' / "
                           f"'skl' with tokens=K")
        self.alpha = objective.default_alpha(cfg.cost, alpha)
        self.mle_weight, self.label_smoothing = mle_weight, label_smoothing
        self.sampled_softmax = sampled_softmax
        self.sentence_avg = sentence_avg
        self.pad, self.eos = self.dictionary.pad(), self.dictionary.eos()
        self.search = Search(cfg, self.dictionary,
                             cost_fn=TextCost(tokenizer, cfg.cost) if text_cost else None)
        self.rollin_ref_prob = cfg.rollin_ref_prob  # a schedule may change it between steps
        self.last_log: Dict[str, float] = {}
        self.steps = 0

    def sample(self, batch: dict) -> dict:
        """The engine's view of a ``transformers`` batch: ``net_input`` (``src_tokens``,
        ``src_lengths``, ``attention_mask``) and the EOS-terminated ``target: [B, T]``."""
        src = batch["input_ids"]
        mask = batch.get("attention_mask")
        if mask is None:
            mask = src.ne(self.pad).long()
        target = eos_terminated(batch["labels"], self.pad, self.eos)
        return {"net_input": {"src_tokens": src, "src_lengths": mask.sum(1),
                              "attention_mask": mask},
                "target": target, "ntokens": int(target.ne(self.pad).sum())}

    def host(self, model) -> HFHost:
        """The decoding host of ``model`` (unwrapped)."""
        return HFHost(model, bos=self.eos, pad=self.pad)

    def __call__(self, model, batch: dict, seed: Optional[int] = None,
                 decoding_model=None) -> Tensor:
        """The loss of ``batch`` (a scalar with grad).

        Args:
            model: the model the training forward runs through (possibly wrapped: DDP, ...).
            batch: ``input_ids, attention_mask: [B, S]``, ``labels: [B, T]``.
            seed: keys the random draws with the sentences' source tokens (default: a
                counter of calls).
            decoding_model: the unwrapped model that decodes (default: ``model`` unwrapped
                from a distributed wrapper).
        """
        self.steps += 1
        seed = self.steps if seed is None else seed
        sample = self.sample(batch)
        host = self.host(decoding_model if decoding_model is not None
                         else precision.unwrap(model))
        rolled = self.search.roll_in(host, sample, seed=seed,
                                     rollin_ref_prob=self.rollin_ref_prob)
        lprobs, gold = self.score(model, host, sample, rolled.prev_output_tokens)
        res = self.search.finish(rolled, lprobs.detach() if self.search.needs_scores else None)
        per_cell, cells, tiebreak = objective.cell_losses(
            lprobs, res, self.loss_name, sampled=self.sampled, alpha=self.alpha, eos=self.eos,
            sampled_softmax=self.sampled_softmax)
        target = sample["target"]
        nll = objective.token_nll(gold, target, self.pad)
        if self.mle_weight > 0:
            tokens = objective.token_loss(gold, target, self.pad, self.label_smoothing)
            per_cell = objective.mix(per_cell, tokens, self.mle_weight)
        n_cells = int(cells.sum())
        size = target.size(0) if self.sentence_avg else max(n_cells, 1)
        total = per_cell.sum()
        self.last_log = {"loss": float(total.detach()), "nll_loss": float(nll.detach().sum()),
                         "ntokens": sample["ntokens"], "nsentences": target.size(0),
                         "sample_size": size, "searnn_cells": n_cells,
                         **{k: float(v) for k, v in objective.search_stats(
                             res, cells, self.loss_name, self.alpha, tiebreak).items()}}
        return total / size

    def score(self, model, host: HFHost, sample: dict, rollin_prev: Tensor):
        """Float log-probabilities ``[B, T, V]`` at the roll-in's cells (with grad) and on the
        gold prefixes (with grad when ``mle_weight`` trains on them): one ``model(...)`` call,
        the two decoder inputs interleaved per sentence when both are needed."""
        gold_prev = prev_output_tokens(sample["target"], self.pad, self.eos)
        if self.search.cfg.rollin == "reference":
            lprobs = self._forward(model, host, sample, [gold_prev])[0]
            return lprobs, lprobs
        if self.mle_weight > 0:
            lprobs, gold = self._forward(model, host, sample, [rollin_prev, gold_prev])
            return lprobs, gold
        lprobs = self._forward(model, host, sample, [rollin_prev])[0]
        with torch.no_grad():  # the gold NLL, for logging only
            gold = self._forward(model, host, sample, [gold_prev])[0]
        return lprobs, gold

    def _forward(self, model, host: HFHost, sample: dict, prevs):
        """Float log-probabilities ``[B, T_i, V]`` of one ``model(...)`` call on each decoder
        input of ``prevs`` (:func:`fairseq_searnn.search.interleaved`)."""
        net = sample["net_input"]

        def score(repeat, stacked):
            out = model(input_ids=repeat(net["src_tokens"]),
                        attention_mask=repeat(net["attention_mask"]),
                        decoder_input_ids=host.decoder_inputs(stacked), use_cache=False)
            return torch.log_softmax(out.logits.float(), dim=-1)

        return interleaved(score, prevs, self.pad)
