"""Seconds per update of each ``examples/nmt/finetune.py`` method on a converged model: the
driver's own fairseq-train command (``train_command``: the same criterion, precision, batches
and model), started from ``--checkpoint``'s weights and run for ``--updates`` updates without
validation or checkpoints, the methods one after the other in one invocation (ratios to the
control from one run).

A method may carry ``train.sh`` settings after a colon, e.g. ``risk:RISK_SIZE=8`` or
``risk:RISK_CANDIDATES=sample,RISK_SIZE=8``. The time per update is fairseq's own ``ups``
over the updates after the first ``--log-interval`` (start-up and the first batches left out).

    OMP_NUM_THREADS=1 python benchmarks/bench_finetune_steps.py --prep runs/data/multi30k \\
        --checkpoint CONVERGED.pt [--methods control searnn refout risk risk:RISK_SIZE=8] \\
        [--updates 40] [--precision auto] [--json FILE]
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def driver():
    """``examples/nmt/finetune.py`` as a module."""
    import importlib.util

    path = REPO / "examples" / "nmt" / "finetune.py"
    spec = importlib.util.spec_from_file_location("finetune_driver", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_method(spec: str):
    """``METHOD[:KEY=VALUE,...]`` -> ``(method, {KEY: VALUE})``."""
    method, _, extra = spec.partition(":")
    settings = dict(kv.split("=", 1) for kv in extra.split(",") if kv)
    return method, settings


def ups_after_first(log: str, interval: int):
    """fairseq's updates per second of the ``train_inner`` lines after the first ``interval``
    updates: their mean, else None."""
    found = [(int(u), float(r)) for r, u in re.findall(
        r"train_inner .*?ups=([\d.]+),.*?num_updates=(\d+)", log)]
    later = [r for u, r in found if u > interval]
    return sum(later) / len(later) if later else None


def time_method(module, args, spec, precision, weights, workdir):
    method, settings = parse_method(spec)
    fake = module.parse(["--prep", str(args.prep), "--out", str(workdir)])
    env, options = module.train_command(fake, method, precision)
    env = {**env, **settings}
    save = Path(workdir) / re.sub(r"[^A-Za-z0-9_.-]", "_", spec)
    full = module.nmt_runs.train_env(args.prep, save, 1, **env)
    cmd = ["bash", str(REPO / "examples" / "nmt" / "train.sh"), "--finetune-from-model",
           str(weights), *options, "--max-update", str(args.updates), "--log-interval",
           str(args.log_interval), "--no-save", "--disable-validation"]
    out = subprocess.run(cmd, env=full, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{spec}: fairseq-train failed:\n{(out.stdout + out.stderr)[-3000:]}")
    ups = ups_after_first(out.stdout + out.stderr, args.log_interval)
    if ups is None:
        raise RuntimeError(f"{spec}: no train_inner line after {args.log_interval} updates "
                           "(raise --updates)")
    return {"method": method, "settings": settings, "s_per_update": 1.0 / ups}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prep", required=True, type=Path, help="made by prepare_multi30k.py")
    p.add_argument("--checkpoint", required=True, type=Path, help="a converged model")
    p.add_argument("--methods", nargs="+",
                   default=["control", "searnn", "refout", "learned_refout", "risk"])
    p.add_argument("--updates", type=int, default=40)
    p.add_argument("--log-interval", type=int, default=10)
    p.add_argument("--precision", choices=("float32", "bfloat16", "auto"), default="auto")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if args.updates < 2 * args.log_interval:
        p.error("--updates must be at least twice --log-interval")
    module = driver()
    for spec in args.methods:
        if parse_method(spec)[0] not in module.METHODS:
            p.error(f"--methods {spec}: one of {', '.join(module.METHODS)}")
    precision, why = module.nmt_runs.resolve_precision(args.precision)
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        weights = Path(workdir) / "weights.pt"
        module.replication.weights_only(args.checkpoint, weights)
        for spec in args.methods:
            row = time_method(module, args, spec, precision, weights, workdir)
            rows.append(row)
            print(f"{spec}: {row['s_per_update']:.2f} s / update", flush=True)
    control = next((r["s_per_update"] for r in rows if r["method"] == "control"
                    and not r["settings"]), None)
    print(f"\nprecision {precision} ({why}), {args.updates} updates a method")
    print("| method | s / update | x control |\n|---|---|---|")
    for spec, row in zip(args.methods, rows):
        ratio = f"{row['s_per_update'] / control:.1f}" if control else "-"
        print(f"| {spec} | {row['s_per_update']:.2f} | {ratio} |")
    result = {"precision": precision, "updates": args.updates, "rows": rows,
              "argv": sys.argv[1:]}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
