"""SeaRNN's NMT table from scratch on Multi30k de-en: the authors' protocol
(``scripts/training.sh`` of SeaRNN-open), against plain and label-smoothed MLE, scored on
test2016 with paired bootstrap resampling.

    python examples/nmt/from_scratch.py --prep data/multi30k --out runs/m30k-scratch \\
        [--methods mle mle_ls searnn searnn_refout dss searnn_mle searnn_full] [--seeds 1 2 3] \\
        [--dropout 0.3] [--source-reversal on] [--cap-minutes 240] [--patience 4] \\
        [--precision auto] [--jobs 2] [--report-only]

Runs (one directory ``OUT/METHOD-dDROPOUT-{rev,fwd}-seedS`` each), all from scratch with
the same model, data, validation and stopping rule: fairseq's ``lstm`` through ``train.sh``
(bidirectional 1-layer encoder of 256 units, decoder 256 with attention), batches of 64
sentences, Adam 1e-3 halved after every epoch whose validation BLEU does not improve
(``--lr-patience``) down to 1e-5, gradient norm clipped at 5;
validation BLEU (greedy, sacreBLEU, the whole valid split) every epoch (and every
``--validate-every`` updates as well) picks ``checkpoint_best.pt``; a run stops after ``--patience``
validations without improvement, once the step is down to 1e-5 (fairseq's scheduler has
no floor), at ``--cap-minutes`` of training or at 50,000 updates.

- ``mle`` (a): token cross-entropy, the paper's baseline;
- ``mle_ls`` (b): label-smoothed cross-entropy (0.1);
- ``searnn`` (c): ``searnn_skl`` as the authors' script: reference roll-in, mixed roll-out,
  alpha 200, sentence BLEU with their smoothing, best-suffix reference by BLEU-1, top-k
  tokens + the reference tokens within W positions over C cells a sentence (the paper: 15,
  5, 20; here ``--searnn-tokens``, ``--searnn-neighbors``, ``--searnn-cells``);
- ``searnn_refout`` (d): (c) with reference roll-outs;
- ``dss`` (e): differentiable scheduled sampling (``dss_lstm``): soft argmax feed, alpha 1
  growing x ``--dss-alpha-growth`` per update, gold-token probability k / (k + exp(i / k))
  with k = ``--dss-decay-k`` updates;
- ``searnn_mle`` (f): (c) mixed with ``--mle-weight`` x label-smoothed (0.1) cross-entropy;
- ``searnn_full`` (g): (c) without renormalisation (``--searnn-sampled-softmax full``: the
  candidates' log-probabilities from the full softmax, so the mass outside them is pushed down).

Every invocation trains the runs of ``--methods`` x ``--dropout`` x ``--seeds`` that are not
finished (``--jobs`` at a time, one thread each): a run killed part-way continues from its
``checkpoint_last.pt``, a run stopped at a lower cap continues to ``--cap-minutes``, a finished
run is left alone, with the settings it started with. Then every finished run under OUT is
scored once on test2016 (``checkpoint_best.pt``, greedy and beam 5, sacreBLEU on detokenised
output) and diagnosed once on the validation set (``fairseq-searnn-diagnose``, with the
target report of (c)'s criterion), and OUT gets ``summary.md``, ``summary.json``,
``curves.png`` and ``curves-updates.png``. ``--report-only`` trains nothing, ``--train-only``
only trains. ``--keep-rows OLD/summary.json`` keeps the rows of an earlier report whose runs
are no longer under OUT, as recorded. Options after ``--`` go to every new run's
fairseq-train.
"""

import argparse
from pathlib import Path

from fairseq_searnn import recipes
from fairseq_searnn.data.nmt_prepare import ensure_split, prep_info, read_lines, reversed_source
from fairseq_searnn.recipes import nmt_runs, nmt_table, replication, resumable

HERE = Path(__file__).resolve().parent
# the table's runs and their letters (a)-(g)
METHODS = {"mle": "a", "mle_ls": "b", "searnn": "c", "searnn_refout": "d", "dss": "e",
           "searnn_mle": "f", "searnn_full": "g"}
