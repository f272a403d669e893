"""Options of the ``searnn_translation`` task and its schedules (pure functions of counters).

Validation options are ``--eval-searnn-*``; training schedules and warm-up are ``--searnn-*``
and never reuse a criterion option name: the schedules start from the SeaRNN criterion's own
``--rollin-ref-prob`` and ``--searnn-alpha`` (or from ``--searnn-rollin-ref-prob-start``).
Schedule step ``i``: updates done before the current one (unit ``update``), or epochs done,
``epoch - 1`` (unit ``epoch``; fairseq counts epochs from 1), so every value is recomputed
from fairseq's counters and a resumed run continues exactly where it stopped.
"""

import json
from dataclasses import dataclass, field
from typing import Optional

from fairseq.dataclass import ChoiceEnum
from fairseq.tasks.translation import TranslationConfig

from fairseq_searnn import schedules, validation

ROLLIN_SCHEDULES = ("constant", "linear", "inverse-sigmoid")
#: --searnn-autocast (float32: none)
AUTOCAST_DTYPES = ("float32", "bfloat16")
UNITS = schedules.UNITS


@dataclass
class SearnnTranslationConfig(TranslationConfig):
    eval_searnn_cost: Optional[ChoiceEnum(list(validation.METRICS))] = field(
        default=None, metadata={"help": "decode the validation set and log the corpus test error "
                                "as searnn_hamming / searnn_edit (total errors / total "
                                "reference symbols x 100) or searnn_bleu (sacrebleu)"})
    eval_searnn_args: str = field(
        default="{}", metadata={"help": "generation args of that decoding as JSON, e.g. "
                                "'{\"beam\": 5, \"temperature\": 0.5}' (default: greedy, "
                                "beam 1)"})
    eval_searnn_remove_bpe: Optional[str] = field(
        default=None, metadata={"help": "remove BPE / sentencepiece before scoring (as "
                                "--eval-bleu-remove-bpe)", "argparse_const": "@@ "})
    eval_searnn_detok: str = field(
        default="space", metadata={"help": "searnn_bleu: detokenizer applied before sacrebleu "
                                   "(e.g. moses; 'space': none), as --eval-bleu-detok"})
    eval_searnn_detok_args: str = field(
        default="{}", metadata={"help": "args of --eval-searnn-detok as a JSON string"})
    searnn_autocast: ChoiceEnum(list(AUTOCAST_DTYPES)) = field(
        default="float32", metadata={"help": "bfloat16: training and validation steps run their "
                                     "forward under autocast to bfloat16 (weights, gradients "
                                     "and optimizer state stay float32; no loss scaling), and "
                                     "validation decodes on a bfloat16 copy of the weights "
                                     "(float16 on CUDA: fairseq's --amp)"})
    searnn_rollin_schedule: ChoiceEnum(list(ROLLIN_SCHEDULES)) = field(
        default="constant", metadata={"help": "mixed roll-in's reference probability p_i: "
                                      "constant = start; linear = start -> end in L steps; "
                                      "inverse-sigmoid = end + (start - end) k / (k + "
                                      "exp(i / k))"})
    searnn_rollin_schedule_unit: ChoiceEnum(list(UNITS)) = field(
        default="update", metadata={"help": "the schedule step i counts updates or epochs done"})
    searnn_rollin_ref_prob_start: Optional[float] = field(
        default=None, metadata={"help": "p at step 0 (default: the criterion's "
                                "--rollin-ref-prob)"})
    searnn_rollin_ref_prob_end: float = field(
        default=0.0, metadata={"help": "p reached by the linear / inverse-sigmoid schedules"})
    searnn_rollin_schedule_length: Optional[float] = field(
        default=None, metadata={"help": "linear schedule: steps L from start to end (> 0)"})
    searnn_rollin_schedule_k: Optional[float] = field(
        default=None, metadata={"help": "inverse-sigmoid schedule: k > 0 (larger = gentler)"})
    searnn_alpha_growth: float = field(
        default=1.0, metadata={"help": "the criterion's --searnn-alpha is multiplied by this "
                               "(> 0) per epoch done"})
    searnn_warmup_updates: int = field(
        default=0, metadata={"help": "updates 1..N train with token cross-entropy, then the "
                             "SeaRNN loss (logged as mle_active)"})


