"""The training objective around the per-cell losses, shared by every shell (fairseq's
criterions, the ``transformers`` loss): the candidates' log-probabilities, the per-cell SeaRNN
loss, the token cross-entropy term (label-smoothed as fairseq's
``label_smoothed_cross_entropy``), the statistics a shell logs, and alpha's default per cost.

Plain torch: ``lprobs: [B, T, V]`` float log-probabilities of a teacher-forced pass on the
roll-in (:attr:`RolledIn.prev_output_tokens`), ``res`` a :class:`SearchResult`.
"""

from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from fairseq_searnn.search import losses
from fairseq_searnn.search.engine import SearchResult

#: alpha of each cost when none is given (the authors' NMT setting for BLEU)
DEFAULT_ALPHA = {"bleu": 200.0, "bleu1": 200.0, "bleu-smooth-all": 200.0, "hamming": 50.0,
                 "edit": 50.0}


def default_alpha(cost: str, alpha: Optional[float] = None) -> float:
    """``alpha`` when given, else :data:`DEFAULT_ALPHA` of ``cost``."""
    return float(alpha) if alpha is not None else DEFAULT_ALPHA[str(cost)]


def cell_losses(lprobs: Tensor, res: SearchResult, loss: str, sampled: bool, alpha: float,
                eos: int, sampled_softmax: str = "restricted",
                ) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """The SeaRNN loss of every cell.

    Args:
        lprobs: ``[B, T', V]`` (``T' >= T``) log-probabilities at the roll-in's cells.
        res: the search result (candidates, costs, mask ``[B, T, K]``).
        loss: one of :data:`losses.LOSSES`; sampled: the sampled losses (sLL / sKL), whose
            candidates' log-probabilities are renormalised over them (:func:`losses.restrict`)
            with ``sampled_softmax`` ``restricted``, or kept from the full softmax with
            ``full`` (:data:`losses.SAMPLED_SOFTMAXES`); alpha: the KL / appendix losses'
            scale.
        eos: any valid token id (fills the masked candidate slots before the gather).
    Returns:
        ``per_cell: [B, T]`` (0 outside the rolled-out cells), ``cells: [B, T]`` and the LL
        tie-breaking draws used (``[B, T, K]``; None for KL).
    """
    T = res.candidates.size(1)
    lp = lprobs[:, :T].gather(-1, res.candidates.masked_fill(~res.mask, eos))
    if sampled_softmax not in losses.SAMPLED_SOFTMAXES:
        raise ValueError(f"sampled softmax {sampled_softmax!r} unknown; choose from "
                         f"{', '.join(losses.SAMPLED_SOFTMAXES)}")
    if sampled and sampled_softmax == "restricted":
        lp = losses.restrict(lp, res.mask)
    cells = res.mask.any(-1)
    tiebreak = res.tiebreak if loss != "kl" else None
    per_cell = losses.get_loss(loss)(lp, res.costs, res.mask, alpha=alpha, tiebreak=tiebreak)
    return per_cell.masked_fill(~cells, 0.0), cells, tiebreak


def search_stats(res: SearchResult, cells: Tensor, loss: str, alpha: float,
                 tiebreak: Optional[Tensor]) -> Dict[str, object]:
    """Sums over the rolled-out cells ``cells: [B, T]`` for logging (``searnn_*`` keys): the
    minimum and the reference action's cost, roll-outs (all, learned), search time, and the
    target's mass on the reference action and entropy."""
    masked = res.costs.masked_fill(~res.mask, float("inf"))
    q = losses.target(loss, res.costs, res.mask, alpha=alpha, tiebreak=tiebreak)
    return dict(
        searnn_min_cost=masked.min(-1).values[cells].sum().data,
        searnn_ref_cost=res.costs[..., 0][cells].sum().data,
        searnn_rollouts=res.stats["rollouts"],
        searnn_learned_rollouts=res.stats["learned_rollouts"],
        searnn_search_time=res.stats["search_time"],
        searnn_target_ref_mass=q[..., 0][cells].sum().data,
        searnn_target_entropy=losses.entropy(q)[cells].sum().data,
    )


def token_nll(lprobs: Tensor, target: Tensor, pad: int) -> Tensor:
    """Token NLL ``[B, T]`` of ``target: [B, T]`` under ``lprobs: [B, T, V]`` (0 at pad)."""
    nll = -lprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return nll.masked_fill(target.eq(pad), 0.0)


def token_loss(lprobs: Tensor, target: Tensor, pad: int, smoothing: float = 0.0) -> Tensor:
    """The token cross-entropy term ``[B, T]`` (0 at pad), label-smoothed with ``smoothing``
    as fairseq's ``label_smoothed_cross_entropy``: ``(1 - eps - eps_i) * nll + eps_i *
    sum_v -lprobs[v]`` with ``eps_i = eps / (V - 1)``."""
    nll = token_nll(lprobs, target, pad)
    if smoothing == 0:
        return nll
    eps_i = smoothing / (lprobs.size(-1) - 1)
    smooth = (-lprobs.sum(-1)).masked_fill(target.eq(pad), 0.0)
    return (1.0 - smoothing - eps_i) * nll + eps_i * smooth


def add_padded(x: Tensor, y: Tensor) -> Tensor:
    """``x: [B, Tx] + y: [B, Ty]``, the shorter right-padded with zeros: ``[B, max]``."""
    width = max(x.size(1), y.size(1))
    return (torch.nn.functional.pad(x, (0, width - x.size(1)))
            + torch.nn.functional.pad(y, (0, width - y.size(1))))


def mix(per_cell: Tensor, tokens: Tensor, mle_weight: float) -> Tensor:
    """``(1 - w) * per_cell + w * tokens`` (``[B, T]`` each, widths may differ); ``per_cell``
    itself when ``w`` is 0."""
    if mle_weight <= 0:
        return per_cell
    return add_padded((1 - mle_weight) * per_cell, mle_weight * tokens)


def summarize(total: Dict[str, float]) -> Dict[str, float]:
    """The ratios a shell logs from summed statistics (``searnn_*`` sums of
    :func:`search_stats`, ``searnn_cells``): per cell ``min_cost``, ``ref_cost``,
    ``target_ref_mass``, ``target_entropy``; ``learned_share`` of the roll-outs and
    ``rollouts_per_s`` of search time. Empty without roll-outs."""
    rollouts = float(total.get("searnn_rollouts", 0))
    if rollouts <= 0:
        return {}
    cells = max(float(total["searnn_cells"]), 1.0)
    out = {name: float(total["searnn_" + name]) / cells
           for name in ("min_cost", "ref_cost", "target_ref_mass", "target_entropy")}
    out["learned_share"] = float(total["searnn_learned_rollouts"]) / rollouts
    out["rollouts_per_s"] = rollouts / max(float(total["searnn_search_time"]), 1e-9)
    return out
