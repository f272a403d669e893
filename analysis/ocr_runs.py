"""Table, summary json and curves of OCR runs made by ``examples/ocr/replicate.py`` (each run
folder: ``train.log``, ``result.json``), gathered from several driver outputs.

    python analysis/ocr_runs.py --out docs/results/ocr-converged \
        "MLE, SGD 0.5=runs/ocr-conv/mle-seed1" "KL, Adam=runs/ocr-conv-adam/kl-seed1" ...

Per run: updates, training wall time, why it stopped (``patience``, ``cap``, or ``stopped``
when the log ends without fairseq's own stop: the run was ended by hand), best validation
Hamming error (fold 1) and test Hamming error (fold 0, the best checkpoint). Curves: validation
error against updates and against training wall time. With ``--baseline METHOD`` (a LABEL
without its ", seed N"), a second table: each run's updates and minutes until its validation
first reaches that method's mean best validation error.
"""

import argparse
import json
import re
from pathlib import Path

from fairseq_searnn.recipes import replication


def read_run(label, folder):
    """One run's row."""
    folder = Path(folder)
    log = (folder / "train.log").read_text()
    result = json.loads((folder / "result.json").read_text())
    curve = replication.valid_curve(log, "hamming")
    walls = [int(w) for w in re.findall(r"\bwall=(\d+)", log)]
    wall = result.get("train_wall_s") or (walls[-1] if walls else 0)
    stop = replication.stop_reason(log)
    updates = replication.train_updates(log)
    method, _, seed = label.rpartition(", seed ")
    return {"run": label, "method": method or label, "seed": seed or "-",
            "folder": str(folder), "updates": updates, "train_wall_s": wall,
            "train_wall_min": round(wall / 60, 1),
            "stop": "stopped" if stop == "unknown" else stop,
            "best_valid_hamming": min((v for _, v in curve), default=None),
            "test_hamming": result.get("test_hamming_error_percent"),
            "s_per_update": round(wall / max(updates, 1), 3), "valid_curve": curve}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="LABEL=FOLDER")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--baseline", help="the method (a LABEL without its ', seed N') whose mean "
                   "best validation the other runs' time to reach is measured against")
    args = p.parse_args(argv)
    rows = [read_run(*spec.split("=", 1)) for spec in args.runs]
    lines = ["| run | updates | wall (min) | stop | best valid % (fold 1) | test % (fold 0) "
             "| s / update |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['run']} | {r['updates']:,} | {r['train_wall_min']} | {r['stop']} "
                     f"| {r['best_valid_hamming']:.2f} | {r['test_hamming']:.2f} "
                     f"| {r['s_per_update']} |")
    if args.baseline:
        lines += ["", *replication.equal_quality_table(rows, "best_valid_hamming",
                                                       args.baseline)]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    (args.out / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\n".join(lines))
    for suffix, xlabel, x in (("-updates", "updates", lambda r, u: u),
                              ("", "training wall time (min, 1 thread)",
                               lambda r, u: u * r["s_per_update"] / 60)):
        series = [(r["run"], [x(r, u) for u, _ in r["valid_curve"]],
                   [v for _, v in r["valid_curve"]]) for r in rows]
        replication.plot_curves(series, xlabel, "validation Hamming error (%), fold 1",
                                "OCR: validation during training",
                                args.out / f"curves{suffix}.png", logy=True)


if __name__ == "__main__":
    main()