def check(cfg: SearnnTranslationConfig) -> None:
    """Raise ``ValueError`` naming the option for any invalid value or combination."""
    def fail(msg):
        raise ValueError(msg)

    for name in ("searnn_rollin_ref_prob_start", "searnn_rollin_ref_prob_end"):
        value = getattr(cfg, name)
        if value is not None and not 0.0 <= value <= 1.0:
            fail(f"--{name.replace('_', '-')} must be in [0, 1], got {value}")
    schedule = str(cfg.searnn_rollin_schedule)
    length, k = cfg.searnn_rollin_schedule_length, cfg.searnn_rollin_schedule_k
    if schedule == "linear" and (length is None or length <= 0):
        fail("--searnn-rollin-schedule linear needs --searnn-rollin-schedule-length > 0")
    if schedule == "inverse-sigmoid" and (k is None or k <= 0):
        fail("--searnn-rollin-schedule inverse-sigmoid needs --searnn-rollin-schedule-k > 0")
    if k is not None and k <= 0:
        fail(f"--searnn-rollin-schedule-k must be > 0, got {k}")
    if cfg.searnn_alpha_growth <= 0:
        fail(f"--searnn-alpha-growth must be > 0, got {cfg.searnn_alpha_growth}")
    if cfg.searnn_warmup_updates < 0:
        fail(f"--searnn-warmup-updates must be >= 0, got {cfg.searnn_warmup_updates}")
    for name in ("eval_searnn_args", "eval_searnn_detok_args"):
        try:
            ok = isinstance(json.loads(getattr(cfg, name)), dict)
        except json.JSONDecodeError:
            ok = False
        if not ok:
            fail(f"--{name.replace('_', '-')} must be a JSON object, got {getattr(cfg, name)!r}")


def check_best_metric(cfg: SearnnTranslationConfig, metric: str, maximize: bool) -> None:
    """``--best-checkpoint-metric`` / ``--maximize-best-checkpoint-metric`` against the
    validation metric: a ``searnn_*`` metric must be the one computed, with the right sense."""
    names = {f"searnn_{m}": m for m in validation.METRICS}
    if metric not in names:
        return
    if cfg.eval_searnn_cost is None or str(cfg.eval_searnn_cost) != names[metric]:
        raise ValueError(f"--best-checkpoint-metric {metric} needs --eval-searnn-cost "
                         f"{names[metric]} (got {cfg.eval_searnn_cost})")
    if maximize != (metric == "searnn_bleu"):
        raise ValueError(f"{metric} is {'higher' if metric == 'searnn_bleu' else 'lower'}-is-"
                         "better: --maximize-best-checkpoint-metric must be given for "
                         "searnn_bleu only")


def schedule_step(unit: str, epoch: int, update_num: int) -> int:
    """Step i: ``update_num`` (updates done) or ``epoch - 1`` (epochs done)."""
    return int(update_num) if str(unit) == "update" else max(int(epoch) - 1, 0)


def rollin_ref_prob(cfg: SearnnTranslationConfig, start: float, epoch: int,
                    update_num: int) -> float:
    """Mixed roll-in reference probability at the counters; ``start``: the criterion's
    ``--rollin-ref-prob`` (overridden by ``--searnn-rollin-ref-prob-start``)."""
    if cfg.searnn_rollin_ref_prob_start is not None:
        start = cfg.searnn_rollin_ref_prob_start
    end, schedule = cfg.searnn_rollin_ref_prob_end, str(cfg.searnn_rollin_schedule)
    i = schedule_step(cfg.searnn_rollin_schedule_unit, epoch, update_num)
    if schedule == "constant":
        return float(start)
    if schedule == "linear":
        return schedules.linear(start, end, cfg.searnn_rollin_schedule_length, i)
    return end + (start - end) * schedules.inverse_sigmoid(i, cfg.searnn_rollin_schedule_k)


def alpha(cfg: SearnnTranslationConfig, start: float, epoch: int) -> float:
    """KL alpha at ``epoch``: ``start * growth ** (epoch - 1)``."""
    return schedules.exponential(start, cfg.searnn_alpha_growth, schedule_step("epoch", epoch, 0))


def warming_up(cfg: SearnnTranslationConfig, update_num: int) -> bool:
    """Whether the update after ``update_num`` done ones is a cross-entropy warm-up update."""
    return int(update_num) < cfg.searnn_warmup_updates
