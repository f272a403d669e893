"""Multi30k at convergence: a label-smoothed baseline trained until the selection half of the
validation set stops improving, then fine-tunes of that converged model for equal wall time —
continued label-smoothed cross-entropy (the control), SeaRNN sKL mixed with the token loss,
differentiable scheduled sampling (soft greedy, alpha annealed) and hard scheduled sampling —
scored with greedy and beam-5 sacreBLEU on the other half.

    python examples/nmt/converged.py --prep data/multi30k --out runs/multi30k-converged \\
        --arch lstm [--start CHECKPOINT] [--methods control searnn dss ss] [--seeds 1 2 3] \\
        [--minutes 45] [--jobs 2] [--precision auto] [--baseline-only | --report-only]

1. The validation split is cut into two fixed halves (pairs 1, 3, 5, ... ``select``; pairs
   2, 4, ... ``report``): ``select`` stops training and picks checkpoints, ``report`` is
   where every BLEU of the table is measured.
2. Baseline (``OUT/ARCH/baseline``): ``train.sh METHOD=mle`` with label smoothing 0.1,
   dropout 0.3, gradient norm clipped at 5, Adam 1e-3 halved after every epoch whose
   ``select`` BLEU (greedy) does not improve (the Transformer warms up over 1,000 updates
   first), validated every epoch, stopped after ``--patience`` validations without
   improvement or at ``--cap-hours`` of training.
   ``--start CHECKPOINT`` uses a converged model instead; a finished baseline is reused.
3. Fine-tunes (``OUT/ARCH/METHOD-seedS``) start from the baseline's best checkpoint, stripped
   to its weights, and train for ``--minutes`` of wall time each at a constant Adam step of
   ``--lr`` with the baseline's batches, dropout and label smoothing; each validates on
   ``select`` about every 5 minutes (an interval in updates per method, from its measured
   step time) and keeps its best checkpoint.
4. ``evaluate.py``'s scoring (``nmt_eval.score_checkpoint``) of the baseline's and every
   fine-tune's best checkpoint on ``report`` (greedy and beam 5); SeaRNN runs also get
   ``fairseq-searnn-diagnose``'s target report on ``select`` at their start and at their best
   checkpoint.

``--report-only`` trains nothing: it scores and tabulates every finished fine-tune under
``OUT/ARCH`` (whatever its method and seed), so runs made by several invocations share one table.

Writes ``OUT/ARCH/summary.md`` (the table, then each method's difference to the control with
its standard error), ``summary.json``, ``curves-updates.png`` and ``curves.png`` (``select``
BLEU against updates and against training wall time). One torch thread per run,
``--jobs`` fine-tunes at a time; finished runs, scores and diagnoses are not redone. Options
after ``--`` go to every fairseq-train run (e.g. a smaller model for a trial).
``--precision auto`` (the default) trains in bfloat16 where the machine has a fast bfloat16
path (``--searnn-autocast bfloat16``; SeaRNN fine-tunes also ``--searnn-decode-dtype
bfloat16``), else in float32; the choice is printed at the start.
"""

import argparse
import json
from pathlib import Path

from fairseq_searnn import recipes
from fairseq_searnn.data.nmt_prepare import split_valid_halves
from fairseq_searnn.recipes import nmt_runs, replication

HERE = Path(__file__).resolve().parent
SELECT, REPORT = "select", "report"
ARCHS = {"lstm": {"ARCH": "lstm"}, "transformer": {"ARCH": "transformer", "WARMUP": "1000"}}
# settings of every run (baseline and fine-tunes): train.sh environment
COMMON_ENV = {"DROPOUT": "0.3", "LABEL_SMOOTHING": "0.1", "MAX_UPDATE": "10000000"}
CLIP = nmt_runs.CLIP  # the authors' gradient-norm clipping
# fine-tunes: train.sh environment, extra fairseq-train options, validation interval (updates:
# ~5 minutes of each method's step on one thread beside another run, measured on the converged
# LSTM by benchmarks/bench_nmt_converged.py: control 0.41 s, searnn 1.95 s; DSS / SS ~0.6 s)
SEARNN = {"METHOD": "searnn", "CELLS": "6", "TOKENS": "5", "NEIGHBORS": "2",
          "MLE_WEIGHT": "0.3"}
