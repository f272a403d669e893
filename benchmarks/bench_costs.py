"""Benchmark of the batched costs and reference policies against per-sentence Python loops.

Data (CPU, 2 torch threads unless ``--threads``, fixed seed): 20,000 (hyp, ref) padded pairs,
lengths uniform in 1..40, vocabulary 10,000; each hypothesis token copies the reference token
at the same (cyclic) position with probability 0.6, so pairs share n-grams. Best-suffix: 20,000
prefixes (a noisy copy of ``ref[:t]``, ``t`` uniform in 0..|ref|, plus a forced random token)
with references of length 10..30.

Timed (best of ``repeats``): our ``bleu`` vs a loop of ``sacrebleu.sentence_bleu`` (the loop
includes ``.tolist()``, pad stripping and the ids -> string conversion); our ``edit`` vs a loop
of ``rapidfuzz.distance.Levenshtein.distance`` on token lists (includes ``.tolist()`` and pad
stripping); ``suffix_start(..., "best-suffix")`` with bleu1 and edit selection (fast paths), and
bleu1's fast path against the batched brute force (all prefixes; 2,000 with ``--quick``).

Usage: ``python benchmarks/bench_costs.py [--quick] [--repeats 5] [--threads 2] [--json FILE]``;
``run(quick)`` returns the same dict for ``benchmarks/run.py``. Wall-clock numbers need an idle
machine: with other processes on the two cores, torch's two threads wait for each other and
our times inflate far more than the single-threaded Python loops' (the machine's 1-minute load
average before and after is recorded).
"""

import argparse
import json
import os
from pathlib import Path

import torch

from fairseq_searnn import costs
from fairseq_searnn.recipes.bench import best_of
from fairseq_searnn.search import reference

PAD = 1
VOCAB = 10000


def make_pairs(n: int, seed: int = 0):
    """(hyp, ref) LongTensor[n, 40] each, right-padded with PAD; tokens in [4, VOCAB)."""
    g = torch.Generator().manual_seed(seed)
    r_len = torch.randint(1, 41, (n,), generator=g)
    h_len = torch.randint(1, 41, (n,), generator=g)
    ref = torch.randint(4, VOCAB, (n, 40), generator=g)
    pos = torch.arange(40).unsqueeze(0)
    copied = ref.gather(1, pos % r_len.unsqueeze(1))
    noise = torch.randint(4, VOCAB, (n, 40), generator=g)
    hyp = torch.where(torch.rand(n, 40, generator=g) < 0.6, copied, noise)
    return hyp.masked_fill(pos >= h_len.unsqueeze(1), PAD), ref.masked_fill(
        pos >= r_len.unsqueeze(1), PAD)


def make_prefixes(n: int, seed: int = 1):
    """(prefix [n, 31], ref [n, 30]): noisy reference prefixes plus a forced token."""
    g = torch.Generator().manual_seed(seed)
    r_len = torch.randint(10, 31, (n,), generator=g)
    ref = torch.randint(4, VOCAB, (n, 30), generator=g)
    pos = torch.arange(31).unsqueeze(0)
    t = (torch.rand(n, generator=g) * (r_len + 1)).long()
    noise = torch.randint(4, VOCAB, (n, 31), generator=g)
    src = torch.nn.functional.pad(ref, (0, 1), value=PAD)
    prefix = torch.where(torch.rand(n, 31, generator=g) < 0.7, src, noise)
    prefix = torch.where(pos == t.unsqueeze(1), noise, prefix)
    return prefix.masked_fill(pos > t.unsqueeze(1), PAD), ref.masked_fill(
        pos[:, :30] >= r_len.unsqueeze(1), PAD)


def sacrebleu_loop(hyp, ref):
    """BLEU of each pair with sacrebleu, from the padded tensors -> list of float."""
    import sacrebleu

    out = []
    for h, r in zip(hyp.tolist(), ref.tolist()):
        h_str = " ".join(str(t) for t in h if t != PAD)
        r_str = " ".join(str(t) for t in r if t != PAD)
        out.append(sacrebleu.sentence_bleu(h_str, [r_str], smooth_method="add-k",
                                           smooth_value=1, tokenize="none",
                                           use_effective_order=True).score)
    return out


def rapidfuzz_loop(hyp, ref):
    """Levenshtein distance of each pair with rapidfuzz, from the padded tensors."""
    from rapidfuzz.distance import Levenshtein

    return [Levenshtein.distance([t for t in h if t != PAD], [t for t in r if t != PAD])
            for h, r in zip(hyp.tolist(), ref.tolist())]


