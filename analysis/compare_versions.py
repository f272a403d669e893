"""Side-by-side spelling step times of two checkouts of the project (an engine change against
the code before it): ``python analysis/compare_versions.py --old DIR [--rounds 3]``.

Each round times, in a fresh process per checkout and method, the spelling shape of
``benchmarks/bench_engine.py`` (128 sentences, learned roll-in, mixed roll-out, edit cost; sKL
with 5 tokens and full KL) with ``step_time`` (3 repetitions, one torch thread); rounds
alternate the checkouts so that load changes hit both. Prints every round and the medians of
the step and of its roll-out phase. ``--old`` is e.g. ``git worktree add /tmp/old REV``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

NEW = Path(__file__).resolve().parent.parent
# run in CHECKOUT/benchmarks with the checkout first on PYTHONPATH
CODE = """
import json, logging, warnings
logging.disable(logging.INFO); warnings.filterwarnings("ignore")
import torch
try:
    from fairseq_searnn.recipes import bench as common
except ImportError:  # a checkout from before fairseq_searnn.recipes: benchmarks/common.py
    import common
import bench_engine as be
torch.set_num_threads(1)
name = %r
args = be._searnn_args(name, "mixed", 5 if name == "searnn_skl" else 0, cost="edit",
                       rollin="learned", extra=be.SPELL_MAX_LEN)
task, model, crit = common.build("spelling", be.SPELL_VOCAB, name, args)
step_s, parts = be.step_time(task, model, crit, common.batch(task, 128, (10, 10)), 3)
print(json.dumps({"step_s": step_s, "rollouts_s": parts["time_rollouts"]}))
"""


def measure(tree: Path, name: str) -> dict:
    """One fresh process's step and roll-out times of ``name`` with the code of ``tree``."""
    path = [str(tree), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in path if p))
    out = subprocess.run([sys.executable, "-c", CODE % name], cwd=tree / "benchmarks", env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old", required=True, type=Path, help="checkout of the earlier code")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    runs = {(tree, name): [] for tree in ("old", "new") for name in ("searnn_skl", "searnn_kl")}
    for r in range(args.rounds):
        for tree, path in (("old", args.old), ("new", NEW)):
            for name in ("searnn_skl", "searnn_kl"):
                res = measure(path, name)
                runs[(tree, name)].append(res)
                print(f"round {r + 1} {tree} {name}: step {res['step_s']:.3f} s, "
                      f"roll-outs {res['rollouts_s']:.3f} s", flush=True)
    for name in ("searnn_skl", "searnn_kl"):
        for key in ("step_s", "rollouts_s"):
            old, new = (statistics.median(x[key] for x in runs[(t, name)]) for t in ("old", "new"))
            print(f"median {name} {key}: {old:.3f} -> {new:.3f} ({100 * (new / old - 1):+.0f} %)")


if __name__ == "__main__":
    main()
