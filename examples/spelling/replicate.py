"""Spelling headline comparison: MLE against SeaRNN, several seeds, the same wall-time budget.

    python examples/spelling/replicate.py --data data/spelling-p0.3-T10 --out runs/spelling \
        [--methods mle searnn_sll] [--seeds 1 2 3] [--minutes 15] [--jobs 2]

Each run is ``examples/spelling/train.sh`` (the paper's model and optimiser) stopped by
fairseq's ``--stop-time-hours`` after ``--minutes`` of wall time, with one torch thread, ``--jobs``
runs at a time; then ``evaluate.py`` scores the best checkpoint (by validation ``searnn_edit``) on
the test split. Writes ``OUT/summary.json``, ``OUT/summary.md`` (mean ± std per method) and
``OUT/curves.png`` (validation edit error against training time). Runs whose ``result.json``
exists are not run again. Methods: ``mle``, ``searnn_ll`` / ``searnn_kl`` (every token),
``searnn_sll`` (5 top-k tokens), ``searnn_sll_{uniform,policy,biased}``, ``searnn_skl`` (5 biased
tokens), ``searnn_sll_warm`` (``searnn_sll`` after 1,000 cross-entropy updates); learned
roll-in, mixed roll-out unless a SeaRNN method is followed by ``:ROLLIN:ROLLOUT`` (Table 1's
grid, e.g. ``searnn_kl:reference:learned``).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from fairseq_searnn import recipes
from fairseq_searnn.recipes import replication

HERE = Path(__file__).resolve().parent

# settings per method: the criterion options of train.sh (every method validates every
# --validate-every updates: the same protocol for all)
METHODS = {
    "mle": {"env": {}},
    "searnn_sll": {"env": {"SAMPLING": "topk", "TOKENS": "5"}},
    "searnn_sll_uniform": {"env": {"SAMPLING": "uniform", "TOKENS": "5"}},
    "searnn_sll_policy": {"env": {"SAMPLING": "policy", "TOKENS": "5"}},
    "searnn_sll_biased": {"env": {"SAMPLING": "biased", "TOKENS": "5"}},
    "searnn_skl": {"env": {"SAMPLING": "biased", "TOKENS": "5"}},
    # sLL top-k 5 after 1,000 cross-entropy updates (--searnn-warmup-updates), same budget
    "searnn_sll_warm": {"env": {"SAMPLING": "topk", "TOKENS": "5"},
                        "args": ["--searnn-warmup-updates", "1000"]},
    "searnn_ll": {"env": {}},
    "searnn_kl": {"env": {}},
}


def parse_method(spec):
    """``METHOD`` or ``METHOD:ROLLIN:ROLLOUT`` -> ``(method, train.sh environment, run name)``."""
    method, policies, name = replication.parse_method(spec, list(METHODS))
    return method, dict(zip(("ROLLIN", "ROLLOUT"), policies)), name


def train_extra(args, method):
    """train.sh arguments of a run: budget and validation schedule (the same for every
    method), then the method's own."""
    every = str(args.validate_every)
    return ["--stop-time-hours", str(args.minutes / 60), "--validate-interval-updates", every,
            "--validate-interval", "1000", "--save-interval-updates", every,
            "--keep-interval-updates", "1", "--log-interval", "50",
            *METHODS[method].get("args", [])]


def run_one(args, parsed, seed):
    """Train + evaluate one (method, seed); returns its result dict."""
    method, policy_env, name = parsed
    out = Path(args.out) / f"{name}-seed{seed}"
    result_file = out / "result.json"
    if result_file.exists():
        res = json.loads(result_file.read_text())
        if args.rescore:
            res["test_edit"], res["evaluate_output"] = evaluate_test(args, out)
            result_file.write_text(json.dumps(res, indent=1))
        return res
    out.mkdir(parents=True, exist_ok=True)
    env = train_env(args.data, method, policy_env, out, seed)
    extra = train_extra(args, method)
    start = time.time()
    recipes.run_logged(["bash", HERE / "train.sh", *extra], out / "train.log", env)
    train_s = time.time() - start
    curve = replication.valid_curve((out / "train.log").read_text(), "searnn_edit")
    test, evaluate_output = evaluate_test(args, out)
    updates = curve[-1][0] if curve else 0
    res = {"method": name, "seed": seed, "minutes": args.minutes, "train_wall_s": train_s,
           "updates": updates, "s_per_update": train_s / max(updates, 1),
           "valid_curve": [{"num_updates": u, "searnn_edit": e} for u, e in curve],
           "best_valid_edit": min((e for _, e in curve), default=None),
           "test_edit": test, "evaluate_output": evaluate_output}
    result_file.write_text(json.dumps(res, indent=1))
    return res


