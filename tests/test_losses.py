"""Per-cell losses against their formulas (SeaRNN eqs. 3, 4, 6, 7)."""

import math

import pytest
import torch

from fairseq_searnn.search import losses


def _inputs(seed=0, B=3, T=4, K=5):
    g = torch.Generator().manual_seed(seed)
    lp = torch.log_softmax(torch.randn(B, T, K, generator=g), -1)
    costs = torch.rand(B, T, K, generator=g)
    mask = torch.rand(B, T, K, generator=g) > 0.3
    mask[..., 0] = True
    mask[0, 1] = False  # an empty cell
    return lp, costs, mask


def test_ll_and_ties():
    lp, costs, mask = _inputs()
    got = losses.ll(lp, costs, mask)
    for b in range(3):
        for t in range(4):
            if not mask[b, t].any():
                assert got[b, t] == 0
                continue
            valid = [k for k in range(5) if mask[b, t, k]]
            best = min(valid, key=lambda k: (costs[b, t, k], k))
            assert torch.isclose(got[b, t], -lp[b, t, best])
    tied = torch.zeros(1, 1, 3)
    assert losses.best_candidate(tied, torch.ones(1, 1, 3, dtype=torch.bool)).item() == 0


def test_ties_broken_uniformly_by_the_draws():
    """With draws, a* is a uniformly random minimum: never a non-minimum or a masked slot."""
    n, K = 30000, 5
    costs = torch.tensor([0.2, 0.1, 0.3, 0.1, 0.1]).expand(n, 1, K)
    mask = torch.ones(n, 1, K, dtype=torch.bool)
    mask[:, :, 4] = False  # a masked minimum is never chosen
    draws = torch.rand(n, 1, K, generator=torch.Generator().manual_seed(0))
    got = losses.best_candidate(costs, mask, draws).flatten()
    freq = torch.bincount(got, minlength=K).float() / n
    assert freq[[0, 2, 4]].sum() == 0
    assert (freq[[1, 3]] - 0.5).abs().max() < 0.02
    lp = torch.log_softmax(torch.randn(n, 1, K), -1)
    torch.testing.assert_close(losses.ll(lp, costs, mask, tiebreak=draws),
                               -lp.gather(-1, got.view(n, 1, 1)).squeeze(-1))
    # a unique minimum ignores the draws
    assert (losses.best_candidate(costs.clone().index_fill_(2, torch.tensor([3]), 0.0), mask,
                                  draws) == 3).all()


def test_target_distribution_of_each_loss():
    lp, costs, mask = _inputs(2)
    q = losses.target("kl", costs, mask, 3.0)
    torch.testing.assert_close(q, losses.target_distribution(costs, mask, 3.0))
    one_hot = losses.target("ll", costs, mask, 3.0)
    best = losses.best_candidate(costs, mask)
    cells = mask.any(-1)
    assert torch.equal(one_hot.argmax(-1)[cells], best[cells])
    assert torch.equal(one_hot.sum(-1), cells.float())
    assert torch.equal(losses.entropy(one_hot), torch.zeros_like(cells, dtype=torch.float))
    h = losses.entropy(q)[cells]
    want = -(q * q.clamp(min=1e-30).log()).sum(-1)[cells]
    torch.testing.assert_close(h, want)


def test_kl_formula_and_limit():
    lp, costs, mask = _inputs(1)
    alpha = 3.0
    got = losses.kl(lp, costs, mask, alpha)
    for b in range(3):
        for t in range(4):
            valid = [k for k in range(5) if mask[b, t, k]]
            if not valid:
                assert got[b, t] == 0
                continue
            z = sum(math.exp(-alpha * costs[b, t, k]) for k in valid)
            want = -sum(math.exp(-alpha * costs[b, t, k]) / z * lp[b, t, k] for k in valid)
            assert abs(got[b, t].item() - want) < 1e-5
    # alpha -> infinity: the target distribution becomes the argmin (LL)
    assert torch.allclose(losses.kl(lp, costs, mask, 1e6), losses.ll(lp, costs, mask), atol=1e-5)


def test_restrict_renormalises_over_candidates():
    lp, costs, mask = _inputs(2)
    r = losses.restrict(lp, mask)
    for b in range(3):
        for t in range(4):
            if mask[b, t].any():
                assert torch.isclose(r[b, t][mask[b, t]].exp().sum(), torch.tensor(1.0))
                want = lp[b, t][mask[b, t]] - torch.logsumexp(lp[b, t][mask[b, t]], 0)
                assert torch.allclose(r[b, t][mask[b, t]], want, atol=1e-6)
    assert torch.isfinite(r).all()


def test_llcas_and_hinge_formulas():
    lp, costs, mask = _inputs(3)
    alpha = 2.0
    llcas = losses.llcas(lp, costs, mask, alpha)
    hinge = losses.hinge(lp, costs, mask, alpha)
    for b in range(3):
        for t in range(4):
            valid = [k for k in range(5) if mask[b, t, k]]
            if not valid:
                assert llcas[b, t] == 0 and hinge[b, t] == 0
                continue
            best = min(valid, key=lambda k: (costs[b, t, k], k))
            aug = {k: lp[b, t, k] + alpha * costs[b, t, k] for k in valid}
            z = math.log(sum(math.exp(v) for v in aug.values()))
            assert abs(llcas[b, t].item() - (z - aug[best])) < 1e-5
            assert abs(hinge[b, t].item() - (max(aug.values()) - lp[b, t, best])) < 1e-5


@pytest.mark.parametrize("name", losses.LOSSES)
def test_equal_costs_give_finite_loss_and_half_precision_is_float32(name):
    lp, _, mask = _inputs(4)
    fn = losses.get_loss(name)
    out = fn(lp.to(torch.bfloat16), torch.zeros_like(lp), mask, 200.0)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    lp.requires_grad_(True)
    fn(losses.restrict(lp, mask), torch.ones_like(lp), mask, 200.0).sum().backward()
    assert torch.isfinite(lp.grad).all()


def test_unknown_loss_name():
    with pytest.raises(ValueError, match="llcas"):
        losses.get_loss("nope")
