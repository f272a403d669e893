"""Shared test machinery: a generated parallel corpus, fairseq's own option parsing, training.

Everything here goes through fairseq's real code paths (``fairseq-preprocess``'s main, the
training parser, ``convert_namespace_to_omegaconf``, ``fairseq_cli.train.main``) so that the
tests exercise the configuration path a user's command line takes.
"""

import contextlib
import io
import json
import logging
import os
import random
import subprocess
from pathlib import Path

import torch

import fairseq_searnn
from fairseq_searnn.cli import user_dir

USER_DIR = user_dir()
REPO = Path(fairseq_searnn.__file__).resolve().parent.parent
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()

# Tiny architectures: fast enough for many in-process runs on 2 CPU cores.
ARCH_ARGS = {
    "lstm": [
        "--arch", "lstm",
        "--encoder-embed-dim", "16", "--encoder-hidden-size", "16",
        "--decoder-embed-dim", "16", "--decoder-hidden-size", "16",
        "--decoder-out-embed-dim", "16",
    ],
    "transformer": [
        "--arch", "transformer",
        "--encoder-layers", "1", "--decoder-layers", "1",
        "--encoder-embed-dim", "16", "--decoder-embed-dim", "16",
        "--encoder-ffn-embed-dim", "32", "--decoder-ffn-embed-dim", "32",
        "--encoder-attention-heads", "2", "--decoder-attention-heads", "2",
    ],
}

SRC_ALPHABET = [chr(ord("a") + i) for i in range(12)]


def _target_of(src_words):
    """The toy translation: reverse the sentence and map each letter to an upper-case token;
    letters ``a``/``b`` become two tokens, so lengths differ between source and target."""
    out = []
    for w in reversed(src_words):
        out.append(w.upper())
        if w in ("a", "b"):
            out.append(w.upper() + w.upper())
    return out


def write_parallel_corpus(directory, n_train=200, n_valid=24, seed=1, max_len=7):
    """Write ``{train,valid}.{src,tgt}`` text files of a deterministic toy translation task.

    Sentences have 1..max_len source tokens; targets are a reversal with some 1->2 expansions.
    """
    rng = random.Random(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("valid", n_valid)):
        src_lines, tgt_lines = [], []
        for _ in range(n):
            words = [rng.choice(SRC_ALPHABET) for _ in range(rng.randint(1, max_len))]
            src_lines.append(" ".join(words))
            tgt_lines.append(" ".join(_target_of(words)))
        (directory / f"{split}.src").write_text("\n".join(src_lines) + "\n")
        (directory / f"{split}.tgt").write_text("\n".join(tgt_lines) + "\n")
    return directory


def binarize(text_dir, dest_dir, src="src", tgt="tgt", joined=False, extra=()):
    """Binarise ``text_dir/{train,valid}.{src,tgt}`` with fairseq's own preprocessing."""
    from fairseq import options
    from fairseq_cli import preprocess

    text_dir = Path(text_dir)
    argv = [
        "--source-lang", src, "--target-lang", tgt,
        "--trainpref", str(text_dir / "train"), "--validpref", str(text_dir / "valid"),
        "--destdir", str(dest_dir), "--workers", "1",
    ]
    if joined:
        argv.append("--joined-dictionary")
    argv.extend(extra)
    args = options.get_preprocessing_parser().parse_args(argv)
    with contextlib.redirect_stdout(io.StringIO()):
        preprocess.main(args)
    return Path(dest_dir)


def train_argv(data_dir, arch="lstm", criterion="cross_entropy", extra=(), task="translation"):
    """Command-line arguments (without the program name) for a tiny, deterministic run."""
    return [
        str(data_dir), "--user-dir", USER_DIR, "--task", task,
        "--source-lang", "src", "--target-lang", "tgt",
        *ARCH_ARGS[arch], "--criterion", criterion,
        "--dropout", "0", "--optimizer", "adam", "--lr", "0.005",
        "--max-tokens", "400", "--seed", "1", "--num-workers", "0",
        "--cpu", "--no-progress-bar", "--log-format", "simple", "--log-interval", "1",
        *extra,
    ]


def ocr_train_argv(letter_data, criterion="cross_entropy", extra=()):
    """Command-line arguments of a small ``ocr`` task run on the letter file ``letter_data``."""
    return ["--user-dir", USER_DIR, "--task", "ocr", "--ocr-data", str(letter_data),
            "--arch", "ocr_gru", "--criterion", criterion, "--optimizer", "sgd",
            "--lr", "0.5", "--cpu", *extra]


def last_checkpoint(save_dir):
    """The state of ``save_dir/checkpoint_last.pt``, loaded as fairseq-train resumes it."""
    return torch.load(Path(save_dir) / "checkpoint_last.pt", map_location="cpu",
                      weights_only=False)


def same_weights(a, b) -> bool:
    """Whether two checkpoint states hold the same model weights, bit for bit."""
    return all(torch.equal(a["model"][name], b["model"][name]) for name in a["model"])


