"""Spelling headline comparison: MLE against SeaRNN, several seeds, the same wall-time budget.

    python examples/spelling/replicate.py --data data/spelling-p0.3-T10 --out runs/spelling \
        [--methods mle searnn_sll] [--seeds 1 2 3] [--minutes 15] [--jobs 2]

Each run is ``examples/spelling/train.sh`` (the paper's model and optimiser) stopped by
fairseq's ``--stop-time-hours`` after ``--minutes`` of wall time, with one torch thread, ``--jobs``
runs at a time; then ``evaluate.py`` scores the best checkpoint (by validation ``searnn_edit``) on
the test split. Writes ``OUT/summary.json``, ``OUT/summary.md`` (mean ± std per method) and
``OUT/curves.png`` (validation edit error against training time). Runs whose ``result.json``
exists are not run again.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
# settings per method: the criterion options of train.sh and how often to validate
METHODS = {
    "mle": {"env": {}, "validate_every": 1000},
    "searnn_sll": {"env": {"SAMPLING": "topk", "TOKENS": "5"}, "validate_every": 100},
    "searnn_skl": {"env": {"SAMPLING": "biased", "TOKENS": "5"}, "validate_every": 100},
    "searnn_ll": {"env": {}, "validate_every": 50},
    "searnn_kl": {"env": {}, "validate_every": 50},
}
VALID_RE = re.compile(r"\| valid on 'valid' subset \|.*?\| searnn_edit ([\d.]+) \|.*?"
                      r"\| num_updates (\d+)")
TRAIN_WALL_RE = re.compile(r"\| train_wall (\d+) ")


def run_one(args, method, seed):
    """Train + evaluate one (method, seed); returns its result dict."""
    out = Path(args.out) / f"{method}-seed{seed}"
    result_file = out / "result.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", DATA=args.data,
               METHOD=method, SAVE=str(out), SEED=str(seed), MAX_UPDATE="1000000",
               **METHODS[method]["env"])
    extra = ["--stop-time-hours", str(args.minutes / 60),
             "--validate-interval-updates", str(METHODS[method]["validate_every"]),
             "--validate-interval", "1000", "--save-interval-updates",
             str(METHODS[method]["validate_every"]), "--keep-interval-updates", "1",
             "--log-interval", "50"]
    start = time.time()
    with open(out / "train.log", "w") as log:
        subprocess.run(["bash", str(HERE / "train.sh"), *extra], env=env, stdout=log,
                       stderr=subprocess.STDOUT, check=True)
    train_s = time.time() - start
    text = (out / "train.log").read_text()
    curve = [(float(e), int(u)) for e, u in VALID_RE.findall(text)]
    ev = subprocess.run([sys.executable, str(HERE / "evaluate.py"), "--data",
                         str(Path(args.data) / "bin"), "--checkpoint",
                         str(out / "checkpoint_best.pt"), "--split", "test"],
                        env=dict(env, OMP_NUM_THREADS="2"), capture_output=True, text=True,
                        check=True)
    test = float(re.search(r"edit error ([\d.]+)%", ev.stdout).group(1))
    updates = curve[-1][1] if curve else 0
    res = {"method": method, "seed": seed, "minutes": args.minutes, "train_wall_s": train_s,
           "updates": updates, "s_per_update": train_s / max(updates, 1),
           "valid_curve": [{"num_updates": u, "searnn_edit": e} for e, u in curve],
           "best_valid_edit": min((e for e, _ in curve), default=None),
           "test_edit": test, "evaluate_output": ev.stdout.strip().splitlines()[-1]}
    result_file.write_text(json.dumps(res, indent=1))
    return res


def summarise(results, out):
    by_method = {}
    for r in results:
        by_method.setdefault(r["method"], []).append(r)
    lines = ["| method | seeds | test edit error % (mean ± std) | per seed | updates (mean) | "
             "s / update |", "|---|---|---|---|---|---|"]
    summary = {}
    for method, rows in by_method.items():
        tests = [r["test_edit"] for r in rows]
        std = statistics.stdev(tests) if len(tests) > 1 else 0.0
        summary[method] = {"mean": statistics.mean(tests), "std": std, "test": tests,
                           "updates": [r["updates"] for r in rows],
                           "s_per_update": statistics.mean(r["s_per_update"] for r in rows)}
        lines.append(f"| {method} | {len(rows)} | {statistics.mean(tests):.2f} ± {std:.2f} | "
                     f"{', '.join(f'{t:.2f}' for t in tests)} | "
                     f"{statistics.mean(summary[method]['updates']):.0f} | "
                     f"{summary[method]['s_per_update']:.3f} |")
    (out / "summary.json").write_text(json.dumps({"summary": summary, "runs": results},
                                                 indent=1))
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = {}
    for r in results:
        c = colors.setdefault(r["method"], f"C{len(colors)}")
        frac = [p["num_updates"] * r["s_per_update"] / 60 for p in r["valid_curve"]]
        ax.plot(frac, [p["searnn_edit"] for p in r["valid_curve"]], color=c, alpha=0.8,
                label=r["method"] if r["seed"] == min(x["seed"] for x in results
                                                      if x["method"] == r["method"]) else None)
    ax.set_xlabel("training wall time (min, 1 thread)")
    ax.set_ylabel("validation edit error (%)")
    ax.set_title("Spelling p = 0.3, T = 10: validation during training")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=100)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="directory made by prepare.sh")
    p.add_argument("--out", required=True)
    p.add_argument("--methods", nargs="+", default=["mle", "searnn_sll"],
                   choices=sorted(METHODS))
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--minutes", type=float, default=15.0, help="wall-time budget per run")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [(m, s) for s in args.seeds for m in args.methods]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda ms: run_one(args, *ms), todo))
    summarise(results, out)


if __name__ == "__main__":
    main()