SEARNN = ("searnn", "searnn_refout", "searnn_mle", "searnn_full")
BASELINES = [("mle", "(a) mle"), ("mle_ls", "(b) mle_ls")]
DECODES = (1, 5)
METRIC = "searnn_bleu"  # the validation BLEU the task logs
# train.sh settings of every run: the authors' Adam 1e-3 halved on a plateau, 50k updates
COMMON = {"ARCH": "lstm", "LR": "1e-3", "LR_SCHEDULE": "plateau", "MAX_UPDATE": "50000"}
# files derived from a run's best checkpoint: removed when the run trains again
STALE = ("test-bleu.json", *(f"test-beam{b}.txt" for b in DECODES), "wall.json", "diagnose")


def run_name(method, dropout, reversal, seed):
    return f"{method}-d{dropout:g}-{'rev' if reversal else 'fwd'}-seed{seed}"


def method_settings(args, method):
    """``(train.sh environment, extra fairseq-train options)`` of a method."""
    searnn = {"METHOD": "searnn", "CELLS": str(args.searnn_cells),
              "TOKENS": str(args.searnn_tokens), "NEIGHBORS": str(args.searnn_neighbors)}
    return {
        "mle": ({"METHOD": "mle"}, []),
        "mle_ls": ({"METHOD": "mle", "LABEL_SMOOTHING": "0.1"}, []),
        "searnn": (searnn, []),
        "searnn_refout": (searnn, ["--rollout", "reference"]),
        "dss": ({"METHOD": "dss", "FEED": "soft-greedy", "SS_ALPHA": "1",
                 "DECAY_K": str(args.dss_decay_k)},
                ["--ss-alpha-growth", str(args.dss_alpha_growth)]),
        "searnn_mle": ({**searnn, "MLE_WEIGHT": str(args.mle_weight),
                        "LABEL_SMOOTHING": "0.1"}, []),
        "searnn_full": (searnn, ["--searnn-sampled-softmax", "full"]),
    }[method]


def protocol_options(args):
    """fairseq-train options every run shares (but the cap): validation, stopping, step."""
    argv = [*nmt_runs.CLIP, "--lr-patience", str(args.lr_patience), "--stop-min-lr", "1e-5",
            "--patience", str(args.patience), "--validate-interval", "1"]
    if args.validate_every:
        every = str(args.validate_every)
        argv += ["--validate-interval-updates", every, "--save-interval-updates", every,
                 "--keep-interval-updates", "1"]
    return argv


def train_command(args, method, dropout, precision):
    """``(train.sh environment, fairseq-train options)`` of a new run, the cap aside."""
    env, options = method_settings(args, method)
    options = [*protocol_options(args), *options,
               *nmt_runs.precision_args(precision, method in SEARNN), *args.fairseq]
    return {**COMMON, "DROPOUT": f"{dropout:g}", **env}, options


def searnn_criterion(args):
    """(c)'s criterion as fairseq options (what ``train.sh METHOD=searnn`` passes): the
    target report of every diagnosis."""
    return [*recipes.criterion_args("skl", "bleu-smooth-all", "reference", "mixed", alpha=200,
                                    tokens=args.searnn_tokens, sampling="topk-neighbors",
                                    cells=args.searnn_cells, max_len=(1.5, 10)),
            "--searnn-neighbors", str(args.searnn_neighbors), "--searnn-reference",
            "best-suffix", "--searnn-reference-cost", "bleu1"]


def train(args, data, precision, method, dropout, seed):
    """Launch or continue one run unless it is finished; its directory."""
    from fairseq_searnn.diagnose.cli import commit

    run = args.out / run_name(method, dropout, args.source_reversal == "on", seed)
    state = resumable.status(run, args.cap_minutes)
    if state == "finished":
        return run
    env, options = train_command(args, method, dropout, precision)
    record = resumable.record_of(run, {
        "method": method, "dropout": dropout, "seed": seed,
        "source_reversal": args.source_reversal == "on",
        "data": str(data.relative_to(args.out) if args.out in data.parents else data),
        "precision": precision, "env": env, "options": options})
    print(f"{run.name}: {state}, training to {args.cap_minutes:g} minutes", flush=True)
    cmd = ["bash", HERE / "train.sh", *record["options"],
           "--stop-time-hours", f"{args.cap_minutes / 60:.4f}"]
    resumable.launch(run, cmd, nmt_runs.train_env(run_data(args, record), run, seed,
                                                  **record["env"]),
                     args.cap_minutes, STALE, commit=commit(), precision=record["precision"])
    return run


