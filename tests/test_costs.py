"""Batched costs against independent references: sacrebleu, plain Python DP and loops."""

import random
from collections import Counter

import pytest
import sacrebleu
import torch
from sacrebleu.metrics import BLEU

from fairseq_searnn import costs

PAD = 1
BLEU1 = BLEU(max_ngram_order=1, smooth_method="add-k", smooth_value=1, tokenize="none",
             effective_order=True)


def to_tensor(rows, extra=0, dtype=torch.long):
    """Right-pad lists of tokens with PAD into a [N, max_len + extra] tensor."""
    width = max([len(r) for r in rows] + [0]) + extra
    out = torch.full((len(rows), width), PAD, dtype=dtype)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=dtype)
    return out


def mutate(rng, ref, vocab):
    """A hypothesis sharing n-grams with ``ref``: random deletions, insertions, substitutions,
    swapped blocks."""
    hyp = []
    for tok in ref:
        u = rng.random()
        if u < 0.1:
            continue
        hyp.append(tok if u < 0.8 else rng.randrange(2, vocab))
        if rng.random() < 0.1:
            hyp.append(rng.randrange(2, vocab))
    if len(hyp) > 3 and rng.random() < 0.3:
        cut = rng.randrange(1, len(hyp))
        hyp = hyp[cut:] + hyp[:cut]
    return hyp


