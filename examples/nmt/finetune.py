"""Fine-tuning a converged Multi30k model: continued label-smoothed cross-entropy (the
control), SeaRNN variants and sequence-level risk, from a start where the control has
converged, each until its own patience on the whole validation set (or, with ``--patience 0``,
to a common cap), scored on test2016 with paired bootstrap resampling against the control and
against the start.

    python examples/nmt/finetune.py --prep data/multi30k --test-raw RAW/test2016 \\
        --start CONVERGED.pt --out runs/m30k-finetune [--arch lstm] \\
        [--methods control searnn searnn_full ... risk] [--seeds 1 2 3] [--cap-minutes 60] \\
        [--patience 6] [--start-patience 6] [--start-cap-minutes 120] [--lr 1e-4] \\
        [--precision auto] [--jobs 2] [--train-only | --report-only]

1. The start (``OUT/ARCH/start``): the control continued from ``--start`` (its weights only)
   until the whole validation set stops improving (``--start-patience`` validations) or
   ``--start-cap-minutes``. Its best checkpoint is where every fine-tune begins, so that more
   cross-entropy no longer gains by itself; the table reports both starts on test2016.
2. Fine-tunes (``OUT/ARCH/METHOD-seedS``), from the start's best checkpoint (weights only):
   label smoothing 0.1, dropout 0.3, the start's batches, a constant Adam step ``--lr``,
   gradient norm clipped at 5; greedy validation BLEU on the whole validation split about
   every 5 minutes (an interval in updates per method: :data:`METHODS`) picks
   ``checkpoint_best.pt``; a run stops after ``--patience`` validations without improvement
   or at ``--cap-minutes`` of training (fairseq's cumulative training time). ``--patience 0``:
   no early stopping, every fine-tune trains to the cap (equal training time).

   - ``control``: label-smoothed cross-entropy;
   - ``searnn``: sKL as ``converged.py`` runs it (reference roll-in, mixed roll-out, alpha
     200, sentence BLEU with the authors' smoothing, best-suffix reference by BLEU-1, top-5
     tokens + the reference tokens within 2 positions, 6 cells a sentence), mixed with 0.3 x
     the label-smoothed token loss;
   - ``searnn_full``: + the candidates' log-probabilities from the full softmax
     (``--searnn-sampled-softmax full``: the mass outside the candidates is pushed down);
   - ``searnn_w05``: + token weight 0.5;
   - ``refout`` / ``refout_full``: reference roll-outs (a step close to the control's),
     renormalised over the candidates / from the full softmax;
   - ``learned_refout``: learned roll-in, reference roll-outs;
   - ``risk``: ``sequence_risk`` (Edunov et al. 2018) over ``--risk-size`` beam candidates,
     mixed with 0.3 x the label-smoothed token loss (the criterion's defaults).
3. Every finished run is scored once on test2016 (best checkpoint, greedy and beam 5,
   sacreBLEU on detokenised output), tested by paired bootstrap resampling against the same
   seed's control and against the start, and diagnosed once on the validation set
   (``fairseq-searnn-diagnose``, with the target report of ``searnn``'s criterion, or of the
   SeaRNN variant's own).

Runs are resumable: an invocation trains or continues the runs of ``--methods`` x
``--seeds`` that are not finished (a run killed part-way continues from its
``checkpoint_last.pt``; a run stopped at a lower cap continues to ``--cap-minutes``, and
under ``--patience 0`` a run stopped on patience continues to the cap), ``--jobs``
at a time on one thread each, then writes ``OUT/ARCH/summary.md``, ``summary.json``,
``curves.png`` and ``curves-updates.png`` of every finished run. ``--train-only`` only
trains; ``--report-only`` trains nothing. Options after ``--`` go to every new run's
fairseq-train (but not ``--patience``: the driver's option sets it). A run that stopped on
patience is finished unless ``--patience 0`` asks for no early stopping: to read a study
stopped on patience at equal training time as well, copy its ``OUT`` and continue the copy
with ``--patience 0`` (each such run goes on from its ``checkpoint_last.pt``; the start and
the runs that reached the cap stay as they are).
"""

