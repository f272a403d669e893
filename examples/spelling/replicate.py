"""Spelling tables: methods × seeds, each trained until validation stops improving (or a
wall-time cap), scored on the test split.

    python examples/spelling/replicate.py --data data/spelling-p0.3-T10 --out runs/spelling \
        [--methods mle searnn_kl] [--seeds 1 2 3] [--cap-minutes 90] [--patience-updates 3000] \
        [--validate-every 200] [--alpha A ...] [--jobs 2] [--precision float32] \
        [-- fairseq-train args]

Each run is ``examples/spelling/train.sh`` (the paper's model and optimiser, gradients clipped
at norm 5), one torch thread, ``--jobs`` runs at a time. The protocol is the same for every
method: validation (exact greedy edit error of the validation split) every ``--validate-every``
updates; a run stops when it has not improved for ``--patience-updates`` updates ("patience";
0: never) or after ``--cap-minutes`` of wall time ("cap": not converged, a bound on what it
reaches); then ``evaluate.py`` scores the best checkpoint on the test split. Writes
``OUT/summary.md`` (per method: mean ± std and every seed's test error, best validation,
updates, wall time, stop reason, time per update), ``OUT/summary.json`` and validation curves
against wall time and updates (``OUT/curves.png``, ``OUT/curves-updates.png``). Runs whose
``result.json`` exists are not run again. Methods: ``mle``, ``searnn_ll`` / ``searnn_kl``
(every token), ``searnn_sll`` (5 top-k tokens), ``searnn_sll_{uniform,policy,biased}``,
``searnn_skl`` (5 biased tokens), ``searnn_sll_warm`` (``searnn_sll`` after 1,000
cross-entropy updates); learned roll-in, mixed roll-out unless a SeaRNN method is followed by
``:ROLLIN:ROLLOUT`` (Table 1's grid, e.g. ``searnn_kl:reference:learned``). ``--alpha`` sets
the KL / sKL target scale (default: the criterion's for the edit cost); several values sweep
it, one run per value named ``NAME-alphaA`` (MLE and LL runs once). Arguments after ``--`` go
to every run's fairseq-train, after the recipe's (e.g. ``-- --lr 3e-4`` for the MLE optimiser
search; give such a variant its own ``--out``). ``--precision`` (float32 by default: see
docs/results.md#bfloat16) trains in bfloat16 with ``bfloat16`` (``--searnn-autocast
bfloat16``, and ``--searnn-decode-dtype bfloat16`` for SeaRNN methods) or with ``auto`` where
the machine has a fast bfloat16 path; the choice is printed and kept in each run's
``result.json``.
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
from fairseq_searnn.recipes import nmt_runs, replication

REPORT = replication.REPORTS["spelling"]

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
    """train.sh arguments of a run: the protocol's schedule (the same for every method), the
    method's own, then the user's fairseq-train arguments (``args.fairseq``)."""
    return [*replication.schedule_args(args.validate_every, args.patience_updates,
                                       args.cap_minutes),
            "--log-interval", "50", *METHODS[method].get("args", []),
            *nmt_runs.precision_args(args.precision, criterion(method) != "mle"), *args.fairseq]


def run_one(args, parsed, seed):
    """Train + evaluate one (method, seed) unless its ``result.json`` exists; returns the
    run's record (read off its log and result)."""
    method, policy_env, name = parsed
    out = Path(args.out) / f"{name}-seed{seed}"
    result_file = out / "result.json"
    if not result_file.exists():
        out.mkdir(parents=True, exist_ok=True)
        env = train_env(args.data, method, policy_env, out, seed)
        start = time.time()
        recipes.run_logged(["bash", HERE / "train.sh", *train_extra(args, method)],
                           out / "train.log", env)
        train_s = time.time() - start
        test, line = evaluate_test(args, out)
        result_file.write_text(json.dumps({"train_wall_s": train_s, "test_edit": test,
                                           "evaluate_output": line,
                                           "precision": args.precision}, indent=1))
    res = json.loads(result_file.read_text())
    if args.rescore:
        res["test_edit"], res["evaluate_output"] = evaluate_test(args, out)
        result_file.write_text(json.dumps(res, indent=1))
    text = (out / "train.log").read_text()
    return {"method": name, "seed": seed,
            **replication.run_record(text, res, REPORT), "evaluate_output": res["evaluate_output"],
            "precision": res.get("precision", "float32")}


