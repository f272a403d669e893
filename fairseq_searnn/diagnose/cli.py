"""``fairseq-searnn-diagnose``: exposure bias and output pathologies of checkpoints.

    fairseq-searnn-diagnose DATA-BIN --path CKPT [--path CKPT2 ...] [--gen-subset valid]
        [--cost bleu|edit|hamming] [--beam 5] [--post-process sentencepiece] [--out DIR]
        [--criterion searnn_skl --searnn-tokens 5 ...]   # optional: the SeaRNN target report

Loads every checkpoint with fairseq's ``load_model_ensemble_and_task`` (``--data`` replaced by
DATA-BIN), runs teacher forcing, greedy and beam decoding over the split batch by batch on the
model's device, prints a Markdown table (a column per checkpoint) and, with ``--out``, writes
``diagnose.json``, ``error_by_position.png`` and ``compounding.png``. Options after
``--criterion`` that this parser does not know are fairseq-train criterion options.
"""

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import torch

from fairseq_searnn import costs

from . import plots, report, targets, text
from .evaluate import Diagnosis, Options

logger = logging.getLogger("fairseq_searnn.diagnose")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fairseq-searnn-diagnose", allow_abbrev=False,
        description="Teacher-forced vs free-running errors, error compounding, output "
                    "pathologies and the SeaRNN target report of fairseq checkpoints.",
        epilog="Any option not listed here after --criterion NAME is passed to that "
               "criterion, as fairseq-train takes it (e.g. --searnn-tokens 5 --rollin learned).")
    p.add_argument("data", help="binarised data directory (fairseq-preprocess)")
    p.add_argument("--path", action="append", required=True,
                   help="checkpoint (repeat for a side-by-side comparison)")
    p.add_argument("--gen-subset", default="valid", help="split to diagnose (default: valid)")
    p.add_argument("--source-lang", help="override the checkpoint's source language")
    p.add_argument("--target-lang", help="override the checkpoint's target language")
    p.add_argument("--cost", default="bleu", choices=costs.available(),
                   help="test cost of the hypotheses (fairseq_searnn.costs; default: bleu)")
    p.add_argument("--beam", type=int, default=5, help="beam size; 0: no beam decoding")
    p.add_argument("--max-len-a", type=float, default=0.0,
                   help="hypotheses hold at most int(a * src_len + b) tokens (default 0)")
    p.add_argument("--max-len-b", type=int, default=200, help="see --max-len-a (default 200)")
    p.add_argument("--post-process", default=None,
                   help="as fairseq-generate's (e.g. sentencepiece, subword_nmt): applied to "
                        "hypotheses and references before BLEU")
    p.add_argument("--batch-size", type=int, default=64, help="sentences per batch")
    p.add_argument("--max-tokens", type=int, default=None, help="tokens per batch")
    p.add_argument("--repeat-orders", type=int, nargs="+", default=[1, 2, 3, 4],
                   help="n-gram orders of the repeat rates (default 1 2 3 4)")
    p.add_argument("--criterion", default=None,
                   help="a SeaRNN criterion: report its loss target on the split's cells")
    p.add_argument("--criterion-from", default=None, metavar="CHECKPOINT",
                   help="report the loss target of the SeaRNN criterion CHECKPOINT was trained "
                   "with (its saved options), for every --path")
    p.add_argument("--target-sentences", type=int, default=512,
                   help="sentences (whole batches) for the target report; 0: all (default 512)")
    p.add_argument("--seed", type=int, default=1, help="keys the criterion's random draws")
    p.add_argument("--out", type=Path, default=None, help="directory for the JSON and plots")
    p.add_argument("--cpu", action="store_true", help="stay on the CPU even with a GPU")
    p.add_argument("--no-progress-bar", action="store_true")
    return p


def parse(argv: Optional[List[str]] = None):
    """``(args, criterion_argv)``: unknown options go to the criterion (``--criterion`` needed)."""
    p = parser()
    args, rest = p.parse_known_args(argv)
    if rest and args.criterion is None:
        p.error(f"unrecognized arguments: {' '.join(rest)} (criterion options need "
                f"--criterion)")
    if args.criterion and args.criterion_from:
        p.error("--criterion and --criterion-from exclude each other")
    if args.beam < 0 or args.batch_size < 1:
        p.error("--beam must be >= 0 and --batch-size >= 1")
    try:
        text.check_post_process(args.post_process)
    except ValueError as e:
        p.error(str(e))
    crit_argv = ["--criterion", args.criterion, *rest] if args.criterion else []
    return args, crit_argv


def load(path: str, args):
    """``(model, task, arch)`` of checkpoint ``path`` with ``data`` (and languages) replaced."""
    from fairseq import checkpoint_utils

    overrides = {"data": str(args.data)}
    for key in ("source_lang", "target_lang"):
        if getattr(args, key):
            overrides[key] = getattr(args, key)
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(path)], arg_overrides=overrides)
    arch = getattr(cfg.model, "_name", None) or getattr(cfg.model, "arch", None)
    return models[0].eval(), task, arch


