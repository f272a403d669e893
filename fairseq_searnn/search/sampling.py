"""Cells and candidate tokens (SeaRNN Sections 4-5 and Appendix C.2).

Candidate layout per cell, ``candidates: [B, T, K]`` with ``mask: [B, T, K]``:

* slot 0 is always the *reference action* (the reference policy's next token), so a gold
  ``<unk>`` is a candidate and argmin ties resolve to it;
* full sets: slots 1.. hold every allowed target symbol (all but pad, bos, unk and fairseq's
  ``madeupword`` fillers; EOS included), the copy of the reference action masked out;
* sampled sets: slot 1 is EOS, then the ``K`` drawn tokens, then (``topk-neighbors``) the
  reference's tokens at positions ``t-W..t-1, t+1..t+W``; a slot repeating an earlier valid
  one is masked, so a cell has at most ``K + 2W + 2`` distinct candidates. The tokens are drawn
  from every symbol the decoder can emit (:func:`emittable_tokens`: ``<unk>``, ``<s>`` and
  fillers included): the sampled losses renormalise over the candidates, so a symbol that could
  never be drawn would get no gradient and could rise to the top of the model's predictions
  unchecked; drawn, it is pushed down by its cost like any wrong token.

Random draws come from :mod:`fairseq_searnn.keyed_random`, keyed by the sentence.
"""

import torch
from torch import Tensor

from fairseq_searnn import keyed_random

STRATEGIES = ("uniform", "policy", "biased", "topk", "topk-neighbors")


def allowed_tokens(dictionary) -> Tensor:
    """``[A]`` ids of the symbols a candidate may be: all but pad, bos, unk, madeupword*."""
    special = {dictionary.pad(), dictionary.bos(), dictionary.unk()}
    ids = [
        i for i, sym in enumerate(dictionary.symbols)
        if i not in special and not sym.startswith("madeupword")
    ]
    return torch.tensor(ids, dtype=torch.long)


def emittable_tokens(dictionary) -> Tensor:
    """``[E]`` ids of every symbol the decoder can output (all but pad, which fairseq's
    generator masks): what sampled candidate sets draw from."""
    return torch.tensor([i for i in range(len(dictionary)) if i != dictionary.pad()],
                        dtype=torch.long)


def sample_cells(cell_mask: Tensor, num_cells: int, keys: Tensor) -> Tensor:
    """Choose ``num_cells`` cells per sentence uniformly without replacement, plus the last two.

    As the authors' code, the cell of EOS and the last cell before it are always rolled out
    (added when not drawn): a sentence gets ``num_cells`` to ``num_cells + 2`` cells, all of
    them when it has at most ``num_cells + 2``.

    Args:
        cell_mask: ``[B, T]`` the sentence's cells, a left-aligned run (roll-in positions
            0..len, EOS cell incl.).
        num_cells: cells drawn per sentence; 0 keeps them all.
        keys: ``[B]`` int64 per-sentence random keys.
    Returns: ``[B, T]`` bool, the cells to roll out.
    """
    if num_cells <= 0 or num_cells >= cell_mask.size(1):
        return cell_mask.clone()
    T = cell_mask.size(1)
    t = torch.arange(T, device=cell_mask.device)
    u = keyed_random.uniform(keys.unsqueeze(1), keyed_random.Stream.CELLS, t)
    u = u.masked_fill(~cell_mask, 2.0)  # never chosen
    chosen = u.topk(num_cells, dim=1, largest=False).indices
    out = torch.zeros_like(cell_mask)
    out.scatter_(1, chosen, True)
    eos_cell = cell_mask.sum(1, keepdim=True) - 1  # [B, 1]
    last_two = (t.unsqueeze(0) >= eos_cell - 1) & (t.unsqueeze(0) <= eos_cell)
    return (out | last_two) & cell_mask


def full_candidates(ref_action: Tensor, allowed: Tensor):
    """All allowed symbols plus the reference action. ``ref_action: [B, T]`` ->
    ``candidates, mask: [B, T, 1 + A]``."""
    B, T = ref_action.shape
    rest = allowed.to(ref_action.device).view(1, 1, -1).expand(B, T, -1)
    cand = torch.cat([ref_action.unsqueeze(2), rest], dim=2)
    mask = torch.ones_like(cand, dtype=torch.bool)
    mask[:, :, 1:] = rest.ne(ref_action.unsqueeze(2))
    return cand, mask