def train_env(data, method, policy_env, out, seed):
    """train.sh's environment for one run: one thread, the method's criterion options, the
    roll-in / roll-out (SeaRNN methods: the paper's learned × mixed unless given) and
    ``ALPHA`` when the run's ``policy_env`` has one (else the criterion's default, whatever
    the caller's environment exports)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", DATA=str(data),
               METHOD=criterion(method), SAVE=str(out), SEED=str(seed), MAX_UPDATE="1000000")
    env.pop("ALPHA", None)
    return {**env, **METHODS[method]["env"], "ROLLIN": "learned", "ROLLOUT": "mixed",
            **policy_env}


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
    replication.write_converged(results, out, REPORT, title)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="directory made by prepare.sh")
    p.add_argument("--out", required=True)
    p.add_argument("--methods", nargs="+", type=parse_method,
                   default=[parse_method("mle"), parse_method("searnn_sll")],
                   help=f"each METHOD (one of {', '.join(METHODS)}) or METHOD:ROLLIN:ROLLOUT "
                        "for a SeaRNN method")
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--cap-minutes", "--minutes", type=float, default=90.0,
                   help="wall-time cap per run (a run stopped here is not converged)")
    p.add_argument("--patience-updates", type=int, default=3000,
                   help="stop when validation has not improved for this many updates (0: "
                        "never)")
    p.add_argument("--validate-every", type=int, default=200,
                   help="updates between validations, the same for every method")
    p.add_argument("--alpha", type=float, nargs="+",
                   help="searnn_kl / searnn_skl target scale; several values sweep it (runs "
                        "named NAME-alphaA); default the criterion's")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    p.add_argument("--precision", choices=nmt_runs.PRECISIONS, default="float32",
                   help="bfloat16: --searnn-autocast, and --searnn-decode-dtype for SeaRNN "
                        "methods; auto: bfloat16 where the machine has a fast bfloat16 path. "
                        "float32 by default here: on this 100-unit model bfloat16 gains "
                        "little and sLL trailed float32 (docs/results.md#bfloat16)")
    p.add_argument("--rescore", action="store_true",
                   help="score the finished runs' best checkpoints on test again")
    p.add_argument("fairseq", nargs="*", metavar="-- FAIRSEQ_OPTION",
                   help="after --: options added to every run's fairseq-train")
    args = p.parse_args(argv)
    if args.cap_minutes <= 0 or args.patience_updates < 0 or args.validate_every < 1:
        p.error("--cap-minutes and --validate-every must be > 0, --patience-updates >= 0")
    if args.alpha and min(args.alpha) <= 0:
        p.error(f"--alpha {args.alpha}: every value must be > 0")
    args.precision, why = nmt_runs.resolve_precision(args.precision)
    print(f"precision of new runs: {args.precision} ({why})", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stats = json.loads((Path(args.data) / "stats.json").read_text())
    title = f"Spelling p = {stats['p']}, T = {stats['max_len']}: validation during training"
    methods = replication.alpha_variants(
        args.methods, args.alpha, lambda m: criterion(m) in ("searnn_kl", "searnn_skl"),
        lambda env, a: {**env, "ALPHA": f"{a:g}"})
    todo = [(m, s) for s in args.seeds for m in methods]
    summarise(replication.run_all(lambda m, s: run_one(args, m, s), todo, args.jobs), out,
              title)


if __name__ == "__main__":
    main()
