"""OCR table: methods × seeds, each trained until validation stops improving (or a wall-time
cap), scored on the test fold.

    python examples/ocr/replicate.py --data ../shared/data/ocr/letter.data.gz --out runs/ocr \
        [--methods mle kl kl:reference:learned] [--seeds 1 2 3] [--cap-minutes 90] \
        [--patience-updates 3000] [--validate-every 100] [--jobs 2] [--alpha A ...] \
        [--retrain] \
        [-- fairseq-train args]

Each run is ``run.py METHOD`` (the paper's GRU 128, SGD at a constant 0.5, batches of 64
words, Hamming cost, fixed-length outputs; best checkpoint by the greedy Hamming error of
validation fold 1, scored on test fold 0), one torch thread per run, ``--jobs`` runs at a time,
gradients clipped at norm 5 (the authors' code; ``--clip-norm``). The protocol is the same for
every method: validation every ``--validate-every`` updates; a run stops when its validation
error has not improved for ``--patience-updates`` updates ("patience") or after
``--cap-minutes`` of wall time ("cap": not converged, a bound on what it reaches). Writes
``OUT/summary.md``, ``OUT/summary.json`` (every run's validation curve, updates, wall time and
stop reason) and ``OUT/curves.png`` (validation error against updates and against wall time);
runs whose ``result.json`` exists are not run again.

``--retrain`` then trains each (method, seed) again as the paper does, on every fold but the
test fold (folds 1–9, no validation), for the number of updates its fold-1 run chose (the
update of its best checkpoint), and scores that last checkpoint on the test fold
(``OUT/NAME-seedS-folds1-9``; the same wall-time cap; a second table in ``summary.md``).
``--previous SUMMARY.json#METHOD=NAME`` takes fold-1 runs from an earlier summary (e.g.
``docs/results/ocr-converged/summary.json#KL α 80, Adam 1e-3=kl-alpha80``) instead of
training them again, so that ``--retrain`` can follow runs whose folders are gone.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from fairseq_searnn import recipes
from fairseq_searnn.recipes import METHODS, replication

REPORT = replication.REPORTS["ocr"]

HERE = Path(__file__).resolve().parent


def parse_method(spec):
    """``METHOD`` or ``METHOD:ROLLIN:ROLLOUT`` -> ``(method, run.py options, run name)``.
    SeaRNN methods default to the paper's best OCR setting, learned roll-in × mixed roll-out."""
    method, policies, name = replication.parse_method(spec, METHODS)
    options = ["--rollin", policies[0], "--rollout", policies[1]] if policies else []
    return method, options, name


def schedule_args(args):
    """fairseq-train arguments of the protocol, the same for every method."""
    return replication.schedule_args(args.validate_every, args.patience_updates,
                                     args.cap_minutes)


