"""The plateau step a resumed fairseq run misses, replayed into its checkpoint.

At the end of an epoch fairseq-train writes ``checkpoint_last.pt`` and only then gives the
epoch's validation to the learning-rate scheduler. A run resumed from that checkpoint never
makes that call: under ``--lr-scheduler reduce_lr_on_plateau`` it keeps the step the epoch
should have halved, and compares the next epoch with the best before it. :func:`replay` makes
the call on the checkpoint itself, with torch's ``ReduceLROnPlateau`` set up as fairseq sets it
up, and writes back the step and the scheduler's best, so the resumed run goes on as the run
that was never stopped. The checkpoint is marked, so a second replay (a second resume from the
same file) changes nothing; fairseq's next checkpoint drops the mark.

The scheduler's count of bad epochs is not in fairseq's checkpoints: with ``--lr-patience 0``
(fairseq's default) it is not needed, above it a resumed run counts afresh, replay or not.

Before resuming by hand: ``fairseq-searnn-replay-plateau SAVE_DIR/checkpoint_last.pt`` (the
NMT drivers under ``examples/nmt/`` do it through
:func:`fairseq_searnn.recipes.resumable.launch`).
"""

import argparse
import os
from pathlib import Path
from typing import Optional, Tuple

import torch

MARK = "searnn_plateau_replayed"
SCHEDULER = "reduce_lr_on_plateau"


def pending(state) -> Optional[str]:
    """Why a loaded checkpoint ``state`` has no plateau step to replay, or None when it has
    one (written at the end of an epoch, with a validation, by a plateau scheduler past its
    warm-up, and not replayed yet)."""
    extra = state.get("extra_state") or {}
    itr = extra.get("train_iterator") or {}
    scheduler = (state.get("cfg") or {}).get("lr_scheduler") or {}
    history = (state.get("optimizer_history") or [{}])[-1]
    if scheduler.get("_name") != SCHEDULER:
        return f"the scheduler is {scheduler.get('_name')}, not {SCHEDULER}"
    if extra.get(MARK):
        return "replayed already"
    if not (state.get("last_optimizer_state") or {}).get("param_groups"):
        return "no optimizer state with param_groups in the checkpoint"
    if "lr_scheduler_state" not in history:
        return "no scheduler state in the checkpoint"
    if extra.get("val_loss") is None:
        return "no validation in the checkpoint"
    if itr.get("version", 1) < 2 or itr.get("iterations_in_epoch", 1) != 0:
        return "written during an epoch (fairseq steps the scheduler at epoch ends only)"
    if 0 < scheduler.get("warmup_updates", 0) >= history.get("num_updates", 0):
        return "written during the warm-up (fairseq does not step the scheduler then)"
    return None


def step(state) -> Tuple[float, float]:
    """Apply the end-of-epoch plateau step to a loaded checkpoint ``state`` that has one
    pending (:func:`pending`) in place; returns the step size (of the first parameter group)
    before and after."""
    cfg, history = state["cfg"], state["optimizer_history"][-1]
    groups = state["last_optimizer_state"]["param_groups"]
    before = groups[0]["lr"]
    sched_cfg = cfg["lr_scheduler"]
    optimizer = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)],
                                  "lr": group["lr"]} for group in groups])
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, patience=sched_cfg["lr_patience"], factor=sched_cfg["lr_shrink"],
        threshold=sched_cfg["lr_threshold"],
        mode="max" if cfg["checkpoint"]["maximize_best_checkpoint_metric"] else "min")
    saved = history["lr_scheduler_state"]
    plateau.best = saved["best"]
    plateau.last_epoch = saved.get("last_epoch", plateau.last_epoch)
    plateau.step(float(state["extra_state"]["val_loss"]))
    for group, stepped in zip(groups, optimizer.param_groups):
        group["lr"] = stepped["lr"]
    after = groups[0]["lr"]
    history["lr_scheduler_state"] = {**saved, "best": plateau.best,
                                     "last_epoch": plateau.last_epoch}
    state["extra_state"][MARK] = True
    return before, after


def replay(checkpoint) -> Tuple[Optional[Tuple[float, float]], str]:
    """Replay the plateau step missing from ``checkpoint`` (a file fairseq-train wrote), if it
    misses one: ``((step before, step after), "")`` and the file rewritten, or ``(None,
    reason)`` and the file left alone."""
    path = Path(checkpoint)
    state = torch.load(path, map_location="cpu", weights_only=False)
    reason = pending(state)
    if reason is not None:
        return None, reason
    steps = step(state)
    partial = path.with_name(path.name + ".replay")
    try:
        torch.save(state, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return steps, ""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="the checkpoint a run resumes from "
                        "(checkpoint_last.pt); loaded with pickle, as fairseq does: only "
                        "files you trust")
    args = parser.parse_args(argv)
    if not Path(args.checkpoint).is_file():
        parser.error(f"checkpoint: no file {args.checkpoint}")
    steps, reason = replay(args.checkpoint)
    if steps is None:
        print(f"{args.checkpoint}: nothing to replay ({reason})")
    else:
        print(f"{args.checkpoint}: plateau step replayed, lr {steps[0]:g} -> {steps[1]:g}")


if __name__ == "__main__":
    main()
