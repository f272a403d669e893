"""Cells and candidate sets: always the reference action and EOS, no duplicates, and the drawn
tokens follow their strategy."""

import pytest
import torch
from fairseq.data import Dictionary

from fairseq_searnn import keyed_random
from fairseq_searnn.search import sampling

EOS = 2


def _dictionary(n=30):
    d = Dictionary()
    for i in range(n):
        d.add_symbol(f"w{i}")
    d.finalize(padding_factor=8)  # adds madeupword fillers
    return d


def _inputs(B=4, T=6, seed=0):
    d = _dictionary()
    g = torch.Generator().manual_seed(seed)
    lprobs = torch.log_softmax(torch.randn(B, T, len(d), generator=g) * 3, -1)
    ref = torch.randint(4, 34, (B, T - 1), generator=g)
    ref_len = torch.tensor([T - 1, 3, 0, 2])
    ref = ref.masked_fill(torch.arange(T - 1) >= ref_len.unsqueeze(1), d.pad())
    t = torch.arange(T)
    ref_act = torch.where(t < ref_len.unsqueeze(1), ref.gather(1, t.clamp(max=T - 2).expand(B, T)),
                          torch.full((B, T), EOS))
    return d, lprobs, ref, ref_len, ref_act


def test_allowed_tokens_exclude_specials_and_fillers():
    d = _dictionary()
    allowed = sampling.allowed_tokens(d).tolist()
    assert d.eos() in allowed
    assert not {d.pad(), d.bos(), d.unk()} & set(allowed)
    assert all(not d[i].startswith("madeupword") for i in allowed)
    assert len(allowed) == 31  # 30 words + EOS


def test_full_candidates_add_a_gold_unk_once():
    d = _dictionary()
    allowed = sampling.allowed_tokens(d)
    ref_act = torch.tensor([[d.unk(), 5, EOS]])
    cand, mask = sampling.full_candidates(ref_act, allowed)
    for t in range(3):
        valid = cand[0, t][mask[0, t]].tolist()
        assert valid[0] == ref_act[0, t] and len(valid) == len(set(valid))
        assert set(valid) == set(allowed.tolist()) | {int(ref_act[0, t])}


@pytest.mark.parametrize("strategy", sampling.STRATEGIES)
def test_sampled_sets(strategy):
    d, lprobs, ref, ref_len, ref_act = _inputs()
    allowed = sampling.allowed_tokens(d)
    keys = keyed_random.hash_keys(1, torch.arange(4))
    k, w = 5, 2
    cand, mask = sampling.sampled_candidates(ref_act, lprobs, allowed, strategy, k, keys, EOS,
                                             3.0, ref, ref_len, w)
    B, T, K = cand.shape
    assert k + 2 + (2 * w if strategy == "topk-neighbors" else 0) == K
    for b in range(B):
        for t in range(T):
            valid = cand[b, t][mask[b, t]].tolist()
            assert valid[0] == ref_act[b, t] and EOS in valid
            assert len(valid) == len(set(valid))
            assert set(valid) <= set(allowed.tolist())
            drawn = cand[b, t, 2:2 + k].tolist()
            assert len(set(drawn)) == k  # without replacement
            if strategy.startswith("topk"):
                top = allowed[lprobs[b, t, allowed].topk(k).indices].tolist()
                assert sorted(drawn) == sorted(top)
            if strategy == "topk-neighbors":
                extra = set(valid) - set(drawn) - {EOS, int(ref_act[b, t])}
                near = {int(ref[b, p]) for p in range(max(t - w, 0), min(t + w + 1, ref_len[b]))}
                assert extra <= near


def test_policy_sampling_follows_the_distribution():
    """Single draws (k = 1) from 'policy' match the model's probabilities; 'biased' flattens."""
    V = 6
    d = Dictionary()
    for i in range(V - 4):  # pad, eos, unk, bos + symbols: allowed = eos + 2 words
        d.add_symbol(f"w{i}")
    allowed = sampling.allowed_tokens(d)
    probs = torch.tensor([0.7, 0.2, 0.1])
    lprobs = torch.full((1, 1, len(d)), -1e9)
    lprobs[0, 0, allowed] = probs.log()
    n = 20000
    keys = keyed_random.hash_keys(3, torch.arange(n))
    ref_act = torch.full((n, 1), EOS)
    freq = {}
    for strategy in ("policy", "biased", "uniform"):
        cand, _ = sampling.sampled_candidates(ref_act, lprobs.expand(n, 1, -1), allowed,
                                              strategy, 1, keys, EOS, 4.0)
        drawn = cand[:, 0, 2]
        freq[strategy] = torch.stack([(drawn == a).float().mean() for a in allowed])
    assert torch.allclose(freq["policy"], probs, atol=0.015)
    tempered = torch.softmax(probs.log() / 4.0, 0)
    assert torch.allclose(freq["biased"], tempered, atol=0.015)
    assert torch.allclose(freq["uniform"], torch.full((3,), 1 / 3), atol=0.015)


def test_sample_cells():
    cell_mask = torch.arange(8).unsqueeze(0) < torch.tensor([[8], [3], [1]])
    keys = keyed_random.hash_keys(0, torch.arange(3))
    chosen = sampling.sample_cells(cell_mask, 2, keys)
    # 2 drawn, plus the EOS cell and the one before it (the authors' rule)
    assert 2 <= int(chosen[0].sum()) <= 4 and chosen[0, 6:].all()
    assert chosen.sum(1).tolist()[1:] == [3, 1]
    assert not (chosen & ~cell_mask).any()
    assert torch.equal(sampling.sample_cells(cell_mask, 0, keys), cell_mask)
    many = cell_mask[:1].expand(4000, 8)
    counts = sampling.sample_cells(many, 2, keyed_random.hash_keys(9, torch.arange(4000)))
    assert counts[:, 6:].all()
    assert (counts[:, :6].float().mean(0) - 0.25).abs().max() < 0.03  # 2 of 8, uniformly


def test_emittable_tokens_are_all_but_pad():
    d, *_ = _inputs()
    assert sampling.emittable_tokens(d).tolist() == [i for i in range(len(d)) if i != d.pad()]