def parse_cfg(argv):
    """Run ``argv`` through fairseq's training parser and return the omegaconf config."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, list(argv))
    return convert_namespace_to_omegaconf(args)


def build(data_dir, arch="lstm", criterion="cross_entropy", extra=(), task="translation"):
    """Build (cfg, task, model, criterion) exactly as fairseq-train does, seeded, in eval mode."""
    from fairseq import tasks

    cfg = parse_cfg(train_argv(data_dir, arch, criterion, extra, task))
    torch.manual_seed(cfg.common.seed)
    task_obj = tasks.setup_task(cfg.task)
    task_obj.load_dataset("valid")
    model = task_obj.build_model(cfg.model)
    crit = task_obj.build_criterion(cfg.criterion)
    model.eval()
    return cfg, task_obj, model, crit


def valid_batch(task_obj, max_sentences=8, split="valid"):
    """First batch of ``split`` (a fairseq sample dict) with at most ``max_sentences``."""
    if split not in task_obj.datasets:
        task_obj.load_dataset(split)
    itr = task_obj.get_batch_iterator(
        dataset=task_obj.dataset(split), max_sentences=max_sentences, seed=1
    ).next_epoch_itr(shuffle=False)
    return next(iter(itr))


def run_training(argv):
    """Run ``fairseq_cli.train.main`` in-process on ``argv``; returns the final config."""
    from fairseq import checkpoint_utils
    from fairseq_cli import train

    # fairseq keeps the best validation score of the process on a function attribute: a fresh
    # run (as in a new process) must not compare against an earlier run's best
    # (and likewise its early-stopping state)
    for holder, names in ((checkpoint_utils.save_checkpoint, ("best",)),
                          (train.should_stop_early, ("best", "num_runs"))):
        for name in names:
            if hasattr(holder, name):
                delattr(holder, name)
    cfg = parse_cfg(argv)
    train.main(cfg)
    return cfg


class TrainLogCollector(logging.Handler):
    """Collects the ``train_inner`` statistics fairseq's JSON progress bar logs (attach it to
    the ``fairseq.logging.progress_bar`` logger; train with ``--log-format json``)."""

    def __init__(self):
        super().__init__()
        self.rows = []

    def emit(self, record):
        if record.name == "train_inner":
            self.rows.append(json.loads(record.getMessage()))


def env_without_repo():
    """Environment for subprocesses started outside the repository (no PYTHONPATH hacks)."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def run_command(cmd, cwd, check=True):
    """Run ``cmd`` (paths allowed) in ``cwd`` with :func:`env_without_repo`; with ``check``, a
    non-zero exit raises with the end of its output. Returns the CompletedProcess."""
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env_without_repo(),
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


# Differentiable scheduled sampling models at the same tiny sizes.
ARCH_ARGS["dss_lstm"] = ["--arch", "dss_lstm", *ARCH_ARGS["lstm"][2:]]
ARCH_ARGS["dss_transformer"] = ["--arch", "dss_transformer", *ARCH_ARGS["transformer"][2:]]


def mixed_length_batch(task_obj, n=6, split="valid"):
    """A collated batch of ``n`` sentences of ``split`` with as many different target lengths
    as possible (so it has target-side padding)."""
    if split not in task_obj.datasets:
        task_obj.load_dataset(split)
    dataset = task_obj.dataset(split)
    by_length = {}
    for i in range(len(dataset)):
        by_length.setdefault(int(dataset.tgt_sizes[i]), i)
    lengths = sorted(by_length, reverse=True)
    picked = [by_length[length] for length in lengths[:n]]
    picked += [i for i in range(len(dataset)) if i not in picked][: n - len(picked)]
    return dataset.collater([dataset[i] for i in picked])


def same_weights_model(data_dir, model, arch, extra=()):
    """A freshly built ``arch`` model (eval mode) holding ``model``'s parameters."""
    _, _, twin, _ = build(data_dir, arch, extra=extra)
    twin.load_state_dict(model.state_dict())
    return twin.eval()


def load_script(path, module_name=None):
    """Import the script at ``path``, relative to the repository (scripts are not a package)."""
    import importlib.util

    path = REPO / path
    name = module_name or "script_" + "_".join(path.relative_to(REPO).with_suffix("").parts)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_example(folder, name):
    """Import ``examples/<folder>/<name>.py`` (example scripts are not a package)."""
    return load_script(f"examples/{folder}/{name}.py", f"example_{folder}_{name}")


def quick_fit(task, model, steps=40):
    """A few cross-entropy steps on the training split, so that greedy decoding ends with EOS
    at various lengths."""
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    batch = valid_batch(task, max_sentences=64, split="train")
    model.train()
    for _ in range(steps):
        out = model(**batch["net_input"])
        lp = model.get_normalized_probs(out, log_probs=True)
        loss = torch.nn.functional.nll_loss(lp.view(-1, lp.size(-1)), batch["target"].view(-1),
                                            ignore_index=task.target_dictionary.pad())
        opt.zero_grad()
        loss.backward()
        opt.step()


# train.sh options of an LSTM of 16 units in batches of 16 sentences (drivers' tests)
TINY_LSTM = ["--encoder-embed-dim", "16", "--encoder-hidden-size", "16",
             "--decoder-embed-dim", "16", "--decoder-hidden-size", "16",
             "--decoder-out-embed-dim", "16", "--batch-size", "16"]


def tiny_multi30k(out, shared_data):
    """The first 120 pairs of every Multi30k split (test2016 included), sentencepiece 200,
    prepared in ``out`` by examples/nmt/prepare_multi30k.py."""
    return load_example("nmt", "prepare_multi30k").main(
        ["--raw-dir", str(shared_data / "multi30k" / "raw"), "--out", str(out),
         "--vocab", "200", "--max-lines", "120"])
