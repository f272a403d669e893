"""fairseq-train runs that outlive the process that started them. A run is a directory with
``run.json`` (what it is and how each attempt was launched) and ``train.log``, to which every
attempt appends its output after a header line. fairseq resumes an attempt from the run's
``checkpoint_last.pt`` (its default ``--restore-file``), and ``--stop-time-hours`` compares
fairseq's cumulative training time, saved in the checkpoints, so a cap holds across attempts.

A run's :func:`status`: ``new`` (never launched), ``interrupted`` (its last attempt did not
end: killed, or failed), ``capped`` (stopped by a cap lower than the one now asked: it goes on
to the new cap), ``early`` (stopped on patience where no early stopping is now asked: it goes
on to the cap) or ``finished``. fairseq keeps its early-stopping count in memory only and
regroups a resumed run's batches; the plugin's tasks save the count in the checkpoints
(:mod:`fairseq_searnn.tasks._patience`) and keep the batches
(:mod:`fairseq_searnn.tasks._batches`), so a resumed attempt trains and stops as an
uninterrupted run would. fairseq also skips the ``reduce_lr_on_plateau`` step due at the end of
the epoch a run resumes from: :func:`launch` replays it into ``checkpoint_last.pt`` first
(:mod:`fairseq_searnn.recipes.plateau`).
"""

import json
import re
import time
from pathlib import Path
from typing import Dict, List, Sequence

from fairseq_searnn.recipes import plateau
from fairseq_searnn.recipes.commands import run_logged
from fairseq_searnn.recipes.replication import CAP_REACHED, stop_reason, valid_curve

HEADER = "#### attempt "
LOG, RECORD = "train.log", "run.json"


def load(run_dir) -> Dict:
    """A run's ``run.json`` (empty without one)."""
    path = Path(run_dir) / RECORD
    return json.loads(path.read_text()) if path.exists() else {}


def save(run_dir, record: Dict) -> None:
    """Write a run's ``run.json``."""
    (Path(run_dir) / RECORD).write_text(json.dumps(record, indent=1) + "\n")


def record_of(run_dir, new: Dict) -> Dict:
    """The record a run trains with: its saved ``run.json`` when it has one (a run goes on
    with the settings it started with; a line is printed when ``new``'s ``env`` or
    ``options`` differ), else ``new``, saved."""
    record = load(run_dir)
    if record:
        if (record["env"], record["options"]) != (new["env"], new["options"]):
            print(f"{Path(run_dir).name}: continues with its own settings (precision "
                  f"{record['precision']}), not this invocation's", flush=True)
        return record
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    save(run_dir, new)
    return new


def attempts(log_text: str) -> List[str]:
    """The parts of a run's log, one per attempt, each from its header line (text before the
    first header: one more part)."""
    return [p for p in re.split("(?m)^(?=" + re.escape(HEADER) + ")", log_text) if p.strip()]


def last_attempt(run_dir) -> str:
    """The log of the run's last attempt ("" before the first)."""
    log = Path(run_dir) / LOG
    parts = attempts(log.read_text()) if log.exists() else []
    return parts[-1] if parts else ""


def ended(log_text: str) -> bool:
    """Whether fairseq-train ended normally in this log."""
    return "done training" in log_text


def status(run_dir, cap_minutes: float, early_stop: bool = True) -> str:
    """``new``, ``interrupted``, ``capped`` (under ``cap_minutes``), ``early`` (stopped on
    patience before its cap while ``early_stop`` is False) or ``finished`` (see the module
    doc)."""
    record = load(run_dir)
    if not record.get("attempts"):
        return "new"
    last = last_attempt(run_dir)
    if not ended(last):
        return "interrupted"
    reason = stop_reason(last)
    if reason == "cap" and cap_minutes > record["attempts"][-1]["cap_minutes"]:
        return "capped"
    if reason == "patience" and not early_stop and CAP_REACHED not in last:
        return "early"  # (fairseq validates at the cap: patience may end on that validation)
    return "finished"


def launch(run_dir, cmd: Sequence, env: Dict[str, str], cap_minutes: float,
           stale: Sequence[str] = (), **info) -> float:
    """One attempt of a run: ``cmd`` (whose ``--stop-time-hours`` is ``cap_minutes``) with its
    output appended to ``train.log`` after a header; ``run.json`` records the attempt
    (``cap_minutes``, start time and ``info``, e.g. the commit) first. The run's files named
    in ``stale`` (scores and reports of an earlier best checkpoint) are removed. A plateau
    step the run's ``checkpoint_last.pt`` misses is replayed into it (:func:`plateau.replay`)
    and recorded with the attempt (as is a file it cannot read; the attempt runs anyway).
    Returns the wall time; RuntimeError when fairseq-train fails (the run is then
    ``interrupted``)."""
    import shutil

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in stale:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    resume = run_dir / "checkpoint_last.pt"
    if resume.exists():
        try:
            steps = plateau.replay(resume)[0]
        except Exception as error:  # an unreadable file: fairseq-train reports it itself
            info = {**info, "plateau_replay_failed": repr(error)}
        else:
            if steps is not None:
                info = {**info, "plateau_step_replayed": f"lr {steps[0]:g} -> {steps[1]:g}"}
    record = load(run_dir)
    number = len(record.get("attempts", [])) + 1
    attempt = {"cap_minutes": cap_minutes, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
               **info}
    record["attempts"] = [*record.get("attempts", []), attempt]
    save(run_dir, record)
    with open(run_dir / LOG, "a") as f:
        f.write(HEADER + f"{number} | " + " | ".join(f"{k} {v}" for k, v in attempt.items())
                + "\n")
    return run_logged(cmd, run_dir / LOG, env, append=True)


def curve(log_text: str, metric: str, subset: str = "valid") -> List[tuple]:
    """``[(updates, value)]`` of the validations in a run's whole log, by update (a
    validation repeated by a resumed attempt counted once: its last)."""
    return sorted(dict(valid_curve(log_text, metric, subset)).items())


def training_seconds(checkpoint) -> float:
    """fairseq's cumulative training time saved in ``checkpoint`` (what
    ``--stop-time-hours`` compares: wall time since each attempt's start, over attempts)."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return float(state["extra_state"]["previous_training_time"])
