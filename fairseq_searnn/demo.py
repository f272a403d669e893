"""``fairseq-searnn-demo``: fine-tuning one pre-trained spelling corrector two ways, MLE and
SeaRNN, on CPU, in a few minutes.

1. Builds the spelling task (:mod:`fairseq_searnn.data.spelling`) from the documentation that
   ships with Python's standard library (``pydoc_data`` topics and module docstrings; offline,
   deterministic for a Python version) or from ``--corpus FILE``.
2. Pre-trains an attention LSTM with MLE (``cross_entropy``) from scratch for
   ``--pretrain-updates`` updates: a model clearly better than copying the input.
3. Fine-tunes that model, from the same weights and with a fresh optimiser at
   ``--finetune-lr``: with more MLE for ``--mle-finetune-updates`` updates, and with SeaRNN
   (``searnn_skl``: learned roll-in, mixed roll-out, edit cost, 5 tokens per cell drawn with
   the biased policy) for ``--finetune-updates``. A SeaRNN update costs about five MLE
   updates, so the defaults (1,500 against 300) give both about the same time: the comparison
   that matters, what SeaRNN adds to a trained model for the same compute.
4. Every model decodes the held-out validation set greedily during training (the curves) and
   the test set at the end; the edit error is exact: total Levenshtein distance / total
   reference characters x 100. Prints a table and a verdict, writes ``spelling_demo.png``
   into ``--out``. Budgets are update counts, so the numbers do not depend on the machine's
   speed or load (only the times do).
"""

import argparse
import contextlib
import io
import logging
import math
import sys
import time
import warnings
from argparse import Namespace
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from fairseq_searnn.cli import user_dir
from fairseq_searnn.data import demo_corpus, spelling
from fairseq_searnn.recipes import criterion_args, train_config

MODEL = [  # the paper's spelling model size: 100 units, attention, bidirectional encoder
    "--arch", "lstm", "--encoder-bidirectional",
    "--encoder-embed-dim", "100", "--encoder-hidden-size", "100",
    "--decoder-embed-dim", "100", "--decoder-hidden-size", "100",
    "--decoder-out-embed-dim", "100", "--dropout", "0",
]


def searnn_args(args) -> List[str]:
    """The SeaRNN fine-tune's criterion: the paper's spelling setting (learned roll-in, mixed
    roll-out, edit cost; ``--searnn-loss kl`` tries every token at every cell, ``skl``
    ``--tokens`` sampled ones), roll-outs up to the source length + 2 symbols."""
    return criterion_args(args.searnn_loss, "edit", tokens=args.tokens,
                          sampling=args.token_sampling, alpha=args.alpha, max_len=(1, 2))


