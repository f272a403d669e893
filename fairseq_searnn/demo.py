"""``fairseq-searnn-demo``: MLE vs SeaRNN on spelling correction, on CPU, in a few minutes.

1. Builds the spelling task (:mod:`fairseq_searnn.data.spelling`) from the documentation that
   ships with Python's standard library (``pydoc_data`` topics and module docstrings; offline,
   deterministic for a Python version) or from ``--corpus FILE``.
2. Trains SeaRNN (``searnn_skl``: learned roll-in, mixed roll-out, edit cost, K sampled tokens
   per cell) from scratch with fairseq's ``Trainer`` until ``--budget`` seconds of training
   (or ``--updates N``), then MLE (``cross_entropy``) from scratch for the *same number of
   updates*: the comparison is at equal updates, not equal time (SeaRNN's updates cost more).
3. Both models decode the held-out validation set greedily during training (the curve) and
   the test set at the end; the edit error is exact: total Levenshtein distance / total
   reference characters x 100. Prints a table, writes ``spelling_demo.png`` into ``--out``.
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
    """sKL with the spelling recipe's settings (``examples/spelling/train.sh``): edit cost,
    learned roll-in, mixed roll-out, roll-outs up to the source length + 2 symbols."""
    return criterion_args("skl", "edit", tokens=args.tokens, sampling=args.token_sampling,
                          alpha=args.alpha, max_len=(1, 2))


def _quiet():
    """fairseq logs at INFO on stdout once ``fairseq_cli`` is imported: keep the demo's own
    output readable."""
    for name in ("", "fairseq", "fairseq_cli", "fairseq_searnn", "matplotlib", "hydra"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


class Run:
    """One training run with fairseq's Trainer, evaluated by exact greedy edit error."""

    def __init__(self, name: str, data: str, criterion_args: Sequence[str], args):
        import numpy as np
        from fairseq import tasks, utils
        from fairseq.trainer import Trainer

        self.name = name
        argv = [
            data, "--user-dir", user_dir(), "--task", "translation",
            "--source-lang", spelling.SRC, "--target-lang", spelling.TGT, *MODEL,
            *criterion_args, "--optimizer", "adam", "--lr", str(args.lr),
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
        criterion = self.task.build_criterion(cfg.criterion)
        self.trainer = Trainer(cfg, self.task, model, criterion)
        self.epoch_itr = self.trainer.get_train_iterator(epoch=1)
        self.trainer.begin_epoch(self.epoch_itr.epoch)
        self.itr = self.epoch_itr.next_epoch_itr(shuffle=True)
        self.generator = self.task.build_generator(
            [model], Namespace(beam=1, max_len_a=1.0, max_len_b=5))
        self.train_time = 0.0
        self.curve: Dict[int, float] = {}
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
        self.curve[self.updates] = err = self.edit_error("valid")
        return err


def _progress(run: Run, err: float, wall: float) -> None:
    per = 1000 * run.train_time / max(run.updates, 1)
    loss = f"{run.last_loss:6.3f}" if run.updates else "     -"  # no update trained yet
    print(f"  {run.name:<6} update {run.updates:>5}  loss {loss}  "
          f"valid edit error {err:6.2f}%  ({per:.0f} ms/update, {wall:.0f} s)", flush=True)


def train_searnn(run: Run, budget: float, updates: Optional[int], evals: int) -> List[int]:
    """Train until ``updates`` or ``budget`` seconds of training (without evaluation time);
    evaluates at start, every ``budget / evals`` training seconds (or ``updates / evals``
    updates) and at the end. Returns the evaluated update counts."""
    start = time.perf_counter()
    _progress(run, run.evaluate(), 0.0)
    next_eval = 1
    while True:
        if updates is not None:
            done = run.updates >= updates
            due = run.updates >= next_eval * updates / evals
        else:
            done = run.train_time >= budget
            due = run.train_time >= next_eval * budget / evals
        if done or due:
            if run.updates not in run.curve:
                _progress(run, run.evaluate(), time.perf_counter() - start)
            next_eval += 1
        if done:
            return sorted(run.curve)
        run.step()


def train_to(run: Run, schedule: Sequence[int]) -> None:
    """Train ``run`` to the last update of ``schedule``, evaluating at each of its counts."""
    start = time.perf_counter()
    for target in schedule:
        while run.updates < target:
            run.step()
        _progress(run, run.evaluate(), time.perf_counter() - start)


def plot(runs: Sequence[Run], path: Path, title: str, baseline: float) -> bool:
    """Write the validation curves to ``path``; False (and a message) without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed (pip install matplotlib): no plot written")
        return False

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for run, marker in zip(runs, "os"):
        xs = sorted(run.curve)
        ax.plot(xs, [run.curve[x] for x in xs], marker=marker, label=run.name)
    ax.axhline(baseline, ls="--", color="gray", label="copy the input")
    ax.set_xlabel("updates")
    ax.set_ylabel("validation edit error (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def parse(argv=None):
    p = argparse.ArgumentParser(prog="fairseq-searnn-demo", description=__doc__.split("\n")[0])
    p.add_argument("--corpus", help="English text file (default: Python's own documentation)")
    p.add_argument("--out", default="fairseq-searnn-demo",
                   help="output folder: the plot, and the data and checkpoints under work/")
    p.add_argument("--budget", type=float, default=300.0,
                   help="SeaRNN training seconds (evaluation excluded); MLE then trains the "
                   "same number of updates")
    p.add_argument("--updates", type=int, default=None,
                   help="train both for exactly N updates instead of using --budget")
    p.add_argument("--quick", action="store_true",
                   help="a ~30 s smoke run: 8 s budget, 2000 lines, 2 noisy copies")
    p.add_argument("--p", type=float, default=0.3, help="substitution noise probability")
    p.add_argument("--max-len", type=int, default=10, help="T, end marker included")
    p.add_argument("--copies", type=int, default=4, help="noisy copies of the training set")
    p.add_argument("--valid", type=int, default=500)
    p.add_argument("--test", type=int, default=1000)
    p.add_argument("--max-lines", type=int, default=0, help="use only N corpus lines")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--tokens", type=int, default=5, help="SeaRNN: tokens per cell (K)")
    p.add_argument("--token-sampling", default="biased")
    p.add_argument("--alpha", type=float, default=20.0,
                   help="sKL target softmax(-alpha * cost); the edit cost is per character")
    p.add_argument("--evals", type=int, default=8, help="validation points per curve")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    args = p.parse_args(argv)
    if args.quick:
        args.budget = min(args.budget, 8.0)
        args.copies = min(args.copies, 2)
        args.valid, args.test = min(args.valid, 200), min(args.test, 200)
        args.max_lines = args.max_lines or 2000
        args.evals = min(args.evals, 2)
    return args


def run(argv=None) -> Dict[str, Dict[str, float]]:
    """The demo; returns ``{method: {test_edit_error, ms_per_update, updates}}``."""
    args = parse(argv)
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
    print(f"corpus: {source}: {stats.corpus_lines} lines -> train {stats.sentences['train']} "
          f"x {args.copies} noisy copies (one per epoch, cycled), valid {args.valid}, "
          f"test {args.test}; T = {args.max_len} symbols (end marker included)")
    print(f"noise: p = {args.p}; characters actually changed: train "
          f"{100 * stats.train_changed_rate:.1f}%, test {100 * stats.changed_rate['test']:.1f}%"
          f" (test edit error of copying the input: "
          f"{100 * stats.changed_rate['test']:.2f}%)")
    how = (f"exactly {args.updates} updates each" if args.updates else
           f"SeaRNN for {args.budget:.0f} s of training, then MLE for the same number of "
           "updates")
    print(f"comparison at an equal number of updates, both from scratch: {how}; "
          f"batch {args.batch_size}, Adam {args.lr:g}, {torch.get_num_threads()} thread(s)")
    print(f"[1/2] SeaRNN (sKL, learned roll-in, mixed roll-out, {args.tokens} "
          f"{args.token_sampling} tokens per cell, alpha {args.alpha:g}, edit cost)", flush=True)
    searnn = Run("SeaRNN", stats.data, searnn_args(args), args)
    schedule = train_searnn(searnn, args.budget, args.updates, args.evals)
    print(f"[2/2] MLE (token cross-entropy), {searnn.updates} updates", flush=True)
    mle = Run("MLE", stats.data, criterion_args("mle"), args)
    train_to(mle, schedule)

    results = {}
    print("\nheld-out test set, greedy decoding; edit error = total edit distance / total "
          "reference characters x 100")
    labels = {"MLE": "MLE (cross-entropy)",
              "SeaRNN": f"SeaRNN (sKL, K={args.tokens} {args.token_sampling}, "
                        f"alpha={args.alpha:g})"}
    rows = [("method", "updates", "test edit error (%)", "time / update (ms)"),
            ("copy the input (no model)", "-", f"{100 * stats.changed_rate['test']:.2f}", "-")]
    for run in (mle, searnn):
        err = run.edit_error("test")
        per = 1000 * run.train_time / max(run.updates, 1)
        results[run.name] = {"test_edit_error": err, "ms_per_update": per,
                             "updates": run.updates}
        rows.append((labels[run.name], str(run.updates), f"{err:.2f}", f"{per:.0f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for k, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                for i, (c, w) in enumerate(zip(row, widths))) + " |")
        if k == 0:
            print("|" + "|".join("-" * (w + 1) + (":" if i else "-")
                                 for i, w in enumerate(widths)) + "|")
    png = out / "spelling_demo.png"
    title = f"spelling (p={args.p}, T={args.max_len}): validation edit error, greedy"
    written = plot([mle, searnn], png, title, 100 * stats.changed_rate["valid"])
    print(f"\n{'plot: ' + str(png) + '   ' if written else ''}work files: {work}   "
          f"total wall time: {time.perf_counter() - t0:.0f} s")
    return results


def main(argv=None) -> None:
    """Entry point of ``fairseq-searnn-demo`` (returns None: the exit status is 0)."""
    run(argv)


if __name__ == "__main__":
    main()