DECAY_K = "400"  # gold-token probability k / (k + exp(i / k)): 0.5 at i = 2,400 updates,
# about half of a 45-minute DSS / SS fine-tune; 0.005 at 4,500
METHODS = {
    # continued label-smoothed cross-entropy at the fine-tune step
    "control": ({"METHOD": "mle"}, [], 700),
    # sKL (reference roll-in, mixed roll-out drawn per sentence, sentence-BLEU cost with the
    # authors' smoothing, best-suffix reference chosen by BLEU-1, alpha 200), top-5 tokens +
    # the reference tokens within 2 positions, 6 cells a sentence (+ the EOS cell and the one
    # before), mixed with 0.3 x label-smoothed token cross-entropy
    "searnn": (SEARNN, [], 150),
    # differentiable scheduled sampling: soft argmax feed, alpha 1 growing x1.005 per update
    "dss": ({"METHOD": "dss", "FEED": "soft-greedy", "SS_ALPHA": "1", "DECAY_K": DECAY_K},
            ["--ss-alpha-growth", "1.005"], 500),
    # hard scheduled sampling: the previous argmax is fed
    "ss": ({"METHOD": "ss", "DECAY_K": DECAY_K}, [], 500),
}
DECODES = (1, 5)  # beams scored on the report half


def _env(args, save, seed, **extra):
    return nmt_runs.train_env(args.prep, save, seed, **ARCHS[args.arch], **COMMON_ENV, **extra)


def _done(log):
    return log.exists() and "done training" in log.read_text()


def baseline(args):
    """The converged start: ``--start``, or the baseline run's best checkpoint (trained here
    unless a finished run exists)."""
    if args.start:
        return Path(args.start)
    out = args.out / args.arch / "baseline"
    log = out / "train.log"
    if not _done(log):
        out.mkdir(parents=True, exist_ok=True)
        env = _env(args, out, args.seed, METHOD="mle", LR="1e-3", LR_SCHEDULE="plateau")
        recipes.run_logged(
            ["bash", HERE / "train.sh", "--valid-subset", SELECT, "--validate-interval", "1",
             "--patience", str(args.patience), "--stop-time-hours", f"{args.cap_hours:.4f}",
             "--max-epoch", "1000", *CLIP, *nmt_runs.precision_args(args.precision, False),
             *args.fairseq], log, env)
    return out / "checkpoint_best.pt"


def finetune(args, init, method, seed):
    out = args.out / args.arch / f"{method}-seed{seed}"
    log = out / "train.log"
    if not _done(log):
        out.mkdir(parents=True, exist_ok=True)
        env_extra, options, every = METHODS[method]
        env = _env(args, out, seed, LR=str(args.lr), LR_SCHEDULE="fixed", **env_extra)
        recipes.run_logged(
            ["bash", HERE / "train.sh", "--finetune-from-model", init, "--valid-subset", SELECT,
             "--validate-interval", "100000", "--validate-interval-updates", str(every),
             "--save-interval-updates", str(every), "--keep-interval-updates", "1",
             "--stop-time-hours", f"{args.minutes / 60:.4f}", *CLIP, *options,
             *nmt_runs.precision_args(args.precision, env_extra.get("METHOD") == "searnn"),
             *args.fairseq], log, env)
    return out


def evaluate(args, checkpoint, into):
    """Report-half sacreBLEU of ``checkpoint`` for each beam of DECODES (cached in ``into``)."""
    return nmt_runs.score_beams(args.prep, checkpoint, REPORT, into, DECODES)


def diagnose(args, checkpoint, criterion_from, out):
    """The SeaRNN target report of ``checkpoint`` on ``select`` (fairseq-searnn-diagnose with
    the criterion the run trained with)."""
    return nmt_runs.diagnose(args.prep / "bin", checkpoint, out, SELECT,
                             criterion_from=criterion_from)["targets"]


def finished_runs(arch_dir):
    """``{(method, seed): directory}`` of every finished fine-tune under ``arch_dir``, in the
    order of METHODS, then seed."""
    found = {}
    for run in arch_dir.glob("*-seed*"):
        method, _, seed = run.name.rpartition("-seed")
        if method in METHODS and seed.isdigit() and _done(run / "train.log"):
            found[(method, int(seed))] = run
    order = list(METHODS)
    return dict(sorted(found.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])))


