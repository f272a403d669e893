"""``searnn_translation``: fairseq's ``translation`` task running SeaRNN's protocol end to end.

- Validation decodes the validation set (greedy = ``--beam 1`` by default) and logs the test
  error the model is trained for: ``searnn_hamming`` / ``searnn_edit`` / ``searnn_bleu``
  (:mod:`fairseq_searnn.validation`), from summed statistics (exact over processes).
- Before every update it hands the SeaRNN criterion its schedules (``set_schedule``): mixed
  roll-in reference probability, KL alpha, cross-entropy warm-up; ``begin_epoch`` passes the
  epoch to the model (``model.set_epoch``, used by the ``dss_*`` models). Every value is a
  function of the epoch / update counters (:mod:`.searnn_translation_config`).
- ``--patience`` survives a resume: the early-stopping state is saved with every checkpoint
  and restored when training resumes (:mod:`._patience`).
"""

import json
import logging
from argparse import Namespace

import torch
from fairseq import utils
from fairseq.data import encoders
from fairseq.logging import metrics
from fairseq.tasks import register_task
from fairseq.tasks.translation import TranslationTask

from fairseq_searnn import validation
from fairseq_searnn.schedules import Schedulable
from fairseq_searnn.search import precision
from fairseq_searnn.tasks import searnn_translation_config as config
from fairseq_searnn.tasks._batches import FirstEpochBatches
from fairseq_searnn.tasks._patience import PatienceState
from fairseq_searnn.tasks._root import root_option
from fairseq_searnn.tasks.searnn_translation_config import SearnnTranslationConfig

logger = logging.getLogger(__name__)