def _quiet():
    """fairseq logs at INFO on stdout once ``fairseq_cli`` is imported: keep the demo's own
    output readable."""
    for name in ("", "fairseq", "fairseq_cli", "fairseq_searnn", "matplotlib", "hydra"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


class Run:
    """One training run with fairseq's Trainer, evaluated by exact greedy edit error."""

    def __init__(self, name: str, data: str, criterion_args: Sequence[str], args, lr: float,
                 init: Optional[dict] = None):
        import numpy as np
        from fairseq import tasks, utils
        from fairseq.trainer import Trainer

        self.name = name
        argv = [
            data, "--user-dir", user_dir(), "--task", "translation",
            "--source-lang", spelling.SRC, "--target-lang", spelling.TGT, *MODEL,
            *criterion_args, "--optimizer", "adam", "--lr", str(lr), "--clip-norm", "5",
            "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--cpu",
            "--num-workers", "0", "--no-progress-bar",
        ]
        with contextlib.redirect_stderr(io.StringIO()):
            cfg = train_config(argv)
        utils.import_user_module(cfg.common)
        _quiet()
        np.random.seed(cfg.common.seed)
        utils.set_torch_seed(cfg.common.seed)
        self.task = tasks.setup_task(cfg.task)
        for split in ("valid", "test"):
            self.task.load_dataset(split)
        model = self.task.build_model(cfg.model)
        if init is not None:
            model.load_state_dict(init)
        criterion = self.task.build_criterion(cfg.criterion)
        self.trainer = Trainer(cfg, self.task, model, criterion)
        self.epoch_itr = self.trainer.get_train_iterator(epoch=1)
        self.trainer.begin_epoch(self.epoch_itr.epoch)
        self.itr = self.epoch_itr.next_epoch_itr(shuffle=True)
        self.generator = self.task.build_generator(
            [model], Namespace(beam=1, max_len_a=1.0, max_len_b=5))
        self.train_time = 0.0
        self.curve: Dict[int, float] = {}
        self.seconds: Dict[int, float] = {}  # training time at each evaluated update
        self.last_loss = math.nan

    @property
    def updates(self) -> int:
        return self.trainer.get_num_updates()

    def step(self) -> None:
        """One update (loads the next epoch's noisy copy when an epoch ends)."""
        if not self.itr.has_next():
            self.epoch_itr = self.trainer.get_train_iterator(
                self.epoch_itr.next_epoch_idx, load_dataset=self.task.has_sharded_data("train"))
            self.trainer.begin_epoch(self.epoch_itr.epoch)
            self.itr = self.epoch_itr.next_epoch_itr(shuffle=True)
        sample = next(self.itr)
        start = time.perf_counter()
        log = self.trainer.train_step([sample])
        self.train_time += time.perf_counter() - start
        if log is not None and "loss" in log:
            self.last_loss = float(log["loss"])

    def edit_error(self, split: str) -> float:
        """Exact corpus edit error (%) of greedy decoding on ``split``."""
        import torch
        from fairseq import utils

        model = self.trainer.model
        model.eval()
        tgt = self.task.target_dictionary
        hyps, refs = [], []
        itr = self.task.get_batch_iterator(
            dataset=self.task.dataset(split), max_sentences=500, seed=1,
        ).next_epoch_itr(shuffle=False)
        with torch.no_grad():
            for sample in itr:
                out = self.task.inference_step(self.generator, [model], sample)
                for i, hypos in enumerate(out):
                    hyps.append(spelling.from_symbols(tgt.string(hypos[0]["tokens"])))
                    ref = utils.strip_pad(sample["target"][i], tgt.pad())
                    refs.append(spelling.from_symbols(tgt.string(ref)))
        model.train()
        if len(refs) != len(self.task.dataset(split)):
            raise RuntimeError(f"decoded {len(refs)} of {len(self.task.dataset(split))} {split} "
                               "sentences")
        return spelling.edit_error(hyps, refs)

    def evaluate(self) -> float:
        self.seconds[self.updates] = self.train_time
        self.curve[self.updates] = err = self.edit_error("valid")
        return err


def _progress(run: Run, err: float, wall: float) -> None:
    per = 1000 * run.train_time / max(run.updates, 1)
    loss = f"{run.last_loss:6.3f}" if run.updates else "     -"  # no update trained yet
    print(f"  {run.name:<6} update {run.updates:>5}  loss {loss}  "
          f"valid edit error {err:6.2f}%  ({per:.0f} ms/update, {wall:.0f} s)", flush=True)


def schedule(updates: int, evals: int) -> List[int]:
    """``evals`` evaluation points spread over ``updates`` (the last one at ``updates``)."""
    return sorted({max(1, round(updates * k / evals)) for k in range(1, evals + 1)})


def train_to(run: Run, points: Sequence[int]) -> None:
    """Train ``run`` to the last update of ``points``, evaluating at start and at each."""
    start = time.perf_counter()
    _progress(run, run.evaluate(), 0.0)
    for target in points:
        while run.updates < target:
            run.step()
        _progress(run, run.evaluate(), time.perf_counter() - start)


def plot(pre: Run, tunes: Sequence[Run], path: Path, title: str, baseline: float) -> bool:
    """Validation curves to ``path``: pre-training against updates (left), the fine-tunes
    against their training time (right); False (and a message) without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed (pip install matplotlib): no plot written")
        return False

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    xs = sorted(pre.curve)
    left.plot(xs, [pre.curve[x] for x in xs], marker="o", color="C0", label=pre.name)
    left.set_xlabel("updates")
    # the first, untrained points would flatten the rest
    left.set_ylim(0, max(2 * baseline, 1.2 * min(pre.curve.values())))
    for run, marker, color in zip(tunes, "^s", ("C1", "C2")):
        xs = sorted(run.curve)
        right.plot([run.seconds[x] for x in xs], [run.curve[x] for x in xs], marker=marker,
                   color=color, label=f"{run.name} ({run.updates} updates)")
    right.set_xlabel("fine-tuning time (s)")
    for ax in (left, right):
        ax.axhline(baseline, ls="--", color="gray", label="copy the input")
        ax.set_ylabel("validation edit error (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def parse(argv=None):
    p = argparse.ArgumentParser(prog="fairseq-searnn-demo", description=__doc__.split("\n")[0])
    p.add_argument("--corpus", help="English text file (default: Python's own documentation)")
    p.add_argument("--out", default="fairseq-searnn-demo",
                   help="output folder: the plot, and the data under work/")
    p.add_argument("--pretrain-updates", type=int, default=2500,
                   help="MLE updates from scratch (Adam --lr)")
    p.add_argument("--finetune-updates", type=int, default=300,
                   help="SeaRNN fine-tuning updates from the pre-trained model")
    p.add_argument("--mle-finetune-updates", type=int, default=1500,
                   help="MLE fine-tuning updates from the pre-trained model (default: about "
                   "the time of the SeaRNN fine-tune)")
    p.add_argument("--quick", action="store_true",
                   help="a ~30 s smoke run: 2000 lines, 2 noisy copies, 40 + 8 / 4 updates")
    p.add_argument("--p", type=float, default=0.3, help="substitution noise probability")
    p.add_argument("--max-len", type=int, default=10, help="T, end marker included")
    p.add_argument("--copies", type=int, default=4, help="noisy copies of the training set")
    p.add_argument("--valid", type=int, default=500)
    p.add_argument("--test", type=int, default=1000)
    p.add_argument("--max-lines", type=int, default=0, help="use only N corpus lines")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3, help="pre-training Adam step")
    p.add_argument("--finetune-lr", type=float, default=3e-4,
                   help="fine-tuning Adam step (both fine-tunes, fresh optimiser state)")
    p.add_argument("--searnn-loss", choices=["kl", "skl"], default="skl",
                   help="kl: every token at every cell; skl: --tokens sampled ones")
    p.add_argument("--tokens", type=int, default=5, help="skl: tokens per cell (K)")
    p.add_argument("--token-sampling", default="biased", help="skl: how tokens are drawn")
    p.add_argument("--alpha", type=float, default=None,
                   help="KL target softmax(-alpha * cost) (default: the criterion's, 50 for "
                   "the edit cost)")
    p.add_argument("--evals", type=int, default=6, help="validation points per curve")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    args = p.parse_args(argv)
    if args.quick:
        args.pretrain_updates = min(args.pretrain_updates, 40)
        args.finetune_updates = min(args.finetune_updates, 4)
        args.mle_finetune_updates = min(args.mle_finetune_updates, 8)
        args.copies = min(args.copies, 2)
        args.valid, args.test = min(args.valid, 200), min(args.test, 200)
        args.max_lines = args.max_lines or 2000
        args.evals = min(args.evals, 2)
    if min(args.pretrain_updates, args.finetune_updates, args.mle_finetune_updates,
           args.evals) < 1:
        p.error("--pretrain-updates, --finetune-updates, --mle-finetune-updates and --evals "
                "must be >= 1")
    return args


def _table(rows: Sequence[Sequence[str]]) -> None:
    """Print a markdown table, first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                for i, (c, w) in enumerate(zip(row, widths))) + " |")
        if k == 0:
            print("|" + "|".join("-" * (w + 1) + (":" if i else "-")
                                 for i, w in enumerate(widths)) + "|")


