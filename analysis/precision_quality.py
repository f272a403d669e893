"""bfloat16 training against float32 curves at equal updates: for each bfloat16 run, its
validation value at every update where the float32 runs of the same method were validated,
beside the float32 seeds' range there; the verdict is whether every bfloat16 value lies in
the float32 seeds' range widened by ``--margin`` (the seeds' spread, measured). Writes
``OUT/summary.md``, ``OUT/summary.json`` and one plot per comparison.

    python analysis/precision_quality.py --out docs/results/precision \\
        --compare "spelling sLL top-k 5=runs/sp-sll-bf16/searnn_sll-seed1/train.log:\\
docs/results/spelling-converged/p0.3/summary.json#sLL top-k 5, Adam 1e-3:searnn_edit:valid:min" \\
        --compare "Multi30k LSTM baseline=runs/nmt-conv-bf16/lstm/baseline/train.log:\\
docs/results/multi30k-converged/baseline_lstm.json#select_bleu_by_epoch:searnn_bleu:select:max"

A float32 reference is a ``summary.json`` of ``analysis/replication_runs.py`` / the spelling
and OCR drivers (``#METHOD``: its runs of that method, each with a ``valid_curve``) or the
baseline json of ``examples/nmt/converged.py`` (``#select_bleu_by_epoch``: one run validated
every epoch, ``updates_per_epoch`` from the bfloat16 log, which validates on the same epochs).
"""

import argparse
import json
from pathlib import Path

from fairseq_searnn.recipes import replication


def float32_curves(spec: str, bf16_curve):
    """``[[(updates, value)], ...]`` one per float32 run named by ``FILE#KEY``."""
    path, key = spec.split("#", 1)
    data = json.loads(Path(path).read_text())
    if key == "select_bleu_by_epoch":
        per_epoch = data[key]
        # the bfloat16 run validates on the same epochs: its update counts at epoch ends
        updates = [u for u, _ in bf16_curve]
        return [[(u, v) for u, v in zip(updates, per_epoch)]]
    return [[tuple(p) for p in run["valid_curve"]] for run in data["runs"]
            if run["method"] == key]


def compare(label, spec, margin):
    """One comparison ``LOG:FILE#KEY:METRIC:SUBSET:BETTER`` (BETTER: min or max)."""
    log, ref, metric, subset, better = spec.rsplit(":", 4)
    bf16 = replication.valid_curve(Path(log).read_text(), metric, subset)
    runs = float32_curves(ref, bf16)
    at = dict(bf16)
    rows = []
    for u in sorted({u for run in runs for u, _ in run} & set(at)):
        values = [dict(run)[u] for run in runs if u in dict(run)]
        lo, hi = min(values), max(values)
        rows.append({"updates": u, "bfloat16": at[u], "float32_min": lo, "float32_max": hi,
                     "inside": lo - margin <= at[u] <= hi + margin})
    best = (min if better == "min" else max)
    common = [r["updates"] for r in rows]
    summary = {
        "label": label, "log": log, "reference": ref, "metric": metric, "rows": rows,
        "bfloat16_best_so_far": best(v for u, v in bf16 if u <= max(common)) if common else None,
        "float32_best_by_then": [best(v for u, v in run if u <= max(common)) for run in runs]
        if common else [],
        "share_inside": sum(r["inside"] for r in rows) / max(len(rows), 1),
        "bfloat16_updates": max((u for u, _ in bf16), default=0)}
    return summary, [("float32", [u for u, _ in run], [v for _, v in run]) for run in runs] + [
        ("bfloat16", [u for u, _ in bf16], [v for _, v in bf16])]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--compare", action="append", required=True, metavar="LABEL=SPEC")
    p.add_argument("--margin", type=float, default=0.5,
                   help="tolerance around the float32 seeds' range (metric units)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results, lines = [], []
    for item in args.compare:
        label, spec = item.split("=", 1)
        summary, series = compare(label, spec, args.margin)
        results.append(summary)
        name = "".join(c if c.isalnum() else "-" for c in label.lower())
        lower_is_better = spec.rsplit(":", 1)[1] == "min"
        replication.plot_curves(series, "updates", summary["metric"],
                                f"{label}: bfloat16 against float32", args.out / f"{name}.png",
                                zoom=1.6 if lower_is_better else None)
        lines += [f"## {label}", "", f"{len(summary['rows'])} validations in common, "
                  f"{100 * summary['share_inside']:.0f} % inside the float32 range "
                  f"± {args.margin}; best by then: bfloat16 {summary['bfloat16_best_so_far']}, "
                  f"float32 {summary['float32_best_by_then']}", "",
                  "| updates | bfloat16 | float32 (min – max) |", "|---|---|---|"]
        lines += [f"| {r['updates']} | {r['bfloat16']:.2f} | {r['float32_min']:.2f} – "
                  f"{r['float32_max']:.2f} |" for r in summary["rows"]]
        lines.append("")
    (args.out / "summary.md").write_text("\n".join(lines))
    (args.out / "summary.json").write_text(json.dumps(results, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
