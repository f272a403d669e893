"""``--patience`` that survives a resume.

fairseq-train keeps its early-stopping state (the best value of ``--best-checkpoint-metric``
and the number of validations since it) as attributes of ``fairseq_cli.train.should_stop_early``
and saves neither. A run resumed from ``checkpoint_last.pt`` counts afresh and takes its first
validation as the best: it trains up to ``patience - 1`` validations longer than the same run
uninterrupted would have, and may select a checkpoint that run never reached.

The plugin's tasks close that gap with :class:`PatienceState`: every checkpoint carries the
state in its task state (``task_state["searnn_patience"]``, written by fairseq's trainer through
``task.state_dict()``), and the first ``begin_epoch`` of a training process puts it back when
fairseq resumed the checkpoint's training state. A run stopped and resumed then stops on the
same validation as one that was never stopped. Checkpoints written without the state (by
fairseq's own tasks, or before this module) resume as fairseq does.
"""

import os
import sys
from typing import Dict, Optional

import torch

from fairseq_searnn.tasks._root import root_option

KEY = "searnn_patience"


def _stopper():
    """fairseq-train's ``should_stop_early``, or None outside fairseq-train."""
    train = sys.modules.get("fairseq_cli.train")
    return getattr(train, "should_stop_early", None)


def snapshot() -> Optional[Dict]:
    """The early-stopping state of this process: ``{"best": float, "num_runs": int}``, or
    None before the first validation (or outside fairseq-train)."""
    stopper = _stopper()
    if stopper is None or getattr(stopper, "best", None) is None:
        return None
    return {"best": float(stopper.best), "num_runs": int(getattr(stopper, "num_runs", 0))}


def restore(state: Optional[Dict]) -> None:
    """Make ``state`` (from :func:`snapshot`) this process's early-stopping state; None clears
    it, as in a process that has not validated yet."""
    stopper = _stopper()
    if stopper is None:
        return
    for name in ("best", "num_runs"):
        if hasattr(stopper, name):
            delattr(stopper, name)
    if state is not None:
        stopper.best = float(state["best"])
        stopper.num_runs = int(state["num_runs"])


def resumed_checkpoint(checkpoint_cfg) -> Optional[str]:
    """The checkpoint whose training state fairseq-train resumed (``--restore-file``, by
    default ``SAVE_DIR/checkpoint_last.pt``), or None: a first launch, or a restore that resets
    the optimizer or the meters (fairseq then drops the saved best as well)."""
    if checkpoint_cfg is None or checkpoint_cfg.reset_optimizer or checkpoint_cfg.reset_meters:
        return None
    suffix = checkpoint_cfg.get("checkpoint_suffix", "") or ""
    restore_file = checkpoint_cfg.restore_file
    if restore_file == "checkpoint_last.pt":
        path = os.path.join(checkpoint_cfg.save_dir, f"checkpoint_last{suffix}.pt")
    else:
        path = restore_file.replace(".pt", suffix + ".pt")
    return path if os.path.isfile(path) else None


def saved_state(path: str) -> Optional[Dict]:
    """The early-stopping state saved in the checkpoint at ``path``, or None."""
    state = torch.load(path, map_location="cpu")
    return (state.get("task_state") or {}).get(KEY)


class PatienceState:
    """Task mixin (before the fairseq task class in the bases): saves the early-stopping state
    with the task state of every checkpoint and restores it at the first ``begin_epoch`` of a
    resumed training process."""

    _patience_restored = False

    def state_dict(self):
        state = dict(super().state_dict())
        saved = snapshot()
        if saved is not None:
            state[KEY] = saved
        return state

    def begin_epoch(self, epoch, model):
        super().begin_epoch(epoch, model)
        if not self._patience_restored:
            self._patience_restored = True
            path = resumed_checkpoint(root_option(self.cfg, "checkpoint"))
            restore(saved_state(path) if path is not None else None)