def verdict(copy: float, start: float, mle: Dict[str, float], searnn: Dict[str, float]) -> str:
    """One honest sentence on the two fine-tunes. ``copy``, ``start``: test edit errors (%) of
    copying the input and of the pre-trained model; ``mle``, ``searnn``: the fine-tunes'
    ``test_edit_error``, ``updates`` and ``seconds`` (training time)."""
    a, b = mle["test_edit_error"], searnn["test_edit_error"]
    best = min(start, a, b)
    head = (f"the pre-trained model makes {start / copy:.2f}x the errors of copying the input; "
            if start < copy else "the pre-trained model is no better than copying the input; ")
    if abs(a - b) < 0.05 * a:
        what = f"SeaRNN and more MLE end level ({b:.2f}% against {a:.2f}%, within 5%)"
    elif b < a:
        what = (f"SeaRNN fine-tuning ends {a - b:.2f} points below more MLE ({b:.2f}% "
                f"against {a:.2f}%)")
    else:
        what = (f"more MLE ends {b - a:.2f} points below SeaRNN fine-tuning ({a:.2f}% "
                f"against {b:.2f}%)")
    return (f"verdict: {head}{what}, with {searnn['updates']} SeaRNN updates in "
            f"{searnn['seconds']:.0f} s against {mle['updates']} MLE updates in "
            f"{mle['seconds']:.0f} s; best model: {best / copy:.2f}x the copy error.")


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
    _quiet()
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
    _table(rows)
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


if __name__ == "__main__":
    main()