import argparse
from pathlib import Path

from fairseq_searnn import recipes
from fairseq_searnn.data.nmt_prepare import ensure_split, prep_info, read_lines
from fairseq_searnn.recipes import nmt_runs, nmt_table, replication, resumable

HERE = Path(__file__).resolve().parent
METRIC = "searnn_bleu"
DECODES = (1, 5)
ARCHS = {"lstm": {"ARCH": "lstm"}, "transformer": {"ARCH": "transformer"}}
# train.sh settings of every run
COMMON = {"DROPOUT": "0.3", "LABEL_SMOOTHING": "0.1", "MAX_UPDATE": "10000000",
          "LR_SCHEDULE": "fixed"}
SEARNN = {"METHOD": "searnn", "CELLS": "6", "TOKENS": "5", "NEIGHBORS": "2",
          "MLE_WEIGHT": "0.3"}
FULL = ["--searnn-sampled-softmax", "full"]
REFOUT = ["--rollout", "reference"]
# method: (train.sh environment, fairseq-train options, validation interval in updates:
# about 5 minutes of the method's bfloat16 step on the converged Multi30k LSTM, one thread
# beside two other jobs, by benchmarks/bench_finetune_steps.py: control 0.50 s, searnn
# 2.19 s, refout 0.60 s, learned_refout 1.92 s, risk over 4 beam candidates 4.29 s (8: 9.38 s))
METHODS = {
    "control": ({"METHOD": "mle"}, [], 600),
    "searnn": (SEARNN, [], 150),
    "searnn_full": (SEARNN, FULL, 150),
    "searnn_w05": ({**SEARNN, "MLE_WEIGHT": "0.5"}, [], 150),
    "refout": (SEARNN, REFOUT, 450),
    "refout_full": (SEARNN, [*REFOUT, *FULL], 450),
    "learned_refout": (SEARNN, ["--rollin", "learned", *REFOUT], 200),
    "risk": ({"METHOD": "risk", "RISK_CANDIDATES": "beam"}, [], 80),
}
CONTROL = [("control", "the control")]
START = "start"
# files derived from a run's best checkpoint: removed when the run trains again
STALE = ("test-bleu.json", *(f"test-beam{b}.txt" for b in DECODES), "wall.json", "diagnose")


def arch_dir(args):
    return args.out / args.arch


def train_command(args, method, precision, patience=None):
    """``(train.sh environment, fairseq-train options)`` of a new run, the cap aside, that
    stops after ``patience`` validations without improvement (default ``--patience``; 0: no
    early stopping)."""
    patience = args.patience if patience is None else patience
    env, options, every = METHODS[method]
    env = {**COMMON, **ARCHS[args.arch], "LR": f"{args.lr:g}", **env}
    if method == "risk":
        env["RISK_SIZE"] = str(args.risk_size)
    precision_options = nmt_runs.precision_args(precision, searnn=env["METHOD"] == "searnn",
                                                risk=env["METHOD"] == "risk")
    options = [*nmt_runs.CLIP, "--valid-subset", "valid", "--validate-interval", "100000",
               "--validate-interval-updates", str(every), "--save-interval-updates",
               str(every), "--keep-interval-updates", "1", *options, *precision_options,
               *args.fairseq]
    return env, with_patience(options, patience)


def with_patience(options, patience):
    """fairseq-train ``options`` with their ``--patience`` (if any) replaced by ``patience``
    at the end (none when 0: no early stopping)."""
    at = [i for i, o in enumerate(options) if o == "--patience"]
    kept = [o for i, o in enumerate(options) if not any(i in (a, a + 1) for a in at)]
    return kept + (["--patience", str(patience)] if patience > 0 else [])


def searnn_criterion():
    """``searnn``'s criterion as fairseq options: the target report of every diagnosis."""
    return [*recipes.criterion_args("skl", "bleu-smooth-all", "reference", "mixed", alpha=200,
                                    tokens=5, sampling="topk-neighbors", cells=6,
                                    max_len=(1.5, 10)),
            "--searnn-neighbors", "2", "--searnn-reference", "best-suffix",
            "--searnn-reference-cost", "bleu1"]