def run_data(args, record):
    """The prepared directory a run reads (stored relative to OUT when inside it)."""
    return args.out / record["data"]


def finished_runs(out):
    """Every run under ``out`` whose last attempt ended, in table order."""
    runs = [r for r in Path(out).glob("*-seed*") if resumable.load(r).get("attempts")
            and resumable.ended(resumable.last_attempt(r))]

    return sorted(runs, key=lambda run: table_order(resumable.load(run)))


def read_record(args, run):
    """A finished run's row (:func:`~fairseq_searnn.recipes.nmt_table.run_row`, with its
    dropout and source order) and, unless ``--no-diagnose``, its diagnosis, computed once."""
    rec = resumable.load(run)
    data = run_data(args, rec)
    row = nmt_table.run_row(run, data, METRIC, DECODES)
    row.update(dropout=rec["dropout"], source_reversal=rec["source_reversal"])
    if not args.no_diagnose:
        own = rec["method"] in SEARNN
        report = nmt_runs.diagnose(
            data / "bin", run / "checkpoint_best.pt", run / "diagnose",
            criterion_argv=() if own else searnn_criterion(args),
            criterion_from=run / "checkpoint_best.pt" if own else None,
            target_sentences=args.diagnose_sentences,
            post_process=nmt_runs.post_process_of(data))
        row["diagnosis"] = nmt_table.diagnosis_row(report)
    return row


def significance(args, rows):
    """``row["p"][baseline]["beamB"]``: the paired-bootstrap test (p-value, BLEU difference) of
    each run's test2016 output against the same seed's (a) and (b) at its dropout and source
    order."""
    def references(row):
        data = run_data(args, resumable.load(args.out / row["name"]))
        return read_lines(data / "ref" / f"test.{prep_info(data)['tgt']}")

    return nmt_table.significance(
        rows, BASELINES, peer,
        lambda r, beam: read_lines(args.out / r["name"] / f"test-beam{beam}.txt"),
        references, DECODES)


def peer(row):
    """What a row shares with the baselines it is tested against."""
    return (row["dropout"], row["source_reversal"], row["seed"])


def group_label(row):
    return (f"({METHODS[row['method']]}) {row['method']}, dropout {row['dropout']:g}, "
            f"{'reversed' if row['source_reversal'] else 'forward'} source")


# the diagnosis table: (label, section of diagnose.json, key)
DIAGNOSIS = [("teacher-forced NLL (bits / token)", "teacher_forced", "nll_bits"),
             ("teacher-forced model entropy (nats / token)", "teacher_forced", "entropy"),
             ("model p(reference action)", "targets", "model_prob_of_reference_action"),
             ("length ratio, greedy", "greedy", "length_ratio"),
             ("error right after the first error, teacher-forced", "teacher_forced",
              "error_next_after_first_error"),
             ("error right after the first error, greedy", "greedy",
              "error_next_after_first_error"),
             ("compounding, greedy", "greedy", "compounding")]


def table_order(row):
    return (list(METHODS).index(row["method"]), -row["dropout"], not row["source_reversal"],
            row["seed"])


def summarise(args):
    """Score, diagnose and tabulate every finished run under OUT (and the rows that
    ``--keep-rows`` keeps)."""
    rows = significance(args, [read_record(args, run) for run in finished_runs(args.out)])
    if args.keep_rows is not None:
        rows = sorted(rows + nmt_table.kept_rows(args.keep_rows, rows, peer), key=table_order)
    if not rows:
        print(f"no finished run under {args.out}")
        return {"runs": []}
    lines = nmt_table.results_table(rows, group_label, BASELINES, DECODES)
    lines += nmt_table.diagnosis_table(
        rows, group_label, DIAGNOSIS, "Diagnosis of the best checkpoints on the validation "
        "set (mean over seeds; target report of (c)'s criterion):")
    return nmt_table.write_summary(args.out, rows, lines, group_label,
                                   "Multi30k de-en from scratch, LSTM 256")


