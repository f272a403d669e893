"""Options of the SeaRNN criterions (``--searnn-*``, ``--rollin*``, ``--rollout*``)."""

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from omegaconf import II

from fairseq_searnn import costs
from fairseq_searnn.search import (
    APPENDIX_LOSSES,
    MIX_GRANULARITIES,
    REFERENCE_POLICIES,
    ROLLINS,
    ROLLOUTS,
    SAMPLED_SOFTMAXES,
    STRATEGIES,
    SearchConfig,
    checks,
    objective,
)
from fairseq_searnn.search.precision import DTYPES as DECODE_DTYPES

#: the engine's setting behind each option (defaults come from :class:`SearchConfig`)
SEARCH_OPTIONS = {
    "cost": "searnn_cost", "rollin": "rollin", "rollin_ref_prob": "rollin_ref_prob",
    "rollout": "rollout", "rollout_ref_prob": "rollout_ref_prob",
    "rollout_mix_granularity": "rollout_mix_granularity",
    "rollout_focused_steps": "rollout_focused_steps", "reference": "searnn_reference",
    "reference_cost": "searnn_reference_cost", "tokens": "searnn_tokens",
    "token_sampling": "searnn_token_sampling",
    "sampling_temperature": "searnn_sampling_temperature", "neighbors": "searnn_neighbors",
    "cells": "searnn_cells", "max_len_a": "rollout_max_len_a",
    "max_len_b": "rollout_max_len_b", "fixed_length": "searnn_fixed_length",
    "rollout_batch_size": "rollout_batch_size", "decode_dtype": "searnn_decode_dtype",
}


def _default(name: str):
    """The engine's default of the setting ``name`` of :class:`SearchConfig`."""
    return SearchConfig.__dataclass_fields__[name].default


def _engine_field(name: str, help: str):
    """An option whose default is the engine's setting ``name``."""
    return field(default=_default(name), metadata={"help": help})


@dataclass
class SearnnConfig(FairseqDataclass):
    searnn_cost: ChoiceEnum(costs.available()) = _engine_field(
        "cost", "test error scoring each roll-out (cost vectors)")
    rollin: ChoiceEnum(ROLLINS) = _engine_field(
        "rollin", "roll-in policy: the target (reference), greedy decoding (learned), or "
        "per-step mixture (mixed)")
    rollin_ref_prob: float = _engine_field(
        "rollin_ref_prob", "mixed roll-in: probability of the reference action per step")
    rollout: ChoiceEnum(ROLLOUTS) = _engine_field(
        "rollout", "roll-out policy: reference, learned (greedy), mixed (reference with "
        "--rollout-ref-prob), focused (m learned steps, then reference)")
    rollout_ref_prob: float = _engine_field(
        "rollout_ref_prob", "mixed roll-out: probability of a reference roll-out")
    rollout_mix_granularity: ChoiceEnum(MIX_GRANULARITIES) = _engine_field(
        "rollout_mix_granularity", "mixed roll-out: draw the policy once per sentence (the "
        "authors' code: all candidates finished alike), once per cell, or per roll-out")
    rollout_focused_steps: int = _engine_field(
        "rollout_focused_steps", "focused roll-out: learned steps before the reference")
    rollout_max_len_a: Optional[float] = _engine_field(
        "max_len_a", "training: learned roll-in/roll-outs hold at most int(a * src_len + b) "
        "content tokens (unset a: 0, unset b: 200); both unset: int(1.5 * reference length) + 5")
    rollout_max_len_b: Optional[int] = _engine_field("max_len_b", "see --rollout-max-len-a")
    searnn_fixed_length: bool = _engine_field(
        "fixed_length", "fixed-length outputs (one per input symbol, e.g. OCR): learned "
        "roll-ins and roll-outs hold exactly the reference's length, EOS is a candidate only "
        "at the end; on by default with a task that declares fixed-length outputs (ocr)")
    rollout_batch_size: int = _engine_field(
        "rollout_batch_size", "learned roll-outs decoded together (rows per chunk; bounds the "
        "memory of the roll-outs)")
    searnn_decode_dtype: ChoiceEnum(list(DECODE_DTYPES)) = _engine_field(
        "decode_dtype", "learned roll-ins and roll-outs, candidate scoring and greedy "
        "validation decode on a copy of the weights in this dtype, cast at every step "
        "(bfloat16: fast on AMX / AVX512-BF16 CPUs and recent GPUs); the training forward is "
        "the task's (--searnn-autocast)")
    searnn_reference: ChoiceEnum(REFERENCE_POLICIES) = _engine_field(
        "reference", "reference policy: copy the target after the cell, or the best suffix of "
        "the target (Appendix C.2)")
    searnn_reference_cost: Optional[ChoiceEnum(costs.available())] = _engine_field(
        "reference_cost", "best-suffix selection cost (default: --searnn-cost; bleu1 is the "
        "paper's NMT recipe)")
    searnn_tokens: int = _engine_field(
        "tokens", "sampled criterions: tokens drawn per cell (K)")
    searnn_token_sampling: ChoiceEnum(STRATEGIES) = _engine_field(
        "token_sampling", "how the K tokens are drawn")
    searnn_sampling_temperature: float = _engine_field(
        "sampling_temperature", "biased sampling: temperature (> 1 boosts rare tokens)")
    searnn_neighbors: int = _engine_field(
        "neighbors", "topk-neighbors: reference tokens within +-W positions")
    searnn_cells: int = _engine_field(
        "cells", "cells drawn uniformly per sentence, plus the EOS cell and the one before "
        "(0: all)")
    searnn_alpha: Optional[float] = field(
        default=None, metadata={"help": "KL: target distribution softmax(-alpha * cost); "
                                "llcas/hinge: cost scale. Default per cost: 200 for the BLEU "
                                "costs (the authors' NMT setting), 50 for hamming / edit"})
    searnn_loss: Optional[ChoiceEnum(APPENDIX_LOSSES)] = field(
        default=None, metadata={"help": "replace LL/KL by an appendix loss (C.1)"})
    searnn_sampled_softmax: ChoiceEnum(SAMPLED_SOFTMAXES) = field(
        default="restricted", metadata={"help": "sampled criterions: the candidates' "
                                        "log-probabilities renormalised over the candidates "
                                        "(restricted, the paper) or from the full softmax "
                                        "(full: the mass outside them is pushed down too)"})
    searnn_mle_weight: float = field(
        default=0.0, metadata={"help": "(1 - w) * SeaRNN loss + w * token cross-entropy"})
    searnn_mle_label_smoothing: float = field(
        default=0.0, metadata={"help": "label smoothing of the token cross-entropy term "
                               "(--searnn-mle-weight, warm-up updates), as fairseq's "
                               "label_smoothed_cross_entropy --label-smoothing"})
    searnn_full_valid_loss: bool = field(
        default=False, metadata={"help": "validate with the full SeaRNN loss (default: gold "
                                 "NLL and the greedy roll-in's cost)"})
    sentence_avg: bool = II("optimization.sentence_avg")