def train(args, precision, name, method, seed, init, cap_minutes, patience):
    """Launch or continue the run ``OUT/ARCH/name`` from the weights ``init`` unless it is
    finished, stopping after ``patience`` validations without improvement (0: at the cap
    only); its directory. An attempt takes this ``patience`` and the other settings the run
    started with; a run that stopped on patience is finished unless ``patience`` is 0."""
    from fairseq_searnn.diagnose.cli import commit

    run = arch_dir(args) / name
    state = resumable.status(run, cap_minutes, early_stop=patience > 0)
    if state == "finished":
        return run
    env, options = train_command(args, method, precision, patience)
    saved = resumable.load(run)
    if saved:  # the stopping rule is this invocation's; the other settings the run's own
        resumable.save(run, {**saved, "options": with_patience(saved["options"], patience)})
    record = resumable.record_of(run, {"method": method, "seed": seed, "init": str(init),
                                       "precision": precision, "env": env, "options": options})
    print(f"{name}: {state}, training to {cap_minutes:g} minutes"
          + (f" (patience {patience})" if patience > 0 else " (no early stopping)"), flush=True)
    cmd = ["bash", HERE / "train.sh", "--finetune-from-model", record["init"],
           *record["options"], "--stop-time-hours", f"{cap_minutes / 60:.4f}"]
    resumable.launch(run, cmd, nmt_runs.train_env(args.prep, run, seed, **record["env"]),
                     cap_minutes, STALE, commit=commit(), precision=record["precision"],
                     patience=patience)
    return run


def start(args, precision):
    """The start of every fine-tune: the weights of the control continued from ``--start``
    until patience (trained here unless finished). None while it is not finished."""
    folder = arch_dir(args)
    folder.mkdir(parents=True, exist_ok=True)
    run = folder / START
    if not args.report_only:
        init = folder / "converged-weights.pt"
        if not init.exists():
            if not args.start:
                raise SystemExit("--start: the converged checkpoint to fine-tune is needed "
                                 f"until {run} has finished")
            replication.weights_only(args.start, init)
        train(args, precision, START, "control", args.seed, init, args.start_cap_minutes,
              args.start_patience)
    if resumable.status(run, 0) != "finished":
        return None
    weights = folder / "start-weights.pt"
    if not weights.exists():
        replication.weights_only(run / "checkpoint_best.pt", weights)
    return weights


def finished_runs(args):
    """Every fine-tune under OUT/ARCH whose last attempt ended, in :data:`METHODS` order."""
    runs = [r for r in arch_dir(args).glob("*-seed*") if resumable.load(r).get("attempts")
            and resumable.ended(resumable.last_attempt(r))]
    def key(run):
        record = resumable.load(run)
        return list(METHODS).index(record["method"]), record["seed"]
    return sorted(runs, key=key)


def diagnosis(args, checkpoint, out, own):
    """The diagnosis numbers of ``checkpoint`` on the validation set (target report of its own
    criterion when ``own``, else of ``searnn``'s)."""
    report = nmt_runs.diagnose(args.prep / "bin", checkpoint, out,
                               criterion_argv=() if own else searnn_criterion(),
                               criterion_from=checkpoint if own else None,
                               target_sentences=args.diagnose_sentences,
                               post_process=nmt_runs.post_process_of(args.prep))
    return nmt_table.diagnosis_row(report)


def read_row(args, run):
    row = nmt_table.run_row(run, args.prep, METRIC, DECODES)
    if not args.no_diagnose:
        own = METHODS[row["method"]][0]["METHOD"] == "searnn"
        row["diagnosis"] = diagnosis(args, run / "checkpoint_best.pt", run / "diagnose", own)
    return row


def label(row):
    return row["method"]


# the diagnosis table: (column, section of diagnose.json, key)
DIAGNOSIS = [("model p(reference action)", "targets", "model_prob_of_reference_action"),
             ("model p(candidates)", "targets", "model_prob_of_the_candidates"),
             ("teacher-forced model entropy (nats / token)", "teacher_forced", "entropy"),
             ("teacher-forced NLL (bits / token)", "teacher_forced", "nll_bits"),
             ("length ratio, greedy", "greedy", "length_ratio"),
             ("greedy BLEU (valid)", "greedy", "bleu")]
