"""Options of the ``sequence_risk`` criterion (``--risk-*``); defaults are Edunov et al.'s
(NAACL 2018) IWSLT'14 fine-tuning setting (docs/fidelity.md, *Sequence-level risk*)."""

from dataclasses import dataclass, field

from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from omegaconf import II

from fairseq_searnn import costs
from fairseq_searnn.search import risk
from fairseq_searnn.search.precision import DTYPES as DECODE_DTYPES


@dataclass
class SequenceRiskConfig(FairseqDataclass):
    risk_candidates: ChoiceEnum(risk.CANDIDATE_SOURCES) = field(
        default="beam", metadata={"help": "candidate set per source, generated online by the "
                                  "current model: a beam search of --risk-size (fairseq's "
                                  "SequenceGenerator) or --risk-size ancestral samples (keyed "
                                  "by the sentence)"})
    risk_size: int = field(
        default=16, metadata={"help": "n: the beam size, or the samples per source"})
    risk_add_reference: bool = field(
        default=False, metadata={"help": "add the reference to every candidate set"})
    risk_cost: ChoiceEnum(costs.available()) = field(
        default="bleu", metadata={"help": "cost of a candidate against the reference (bleu: "
                                  "1 - sentence BLEU+1)"})
    risk_mle_weight: float = field(
        default=0.3, metadata={"help": "w: w * label-smoothed token loss + (1 - w) * risk"})
    risk_label_smoothing: float = field(
        default=0.1, metadata={"help": "label smoothing of the token loss, as fairseq's "
                               "label_smoothed_cross_entropy --label-smoothing"})
    risk_max_len_a: float = field(
        default=1.5, metadata={"help": "candidates hold at most int(a * src_len + b) tokens"})
    risk_max_len_b: int = field(default=5, metadata={"help": "see --risk-max-len-a"})
    risk_decode_dtype: ChoiceEnum(list(DECODE_DTYPES)) = field(
        default="float32", metadata={"help": "candidates and the greedy validation decode on a "
                                     "copy of the weights in this dtype, cast at every step"})
    sentence_avg: bool = II("optimization.sentence_avg")


def check(cfg: SequenceRiskConfig) -> None:
    """Raise ``ValueError`` naming the option for any invalid value."""
    if cfg.risk_size < 1:
        raise ValueError(f"--risk-size must be >= 1, got {cfg.risk_size}")
    if not 0.0 <= cfg.risk_mle_weight <= 1.0:
        raise ValueError(f"--risk-mle-weight must be in [0, 1], got {cfg.risk_mle_weight}")
    if not 0.0 <= cfg.risk_label_smoothing < 1.0:
        raise ValueError(f"--risk-label-smoothing must be in [0, 1), got "
                         f"{cfg.risk_label_smoothing}")
    if cfg.risk_max_len_a < 0 or cfg.risk_max_len_b < 0:
        raise ValueError("--risk-max-len-a and --risk-max-len-b must be >= 0")
    if cfg.risk_max_len_a == 0 and cfg.risk_max_len_b == 0:
        raise ValueError("--risk-max-len-a and --risk-max-len-b are both 0: no candidate token")