def data_dir(args):
    """The prepared directory the runs read: ``--prep``, or its source-reversed copy
    ``OUT/data-reversed`` (:func:`~fairseq_searnn.data.nmt_prepare.reversed_source`)."""
    if args.source_reversal == "off":
        return args.prep
    return reversed_source(args.prep, args.out / "data-reversed")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--prep", required=True, type=Path, help="made by prepare_multi30k.py")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--dropout", type=float, nargs="+", default=[0.3])
    p.add_argument("--source-reversal", choices=("on", "off"), default="on",
                   help="reverse the source sentences (the authors' --revert_input_sequence)")
    p.add_argument("--cap-minutes", type=float, default=240.0,
                   help="training time per run (fairseq's cumulative training time)")
    p.add_argument("--patience", type=int, default=4,
                   help="validations without a better validation BLEU before stopping")
    p.add_argument("--lr-patience", type=int, default=0,
                   help="epochs without a better validation BLEU before halving the step")
    p.add_argument("--validate-every", type=int, default=0,
                   help="validate every N updates as well as after every epoch (0: epochs)")
    p.add_argument("--precision", choices=nmt_runs.PRECISIONS, default="auto",
                   help="bfloat16: autocast training steps (and SeaRNN decoding)")
    p.add_argument("--searnn-cells", type=int, default=6, help="(c), (d), (f), (g): cells")
    p.add_argument("--searnn-tokens", type=int, default=5, help="(c), (d), (f), (g): top-k tokens")
    p.add_argument("--searnn-neighbors", type=int, default=2,
                   help="(c), (d), (f), (g): reference tokens within W positions")
    p.add_argument("--mle-weight", type=float, default=0.3, help="(f): token-loss weight")
    p.add_argument("--dss-decay-k", type=int, default=600,
                   help="(e): gold-token probability k / (k + exp(i / k))")
    p.add_argument("--dss-alpha-growth", type=float, default=1.001,
                   help="(e): soft-argmax alpha multiplied by this per update")
    p.add_argument("--keep-rows", type=Path,
                   help="an earlier summary.json: its rows of runs no longer under OUT stay in "
                   "the table as recorded (a run under OUT replaces its row; a kept row is no "
                   "baseline of a new row's paired test, its outputs being gone, and loses its "
                   "p-values against a baseline run that is under OUT again)")
    nmt_table.add_run_options(p)
    args = p.parse_args(argv)
    args.prep, args.out = args.prep.resolve(), args.out.resolve()
    if args.cap_minutes <= 0 or args.patience < 1 or args.jobs < 1:
        p.error("--cap-minutes must be > 0, --patience and --jobs >= 1")
    if any(d < 0 or d >= 1 for d in args.dropout):
        p.error("--dropout: values in [0, 1)")
    if args.keep_rows is not None:
        if args.train_only:
            p.error("--keep-rows: an option of the table, not of --train-only")
        try:  # reads every row's method, dropout, source order and seed
            kept = nmt_table.kept_rows(args.keep_rows, [], peer)
        except ValueError as error:
            p.error(f"--keep-rows: {error}")
        unknown = sorted({row["method"] for row in kept} - set(METHODS))
        if unknown:
            p.error(f"--keep-rows: methods {', '.join(unknown)} are not this table's")
    return args


def main(argv=None):
    args = parse(argv)
    import torch

    torch.set_num_threads(1)  # scoring and diagnoses in this process
    args.out.mkdir(parents=True, exist_ok=True)
    ensure_split(args.prep, "test", args.test_raw)
    if not args.report_only:
        precision, why = nmt_runs.resolve_precision(args.precision)
        print(f"precision of new runs: {precision} ({why})", flush=True)
        data = data_dir(args)
        jobs = [(m, d, s) for m in args.methods for d in args.dropout for s in args.seeds]

        def job(method, dropout, seed):
            try:
                return train(args, data, precision, method, dropout, seed)
            except RuntimeError as error:  # the other runs go on; this one is 'interrupted'
                print(f"{run_name(method, dropout, args.source_reversal == 'on', seed)} "
                      f"failed: {error}", flush=True)
                return None
        runs = replication.run_all(job, jobs, args.jobs)
        if args.train_only:
            return {"trained": [str(r) for r in runs if r is not None]}
    return summarise(args)


if __name__ == "__main__":
    main()