def batches(task, model, args):
    """The split's batches (none dropped), behind a progress bar when stderr is a terminal."""
    from fairseq import utils
    from fairseq.logging import progress_bar

    task.load_dataset(args.gen_subset)
    itr = task.get_batch_iterator(
        dataset=task.dataset(args.gen_subset), max_tokens=args.max_tokens,
        max_sentences=args.batch_size,
        max_positions=utils.resolve_max_positions(task.max_positions(), model.max_positions()),
        ignore_invalid_inputs=True, required_batch_size_multiple=1, seed=args.seed,
    ).next_epoch_itr(shuffle=False)
    tty = sys.stderr.isatty() and not args.no_progress_bar
    return progress_bar.progress_bar(itr, log_format="tqdm" if tty else "none",
                                     prefix=f"diagnose {args.gen_subset}")


def names_of(paths: List[str]) -> List[str]:
    """Column names: ``parent/file`` of each checkpoint, full paths where those collide."""
    short = [f"{Path(p).parent.name}/{Path(p).name}" for p in paths]
    return short if len(set(short)) == len(short) else [str(p) for p in paths]


def commit() -> Optional[str]:
    """The package's git commit (``+modified`` with uncommitted changes), None outside git."""
    here = str(Path(__file__).resolve().parent)
    try:
        head = subprocess.run(["git", "-C", here, "log", "-1", "--format=%h"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+modified" if dirty else "")) or None


def diagnose_checkpoint(path: str, args, crit_argv: List[str], opts: Options) -> dict:
    """The report of one checkpoint (:meth:`Diagnosis.result`) plus its path and arch."""
    from fairseq import utils

    model, task, arch = load(path, args)
    cuda = torch.cuda.is_available() and not args.cpu
    if cuda:
        model.cuda()
    criterion = None
    if crit_argv:
        criterion = targets.build_criterion(task, str(args.data), crit_argv)
    elif args.criterion_from:
        criterion = targets.criterion_from_checkpoint(task, args.criterion_from)
    torch.manual_seed(args.seed)  # the criterion keys its draws by torch.initial_seed()
    diag = Diagnosis(model, task, opts, criterion)
    for sample in batches(task, model, args):
        if sample and sample.get("target") is not None:
            diag.add(utils.move_to_cuda(sample) if cuda else sample)
    seen, total = int(diag.sums["reference"].get("sentences")), len(task.dataset(args.gen_subset))
    if not seen:
        raise ValueError(f"no sentence with a target in split {args.gen_subset!r} of {args.data}")
    if seen < total:
        logger.warning(f"{total - seen} of the {total} sentences of {args.gen_subset!r} are "
                       f"longer than the model's positions allow and were skipped")
    return {"path": str(path), "arch": arch, **diag.result()}


def main(argv: Optional[List[str]] = None) -> None:
    """The console script (``fairseq-searnn-diagnose``): :func:`run`, exit status 0."""
    run(argv)


def run(argv: Optional[List[str]] = None) -> dict:
    """Run the command; returns what ``diagnose.json`` holds."""
    args, crit_argv = parse(argv)
    import fairseq_searnn  # noqa: F401  (registers the plugin's models, tasks, criterions)

    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s")
    # as fairseq-generate: INFO unless LOGLEVEL says otherwise (importing fairseq leaves the
    # root logger at DEBUG, which floods stderr with matplotlib's font search)
    logging.getLogger().setLevel(os.environ.get("LOGLEVEL", "INFO").upper())
    opts = Options(cost=args.cost, beam=args.beam, max_len_a=args.max_len_a,
                   max_len_b=args.max_len_b, post_process=args.post_process,
                   orders=tuple(args.repeat_orders), target_sentences=args.target_sentences)
    names = names_of(args.path)
    reports = []
    for name, path in zip(names, args.path):
        logger.info(f"diagnosing {path}")
        reports.append({"name": name, **diagnose_checkpoint(path, args, crit_argv, opts)})
    rows = report.rows(args.cost, args.beam, opts.orders,
                       bool(crit_argv or args.criterion_from))
    print(report.table(names, reports, rows, title=args.gen_subset))
    argv_list = sys.argv[1:] if argv is None else list(argv)
    result = {"command": "fairseq-searnn-diagnose " + " ".join(map(shlex.quote, argv_list)),
              "commit": commit(), "data": str(args.data), "subset": args.gen_subset,
              "options": {**vars(opts), "orders": list(opts.orders),
                          "criterion": " ".join(crit_argv) or None,
                          "criterion_from": args.criterion_from},
              "checkpoints": reports}
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "diagnose.json").write_text(json.dumps(result, indent=1) + "\n")
        files = plots.write(args.out, names, reports)
        logger.info(f"wrote {args.out / 'diagnose.json'} and {', '.join(map(str, files))}")
    return result


if __name__ == "__main__":
    main()
