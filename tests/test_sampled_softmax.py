"""``--searnn-sampled-softmax``: sLL / sKL on the candidates' log-probabilities renormalised over
them (restricted, the paper) or taken from the full softmax (full)."""

import pytest
import torch

import helpers
from fairseq_searnn.search import SearchResult, losses, objective

EOS = 2


def _result():
    """Two cells over a vocabulary of 6: candidates {0, 3, 4} and {5, 1}; token 2 (and 1 in the
    first cell) outside the candidates."""
    candidates = torch.tensor([[[0, 3, 4], [5, 1, EOS]]])
    costs = torch.tensor([[[0.1, 0.4, 0.3], [0.0, 0.5, 0.0]]])
    mask = torch.tensor([[[True, True, True], [True, True, False]]])
    return SearchResult(rollin=torch.zeros(1, 2, dtype=torch.long), candidates=candidates,
                        costs=costs, mask=mask)


def test_full_softmax_equals_hand_computation_and_pushes_other_tokens_down():
    res, alpha = _result(), 3.0
    logits = torch.tensor([[[0.5, -1.0, 2.0, 0.3, 0.1, -0.2],
                            [1.0, 0.2, -0.5, 0.0, 0.7, 0.4]]], dtype=torch.float64,
                          requires_grad=True)
    lprobs = torch.log_softmax(logits, -1)
    per_cell, cells, _ = objective.cell_losses(lprobs, res, "kl", sampled=True, alpha=alpha,
                                               eos=EOS, sampled_softmax="full")
    (grad,) = torch.autograd.grad(per_cell.sum(), logits, retain_graph=True)
    per_cell = per_cell.detach()
    p = torch.softmax(logits.detach(), -1)
    for t, ks in ((0, [0, 3, 4]), (1, [5, 1])):
        c = torch.tensor([float(res.costs[0, t, i]) for i in range(len(ks))],
                         dtype=torch.float64)
        q = torch.softmax(-alpha * c, 0)
        log_p = p[0, t, ks].log()  # not renormalised over the candidates
        kl = float((q * (q.log() - log_p)).sum())
        entropy = float(-(q * q.log()).sum())
        # the loss is the cross-entropy -sum q log p: KL + H(q), the same gradient
        assert abs(float(per_cell[0, t]) - (kl + entropy)) < 1e-6
        outside = [v for v in range(6) if v not in ks]
        for v in outside:  # d loss / d logit_v = p_v * sum q = p_v > 0: gradient descent
            assert float(grad[0, t, v]) > 0  # lowers it
            assert abs(float(grad[0, t, v]) - float(p[0, t, v])) < 1e-6  # float32 losses
    restricted, _, _ = objective.cell_losses(lprobs, res, "kl", sampled=True, alpha=alpha,
                                             eos=EOS)
    (grad_r,) = torch.autograd.grad(restricted.sum(), logits)
    # restricted: no push on the outside tokens (float32 rounding aside)
    assert abs(float(grad_r[0, 0, 2])) < 1e-6 < 0.1 < float(grad[0, 0, 2])
    assert bool((per_cell > restricted).all())  # full log-probs are lower


@pytest.mark.parametrize("loss", ["ll", "kl"])
def test_restricted_is_the_default_and_renormalises(loss):
    res = _result()
    lprobs = torch.log_softmax(torch.randn(1, 2, 6, generator=torch.Generator().manual_seed(0)),
                               -1)
    default, _, _ = objective.cell_losses(lprobs, res, loss, sampled=True, alpha=2.0, eos=EOS)
    lp = lprobs.gather(-1, res.candidates.masked_fill(~res.mask, EOS))
    want = losses.get_loss(loss)(losses.restrict(lp, res.mask), res.costs, res.mask, alpha=2.0)
    torch.testing.assert_close(default, want)
    full, _, _ = objective.cell_losses(lprobs, res, loss, sampled=True, alpha=2.0, eos=EOS,
                                       sampled_softmax="full")
    torch.testing.assert_close(full, losses.get_loss(loss)(lp, res.costs, res.mask, alpha=2.0))
    with pytest.raises(ValueError, match="sampled softmax"):
        objective.cell_losses(lprobs, res, loss, sampled=True, alpha=2.0, eos=EOS,
                              sampled_softmax="nope")


def test_criterion_option_reaches_the_loss(data_bin):
    extra = ["--searnn-tokens", "3", "--searnn-token-sampling", "policy", "--rollin", "learned",
             "--rollout", "mixed", "--searnn-cost", "bleu", "--searnn-alpha", "5",
             "--rollout-max-len-b", "10"]
    _, task, model, crit = helpers.build(data_bin, "lstm", "searnn_skl",
                                         extra + ["--searnn-sampled-softmax", "full"])
    _, _, _, paper = helpers.build(data_bin, "lstm", "searnn_skl", extra)
    sample = helpers.valid_batch(task, 8)
    model.train()
    torch.manual_seed(7)
    loss, size, _ = crit(model, sample)
    torch.manual_seed(7)
    res = crit.collect_costs(model, sample)
    lprobs = model.get_normalized_probs(
        model(**dict(sample["net_input"],
                     prev_output_tokens=crit.search.roll_in(model, sample, 7).prev_output_tokens)),
        log_probs=True)
    want = 0.0
    for b, t in res.mask.any(-1).nonzero().tolist():
        ks = res.mask[b, t].nonzero().flatten()
        lp = lprobs[b, t, res.candidates[b, t, ks]]
        want = want - (torch.softmax(-5 * res.costs[b, t, ks], 0) * lp).sum()
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-5)
    torch.manual_seed(7)
    assert float(paper(model, sample)[0].detach()) < float(loss.detach())  # renormalised: higher


@pytest.mark.parametrize("name,extra", [
    ("searnn_kl", ["--searnn-sampled-softmax", "full"]),
])
def test_full_softmax_on_a_full_criterion_fails_at_start_up(data_bin, name, extra):
    with pytest.raises(ValueError, match="--searnn-sampled-softmax"):
        helpers.build(data_bin, "lstm", name, extra)