def read_run(text):
    """Updates, training seconds (the sum of fairseq's end-of-epoch ``train_wall``), stop
    reason and the ``select`` curve of a fairseq-train log."""
    return {"updates": replication.train_updates(text),
            "train_wall_s": replication.train_seconds(text),
            "stop": replication.stop_reason(text),
            "select_curve": replication.valid_curve(text, "searnn_bleu", SELECT)}


def summarise(args, start, runs):
    """runs: ``{(method, seed): directory}``; writes the table, json and curves."""
    arch_dir = args.out / args.arch
    summary = {"arch": args.arch, "start": str(start), "minutes": args.minutes,
               "lr": args.lr, "start_bleu": evaluate(args, start, arch_dir / "start-bleu.json"),
               "runs": {}}
    base_log = start.parent / "train.log"
    if base_log.exists():
        summary["baseline"] = read_run(base_log.read_text())
    init = arch_dir / "start-weights.pt"
    for (method, seed), run in runs.items():
        row = {**read_run((run / "train.log").read_text()), "seed": seed,
               **evaluate(args, run / "checkpoint_best.pt", run / "bleu.json")}
        if method == "searnn":
            crit = run / "checkpoint_best.pt"
            row["targets_start"] = diagnose(args, init, crit, run / "diagnose-start")
            row["targets_end"] = diagnose(args, crit, crit, run / "diagnose-end")
        summary["runs"].setdefault(method, []).append(row)
    lines = table(summary)
    (arch_dir / "summary.md").write_text("\n".join(lines) + "\n")
    (arch_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("\n".join(lines))
    plot(summary, arch_dir)
    return summary


def table(summary):
    """Markdown rows: the converged start, then every method (mean ± std and each seed)."""
    def bleu(scores, beam):
        return scores[f"beam{beam}"]["sacrebleu"]

    start = summary["start_bleu"]
    base = summary.get("baseline", {})
    lines = ["| run | seeds | report BLEU greedy (mean ± std) | per seed | beam 5 | per seed "
             "| best select BLEU | updates | s / update | stop |",
             "|---|---|---|---|---|---|---|---|---|---|",
             f"| converged {summary['arch']} (start) | 1 | {bleu(start, 1):.2f} | - "
             f"| {bleu(start, 5):.2f} | - "
             f"| {max((v for _, v in base.get('select_curve', [])), default=float('nan')):.2f} "
             f"| {base.get('updates', '-')} | "
             f"{base.get('train_wall_s', 0) / max(base.get('updates', 0), 1):.2f} "
             f"| {base.get('stop', 'given')} |"]
    for method, rows in summary["runs"].items():
        cells = []
        for beam in DECODES:
            values = [bleu(r, beam) for r in rows]
            mean, std = replication.mean_std(values)
            cells += [f"{mean:.2f} ± {std:.2f}", ", ".join(f"{v:.2f}" for v in values)]
        best = ", ".join(f"{max(v for _, v in r['select_curve']):.2f}" if r["select_curve"]
                         else "-" for r in rows)
        per = ", ".join(f"{r['train_wall_s'] / max(r['updates'], 1):.2f}" for r in rows)
        lines.append(f"| {method} | {len(rows)} | {cells[0]} | {cells[1]} | {cells[2]} "
                     f"| {cells[3]} | {best} | {', '.join(str(r['updates']) for r in rows)} "
                     f"| {per} | {', '.join(r['stop'] for r in rows)} |")
    return lines + [""] + versus_control(summary)


def versus_control(summary):
    """One line per method besides the control: the difference of mean ``report`` BLEU to the
    control's (greedy, beam 5), with its standard error sqrt(s1^2/n1 + s2^2/n2) where both
    have two seeds or more, and how many of the method's seeds score above every control
    seed."""
    control = summary["runs"].get("control")
    if not control:
        return []
    lines = []
    for method, rows in summary["runs"].items():
        if method == "control":
            continue
        cells = []
        for beam in DECODES:
            ours = [r[f"beam{beam}"]["sacrebleu"] for r in rows]
            theirs = [r[f"beam{beam}"]["sacrebleu"] for r in control]
            (m1, s1), (m2, s2) = replication.mean_std(ours), replication.mean_std(theirs)
            se = (f" ± {(s1 ** 2 / len(ours) + s2 ** 2 / len(theirs)) ** 0.5:.2f} (s.e.)"
                  if min(len(ours), len(theirs)) > 1 else "")
            above = sum(v > max(theirs) for v in ours)
            cells.append(f"{'greedy' if beam == 1 else f'beam {beam}'} {m1 - m2:+.2f}{se}, "
                         f"{above} of {len(ours)} seeds above every control seed")
        lines.append(f"- {method} − control, report BLEU: " + "; ".join(cells))
    return lines


def plot(summary, folder):
    """``select`` BLEU of every fine-tune against updates and against training minutes."""
    for suffix, xlabel, scale in (("-updates", "updates", lambda r: 1.0),
                                  ("", "training wall time (min, 1 thread)",
                                   lambda r: r["train_wall_s"] / max(r["updates"], 1) / 60)):
        series = [(method, [u * scale(r) for u, _ in r["select_curve"]],
                   [v for _, v in r["select_curve"]])
                  for method, rows in summary["runs"].items() for r in rows]
        replication.plot_curves(series, xlabel, "select-half BLEU (greedy)",
                                f"Multi30k de-en, fine-tuning the converged {summary['arch']}",
                                folder / f"curves{suffix}.png")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--prep", required=True, type=Path, help="made by prepare_multi30k.py")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--arch", choices=list(ARCHS), default="lstm")
    p.add_argument("--start", help="a converged checkpoint to fine-tune (skips the baseline)")
    p.add_argument("--cap-hours", type=float, default=2.0, help="baseline: training time cap")
    p.add_argument("--patience", type=int, default=4,
                   help="baseline: validations (epochs) without a better select BLEU")
    p.add_argument("--seed", type=int, default=1, help="baseline seed")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--baseline-only", action="store_true", help="stop after the baseline")
    mode.add_argument("--report-only", action="store_true",
                      help="train nothing: tabulate every finished fine-tune under OUT/ARCH")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--seeds", type=int, nargs="+", default=[1], help="fine-tune seeds")
    p.add_argument("--minutes", type=float, default=45.0, help="wall time per fine-tune")
    p.add_argument("--lr", type=float, default=1e-4, help="fine-tune Adam step (constant)")
    p.add_argument("--jobs", type=int, default=1, help="fine-tunes at a time (1 thread each)")
    p.add_argument("--precision", choices=nmt_runs.PRECISIONS, default="auto",
                   help="training runs' precision: auto = bfloat16 where the machine has a "
                        "fast bfloat16 path (fast_bfloat16()), else float32")
    p.add_argument("fairseq", nargs="*", metavar="-- FAIRSEQ_OPTION",
                   help="after --: options added to every fairseq-train run")
    args = p.parse_args(argv)
    if args.start and not Path(args.start).is_file():
        p.error(f"--start {args.start}: no such checkpoint")
    if args.minutes <= 0 or args.cap_hours <= 0 or args.patience < 1:
        p.error("--minutes and --cap-hours must be > 0, --patience >= 1")
    return args


def main(argv=None):
    args = parse(argv)
    args.precision, why = nmt_runs.resolve_precision(args.precision)
    print(f"precision of the training runs: {args.precision} ({why})", flush=True)
    import torch

    torch.set_num_threads(1)  # the scoring and diagnoses in this process
    split_valid_halves(args.prep, (SELECT, REPORT))
    if args.report_only and not args.start and not _done(
            args.out / args.arch / "baseline" / "train.log"):
        raise SystemExit(f"--report-only: no finished baseline under {args.out / args.arch} "
                         "(train it, or give --start)")
    start = baseline(args)
    if args.baseline_only:
        return {"start_bleu": evaluate(args, start, args.out / args.arch / "start-bleu.json")}
    init = args.out / args.arch / "start-weights.pt"
    if not init.exists():
        replication.weights_only(start, init)
    if args.report_only:
        return summarise(args, start, finished_runs(args.out / args.arch))
    jobs = [(m, s) for m in args.methods for s in args.seeds]
    dirs = replication.run_all(lambda m, s: finetune(args, init, m, s), jobs, args.jobs)
    return summarise(args, start, dict(zip(jobs, dirs)))


if __name__ == "__main__":
    main()