def random_pairs(seed, n, vocab, max_len, low=2):
    """``n`` (hyp, ref) pairs of token lists (tokens in [low, vocab)); lengths 0..max_len,
    related (mutated copies, repeated tokens) or unrelated."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        ref = [rng.randrange(low, vocab) for _ in range(rng.randint(0, max_len))]
        kind = rng.random()
        if kind < 0.5:
            hyp = mutate(rng, ref, vocab)
        elif kind < 0.6:
            hyp = list(ref)
        elif kind < 0.7:
            hyp = ref * 2 if rng.random() < 0.5 else ref[: len(ref) // 2]
        else:
            hyp = [rng.randrange(low, vocab) for _ in range(rng.randint(0, max_len))]
        pairs.append((hyp, ref))
    return pairs


def sacre_bleu(hyp, ref):
    return sacrebleu.sentence_bleu(" ".join(map(str, hyp)), [" ".join(map(str, ref))],
                                   smooth_method="add-k", smooth_value=1, tokenize="none",
                                   use_effective_order=True).score


def sacre_bleu1(hyp, ref):
    return BLEU1.sentence_score(" ".join(map(str, hyp)), [" ".join(map(str, ref))]).score


def searnn_bleu(hyp, ref):
    """Official SeaRNN BLEU (cython/fast_bleu.pyx) in plain Python, in [0, 1]."""
    def grams(seq, n):
        return Counter(tuple(seq[i: i + n]) for i in range(len(seq) - n + 1))
    score = 1.0
    for n in range(1, 5):
        h, r = grams(hyp, n), grams(ref, n)
        match = sum(min(c, r[g]) for g, c in h.items())
        if n == 1 and match == 0:
            return 0.0
        score *= ((match + 1) / (max(len(hyp) - n + 1, 0) + 1)) ** 0.25
    if len(hyp) < len(ref):
        score *= 2.718281828459045 ** (1 - len(ref) / len(hyp))
    return score


def levenshtein_row(hyp, ref):
    """Plain DP: edit distance of ``hyp`` to every prefix ``ref[:j]``."""
    row = list(range(len(ref) + 1))
    for i, h in enumerate(hyp, 1):
        prev, row = row, [i] + [0] * len(ref)
        for j, r in enumerate(ref, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (h != r))
    return row


def hamming_loop(hyp, ref):
    wrong = sum(1 for i in range(max(len(hyp), len(ref)))
                if i >= len(hyp) or i >= len(ref) or hyp[i] != ref[i])
    return wrong / max(len(ref), 1)


def dataset():
    """>= 2,000 pairs: vocab 5 and 10,000, empty hyps / refs, related and unrelated pairs."""
    pairs = random_pairs(0, 1000, 5, 12) + random_pairs(1, 1000, 10000, 30)
    pairs += [([], []), ([], [3, 4]), ([3, 4], []), ([7], [7]), ([7, 7, 7], [7])]
    return pairs


def batches(pairs):
    """The pairs as tensors in a few layouts: tight, extra padding, int32."""
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    yield to_tensor(hyps), to_tensor(refs)
    yield to_tensor(hyps, extra=3), to_tensor(refs, extra=1)
    yield to_tensor(hyps, dtype=torch.int32), to_tensor(refs, dtype=torch.int32)


@pytest.mark.parametrize("name,reference,scale", [
    ("bleu", sacre_bleu, 100.0), ("bleu1", sacre_bleu1, 100.0),
    ("bleu-smooth-all", searnn_bleu, 1.0)])
def test_bleu_matches_reference(name, reference, scale):
    pairs = dataset()
    expected = torch.tensor([1.0 - reference(h, r) / scale for h, r in pairs],
                            dtype=torch.float64)
    for hyp, ref in batches(pairs):
        got = costs.get_cost(name)(hyp, ref, PAD)
        assert got.dtype == torch.float32 and got.shape == (len(pairs),)
        assert torch.allclose(got.double(), expected, atol=1e-4, rtol=0), name


@pytest.mark.parametrize("name", ["bleu", "bleu1", "bleu-smooth-all", "edit", "hamming"])
def test_empty_rows_and_tensors(name):
    fn = costs.get_cost(name)
    empty, full = to_tensor([[], [], []]), to_tensor([[4, 5], [], [6]])
    assert empty.shape == (3, 0)
    if name in ("edit", "hamming"):
        assert fn(empty, full, PAD).tolist() == [1.0, 0.0, 1.0]
        assert fn(full, empty, PAD).tolist() == [2.0, 0.0, 1.0]
    else:  # BLEU is 0 whenever the hypothesis or the reference is empty
        assert fn(empty, full, PAD).tolist() == [1.0, 1.0, 1.0]
        assert fn(full, empty, PAD).tolist() == [1.0, 1.0, 1.0]
    none = torch.zeros(0, 4, dtype=torch.long)
    assert fn(none, torch.zeros(0, 0, dtype=torch.long), PAD).shape == (0,)


def test_huge_token_ids_and_fallbacks():
    """Token ids beyond 2**40 (per-row ranks), a row too long for 4 x 15-bit digits
    (iterative fallback), and the iterative method forced: all equal sacrebleu."""
    rng = random.Random(5)
    pairs = [([t * 2**35 + 7 for t in h], [t * 2**35 + 7 for t in r])
             for h, r in random_pairs(2, 200, 50, 20)]
    hyp, ref = to_tensor([h for h, _ in pairs]), to_tensor([r for _, r in pairs])
    want = torch.tensor([1 - sacre_bleu(h, r) / 100 for h, r in pairs], dtype=torch.float64)
    assert torch.allclose(costs.bleu(hyp, ref, PAD).double(), want, atol=1e-4, rtol=0)
    pairs = dataset()
    small = to_tensor([h for h, _ in pairs]), to_tensor([r for _, r in pairs])
    packed = costs.ngram_stats(*small, PAD, 4, method="packed")
    iterative = costs.ngram_stats(*small, PAD, 4, method="iterative")
    assert torch.equal(packed["matches"], iterative["matches"])
    long_ref = [rng.randrange(2, 40000) for _ in range(17000)]
    long_hyp = mutate(rng, long_ref, 40000)
    got = costs.bleu(to_tensor([long_hyp]), to_tensor([long_ref]), PAD)
    assert abs(float(got) - (1 - sacre_bleu(long_hyp, long_ref) / 100)) < 1e-4


@pytest.mark.parametrize("seed,n,vocab,max_len", [
    (3, 300, 4, 10), (4, 200, 10000, 25), (6, 8, 3, 150)])
def test_edit_and_last_row_match_python_dp(seed, n, vocab, max_len):
    """Includes references longer than 64 and 128 tokens (multi-word bit vectors)."""
    pairs = random_pairs(seed, n, vocab, max_len) + [([], []), ([], [2] * 70), ([2] * 130, [])]
    refs = [r for _, r in pairs]
    rows = [levenshtein_row(h, r) for h, r in pairs]
    want = torch.tensor([row[-1] / max(len(r), 1) for row, r in zip(rows, refs)])
    for hyp, ref in batches(pairs):
        got = costs.edit(hyp, ref, PAD)
        assert got.dtype == torch.float32 and torch.equal(got, want)
    hyp, ref = to_tensor([h for h, _ in pairs]), to_tensor(refs, extra=2)
    last = costs.edit_last_row(hyp, ref, PAD)
    assert last.shape == (len(pairs), ref.size(1) + 1)
    for i, row in enumerate(rows):
        assert last[i, : len(row)].tolist() == row
        assert (last[i, len(row):] == -1).all()
    assert costs.edit_distance(hyp, ref, PAD).tolist() == [row[-1] for row in rows]


def test_hamming_matches_loop():
    pairs = random_pairs(7, 500, 4, 10) + [([], []), ([], [3]), ([3], [])]
    want = torch.tensor([hamming_loop(h, r) for h, r in pairs])
    for hyp, ref in batches(pairs):
        got = costs.hamming(hyp, ref, PAD)
        assert got.dtype == torch.float32 and torch.equal(got, want)


def test_registry_dtype_and_device():
    assert costs.available() == sorted(costs.COSTS)
    assert {"hamming", "edit", "bleu", "bleu1", "bleu-smooth-all"} <= set(costs.available())
    hyp = to_tensor([[2, 3, 4], [5]], dtype=torch.int32)
    ref = to_tensor([[2, 3], [5, 6, 7]], dtype=torch.int16)
    for name in costs.available():
        out = costs.get_cost(name)(hyp, ref, PAD)
        assert out.dtype == torch.float32 and out.device == hyp.device and out.shape == (2,)
    with pytest.raises(ValueError) as err:
        costs.get_cost("bleu4")
    for name in costs.available():
        assert name in str(err.value)
