"""Reference policies against a plain-Python brute force over suffix starts."""

import random

import pytest
import torch
from test_costs import (
    PAD,
    hamming_loop,
    levenshtein_row,
    random_pairs,
    sacre_bleu,
    sacre_bleu1,
    to_tensor,
)

from fairseq_searnn import costs
from fairseq_searnn.search import reference

EOS = 0

PY_COSTS = {  # independent single-pair implementations of the costs
    "hamming": hamming_loop,
    "edit": lambda h, r: levenshtein_row(h, r)[-1] / max(len(r), 1),
    "bleu1": lambda h, r: 1.0 - sacre_bleu1(h, r) / 100.0,
    "bleu": lambda h, r: 1.0 - sacre_bleu(h, r) / 100.0,
}


def python_best_suffix(prefix, ref, cost):
    """argmin_j cost(prefix + ref[j:], ref) on float32 values; ties: closest to the copy
    position min(|p|, |r|), then smallest j."""
    copy = min(len(prefix), len(ref))
    scores = torch.tensor([cost(prefix + ref[j:], ref) for j in range(len(ref) + 1)],
                          dtype=torch.float32).tolist()
    best = min(scores)
    return min((abs(j - copy), j) for j, s in enumerate(scores) if s == best)[1]


def prefix_ref_pairs(seed, n, vocab, max_ref, max_prefix):
    """(prefix, ref) lists: prefixes copy, skip, repeat or replace reference tokens and end with
    an arbitrary forced token; lengths include 0."""
    rng = random.Random(seed)
    out = []
    for hyp, ref in random_pairs(seed, n, vocab, max_ref):
        cut = rng.randint(0, max_prefix)
        prefix = (hyp if rng.random() < 0.7 else ref)[:cut]
        if rng.random() < 0.7:
            prefix = prefix + [rng.randrange(2, vocab)]
        out.append((prefix, ref))
    return out


def tensors(pairs):
    return to_tensor([p for p, _ in pairs]), to_tensor([r for _, r in pairs], extra=1)


def test_concat_and_copy():
    pairs = prefix_ref_pairs(0, 300, 6, 8, 8) + [([], []), ([], [3]), ([3], [])]
    prefix, ref = tensors(pairs)
    rng = random.Random(1)
    starts = [rng.randint(-1, len(r) + 1) for _, r in pairs]
    got = reference.concat(prefix, ref, torch.tensor(starts), PAD)
    want = [p + r[min(max(s, 0), len(r)):] for (p, r), s in zip(pairs, starts)]
    assert got.tolist() == to_tensor(want).tolist()
    copy = reference.suffix_start(prefix, ref, PAD, "copy")
    assert copy.tolist() == [min(len(p), len(r)) for p, r in pairs]
    empty = reference.concat(to_tensor([[], []]), to_tensor([[], []]), torch.zeros(2).long(), PAD)
    assert empty.shape == (2, 0)


@pytest.mark.parametrize("name", ["hamming", "edit", "bleu1", "bleu"])
def test_best_suffix_equals_python_brute_force(name):
    pairs = prefix_ref_pairs(2, 150, 4, 7, 8) + prefix_ref_pairs(3, 50, 10000, 7, 8)
    pairs += [([], []), ([5], []), ([], [5, 5]), ([5, 5, 5], [5])]
    prefix, ref = tensors(pairs)
    got = reference.suffix_start(prefix, ref, PAD, "best-suffix", costs.get_cost(name))
    want = [python_best_suffix(p, r, PY_COSTS[name]) for p, r in pairs]
    assert got.tolist() == want


@pytest.mark.parametrize("name", ["edit", "bleu1"])
def test_fast_paths_equal_batched_brute_force(name):
    pairs = []
    for seed, vocab in enumerate([3, 4, 6, 50]):
        pairs += prefix_ref_pairs(10 + seed, 250, vocab, 14, 18)
    prefix, ref = tensors(pairs)
    fn = costs.get_cost(name)
    fast = reference.suffix_start(prefix, ref, PAD, "best-suffix", fn)
    brute = reference.suffix_start(prefix, ref, PAD, "best-suffix", fn, max_rows=97, fast=False)
    assert torch.equal(fast, brute)
    scores = reference.selection_scores(prefix, ref, PAD, fn)
    brute_scores = reference.selection_scores(prefix, ref, PAD, fn, fast=False)
    assert torch.equal(scores.min(1).values, brute_scores.min(1).values)
    if name == "bleu1":  # the fast path computes every candidate's cost exactly
        assert torch.equal(scores, brute_scores)


@pytest.mark.parametrize("name", costs.available())
def test_best_suffix_never_worse_than_copy(name):
    pairs = prefix_ref_pairs(20, 300, 5, 10, 12)
    prefix, ref = tensors(pairs)
    fn = costs.get_cost(name)
    best = reference.suffix_start(prefix, ref, PAD, "best-suffix", fn)
    copy = reference.suffix_start(prefix, ref, PAD, "copy")
    c_best = fn(reference.concat(prefix, ref, best, PAD), ref, PAD)
    c_copy = fn(reference.concat(prefix, ref, copy, PAD), ref, PAD)
    assert (c_best <= c_copy).all()
    assert c_best.dtype == torch.float32


def test_reference_action_and_chunking():
    pairs = prefix_ref_pairs(30, 200, 5, 9, 12) + [([], []), ([4], [])]
    prefix, ref = tensors(pairs)
    for policy in reference.POLICIES:
        j = reference.suffix_start(prefix, ref, PAD, policy, "bleu")
        chunked = reference.suffix_start(prefix, ref, PAD, policy, "bleu", max_rows=5)
        assert torch.equal(j, chunked)
        act = reference.reference_action(prefix, ref, PAD, EOS, policy, "bleu")
        want = [r[s] if s < len(r) else EOS for (_, r), s in zip(pairs, j.tolist())]
        assert act.tolist() == want
    default = reference.suffix_start(prefix, ref, PAD, "best-suffix")  # None: bleu1 (paper C.2)
    assert torch.equal(default, reference.suffix_start(prefix, ref, PAD, "best-suffix", "bleu1"))
    no_ref = torch.zeros(3, 0, dtype=torch.long)
    assert reference.reference_action(prefix[:3], no_ref, PAD, EOS, "best-suffix",
                                      "edit").tolist() == [EOS] * 3
    none = torch.zeros(0, 4, dtype=torch.long)
    assert reference.suffix_start(none, none, PAD, "best-suffix", "edit").shape == (0,)
    with pytest.raises(ValueError, match="best-suffix"):
        reference.suffix_start(prefix, ref, PAD, "oracle")