def run(quick: bool = False, repeats: int = 5, threads: int = 2) -> dict:
    """Run every measurement; returns a flat dict of settings, times (s) and speedups."""
    torch.set_num_threads(threads)
    n = 20000
    repeats = 2 if quick else repeats
    brute_n = 2000 if quick else n
    hyp, ref = make_pairs(n)
    prefix, p_ref = make_prefixes(n)
    res = {"pairs": n, "repeats": repeats, "threads": torch.get_num_threads(),
           "torch": torch.__version__, "loadavg_1min_before": os.getloadavg()[0]}

    res["bleu_s"], ours = best_of(lambda: costs.bleu(hyp, ref, PAD), repeats)
    res["sacrebleu_loop_s"], theirs = best_of(lambda: sacrebleu_loop(hyp, ref), repeats)
    want = 1.0 - torch.tensor(theirs, dtype=torch.float64) / 100.0
    res["bleu_max_abs_diff"] = float((ours.double() - want).abs().max())
    res["bleu_speedup_vs_sacrebleu"] = res["sacrebleu_loop_s"] / res["bleu_s"]

    res["edit_s"], _ = best_of(lambda: costs.edit(hyp, ref, PAD), repeats)
    res["rapidfuzz_loop_s"], theirs = best_of(lambda: rapidfuzz_loop(hyp, ref), repeats)
    ours = costs.edit_distance(hyp, ref, PAD)
    res["edit_mismatches"] = int((ours != torch.tensor(theirs)).sum())
    res["edit_speedup_vs_rapidfuzz"] = res["rapidfuzz_loop_s"] / res["edit_s"]

    for name in ("bleu1", "hamming"):
        fn = costs.get_cost(name)
        res[f"{name}_s"], _ = best_of(lambda fn=fn: fn(hyp, ref, PAD), repeats)

    for name in ("bleu1", "edit"):
        res[f"best_suffix_{name}_s"], _ = best_of(
            lambda name=name: reference.suffix_start(prefix, p_ref, PAD, "best-suffix", name),
            repeats)
    sub_p, sub_r = prefix[:brute_n], p_ref[:brute_n]
    res["bruteforce_prefixes"] = brute_n
    res["best_suffix_bleu1_bruteforce_s"], slow = best_of(
        lambda: reference.suffix_start(sub_p, sub_r, PAD, "best-suffix", "bleu1", fast=False), 1)
    res["best_suffix_bleu1_fast_same_s"], fast = best_of(
        lambda: reference.suffix_start(sub_p, sub_r, PAD, "best-suffix", "bleu1"), repeats)
    res["best_suffix_fast_equals_bruteforce"] = bool(torch.equal(slow, fast))
    res["loadavg_1min_after"] = os.getloadavg()[0]
    return res


def table(res: dict) -> str:
    """Human-readable summary of :func:`run`'s dict."""
    n = res["pairs"]
    rows = [
        (f"bleu, {n} pairs", res["bleu_s"], res["sacrebleu_loop_s"],
         res["bleu_speedup_vs_sacrebleu"], "sacrebleu.sentence_bleu loop"),
        (f"edit, {n} pairs", res["edit_s"], res["rapidfuzz_loop_s"],
         res["edit_speedup_vs_rapidfuzz"], "rapidfuzz Levenshtein loop"),
        (f"bleu1, {n} pairs", res["bleu1_s"], None, None, ""),
        (f"hamming, {n} pairs", res["hamming_s"], None, None, ""),
        (f"best-suffix bleu1, {n} prefixes", res["best_suffix_bleu1_s"], None, None, ""),
        (f"best-suffix edit, {n} prefixes", res["best_suffix_edit_s"], None, None, ""),
        (f"best-suffix bleu1, {res['bruteforce_prefixes']} prefixes",
         res["best_suffix_bleu1_fast_same_s"], res["best_suffix_bleu1_bruteforce_s"],
         res["best_suffix_bleu1_bruteforce_s"] / res["best_suffix_bleu1_fast_same_s"],
         "batched brute force (1 run)"),
    ]
    lines = [f"{'what':34} {'ours (s)':>9} {'baseline (s)':>12} {'speedup':>8}  baseline",
             "-" * 90]
    for what, ours, base, speed, name in rows:
        base_s = f"{base:12.3f}" if base is not None else " " * 12
        speed_s = f"{speed:7.1f}x" if speed is not None else " " * 8
        lines.append(f"{what:34} {ours:9.3f} {base_s} {speed_s}  {name}")
    lines.append(f"bleu max |ours - sacrebleu| = {res['bleu_max_abs_diff']:.2e}; "
                 f"edit mismatches vs rapidfuzz = {res['edit_mismatches']}; "
                 f"best-suffix fast == brute force: {res['best_suffix_fast_equals_bruteforce']}; "
                 f"threads = {res['threads']}, best of {res['repeats']}")
    lines.append(f"machine load (1-min average) before / after: "
                 f"{res['loadavg_1min_before']:.2f} / {res['loadavg_1min_after']:.2f}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 repeats, brute force on 2,000 prefixes only")
    parser.add_argument("--repeats", type=int, default=5, help="best of N (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args(argv)
    res = run(args.quick, args.repeats, args.threads)
    print(table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