def sampled_candidates(
    ref_action: Tensor,
    lprobs: Tensor,
    allowed: Tensor,
    strategy: str,
    k: int,
    keys: Tensor,
    eos: int,
    temperature: float = 1.0,
    reference: Tensor = None,
    ref_len: Tensor = None,
    neighbors: int = 0,
):
    """Reference action, EOS and ``k`` tokens drawn without replacement, (+ neighbours).

    Args:
        ref_action: ``[B, T]`` reference action per cell.
        lprobs: ``[B, T, V]`` the model's log-probabilities at each cell (float32; unused,
            may be None, for ``uniform``).
        allowed: ``[A]`` ids the draws range over (``k <= A``; the engine passes
            :func:`emittable_tokens`).
        strategy: one of :data:`STRATEGIES`. ``policy`` samples from the model's distribution,
            ``biased`` from it at ``temperature`` (> 1 flattens it), ``uniform`` uniformly,
            ``topk``/``topk-neighbors`` take the ``k`` most probable; sampling without
            replacement uses the Gumbel-top-k trick.
        keys: ``[B]`` int64 per-sentence random keys.
        reference: ``[B, Lr]`` reference content tokens, ``ref_len: [B]`` their lengths, and
            ``neighbors`` W, for ``topk-neighbors``.
    Returns: ``candidates, mask: [B, T, K']``.
    """
    B, T = ref_action.shape
    device = ref_action.device
    allowed = allowed.to(device)
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown token sampling {strategy!r}; choose from {STRATEGIES}")
    # scores over the whole vocabulary, the symbols that may not be candidates at -inf (a
    # gather of the allowed columns of a [B, T, V] tensor costs more than the draw itself)
    V = int(allowed.max()) + 1 if strategy == "uniform" else lprobs.size(2)
    barred = torch.ones(V, dtype=torch.bool, device=device).index_fill_(0, allowed, False)
    if strategy == "uniform":  # needs no scores: lprobs may be None
        scores = torch.zeros(B, T, V, device=device)
    elif strategy == "biased":
        scores = lprobs / temperature
    else:
        scores = lprobs
    if strategy in ("uniform", "policy", "biased"):
        t = torch.arange(T, device=device).view(1, T, 1)
        tokens = torch.arange(V, device=device).view(1, 1, V)
        scores = scores + keyed_random.gumbel(keys.view(B, 1, 1), keyed_random.Stream.TOKENS, t,
                                              tokens)
    # the k best allowed symbols are among the k + |barred| best symbols: keep the first k
    # allowed ones of those, in order (no masked copy of the scores)
    top = scores.topk(min(k + int(barred.sum()), V), dim=2).indices
    first = barred[top].to(torch.uint8).argsort(dim=2, stable=True)[:, :, :k]
    drawn = top.gather(2, first)  # [B, T, k] token ids
    eos_slot = ref_action.new_full((B, T, 1), eos)
    slots = [ref_action.unsqueeze(2), eos_slot, drawn]
    valid = [torch.ones(B, T, k + 2, dtype=torch.bool, device=device)]
    if strategy == "topk-neighbors" and neighbors > 0:
        offsets = torch.tensor(
            [d for d in range(-neighbors, neighbors + 1) if d != 0], device=device
        )
        pos = torch.arange(T, device=device).view(1, T, 1) + offsets.view(1, 1, -1)
        pos = pos.expand(B, T, offsets.numel())
        inside = (pos >= 0) & (pos < ref_len.view(B, 1, 1))
        if reference.size(1) > 0:
            near = reference.gather(1, pos.clamp(0, reference.size(1) - 1).reshape(B, -1))
        else:  # every reference is empty: no neighbour exists
            near = torch.full_like(pos, eos)
        slots.append(near.view(B, T, -1))
        valid.append(inside)
    cand = torch.cat(slots, dim=2)
    valid = torch.cat(valid, dim=2)
    return cand, valid & ~_repeats_earlier(cand, valid)


def _repeats_earlier(cand: Tensor, valid: Tensor) -> Tensor:
    """``[B, T, K]`` True where the slot's token already is in an earlier valid slot."""
    K = cand.size(2)
    same = cand.unsqueeze(3).eq(cand.unsqueeze(2))  # [B, T, K(slot), K(earlier)]
    earlier = torch.ones(K, K, dtype=torch.bool, device=cand.device).tril(-1)
    return (same & earlier & valid.unsqueeze(2)).any(3)