#: the objective's setting behind each option (checks name the option)
OBJECTIVE_OPTIONS = {"alpha": "searnn_alpha", "mle_weight": "searnn_mle_weight",
                     "label_smoothing": "searnn_mle_label_smoothing",
                     "sampled_softmax": "searnn_sampled_softmax"}
DEFAULT_ALPHA = objective.DEFAULT_ALPHA


def alpha(cfg: SearnnConfig) -> float:
    """``--searnn-alpha``, or the default of ``--searnn-cost``."""
    return objective.default_alpha(str(cfg.searnn_cost), cfg.searnn_alpha)


def _flag(name: str) -> str:
    """The command-line option behind the engine's or the objective's setting ``name``."""
    option = {**SEARCH_OPTIONS, **OBJECTIVE_OPTIONS}[name]
    return "--" + option.replace("_", "-")


def check(cfg: SearnnConfig, sampled: bool, vocab: int, fixed_length: bool = False) -> None:
    """Raise ``ValueError`` naming the option for any invalid value or combination."""
    settings = {name: getattr(cfg, option)
                for name, option in {**SEARCH_OPTIONS, **OBJECTIVE_OPTIONS}.items()}
    settings = {name: str(v) if isinstance(v, Enum) else v for name, v in settings.items()}
    for problem in checks.problems(settings, sampled=sampled, vocab=vocab,
                                   fixed_length=fixed_length, flag=_flag):
        raise ValueError(problem)


def search_config(cfg: SearnnConfig, fixed_length: bool = False) -> SearchConfig:
    """The engine's plain settings from the criterion's options (``fixed_length``: also when
    the task declares fixed-length outputs)."""
    values = {name: getattr(cfg, option) for name, option in SEARCH_OPTIONS.items()}
    values = {name: str(v) if isinstance(v, Enum) else v for name, v in values.items()}
    values["fixed_length"] = fixed_length or cfg.searnn_fixed_length
    return SearchConfig(**values)
