"""``Seq2SeqTrainer`` training with the SeaRNN loss: :class:`SearnnTrainer`.

``Trainer(compute_loss_func=...)`` calls its function with the outputs of the model's forward
on the gold labels and the labels only (transformers 5): neither the model nor the source
tokens that a roll-in decodes from. The SeaRNN loss therefore plugs in through
``compute_loss``, overridden here; evaluation keeps the trainer's own (gold cross-entropy).
"""

from typing import Dict, Optional

from transformers import Seq2SeqTrainer

from fairseq_searnn.hf.loss import SearnnLoss
from fairseq_searnn.search import objective


class SearnnTrainer(Seq2SeqTrainer):
    """A ``Seq2SeqTrainer`` whose training steps take ``searnn_loss`` (a
    :class:`~fairseq_searnn.hf.loss.SearnnLoss`); random draws are keyed by ``args.seed +
    global_step`` and the sentences' source tokens. Logged with the training loss, averaged
    over the logging interval: ``nll_loss`` (gold, per token, nats), ``min_cost``,
    ``ref_cost``, ``target_ref_mass``, ``target_entropy``, ``learned_share``,
    ``rollouts_per_s`` (the fairseq criterion's statistics)."""

    #: the SeaRNN loss is a mean over the micro-batch's cells (or sentences), not scaled for
    #: gradient accumulation: the Trainer divides it by the accumulation steps
    loss_is_scaled_for_ga = False

    def __init__(self, *args, searnn_loss: SearnnLoss, **kwargs):
        super().__init__(*args, **kwargs)
        self.searnn_loss = searnn_loss
        self._totals: Dict[str, float] = {}

    def compute_loss(self, model, inputs, return_outputs: bool = False,
                     num_items_in_batch: Optional[int] = None):
        if return_outputs or not model.training:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        loss = self.searnn_loss(model, inputs, seed=self.args.seed + self.state.global_step,
                                decoding_model=self.accelerator.unwrap_model(model))
        for key, value in self.searnn_loss.last_log.items():
            self._totals[key] = self._totals.get(key, 0.0) + float(value)
        return loss

    def log(self, logs: Dict[str, float], start_time: Optional[float] = None) -> None:
        if "loss" in logs and self._totals:  # a training log: the interval's statistics
            total = self._totals
            logs["nll_loss"] = total["nll_loss"] / max(total["ntokens"], 1)
            logs.update(objective.summarize(total))
            self._totals = {}
        super().log(logs, start_time)
