"""Shared glue of the ``dss_*`` models: ``--ss-*`` options, their schedules, the feed to use.

Not auto-registered (leading underscore). The registered shells (:mod:`.dss_lstm`,
:mod:`.dss_transformer`) subclass :class:`DSSConfig` and mix :class:`DSSModelMixin` into
fairseq's own ``lstm`` / ``transformer`` models.
"""

import math
from dataclasses import dataclass, field, fields
from typing import Optional, Tuple

import torch
import torch.nn as nn
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.logging import metrics
from fairseq.models import register_model_architecture

from fairseq_searnn import keyed_random, schedules
from fairseq_searnn.models.relaxed_feeding import FEEDS, RelaxedFeed

FEED_CHOICES = ChoiceEnum(list(FEEDS))
UNIT_CHOICES = ChoiceEnum(list(schedules.UNITS))


@dataclass
class DSSConfig(FairseqDataclass):
    """``--ss-*`` options common to every differentiable-scheduled-sampling model."""

    ss_feed: FEED_CHOICES = field(
        default="soft-greedy",
        metadata={"help": "what the decoder is fed instead of the gold token (Goyal et al. "
                  "2017, Table 1): hard-greedy / hard-sample = scheduled sampling of Bengio "
                  "et al. (2015) with the argmax / a sample of the previous step's softmax; "
                  "soft-greedy = alpha-soft argmax sum_y e(y) softmax(alpha*s)(y); "
                  "soft-sample = Gumbel relaxation sum_y e(y) softmax(alpha*(s+G))(y)"},
    )
    ss_alpha: float = field(
        default=1.0,
        metadata={"help": "alpha > 0 of the soft feeds at schedule step 0 (larger = closer to "
                  "a hard argmax / sample); ignored by the hard feeds"},
    )
    ss_alpha_growth: float = field(
        default=1.0,
        metadata={"help": "alpha is multiplied by this (> 0) per schedule step (see "
                  "--ss-decay-unit): 1 = fixed alpha, > 1 = the paper's exponential annealing"},
    )
    ss_decay_k: float = field(
        default=1000.0,
        metadata={"help": "k > 0 of the inverse-sigmoid decay of the gold-token probability "
                  "epsilon = k / (k + exp(i / k)), i = schedule step (larger = gentler; the "
                  "paper tries 1, 10, 100 with epochs; use thousands with updates)"},
    )
    ss_teacher_forcing_prob: Optional[float] = field(
        default=None,
        metadata={"help": "fix epsilon (gold-token probability, in [0, 1]) instead of the "
                  "inverse-sigmoid decay: 1 = plain teacher forcing, 0 = always feed the "
                  "model's decisions"},
    )
    ss_warmup_updates: int = field(
        default=0,
        metadata={"help": "pure teacher forcing (epsilon = 1) during the first N updates"},
    )
    ss_warmup_epochs: int = field(
        default=0,
        metadata={"help": "pure teacher forcing during the first N epochs (the paper uses 1); "
                  "needs a task that passes the epoch to the model (model.set_epoch), e.g. "
                  "searnn_translation"},
    )
    ss_decay_unit: UNIT_CHOICES = field(
        default="update",
        metadata={"help": "what the schedule step i of epsilon and alpha counts: 'update' "
                  "(updates done; works with every task) or 'epoch' (epochs done, as in the "
                  "paper; needs a task that calls model.set_epoch, e.g. searnn_translation)"},
    )


def config_from_args(config_cls, args) -> DSSConfig:
    """Read and validate a ``config_cls`` (a :class:`DSSConfig`) from a legacy namespace;
    missing attributes take the dataclass defaults. Raises ValueError on bad values."""
    values = {}
    for f in fields(config_cls):
        if f.name != "_name":
            values[f.name] = getattr(args, f.name, f.default)
    cfg = config_cls(**values)
    validate(cfg)
    return cfg


def set_defaults(config_cls, args) -> None:
    """Architecture hook: give ``args`` every missing ``--ss-*`` option's default."""
    for f in fields(config_cls):
        if f.name != "_name" and not hasattr(args, f.name):
            setattr(args, f.name, f.default)


def register_variant(model: str, config_cls, name: str, base):
    """Register architecture ``name`` of ``model``: ``base``'s sizes plus the ``--ss-*``
    defaults of ``config_cls``."""
    @register_model_architecture(model, name)
    def arch(args):
        set_defaults(config_cls, args)
        base(args)

    arch.__name__ = name
    return arch


