"""The demo (:func:`run`) and the entry point of ``fairseq-searnn-demo`` (:func:`main`)."""

import sys
import time
from pathlib import Path
from typing import Dict

from fairseq_searnn.data import demo_corpus, spelling
from fairseq_searnn.demo.options import parse, searnn_args
from fairseq_searnn.demo.report import plot, table, verdict
from fairseq_searnn.demo.training import Run, quiet, schedule, train_to
from fairseq_searnn.recipes import criterion_args


def run(argv=None) -> Dict[str, Dict[str, float]]:
    """The demo; returns ``{run: {test_edit_error, ms_per_update, updates, seconds}}`` for the
    runs ``MLE pre-trained``, ``MLE fine-tuned``, ``SeaRNN fine-tuned``, and ``copy`` (its
    error only)."""
    args = parse(argv)
    import copy as copy_module

    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    out = Path(args.out)
    work = out / "work"
    out.mkdir(parents=True, exist_ok=True)
    if args.corpus:
        lines, source = spelling.read_lines(args.corpus), args.corpus
    else:
        lines = demo_corpus.stdlib_docstring_lines()
        source = f"Python {sys.version.split()[0]} standard-library documentation"
    if args.max_lines:
        lines = lines[: args.max_lines]
    stats = spelling.build(lines, work / "data", p=args.p, max_len=args.max_len,
                           copies=args.copies, seed=args.seed, n_valid=args.valid,
                           n_test=args.test)
    quiet()
    copy_error = 100 * stats.changed_rate["test"]
    print(f"corpus: {source}: {stats.corpus_lines} lines -> train {stats.sentences['train']} "
          f"x {args.copies} noisy copies (one per epoch, cycled), valid {args.valid}, "
          f"test {args.test}; T = {args.max_len} symbols (end marker included)")
    print(f"noise: p = {args.p}; characters actually changed: train "
          f"{100 * stats.train_changed_rate:.1f}%, test {copy_error:.1f}% (test edit error of "
          f"copying the input: {copy_error:.2f}%)")
    print(f"attention LSTM, 100 units, batch {args.batch_size}, {torch.get_num_threads()} "
          f"thread(s); budgets in updates, so the errors do not depend on the machine's speed")
    print(f"[1/3] MLE pre-training from scratch: {args.pretrain_updates} updates, Adam "
          f"{args.lr:g}", flush=True)
    pre = Run("MLE pre-trained", stats.data, criterion_args("mle"), args, args.lr)
    train_to(pre, schedule(args.pretrain_updates, args.evals))
    init = copy_module.deepcopy(pre.trainer.model.state_dict())
    print(f"[2/3] MLE fine-tuning: {args.mle_finetune_updates} more updates of cross-entropy, "
          f"Adam {args.finetune_lr:g}", flush=True)
    mle = Run("MLE fine-tuned", stats.data, criterion_args("mle"), args, args.finetune_lr, init)
    train_to(mle, schedule(args.mle_finetune_updates, args.evals))
    how = ("every token tried at every cell" if args.searnn_loss == "kl" else
           f"{args.tokens} {args.token_sampling} tokens per cell")
    print(f"[3/3] SeaRNN fine-tuning: {args.finetune_updates} updates of searnn_"
          f"{args.searnn_loss} (learned roll-in, mixed roll-out, edit cost, {how}), Adam "
          f"{args.finetune_lr:g}", flush=True)
    searnn = Run("SeaRNN fine-tuned", stats.data, searnn_args(args), args, args.finetune_lr,
                 init)
    train_to(searnn, schedule(args.finetune_updates, args.evals))

    print("\nheld-out test set, greedy decoding; edit error = total edit distance / total "
          "reference characters x 100")
    results = {"copy": {"test_edit_error": copy_error}}
    rows = [("model", "updates", "test edit error (%)", "time / update (ms)"),
            ("copy the input (no model)", "-", f"{copy_error:.2f}", "-")]
    for run, updates in ((pre, f"{pre.updates}"), (mle, f"{pre.updates} + {mle.updates}"),
                         (searnn, f"{pre.updates} + {searnn.updates}")):
        err = run.edit_error("test")
        per = 1000 * run.train_time / max(run.updates, 1)
        results[run.name] = {"test_edit_error": err, "ms_per_update": per,
                             "updates": run.updates, "seconds": run.train_time}
        rows.append((run.name, updates, f"{err:.2f}", f"{per:.0f}"))
    table(rows)
    print("\n" + verdict(copy_error, results["MLE pre-trained"]["test_edit_error"],
                         results["MLE fine-tuned"], results["SeaRNN fine-tuned"]))
    png = out / "spelling_demo.png"
    title = f"spelling (p={args.p}, T={args.max_len}): validation edit error, greedy"
    written = plot(pre, [mle, searnn], png, title, 100 * stats.changed_rate["valid"])
    print(f"\n{'plot: ' + str(png) + '   ' if written else ''}work files: {work}   "
          f"total wall time: {time.perf_counter() - t0:.0f} s")
    return results


def main(argv=None) -> None:
    """Entry point of ``fairseq-searnn-demo`` (returns None: the exit status is 0)."""
    run(argv)