def run_recipe(args, parsed, seed, out, recipe_options, train_options):
    """``run.py`` for one (method, seed) into ``out`` unless it holds a scored result; returns
    ``(result.json, train.log text)``."""
    method, policy_args, _ = parsed
    result = out / "result.json"
    if not (result.exists() and "test_hamming_error_percent" in result.read_text()):
        out.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, HERE / "run.py", method, *policy_args, "--data", args.data,
               "--out", out, "--seed", str(seed), "--max-epoch", "100000",
               "--tokens", str(args.tokens),
               "--sampling", args.sampling, *recipe_options, "--", *train_options,
               "--clip-norm", str(args.clip_norm), *args.extra]
        recipes.run_logged(cmd, out / "run.log",
                           dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"))
    return json.loads(result.read_text()), (out / "train.log").read_text()


def run_one(args, parsed, seed):
    """The (method, seed) trained on folds 2–9 under the protocol, validated on fold 1; a run
    of ``--previous`` (``args.recorded``) whose folder holds no result is not trained again:
    its record stands in."""
    name = parsed[2]
    earlier = args.recorded.get((name, str(seed)))
    if earlier and not (args.out / f"{name}-seed{seed}" / "result.json").exists():
        return {**earlier, "method": name, "seed": seed}
    res, text = run_recipe(args, parsed, seed, args.out / f"{name}-seed{seed}", [],
                           schedule_args(args))
    return {"method": name, "seed": seed, **replication.run_record(text, res, REPORT)}


def best_update(curve):
    """The update of the best checkpoint of a validation curve ``[(updates, error)]``: the
    last validation at the lowest error (fairseq's best checkpoint takes ties)."""
    low = min(v for _, v in curve)
    return max(u for u, v in curve if v == low)


def retrain_one(args, parsed, seed, record):
    """The (method, seed) trained on folds 1–9 for the updates its fold-1 run chose, scored
    on the test fold: ``{"updates", "chosen_updates", "train_wall_s", "stop",
    "test_hamming"}``."""
    chosen = best_update(record["valid_curve"])
    res, text = run_recipe(
        args, parsed, seed, args.out / f"{parsed[2]}-seed{seed}-folds1-9",
        ["--valid-fold", "-1"],
        ["--max-update", str(chosen), "--stop-time-hours", f"{args.cap_minutes / 60:.4f}"])
    return {"updates": replication.train_updates(text), "chosen_updates": chosen,
            "stop": replication.stop_reason(text), "train_wall_s": res["train_wall_s"],
            "test_hamming": res["test_hamming_error_percent"]}


def retrain_table(results):
    """Markdown rows of the folds 1–9 retraining (runs holding a ``retrained`` record)."""
    lines = ["| method | seeds | retrained on folds 1–9: test Hamming error % (mean ± std) "
             "| per seed | updates (chosen on fold 1) | stop |", "|---|---|---|---|---|---|"]
    for method in dict.fromkeys(r["method"] for r in results if "retrained" in r):
        rows = [r["retrained"] for r in results if r["method"] == method and "retrained" in r]
        mean, std = replication.mean_std(r["test_hamming"] for r in rows)
        lines.append(f"| {method} | {len(rows)} | {mean:.2f} ± {std:.2f} | "
                     + ", ".join(f"{r['test_hamming']:.2f}" for r in rows) + " | "
                     + ", ".join(str(r["updates"]) for r in rows) + " | "
                     + ", ".join(r["stop"] for r in rows) + " |")
    return lines


def summarise(args, results):
    retrained = ["", *retrain_table(results)] if any("retrained" in r for r in results) else []
    replication.write_converged(results, args.out, REPORT, extra=retrained)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="letter.data or letter.data.gz")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--methods", nargs="+", type=parse_method,
                   default=[parse_method("mle"), parse_method("skl")],
                   help=f"each METHOD (one of {', '.join(METHODS)}) or METHOD:ROLLIN:ROLLOUT, "
                        "e.g. kl:reference:learned (default roll-in × roll-out: learned × "
                        "mixed)")
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--cap-minutes", type=float, default=90.0,
                   help="wall-time cap per run (a run stopped here is not converged)")
    p.add_argument("--patience-updates", type=int, default=3000,
                   help="stop when validation has not improved for this many updates")
    p.add_argument("--validate-every", type=int, default=100,
                   help="updates between validations, the same for every method")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (1 thread each)")
    p.add_argument("--alpha", type=float, nargs="+",
                   help="kl / skl target scale; several values sweep it (runs named "
                        "NAME-alphaA); default run.py's 40")
    p.add_argument("--tokens", type=int, default=5, help="sll / skl tokens per cell")
    p.add_argument("--sampling", default="topk", help="sll / skl token sampling")
    p.add_argument("--clip-norm", type=float, default=5.0)
    p.add_argument("--retrain", action="store_true",
                   help="then retrain each run on folds 1-9 for the updates fold 1 chose")
    p.add_argument("--previous", action="append", default=[],
                   metavar="SUMMARY.json[#METHOD[=NAME]]",
                   help="fold-1 runs recorded in an earlier summary.json (only METHOD's, "
                   "renamed to this driver's run NAME, e.g. kl-alpha80) are not trained "
                   "again when their folder is gone: their records stand in (for --retrain)")
    args, extra = p.parse_known_args(argv)
    args.extra = extra[1:] if extra[:1] == ["--"] else extra
    args.recorded = {(r["method"], r["seed"]): r
                     for spec in args.previous for r in replication.previous_runs(spec)}
    args.out.mkdir(parents=True, exist_ok=True)
    if args.alpha and min(args.alpha) <= 0:
        p.error(f"--alpha {args.alpha}: every value must be > 0")
    methods = replication.alpha_variants(args.methods, args.alpha, lambda m: m in ("kl", "skl"),
                                         lambda options, a: [*options, "--alpha", str(a)])
    todo = [(m, s) for s in args.seeds for m in methods]
    results = replication.run_all(lambda m, s: run_one(args, m, s), todo, args.jobs)
    if args.retrain:
        retrained = replication.run_all(lambda i, r: retrain_one(args, *todo[i], r),
                                        list(enumerate(results)), args.jobs)
        for record, again in zip(results, retrained):
            record["retrained"] = again
    summarise(args, results)
    return results


if __name__ == "__main__":
    main()
