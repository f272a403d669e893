"""The relaxation math on its own: soft argmax, Gumbel noise and samples, keyed ε mixing."""

import math

import pytest
import torch
import torch.nn as nn

from fairseq_searnn.models.relaxed_feeding import (
    RelaxedFeed,
    gumbel_noise,
    mix_uniforms,
    soft_argmax,
)

PAD = 1


def _identity_feed(vocab, feed, alpha=1.0, epsilon=0.0, n=1, seed=7):
    """A feed whose embedding table is the identity: decisions come out as distributions."""
    embed = nn.Embedding(vocab, vocab, padding_idx=PAD)
    with torch.no_grad():
        embed.weight.copy_(torch.eye(vocab))
    return RelaxedFeed(embed, feed, alpha, epsilon, torch.arange(n) * 7919 + 3, seed, PAD)


def test_soft_argmax_limits_and_stability():
    s = torch.tensor([[0.3, -1.0, 2.0, 1.9]], requires_grad=True)
    assert torch.allclose(soft_argmax(s, 1.0), torch.softmax(s, -1))
    assert torch.allclose(soft_argmax(s, 1e4), torch.tensor([[0.0, 0.0, 1.0, 0.0]]))
    hard = soft_argmax(s, math.inf)  # no NaN even at infinite alpha
    assert torch.equal(hard, torch.tensor([[0.0, 0.0, 1.0, 0.0]]))
    (hard[0, 2] * 3).backward()
    assert torch.isfinite(s.grad).all()


def test_gumbel_noise_is_standard_gumbel():
    n = 100_000
    g = gumbel_noise(11, torch.arange(n), torch.zeros(n, dtype=torch.long), 1, torch.float64)
    g = g.view(-1)
    euler_gamma = 0.5772156649
    assert g.mean().item() == pytest.approx(euler_gamma, abs=0.02)
    assert g.var().item() == pytest.approx(math.pi**2 / 6, rel=0.03)
    # Kolmogorov-Smirnov distance to the Gumbel CDF exp(-exp(-x)); 1% critical value 1.63/sqrt(n)
    x = g.sort().values
    cdf = torch.exp(-torch.exp(-x))
    i = torch.arange(1, n + 1, dtype=torch.float64)
    ks = torch.maximum(i / n - cdf, cdf - (i - 1) / n).max().item()
    assert ks < 1.63 / math.sqrt(n)
    # independent across positions and tokens, identical for identical keys
    a = gumbel_noise(11, torch.tensor([5, 5]), torch.tensor([1, 2]), 6, torch.float32)
    b = gumbel_noise(11, torch.tensor([5]), torch.tensor([2]), 6, torch.float32)
    assert torch.equal(a[1], b[0]) and not torch.equal(a[0], a[1])
    assert len(set(a[0].tolist())) == 6


def test_hard_sample_draws_from_the_softmax_and_never_pad():
    vocab, n = 5, 40_000
    scores = torch.tensor([0.0, 3.0, 1.0, 2.0, -1.0])  # token 1 = PAD has the top score
    feed = _identity_feed(vocab, "hard-sample", n=n)
    picks = feed.decide(scores.expand(n, vocab), feed.seq_keys, torch.full((n,), 3)).sum(0) / n
    allowed = scores.clone()
    allowed[PAD] = -math.inf
    assert picks[PAD] == 0
    assert torch.allclose(picks, torch.softmax(allowed, -1), atol=0.01)


def test_soft_feeds_follow_alpha_and_reach_the_hard_feeds():
    vocab, n = 7, 64
    scores = torch.randn(n, vocab, generator=torch.Generator().manual_seed(0))
    positions = torch.full((n,), 4)
    soft = {a: _identity_feed(vocab, "soft-sample", alpha=a, n=n) for a in (0.5, 5.0, 1e6)}
    out = {a: f.decide(scores, f.seq_keys, positions) for a, f in soft.items()}
    assert not torch.allclose(out[0.5], out[5.0], atol=1e-3)  # alpha is not a no-op
    hard = _identity_feed(vocab, "hard-sample", n=n)
    assert torch.allclose(out[1e6], hard.decide(scores, hard.seq_keys, positions))
    greedy = _identity_feed(vocab, "soft-greedy", alpha=1e6, n=n)
    hard_greedy = _identity_feed(vocab, "hard-greedy", n=n)
    assert torch.allclose(greedy.decide(scores, greedy.seq_keys, positions),
                          hard_greedy.decide(scores, greedy.seq_keys, positions))
    one = _identity_feed(vocab, "soft-greedy", alpha=2.0, n=n)
    masked = scores.clone()
    masked[:, PAD] = -math.inf
    assert torch.allclose(one.decide(scores, one.seq_keys, positions),
                          torch.softmax(2.0 * masked, -1), atol=1e-6)


def test_gold_mask_rate_keys_padding_and_start():
    n, length = 2000, 12
    prev = torch.full((n, length), 9)
    prev[: n // 2, 8:] = PAD
    for eps in (0.0, 0.3, 1.0):
        feed = _identity_feed(10, "soft-greedy", epsilon=eps, n=n)
        mask = feed.gold_mask(prev)
        assert mask[:, 0].all() and mask[prev.eq(PAD)].all()
        free = mask[n // 2:, 1:]
        assert free.float().mean().item() == pytest.approx(eps, abs=0.02)
    # a sentence's draws depend on its key, not on the batch holding it
    keys = torch.tensor([10, 20, 30])
    full = mix_uniforms(3, keys, torch.arange(6))
    assert torch.equal(full[1:2], mix_uniforms(3, keys[1:2], torch.arange(6)))
    assert not torch.equal(full, mix_uniforms(4, keys, torch.arange(6)))


def test_mix_keeps_gold_rows_and_gradients():
    vocab, dim = 6, 3
    embed = nn.Embedding(vocab, dim, padding_idx=PAD)
    feed = RelaxedFeed(embed, "soft-greedy", 1.0, 0.5, torch.tensor([1, 2]), 0, PAD)
    gold = torch.randn(2, 4, dim)
    scores = torch.randn(2, 4, vocab, requires_grad=True)
    gold_mask = torch.tensor([[True, False, True, False], [False, True, True, True]])
    out = feed.mix(gold, scores, gold_mask, torch.arange(1, 5))
    assert torch.equal(out[gold_mask], gold[gold_mask])
    expected = torch.softmax(scores.masked_fill(torch.arange(vocab) == PAD, -math.inf), -1)
    assert torch.allclose(out[~gold_mask], expected[~gold_mask] @ embed.weight)
    out.sum().backward()
    assert scores.grad[~gold_mask].abs().sum() > 0 and scores.grad[gold_mask].abs().sum() == 0
