"""One table, summary json and curves from converged runs of several driver outputs
(``examples/ocr/replicate.py`` or ``examples/spelling/replicate.py``: each run folder holds
``train.log`` and ``result.json``), e.g. an MLE baseline trained with one optimiser and
SeaRNN runs trained with another, each in its own ``--out``.

    python analysis/replication_runs.py --task spelling --out docs/results/spelling-converged \
        --baseline "MLE, Adam 3e-3" "MLE, Adam 3e-3, seed 1=runs/sp-mle/mle-seed1" \
        "KL α 50, seed 1=runs/sp-kl/searnn_kl-alpha50-seed1" ...

A run is ``LABEL, seed N=FOLDER``: runs whose labels differ only by their seed make one
method row. ``--previous SUMMARY.json`` (repeatable) takes again the runs of an earlier
``summary.json`` of this script or of a driver, e.g. when their folders are gone;
``SUMMARY.json#METHOD`` only that method's, ``SUMMARY.json#METHOD=LABEL`` renamed ``LABEL``
(a driver names its methods ``mle``, ``searnn_kl-alpha50``, ...); a run given as ``LABEL,
seed N=FOLDER`` replaces an earlier one of the same label and seed.

Per method (the drivers' ``summary.md`` table): mean ± std and every seed's test error, best
validation, updates, training wall time, why it stopped (``patience``, ``cap``, or ``stopped``
when the log ends without fairseq's own stop: the run was ended by hand) and seconds per
update. With ``--baseline METHOD``, a second table: each run's updates and minutes
until its validation first reaches that method's mean best validation error (Table 3's
question). Curves: validation error against updates and against training wall time.
"""

import argparse
import json
from pathlib import Path

from fairseq_searnn.recipes import replication


def read_run(task, spec):
    """``LABEL[, seed N]=FOLDER`` -> the run's record in the drivers' format (``method``,
    ``seed``, ``updates``, ``stop``, ``train_wall_s``, ``s_per_update``, ``valid_curve``, the
    task's best-validation and test keys) plus ``folder``."""
    label, sep, folder = spec.partition("=")
    if not sep:
        raise SystemExit(f"{spec!r}: expected LABEL=FOLDER")
    folder = Path(folder)
    result = json.loads((folder / "result.json").read_text())
    record = replication.run_record((folder / "train.log").read_text(), result,
                                    replication.REPORTS[task])
    if record["stop"] == "unknown":
        record["stop"] = "stopped"
    method, _, seed = label.rpartition(", seed ")
    return {"method": method or label, "seed": seed or "-", "folder": str(folder), **record}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="*", help="LABEL, seed N=FOLDER")
    p.add_argument("--previous", action="append", default=[],
                   metavar="SUMMARY.json[#METHOD[=LABEL]]",
                   help="the runs of an earlier summary.json (only METHOD's after a '#', "
                   "renamed LABEL after a '=')")
    p.add_argument("--task", required=True, choices=sorted(replication.REPORTS))
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--baseline", help="the method (a LABEL without its ', seed N') whose mean "
                   "best validation the other runs' time to reach is measured against")
    args = p.parse_args(argv)
    new = [read_run(args.task, spec) for spec in args.runs]
    given = {(r["method"], r["seed"]) for r in new}
    rows = [r for spec in args.previous for r in replication.previous_runs(spec)
            if (r["method"], r["seed"]) not in given] + new
    if not rows:
        raise SystemExit("no runs: give LABEL, seed N=FOLDER or --previous SUMMARY.json")
    order = {m: i for i, m in enumerate(dict.fromkeys(r["method"] for r in rows))}
    rows.sort(key=lambda r: (order[r["method"]], int(r["seed"]) if r["seed"].isdigit() else 0))
    if args.baseline and args.baseline not in {r["method"] for r in rows}:
        raise SystemExit(f"--baseline {args.baseline!r} is none of the runs' methods")
    args.out.mkdir(parents=True, exist_ok=True)
    replication.write_converged(rows, args.out, replication.REPORTS[args.task],
                                baseline=args.baseline)


if __name__ == "__main__":
    main()
