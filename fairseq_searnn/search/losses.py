"""Cost-sensitive losses per cell (SeaRNN Section 4, Section 5 and Appendix C.1).

All functions take the model's log-probabilities of the candidates ``lp: [B, T, K]``, the cost
vectors ``costs: [B, T, K]`` and ``mask: [B, T, K]``, and return a per-cell loss ``[B, T]``
(0 where a cell has no valid candidate). Everything is computed in float32.

* full losses (``ll``, ``kl``) take ``lp`` from the log-softmax over the whole vocabulary;
* sampled losses (``sLL``, ``sKL``) take ``lp`` renormalised over the valid candidates
  (:func:`restrict`), the softmax "applied only on the tokens that were sampled"; with the
  ``full`` sampled softmax (:data:`SAMPLED_SOFTMAXES`) they keep the full softmax's
  log-probabilities of the candidates, so that the mass outside them is pushed down too.

``a* = argmin_k costs`` (LL, LLCAS, hinge) breaks exact ties uniformly at random when given
``tiebreak: [B, T, K]`` (independent uniform draws, e.g. :attr:`SearchResult.tiebreak`): among
the minimum-cost candidates the one with the largest draw wins. Without it ties go to the lowest
slot.
"""

from typing import Optional

import torch
from torch import Tensor

APPENDIX_LOSSES = ("llcas", "hinge")  # Appendix C.1
LOSSES = ("ll", "kl") + APPENDIX_LOSSES
#: where the sampled losses take the candidates' log-probabilities from: the softmax
#: renormalised over the candidates (the paper's Section 5) or the full softmax
SAMPLED_SOFTMAXES = ("restricted", "full")


def restrict(lp: Tensor, mask: Tensor) -> Tensor:
    """Renormalise ``lp: [B, T, K]`` over the valid candidates (log-softmax restricted)."""
    lp = lp.float().masked_fill(~mask, float("-inf"))
    out = torch.log_softmax(lp, dim=-1)
    return out.masked_fill(~mask, 0.0)  # empty cells stay finite


def best_candidate(costs: Tensor, mask: Tensor, tiebreak: Optional[Tensor] = None) -> Tensor:
    """``a* = argmin_k costs``: ``[B, T]`` slot index.

    Exact ties go to the tied slot with the largest ``tiebreak`` draw (``[B, T, K]``, uniform:
    a uniformly random minimum), or without draws to the lowest slot. Cells without a valid
    candidate give 0."""
    c = costs.float().masked_fill(~mask, float("inf"))
    if tiebreak is None:
        return c.argmin(dim=-1)
    tied = c.eq(c.min(dim=-1, keepdim=True).values) & mask
    return tiebreak.float().masked_fill(~tied, -1.0).argmax(dim=-1)


def _gather(x: Tensor, index: Tensor) -> Tensor:
    return x.gather(-1, index.unsqueeze(-1)).squeeze(-1)


def ll(lp: Tensor, costs: Tensor, mask: Tensor, alpha: float = 1.0,
       tiebreak: Optional[Tensor] = None) -> Tensor:
    """Log-loss on the minimum-cost candidate (eq. 3): ``-lp[a*]``."""
    loss = -_gather(lp.float(), best_candidate(costs, mask, tiebreak))
    return loss.masked_fill(~mask.any(-1), 0.0)


def target_distribution(costs: Tensor, mask: Tensor, alpha: float) -> Tensor:
    """``P_C = softmax(-alpha * c)`` over the valid candidates (eq. 4): ``[B, T, K]``."""
    logits = (-alpha * costs.float()).masked_fill(~mask, float("-inf"))
    q = torch.softmax(logits, dim=-1)
    return q.masked_fill(~mask, 0.0)  # all-masked cells give NaN rows: zero them


def kl(lp: Tensor, costs: Tensor, mask: Tensor, alpha: float = 1.0,
       tiebreak: Optional[Tensor] = None) -> Tensor:
    """Cross-entropy between ``P_C`` and the model (eq. 4): ``-sum_a P_C(a) lp(a)``
    (``tiebreak`` unused: ties share the target's mass)."""
    q = target_distribution(costs, mask, alpha)
    return -(q * lp.float().masked_fill(~mask, 0.0)).sum(-1)


def llcas(lp: Tensor, costs: Tensor, mask: Tensor, alpha: float = 1.0,
          tiebreak: Optional[Tensor] = None) -> Tensor:
    """Log-loss with cost-augmented softmax over the candidates (Appendix C.1, eq. 6)."""
    aug = (lp.float() + alpha * costs.float()).masked_fill(~mask, float("-inf"))
    loss = -_gather(torch.log_softmax(aug, dim=-1), best_candidate(costs, mask, tiebreak))
    return loss.masked_fill(~mask.any(-1), 0.0)


def hinge(lp: Tensor, costs: Tensor, mask: Tensor, alpha: float = 1.0,
          tiebreak: Optional[Tensor] = None) -> Tensor:
    """Structured hinge (Appendix C.1, eq. 7): ``max_a (s(a) + alpha c(a)) - s(a*)``.
    Scores enter up to a per-cell constant, so log-probabilities give the same loss."""
    lp = lp.float()
    aug = (lp + alpha * costs.float()).masked_fill(~mask, float("-inf"))
    loss = aug.max(-1).values - _gather(lp, best_candidate(costs, mask, tiebreak))
    return loss.masked_fill(~mask.any(-1), 0.0)


def target(name: str, costs: Tensor, mask: Tensor, alpha: float,
           tiebreak: Optional[Tensor] = None) -> Tensor:
    """The distribution ``[B, T, K]`` over the candidates that the loss ``name`` moves the
    model towards: ``P_C`` for ``kl``, one-hot on ``a*`` otherwise (zero on empty cells)."""
    if name == "kl":
        return target_distribution(costs, mask, alpha)
    one_hot = torch.zeros_like(costs, dtype=torch.float32)
    one_hot.scatter_(-1, best_candidate(costs, mask, tiebreak).unsqueeze(-1), 1.0)
    return one_hot * mask.any(-1, keepdim=True)


def entropy(q: Tensor) -> Tensor:
    """Entropy in nats of distributions ``q: [..., K]`` (0 log 0 = 0): ``[...]``."""
    return -(q * q.clamp(min=1e-30).log()).sum(-1)


def get_loss(name: str):
    """The per-cell loss function called ``name`` (one of :data:`LOSSES`)."""
    if name not in LOSSES:
        raise ValueError(f"unknown SeaRNN loss {name!r}; choose from {', '.join(LOSSES)}")
    return globals()[name]
