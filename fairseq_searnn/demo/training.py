"""One training run of the demo (:class:`Run`: fairseq's Trainer, evaluated by exact greedy
edit error) and its evaluation schedule (:func:`schedule`, :func:`train_to`)."""

import contextlib
import io
import logging
import math
import time
import warnings
from argparse import Namespace
from typing import Dict, List, Optional, Sequence

from fairseq_searnn.cli import user_dir
from fairseq_searnn.data import spelling
from fairseq_searnn.recipes import train_config

MODEL = [  # the paper's spelling model size: 100 units, attention, bidirectional encoder
    "--arch", "lstm", "--encoder-bidirectional",
    "--encoder-embed-dim", "100", "--encoder-hidden-size", "100",
    "--decoder-embed-dim", "100", "--decoder-hidden-size", "100",
    "--decoder-out-embed-dim", "100", "--dropout", "0",
]


def quiet():
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
        quiet()
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
