"""Shared pieces of the benchmarks (``benchmarks/``): models built through fairseq's option
parsing on synthetic dictionaries, synthetic fairseq batches (no data files needed), timers and
the peak resident memory."""

import tempfile
import time
from pathlib import Path

import torch

from fairseq_searnn.cli import user_dir
from fairseq_searnn.recipes.commands import train_config

# The paper's NMT model (bidirectional encoder, 256 units; LSTM cells here) and a small
# Transformer; the paper's spelling model (attention RNN with 100 units).
ARCHS = {
    "lstm": ["--arch", "lstm", "--encoder-bidirectional", "--encoder-embed-dim", "256",
             "--encoder-hidden-size", "256", "--decoder-embed-dim", "256",
             "--decoder-hidden-size", "256", "--decoder-out-embed-dim", "256"],
    "transformer": ["--arch", "transformer", "--encoder-layers", "3", "--decoder-layers", "3",
                    "--encoder-embed-dim", "256", "--decoder-embed-dim", "256",
                    "--encoder-ffn-embed-dim", "1024", "--decoder-ffn-embed-dim", "1024",
                    "--encoder-attention-heads", "4", "--decoder-attention-heads", "4"],
    "spelling": ["--arch", "lstm", "--encoder-bidirectional", "--encoder-embed-dim", "100",
                 "--encoder-hidden-size", "100", "--decoder-embed-dim", "100",
                 "--decoder-hidden-size", "100", "--decoder-out-embed-dim", "100"],
}


def data_dir(vocab: int) -> str:
    """A directory holding fairseq dictionaries ``dict.{src,tgt}.txt`` of ``vocab`` symbols."""
    d = Path(tempfile.mkdtemp(prefix="searnn-bench-"))
    lines = "".join(f"w{i} 1\n" for i in range(vocab))
    for lang in ("src", "tgt"):
        (d / f"dict.{lang}.txt").write_text(lines)
    return str(d)


def build(arch: str, vocab: int, criterion: str = "cross_entropy", extra=(), seed: int = 1):
    """(task, model, criterion) built exactly as fairseq-train builds them."""
    from fairseq import tasks

    argv = [data_dir(vocab), "--user-dir", user_dir(), "--task", "translation",
            "--source-lang", "src", "--target-lang", "tgt", *ARCHS[arch],
            "--criterion", criterion, "--dropout", "0", "--optimizer", "adam", "--lr", "1e-3",
            "--max-tokens", "100000", "--seed", str(seed), "--cpu", *map(str, extra)]
    cfg = train_config(argv)
    torch.manual_seed(seed)
    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model)
    return task, model, task.build_criterion(cfg.criterion)


def batch(task, n: int, tgt_len=(10, 30), src_ratio=1.0, seed: int = 0):
    """A fairseq batch of ``n`` random sentences, target lengths uniform in ``tgt_len`` (content
    tokens; EOS appended), sources of about ``src_ratio`` times that length, sorted by source
    length (descending) and left-padded like LanguagePairDataset."""
    g = torch.Generator().manual_seed(seed)
    d = task.target_dictionary
    pad, eos, lo = d.pad(), d.eos(), d.nspecial
    t_len = torch.randint(tgt_len[0], tgt_len[1] + 1, (n,), generator=g)
    s_len = (t_len.double() * src_ratio).round().long().clamp(min=1) + 1
    order = s_len.argsort(descending=True)
    t_len, s_len = t_len[order], s_len[order]
    src = torch.full((n, int(s_len.max())), pad)
    tgt = torch.full((n, int(t_len.max()) + 1), pad)
    prev = torch.full_like(tgt, pad)
    for i in range(n):
        s = torch.randint(lo, len(d), (int(s_len[i]),), generator=g)
        s[-1] = eos
        src[i, src.size(1) - s.numel():] = s
        y = torch.randint(lo, len(d), (int(t_len[i]),), generator=g)
        tgt[i, : y.numel() + 1] = torch.cat([y, torch.tensor([eos])])
        prev[i, : y.numel() + 1] = torch.cat([torch.tensor([eos]), y])
    ntokens = int(tgt.ne(pad).sum())
    return {"id": torch.arange(n), "nsentences": n, "ntokens": ntokens, "target": tgt,
            "net_input": {"src_tokens": src, "src_lengths": s_len,
                          "prev_output_tokens": prev}}


def best_of(fn, repeats: int):
    """Best wall time of ``repeats`` calls of ``fn`` (and its last result)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def timed(fn) -> float:
    """Wall time of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_rss_mb() -> float:
    """The process's resident-memory high-water mark (MB) since start or the last reset
    (``/proc/self/clear_refs``), from ``/proc/self/status`` (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not found in /proc/self/status")
