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
    STRATEGIES,
    SearchConfig,
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


#: the default alpha of each cost (--searnn-alpha unset)
DEFAULT_ALPHA = {"bleu": 200.0, "bleu1": 200.0, "bleu-smooth-all": 200.0, "hamming": 50.0,
                 "edit": 50.0}


def alpha(cfg: SearnnConfig) -> float:
    """``--searnn-alpha``, or the default of ``--searnn-cost``."""
    if cfg.searnn_alpha is not None:
        return float(cfg.searnn_alpha)
    return DEFAULT_ALPHA[str(cfg.searnn_cost)]


def check(cfg: SearnnConfig, sampled: bool, vocab: int, fixed_length: bool = False) -> None:
    """Raise ``ValueError`` naming the option for any invalid value or combination."""
    if vocab <= 1:
        raise ValueError("the target dictionary holds only special symbols: no candidate token "
                         "besides EOS")
    for problem in (*_value_problems(cfg), *_candidate_problems(cfg, sampled, vocab),
                    *_policy_problems(cfg, fixed_length)):
        raise ValueError(problem)


def _value_problems(cfg: SearnnConfig):
    """Messages for out-of-range values."""
    for name in ("rollin_ref_prob", "rollout_ref_prob", "searnn_mle_weight"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            yield f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(cfg, name)}"
    if not 0.0 <= cfg.searnn_mle_label_smoothing < 1.0:
        yield ("--searnn-mle-label-smoothing must be in [0, 1), got "
               f"{cfg.searnn_mle_label_smoothing}")
    if cfg.searnn_alpha is not None and cfg.searnn_alpha <= 0:
        yield f"--searnn-alpha must be > 0, got {cfg.searnn_alpha}"
    if cfg.searnn_sampling_temperature <= 0:
        yield "--searnn-sampling-temperature must be > 0"
    if cfg.searnn_cells < 0:
        yield "--searnn-cells must be >= 0 (0: every cell)"
    if cfg.rollout_batch_size <= 0:
        yield "--rollout-batch-size must be > 0"
    if (cfg.rollout_max_len_b or 0) < 0 or (cfg.rollout_max_len_a or 0) < 0:
        yield "--rollout-max-len-a/-b must be >= 0"


def _candidate_problems(cfg: SearnnConfig, sampled: bool, vocab: int):
    """Messages for candidate-set options that do not fit the criterion."""
    if sampled and cfg.searnn_tokens <= 0:
        yield "sampled SeaRNN criterions need --searnn-tokens K > 0"
    if not sampled and cfg.searnn_tokens > 0:
        yield ("--searnn-tokens applies to searnn_sll / searnn_skl; the full criterions try "
               "every symbol")
    if cfg.searnn_tokens > vocab:
        yield (f"--searnn-tokens {cfg.searnn_tokens} exceeds the {vocab} candidate symbols of "
               "the target dictionary")
    if cfg.searnn_neighbors < 0 or (
            cfg.searnn_neighbors > 0 and cfg.searnn_token_sampling != "topk-neighbors"):
        yield "--searnn-neighbors W >= 0 needs --searnn-token-sampling topk-neighbors"


def _policy_problems(cfg: SearnnConfig, fixed_length: bool):
    """Messages for roll-out / reference policies that do not fit together."""
    if fixed_length and str(cfg.searnn_reference) != "copy":
        yield ("fixed-length outputs (--searnn-fixed-length, or the task's) need "
               "--searnn-reference copy: a best suffix changes the length")
    if cfg.rollout == "focused" and cfg.rollout_focused_steps < 1:
        yield "--rollout-focused-steps must be >= 1"


def search_config(cfg: SearnnConfig, fixed_length: bool = False) -> SearchConfig:
    """The engine's plain settings from the criterion's options (``fixed_length``: also when
    the task declares fixed-length outputs)."""
    values = {name: getattr(cfg, option) for name, option in SEARCH_OPTIONS.items()}
    values = {name: str(v) if isinstance(v, Enum) else v for name, v in values.items()}
    values["fixed_length"] = fixed_length or cfg.searnn_fixed_length
    return SearchConfig(**values)