EQUAL_TIME = (15, 30, 60, 120)  # minutes of training


def equal_time_table(rows):
    """Markdown: each method's best validation BLEU reached within each of
    :data:`EQUAL_TIME` minutes of training (mean over seeds; from the curves)."""
    lines = ["Best validation BLEU within a training time (mean over seeds; '-': no "
             "validation by then):", "",
             "| run | s / update | " + " | ".join(f"{t} min" for t in EQUAL_TIME) + " |",
             "|" + "---|" * (len(EQUAL_TIME) + 2)]
    for name, group in nmt_table.groups_of(rows, label).items():
        cells = []
        for minutes in EQUAL_TIME:
            found = [nmt_table.best_within(r, minutes * 60) for r in group]
            found = [f[0] for f in found if f is not None]
            cells.append(f"{replication.mean_std(found)[0]:.2f}" if found else "-")
        speed = replication.mean_std(r["s_per_update"] for r in group)[0]
        lines.append(f"| {name} | {speed:.2f} | " + " | ".join(cells) + " |")
    return ["", *lines]


def start_row(args):
    """The start's row (scored once on test2016), or None while it has not finished."""
    run = arch_dir(args) / START
    if resumable.status(run, 0) != "finished":
        return None
    return nmt_table.run_row(run, args.prep, METRIC, DECODES)


def starts_table(args, start):
    """Markdown: the converged checkpoint and the start (its row ``start``) on test2016, each
    scored once."""
    folder = arch_dir(args)
    converged = nmt_runs.score_beams(args.prep, folder / "converged-weights.pt", "test",
                                     folder / "converged-test-bleu.json", DECODES)
    valid = nmt_runs.score_beams(args.prep, folder / "converged-weights.pt", "valid",
                                 folder / "converged-valid-bleu.json", (1,))
    return ["", "Starts on test2016 (the control continued from the converged checkpoint "
            "until patience; every fine-tune begins at the start):", "",
            "| checkpoint | test greedy | test beam 5 | best valid BLEU | updates | wall (min) "
            "| stop |", "|---|---|---|---|---|---|---|",
            f"| converged (--start) | {converged['beam1']['sacrebleu']:.2f} | "
            f"{converged['beam5']['sacrebleu']:.2f} | {valid['beam1']['sacrebleu']:.2f} | - "
            "| - | - |",
            f"| start (control until patience) | {start['test']['beam1']:.2f} | "
            f"{start['test']['beam5']:.2f} | {start['best_valid']:.2f} | "
            f"{start['updates']} | {start['train_wall_s'] / 60:.0f} | {start['stop']} |"]


def versus_start(args, rows, refs):
    """Markdown: each method's gain over the start on test2016, by paired bootstrap of each
    seed's output against the start's (``row["p"]["start"]``)."""
    def hypotheses(name):
        return lambda beam: read_lines(arch_dir(args) / name / f"test-beam{beam}.txt")

    for row in rows:
        row["p"]["start"] = nmt_table.paired(row, refs, hypotheses(START),
                                             hypotheses(row["name"]), DECODES)
    lines = []
    for name, group in nmt_table.groups_of(rows, label).items():
        lines += nmt_table.verdicts(name, group, [("start", "the start")], DECODES)
    return ["", "Gains over the start on test2016:", "", *lines]