def train_env(data, method, policy_env, out, seed):
    """train.sh's environment for one run: one thread, the method's criterion options, the
    roll-in / roll-out (SeaRNN methods: the paper's learned × mixed unless given)."""
    policies = {"ROLLIN": "learned", "ROLLOUT": "mixed", **policy_env}
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", DATA=str(data),
                METHOD=criterion(method), SAVE=str(out), SEED=str(seed), MAX_UPDATE="1000000",
                **METHODS[method]["env"], **policies)


def evaluate_test(args, out):
    """Test edit error (%) of ``out/checkpoint_best.pt`` and evaluate.py's summary line."""
    ev = subprocess.run([sys.executable, str(HERE / "evaluate.py"), "--data",
                         str(Path(args.data) / "bin"), "--checkpoint",
                         str(out / "checkpoint_best.pt"), "--split", "test"],
                        env=dict(os.environ, OMP_NUM_THREADS="2"), capture_output=True,
                        text=True, check=True)
    line = ev.stdout.strip().splitlines()[-1]
    return float(re.search(r"edit error ([\d.]+)%", line).group(1)), line


def criterion(method):
    """The train.sh METHOD (criterion) of a method name: searnn_sll_uniform -> searnn_sll."""
    return method if method in ("mle", "searnn_ll", "searnn_kl", "searnn_skl") else "searnn_sll"


def summarise(results, out, title):
    lines = ["| method | seeds | test edit error % (mean ± std) | per seed | updates (mean) | "
             "s / update |", "|---|---|---|---|---|---|"]
    summary, series = {}, []
    for method in dict.fromkeys(r["method"] for r in results):
        rows = [r for r in results if r["method"] == method]
        tests = [r["test_edit"] for r in rows]
        mean, std = replication.mean_std(tests)
        updates = replication.mean_std(r["updates"] for r in rows)[0]
        spu = replication.mean_std(r["s_per_update"] for r in rows)[0]
        summary[method] = {"mean": mean, "std": std, "test": tests,
                           "updates": [r["updates"] for r in rows], "s_per_update": spu}
        lines.append(f"| {method} | {len(rows)} | {mean:.2f} ± {std:.2f} | "
                     f"{', '.join(f'{t:.2f}' for t in tests)} | {updates:.0f} | {spu:.3f} |")
        for r in rows:
            curve = r["valid_curve"]
            series.append((method, [p["num_updates"] * r["s_per_update"] / 60 for p in curve],
                           [p["searnn_edit"] for p in curve]))
    (out / "summary.json").write_text(json.dumps({"summary": summary, "runs": results},
                                                 indent=1))
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    replication.plot_curves(series, "training wall time (min, 1 thread)",
                            "validation edit error (%)", title, out / "curves.png")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="directory made by prepare.sh")
    p.add_argument("--out", required=True)
    p.add_argument("--methods", nargs="+", type=parse_method,
                   default=[parse_method("mle"), parse_method("searnn_sll")],
                   help=f"each METHOD (one of {', '.join(METHODS)}) or METHOD:ROLLIN:ROLLOUT "
                        "for a SeaRNN method")
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--minutes", type=float, default=15.0, help="wall-time budget per run")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    p.add_argument("--validate-every", type=int, default=200,
                   help="updates between validations, the same for every method")
    p.add_argument("--rescore", action="store_true",
                   help="score the finished runs' best checkpoints on test again")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stats = json.loads((Path(args.data) / "stats.json").read_text())
    title = f"Spelling p = {stats['p']}, T = {stats['max_len']}: validation during training"
    todo = [(m, s) for s in args.seeds for m in args.methods]
    summarise(replication.run_all(lambda m, s: run_one(args, m, s), todo, args.jobs), out,
              title)


if __name__ == "__main__":
    main()