@register_task("searnn_translation", dataclass=SearnnTranslationConfig)
class SearnnTranslationTask(PatienceState, FirstEpochBatches, TranslationTask):
    """Translation with SeaRNN validation metrics, schedules and warm start."""

    cfg: SearnnTranslationConfig

    def __init__(self, cfg: SearnnTranslationConfig, src_dict, tgt_dict):
        super().__init__(cfg, src_dict, tgt_dict)
        config.check(cfg)
        common = root_option(cfg, "common")
        if str(cfg.searnn_autocast) != "float32" and common is not None:
            mixed = [f"--{o.replace('_', '-')}" for o in ("fp16", "bf16", "amp")
                     if common.get(o, False)]
            if mixed:
                raise ValueError(f"--searnn-autocast {cfg.searnn_autocast} cannot be combined "
                                 f"with {' / '.join(mixed)}: one mixed-precision scheme")
        checkpoint_cfg = root_option(cfg, "checkpoint")
        if checkpoint_cfg is not None:
            config.check_best_metric(cfg, checkpoint_cfg.best_checkpoint_metric,
                                     checkpoint_cfg.maximize_best_checkpoint_metric)
        self.searnn_generator = None
        self._generator_model = None  # the module searnn_generator decodes with
        self.searnn_tokenizer = None
        self.autocast_dtype = precision.dtype_of(str(cfg.searnn_autocast))
        self.decode_copy = precision.LowPrecisionCopy(self.autocast_dtype)  # validation

    # ----------------------------------------------------------------------------- schedules

    @property
    def epoch(self) -> int:
        """The current epoch (1 before any ``begin_epoch``); saved in the task state."""
        return int(self.state.state_dict.get("searnn_epoch", 1))

    def begin_epoch(self, epoch, model):
        super().begin_epoch(epoch, model)
        self.state.merge_state_dict({"searnn_epoch": int(epoch)})
        model.set_epoch(epoch)

    def schedule(self, criterion: Schedulable, update_num: int) -> dict:
        """``set_schedule`` arguments of a SeaRNN criterion before update ``update_num + 1``
        (None for what the criterion does not have)."""
        defaults = criterion.schedule_defaults()
        values = {"rollin_ref_prob": None, "alpha": None,
                  "mle_only": config.warming_up(self.cfg, update_num)}
        if defaults.rollin_ref_prob is not None:
            values["rollin_ref_prob"] = config.rollin_ref_prob(
                self.cfg, defaults.rollin_ref_prob, self.epoch, update_num)
        if defaults.alpha is not None:
            values["alpha"] = config.alpha(self.cfg, defaults.alpha, self.epoch)
        return values

    def build_criterion(self, cfg, from_checkpoint=False):
        criterion = super().build_criterion(cfg, from_checkpoint)
        name, c = type(criterion).__name__, self.cfg
        scheduled = (str(c.searnn_rollin_schedule) != "constant"
                     or c.searnn_rollin_ref_prob_start is not None)
        if not isinstance(criterion, Schedulable):
            if scheduled or c.searnn_alpha_growth != 1.0:
                raise ValueError(f"--searnn-rollin-* / --searnn-alpha-growth schedule a SeaRNN "
                                 f"criterion (searnn_ll/kl/sll/skl); {name} has no schedule")
            if c.searnn_warmup_updates > 0:
                logger.warning(f"--searnn-warmup-updates ignored: {name} is not a SeaRNN "
                               "criterion")
            return criterion
        defaults = criterion.schedule_defaults()
        if scheduled and defaults.rollin_ref_prob is None:
            raise ValueError("--searnn-rollin-schedule / --searnn-rollin-ref-prob-start need "
                             "--rollin mixed")
        if c.searnn_alpha_growth != 1.0 and defaults.alpha is None:
            raise ValueError(f"--searnn-alpha-growth: {name}'s LL loss has no alpha")
        return criterion

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        if isinstance(criterion, Schedulable):
            values = self.schedule(criterion, update_num)
            criterion.set_schedule(**values)
            for name in ("rollin_ref_prob", "alpha"):
                if values[name] is not None:
                    metrics.log_scalar(f"searnn_{name}", values[name], weight=0, round=4)
        if self.autocast_dtype == torch.float32:
            return super().train_step(sample, model, criterion, optimizer, update_num,
                                      ignore_grad)
        # fairseq's step with the forward under autocast (the backward outside it)
        model.train()
        model.set_num_updates(update_num)
        with precision.autocast(precision.device_of(model), self.autocast_dtype):
            loss, sample_size, logging_output = criterion(model, sample)
        if ignore_grad:
            loss *= 0
        optimizer.backward(loss)
        return loss, sample_size, logging_output

    # ---------------------------------------------------------------------------- validation

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        if self.cfg.eval_searnn_cost is not None and self.autocast_dtype == torch.float32:
            self._build_searnn_generator(model)  # a low-precision copy: at first validation
        return model

    def _build_searnn_generator(self, model):
        self._generator_model = model
        gen_args = {"beam": 1, **json.loads(self.cfg.eval_searnn_args)}
        self.searnn_generator = self.build_generator([model], Namespace(**gen_args))
        if str(self.cfg.eval_searnn_cost) == "bleu":
            detok_args = json.loads(self.cfg.eval_searnn_detok_args)
            self.searnn_tokenizer = encoders.build_tokenizer(
                Namespace(tokenizer=self.cfg.eval_searnn_detok, **detok_args))

    def searnn_decode(self, sample, model):
        """Decoded hypotheses and references of ``sample`` as the strings that are scored."""
        model = self.decode_copy(precision.unwrap(model))  # itself in float32
        if self.searnn_generator is None or self._generator_model is not model:
            self._build_searnn_generator(model)
        with torch.autocast(device_type=precision.device_of(model).type, enabled=False):
            gen_out = self.inference_step(self.searnn_generator, [model], sample,
                                          prefix_tokens=None)
        pad = self.tgt_dict.pad()
        # distinct <unk> strings: an unknown word never matches (as fairseq's --eval-bleu)
        hyps = [self._text(out[0]["tokens"], "UNKNOWNTOKENINHYP") for out in gen_out]
        refs = [self._text(utils.strip_pad(t, pad), "UNKNOWNTOKENINREF")
                for t in sample["target"]]
        return hyps, refs

    def _text(self, tokens, unk_string):
        text = self.tgt_dict.string(tokens.int().cpu(), self.cfg.eval_searnn_remove_bpe,
                                    unk_string=unk_string)
        return self.searnn_tokenizer.decode(text) if self.searnn_tokenizer else text

    def valid_step(self, sample, model, criterion):
        with precision.autocast(precision.device_of(model), self.autocast_dtype):
            loss, sample_size, log = super().valid_step(sample, model, criterion)
        if self.cfg.eval_searnn_cost is not None:
            hyps, refs = self.searnn_decode(sample, model)
            log.update(validation.sentence_stats(str(self.cfg.eval_searnn_cost), hyps, refs))
        return loss, sample_size, log

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        if self.cfg.eval_searnn_cost is None:
            return
        metric = str(self.cfg.eval_searnn_cost)
        keys = validation.stat_keys(metric)
        if not any(keys[0] in log for log in logging_outputs):
            return  # training outputs
        for key in keys:  # weight 1: the meters' .sum add up over validation steps
            metrics.log_scalar(key, round(sum(float(log.get(key, 0)) for log in logging_outputs)))
        metrics.log_derived(f"searnn_{metric}", lambda meters: validation.corpus_score(
            metric, {key: meters[key].sum for key in keys}))
