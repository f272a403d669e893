"""Keyed draws: deterministic per key, independent of batching, and properly distributed."""

import math

import torch

from fairseq_searnn import keyed_random


def test_same_keys_same_draws_whatever_the_batch():
    ids = torch.arange(50)
    full = keyed_random.uniform(7, ids.unsqueeze(1), torch.arange(30))
    part = keyed_random.uniform(7, ids[[31, 3]].unsqueeze(1), torch.arange(30))
    assert torch.equal(full[[31, 3]], part)
    assert not torch.equal(full, keyed_random.uniform(8, ids.unsqueeze(1), torch.arange(30)))
    assert not torch.equal(keyed_random.uniform(1, 2), keyed_random.uniform(2, 1))


def test_uniform_and_gumbel_distributions():
    u = keyed_random.uniform(3, torch.arange(200_000))
    assert u.min() > 0 and u.max() < 1
    assert abs(u.mean().item() - 0.5) < 0.005 and abs(u.var().item() - 1 / 12) < 0.002
    hist = torch.histc(u, bins=10, min=0, max=1) / u.numel()
    assert (hist - 0.1).abs().max() < 0.005
    g = keyed_random.gumbel(3, torch.arange(200_000), dtype=torch.float64)
    assert abs(g.mean().item() - 0.5772156649) < 0.01  # Euler-Mascheroni
    assert abs(g.var().item() - math.pi**2 / 6) < 0.03
    # CDF exp(-exp(-x)) at a few points
    for x in (-1.0, 0.0, 1.0, 2.0):
        assert abs((g <= x).double().mean().item() - math.exp(-math.exp(-x))) < 0.005


def test_large_and_negative_keys_and_sequence_key():
    a = keyed_random.uniform(torch.tensor([2**40 + 1, -5]), 0)
    b = keyed_random.uniform(torch.tensor([1, -6]), 0)
    assert (a != b).all()
    pad = 1
    right = torch.tensor([[5, 6, 7, pad], [5, 7, 6, 8]])
    left = torch.tensor([[pad, 5, 6, 7], [5, 7, 6, 8]])
    assert torch.equal(keyed_random.sequence_key(right, pad), keyed_random.sequence_key(left, pad))
    assert keyed_random.sequence_key(right, pad).unique().numel() == 2


def test_streams_are_distinct():
    """Every kind of draw has its own stream key: no two kinds ever share their numbers."""
    values = [int(s) for s in keyed_random.Stream]
    assert len(values) == len(set(values)) == len(keyed_random.Stream.__members__)