def validate(cfg: DSSConfig) -> None:
    """Start-up checks of the ``--ss-*`` values, with the option name in each message."""
    def check(ok, message):
        if not ok:
            raise ValueError(message)

    feed = str(cfg.ss_feed)
    check(feed in FEEDS, f"--ss-feed {feed!r} is unknown; choose one of {', '.join(FEEDS)}")
    check(cfg.ss_alpha > 0 and not math.isnan(cfg.ss_alpha),
          f"--ss-alpha must be > 0, got {cfg.ss_alpha}")
    check(cfg.ss_alpha_growth > 0, f"--ss-alpha-growth must be > 0, got {cfg.ss_alpha_growth}")
    check(cfg.ss_decay_k > 0, f"--ss-decay-k must be > 0, got {cfg.ss_decay_k}")
    p = cfg.ss_teacher_forcing_prob
    check(p is None or 0.0 <= p <= 1.0,
          f"--ss-teacher-forcing-prob must be in [0, 1], got {p}")
    check(cfg.ss_warmup_updates >= 0,
          f"--ss-warmup-updates must be >= 0, got {cfg.ss_warmup_updates}")
    check(cfg.ss_warmup_epochs >= 0,
          f"--ss-warmup-epochs must be >= 0, got {cfg.ss_warmup_epochs}")
    unit = str(cfg.ss_decay_unit)
    check(unit in schedules.UNITS, f"--ss-decay-unit must be update or epoch, got {unit!r}")


def check_decoder_supported(decoder, arch: str) -> None:
    """The relaxation needs an embedding table and scores over the whole vocabulary."""
    if getattr(decoder, "adaptive_softmax", None) is not None:
        raise ValueError(f"{arch}: adaptive softmax is not supported (the soft argmax needs "
                         "scores over the whole vocabulary)")
    if not isinstance(decoder.embed_tokens, nn.Embedding):
        raise ValueError(f"{arch}: the decoder input embedding must be a plain embedding table "
                         f"(got {type(decoder.embed_tokens).__name__}, e.g. adaptive input)")


class DSSModelMixin:
    """Schedule state and feed construction for a fairseq encoder-decoder model.

    The counters come from fairseq: ``set_num_updates`` (every train step, and on checkpoint
    load) and ``set_epoch`` (only from tasks whose ``begin_epoch`` calls it). ε and α are pure
    functions of them (:meth:`dss_schedule`), so nothing needs saving in checkpoints.
    """

    def dss_setup(self, cfg: DSSConfig) -> None:
        self.dss_cfg = cfg
        self._dss_num_updates = 0
        self._dss_epoch: Optional[int] = None

    def set_num_updates(self, num_updates):
        self._dss_num_updates = int(num_updates)
        super().set_num_updates(num_updates)

    def set_epoch(self, epoch):
        self._dss_epoch = int(epoch)
        super().set_epoch(epoch)

    def dss_step(self) -> int:
        """The schedule step i: updates done, or epochs done (``epoch - 1``, fairseq counts
        epochs from 1)."""
        if str(self.dss_cfg.ss_decay_unit) == "update":
            return self._dss_num_updates
        return max(self._epoch() - 1, 0)

    def _epoch(self) -> int:
        if self._dss_epoch is None:
            raise RuntimeError(
                "--ss-decay-unit epoch / --ss-warmup-epochs: the model was never told the epoch "
                "(model.set_epoch). fairseq's stock tasks only report updates; use --task "
                "searnn_translation, or --ss-decay-unit update with --ss-warmup-updates."
            )
        return self._dss_epoch

    def dss_schedule(self) -> Tuple[float, float]:
        """``(epsilon, alpha)`` at the current counters."""
        cfg = self.dss_cfg
        i = self.dss_step()
        warm = self._dss_num_updates < cfg.ss_warmup_updates
        if cfg.ss_warmup_epochs > 0:
            warm = warm or self._epoch() <= cfg.ss_warmup_epochs
        if warm:
            epsilon = 1.0
        elif cfg.ss_teacher_forcing_prob is not None:
            epsilon = float(cfg.ss_teacher_forcing_prob)
        else:
            epsilon = schedules.inverse_sigmoid(i, cfg.ss_decay_k)
        alpha = schedules.exponential(cfg.ss_alpha, cfg.ss_alpha_growth, i)
        return epsilon, alpha

    def dss_feed(self, src_tokens) -> Optional[RelaxedFeed]:
        """The feed of a training forward (logs ε and α), or None for plain teacher forcing
        (evaluation mode, or ε = 1)."""
        if not self.training:
            return None
        epsilon, alpha = self.dss_schedule()
        metrics.log_scalar("ss_epsilon", epsilon, weight=0, round=4)
        metrics.log_scalar("ss_alpha", alpha, weight=0, round=4)
        if epsilon >= 1.0:
            return None
        seq_keys = keyed_random.sequence_key(src_tokens, self.encoder.dictionary.pad())
        return RelaxedFeed(
            self.decoder.embed_tokens, str(self.dss_cfg.ss_feed), alpha, epsilon, seq_keys,
            seed=torch.initial_seed(), pad=self.decoder.dictionary.pad(),
        )