def summarise(args):
    """Score, test, diagnose and tabulate every finished fine-tune under OUT/ARCH."""
    refs = read_lines(args.prep / "ref" / f"test.{prep_info(args.prep)['tgt']}")
    rows = nmt_table.significance(
        [read_row(args, run) for run in finished_runs(args)], CONTROL, lambda r: r["seed"],
        lambda r, beam: read_lines(arch_dir(args) / r["name"] / f"test-beam{beam}.txt"),
        lambda r: refs, DECODES)
    if not rows:
        print(f"no finished fine-tune under {arch_dir(args)}")
        return {"runs": []}
    lines = nmt_table.results_table(rows, label, CONTROL, DECODES)
    start = start_row(args)
    if start is not None:
        lines += starts_table(args, start) + versus_start(args, rows, refs)
    lines += equal_time_table(rows)
    groups = nmt_table.groups_of(rows, label)
    seeded = [r for r in rows if len(groups[label(r)]) > 1]
    lines += nmt_table.common_time_table(seeded, label, CONTROL[0][0])
    lines += nmt_table.diagnosis_table(
        rows, label, DIAGNOSIS, "Diagnosis of the best checkpoints on the validation set "
        "(mean over seeds; target report of a SeaRNN variant's own criterion, of searnn's for "
        "the others):")
    return nmt_table.write_summary(arch_dir(args), rows, lines, label,
                                   f"Multi30k de-en fine-tuning, {args.arch}")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--prep", required=True, type=Path, help="made by prepare_multi30k.py")
    p.add_argument("--start", type=Path, help="the converged checkpoint the start continues")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--arch", choices=list(ARCHS), default="lstm")
    p.add_argument("--methods", nargs="+", default=["control"], choices=list(METHODS))
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--seed", type=int, default=1, help="the start's seed")
    p.add_argument("--cap-minutes", type=float, default=60.0,
                   help="training time per fine-tune (fairseq's cumulative training time)")
    p.add_argument("--start-cap-minutes", type=float, default=120.0,
                   help="training time of the start")
    p.add_argument("--patience", type=int, default=6,
                   help="fine-tunes: validations without a better validation BLEU before "
                        "stopping (0: none, every fine-tune trains to --cap-minutes)")
    p.add_argument("--start-patience", type=int, default=6,
                   help="the start: validations without a better validation BLEU before "
                        "stopping")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam's step (constant)")
    p.add_argument("--risk-size", type=int, default=4, help="risk: beam candidates a source")
    p.add_argument("--precision", choices=nmt_runs.PRECISIONS, default="auto",
                   help="bfloat16: autocast training steps (and SeaRNN / risk decoding)")
    nmt_table.add_run_options(p)
    args = p.parse_args(argv)
    args.prep, args.out = args.prep.resolve(), args.out.resolve()
    if args.start is not None:
        if not args.start.is_file():
            p.error(f"--start {args.start}: no such checkpoint")
        args.start = args.start.resolve()
    if min(args.cap_minutes, args.start_cap_minutes, args.lr) <= 0:
        p.error("--cap-minutes, --start-cap-minutes and --lr must be > 0")
    if args.patience < 0:
        p.error("--patience must be >= 0 (0: no early stopping)")
    if any(o == "--patience" or o.startswith("--patience=") for o in args.fairseq):
        p.error("--patience after --: use the driver's --patience (or --start-patience)")
    if min(args.start_patience, args.jobs, args.risk_size) < 1:
        p.error("--start-patience, --jobs and --risk-size must be >= 1")
    return args


def main(argv=None):
    args = parse(argv)
    import torch

    torch.set_num_threads(1)  # scoring and diagnoses in this process
    ensure_split(args.prep, "test", args.test_raw)
    precision, why = nmt_runs.resolve_precision(args.precision)
    if not args.report_only:
        print(f"precision of new runs: {precision} ({why})", flush=True)
    weights = start(args, precision)
    if weights is None:
        print(f"{arch_dir(args) / START} has not finished: no fine-tune yet", flush=True)
        return {"runs": []}
    if not args.report_only:
        def job(method, seed):
            name = f"{method}-seed{seed}"
            try:
                return train(args, precision, name, method, seed, weights, args.cap_minutes,
                             args.patience)
            except RuntimeError as error:  # the other runs go on; this one is 'interrupted'
                print(f"{name} failed: {error}", flush=True)
                return None
        runs = replication.run_all(job, [(m, s) for m in args.methods for s in args.seeds],
                                   args.jobs)
        if args.train_only:
            return {"trained": [str(r) for r in runs if r is not None]}
    return summarise(args)


if __name__ == "__main__":
    main()
