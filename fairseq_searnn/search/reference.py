"""Reference policies of SeaRNN (Leblond et al., 2018, Appendix B and C.2), batched over rows.

After a roll-in prefix ``p`` (possibly ending with a forced candidate token), a reference
policy continues with a suffix ``y[j:]`` of the reference ``y``; this module says where that
suffix starts:

- ``copy``: ``j = min(|p|, |y|)``, the reference's tokens after the prefix's position (the
  paper's default; optimal for the Hamming cost).
- ``best-suffix``: ``j`` in ``{0..|y|}`` minimising ``selection_cost(p + y[j:], y)`` (paper C.2
  uses BLEU-1). Ties go to the ``j`` closest to the copy position ``min(|p|, |y|)``, then to the
  smallest ``j``.

Best-suffix has exact fast paths for the ``edit`` and ``bleu1`` costs (:func:`selection_scores`)
and a chunked brute force for any other cost. Tensors: ``prefix`` [N, Lp], ``ref`` [N, Lr],
content tokens right-padded with ``pad``; no Python loop over rows.
"""

from typing import Callable, Optional, Union

import torch
from torch import Tensor

from fairseq_searnn import costs

POLICIES = ("copy", "best-suffix")
DEFAULT_SELECTION = "bleu1"  # paper, Appendix C.2
MAX_ROWS = 2**16  # candidate hypotheses per brute-force chunk

CostLike = Union[None, str, Callable[[Tensor, Tensor, int], Tensor]]


def _cost_fn(selection_cost: CostLike) -> Callable[[Tensor, Tensor, int], Tensor]:
    """A cost function from a function, a :mod:`costs` name, or None (:data:`DEFAULT_SELECTION`)."""
    if selection_cost is None:
        selection_cost = DEFAULT_SELECTION
    return costs.get_cost(selection_cost) if isinstance(selection_cost, str) else selection_cost


def concat(prefix: Tensor, ref: Tensor, start: Tensor, pad: int) -> Tensor:
    """Hypotheses ``prefix + ref[start:]``, right-padded.

    prefix: LongTensor[N, Lp], ref: LongTensor[N, Lr] (right-padded with ``pad``), start:
    LongTensor[N] (clamped to ``[0, |ref|]``). Returns LongTensor[N, L] with ``L`` the longest
    result (``L`` may be 0).
    """
    p_len, r_len = costs.lengths(prefix, pad), costs.lengths(ref, pad)
    start = torch.minimum(start.clamp(min=0), r_len)
    total = p_len + r_len - start
    width = int(total.max()) if total.numel() else 0
    k = torch.arange(width, device=prefix.device).unsqueeze(0)
    p_src = torch.nn.functional.pad(prefix, (0, 1), value=pad)
    r_src = torch.nn.functional.pad(ref, (0, 1), value=pad)
    p_tok = p_src.gather(1, k.clamp(max=prefix.size(1)).expand(prefix.size(0), -1))
    r_idx = (start.unsqueeze(1) + k - p_len.unsqueeze(1)).clamp(0, ref.size(1))
    r_tok = r_src.gather(1, r_idx)
    out = torch.where(k < p_len.unsqueeze(1), p_tok, r_tok)
    return out.masked_fill(k >= total.unsqueeze(1), pad)


def select_start(scores: Tensor, copy: Tensor) -> Tensor:
    """Pick the start with the smallest score; ties: closest to ``copy``, then smallest ``j``.

    scores: FloatTensor[N, Lr + 1] (``inf`` where ``j > |ref|``), copy: LongTensor[N].
    Returns LongTensor[N] (``copy`` for a row whose scores are all NaN).
    """
    n, width = scores.shape
    j = torch.arange(width, device=scores.device).unsqueeze(0)
    tie = scores == scores.min(1, keepdim=True).values
    rank = (j - copy.unsqueeze(1)).abs() * (width + 1) + j
    best = rank.masked_fill(~tie, torch.iinfo(torch.long).max).argmin(1)
    return torch.where(tie.any(1), best, copy)


def _edit_scores(prefix: Tensor, ref: Tensor, pad: int) -> Tensor:
    """Selection scores for the ``edit`` cost: ``edit(p, y[:j]) / max(|y|, 1)``.

    [N, Lp], [N, Lr] -> FloatTensor[N, Lr + 1] (``inf`` for ``j > |y|``). Exact shortcut: for
    every ``j``, ``edit(p + y[j:], y) = min_k edit(p, y[:k]) + edit(y[j:], y[k:])`` (split the
    alignment where ``p`` ends). The ``k = j`` term is ``edit(p, y[:j])``; a ``k != j`` term is
    ``>= edit(p, y[:k]) + |j - k| >= m + 1`` with ``m = min_k edit(p, y[:k])``. Hence
    ``edit(p + y[j:], y) = m`` iff ``edit(p, y[:j]) = m``, and both are ``> m`` otherwise: the
    two score vectors have the same minimum and the same argmin set, so the tie rule picks the
    same ``j`` as the brute force.
    """
    dist = costs.edit_last_row(prefix, ref, pad)
    r_len = costs.lengths(ref, pad).unsqueeze(1)
    scores = costs.normalised_edit(dist, r_len.expand_as(dist))
    return scores.masked_fill(dist < 0, float("inf")).to(ref.device)


def _bleu1_scores(prefix: Tensor, ref: Tensor, pad: int) -> Tensor:
    """Exact ``bleu1(p + y[j:], y)`` for every ``j`` -> FloatTensor[N, Lr + 1] (``inf``: j > |y|).

    With ``c(g)`` the count of token ``g`` in ``p`` and ``b_k`` the occurrences of ``y_k`` in
    ``y[:k]``, adding ``y_k`` to the suffix raises the clipped unigram matches by one iff
    ``c(y_k) <= b_k`` (``gain_k``). So ``matches(j) = |y| - sum_k gain_k + sum_{k >= j} gain_k``
    (all of ``y`` is matched at ``j = 0``), the hypothesis has ``|p| + |y| - j`` tokens, and the
    cost is :func:`costs.bleu1_from_counts` of these integers, bit-identical to
    :func:`costs.bleu1` on the concatenated hypothesis. One stable per-row sort of the packed
    ``[p | y]`` tokens gives ``c`` and ``b``: within a run of equal tokens, the prefix cells come
    first, then the reference cells in order.
    """
    n, width = ref.shape
    p_len, r_len = costs.lengths(prefix, pad), costs.lengths(ref, pad)
    packed = costs.Packed(prefix.long(), ref.long(), p_len, r_len, 0)
    keys, perm = torch.sort(packed.tok, dim=1, stable=True)
    is_p, is_r = packed.kinds(perm)
    start = torch.ones_like(keys, dtype=torch.bool)
    start[:, 1:] = keys[:, 1:] != keys[:, :-1]
    run = start.cumsum(1)
    cells = packed.cells
    first = torch.full((n, keys.size(1) + 1), keys.size(1), dtype=torch.long, device=ref.device)
    first = first.scatter_reduce(1, run, cells, "amin").gather(1, run)
    in_p = torch.zeros(n, keys.size(1) + 1, dtype=torch.long, device=ref.device)
    in_p = in_p.scatter_add(1, run, is_p.long()).gather(1, run)
    pos = (perm - packed.r_start).clamp(min=0)
    gain = is_r & (in_p <= cells - first - in_p)  # before y_k in its run: in_p + b_k cells
    gains = torch.zeros(n, width + 1, dtype=torch.long, device=ref.device)
    gains.scatter_add_(1, torch.where(is_r, pos, width), gain.long())
    gains[:, width] = 0
    suffix = gains.flip(1).cumsum(1).flip(1)  # [N, Lr + 1]: sum_{k >= j} gain_k
    matches = r_len.unsqueeze(1) - suffix[:, :1] + suffix
    j = torch.arange(width + 1, device=ref.device).unsqueeze(0)
    h_len = p_len.unsqueeze(1) + r_len.unsqueeze(1) - j
    scores = costs.bleu1_from_counts(matches, h_len, r_len.unsqueeze(1).expand_as(h_len))
    return scores.masked_fill(j > r_len.unsqueeze(1), float("inf")).to(ref.device)


def _brute_scores(prefix: Tensor, ref: Tensor, pad: int, cost_fn, max_rows: int) -> Tensor:
    """``cost_fn(p + y[j:], y)`` for every row and ``j <= |y|``, in chunks of ``max_rows``.

    [N, Lp], [N, Lr] -> FloatTensor[N, Lr + 1] (``inf`` for ``j > |y|``).
    """
    n, width = ref.shape
    r_len = costs.lengths(ref, pad)
    scores = torch.full((n, width + 1), float("inf"), device=ref.device)
    rows = torch.repeat_interleave(torch.arange(n, device=ref.device), r_len + 1)
    offsets = torch.cumsum(r_len + 1, 0) - (r_len + 1)
    starts = torch.arange(rows.numel(), device=ref.device) - offsets[rows]
    for r, j in zip(rows.split(max_rows), starts.split(max_rows)):
        hyp = concat(prefix[r], ref[r], start=j, pad=pad)
        scores[r, j] = cost_fn(hyp, ref[r], pad).float()
    return scores


def selection_scores(
    prefix: Tensor,
    ref: Tensor,
    pad: int,
    selection_cost: CostLike = None,
    max_rows: int = MAX_ROWS,
    fast: bool = True,
) -> Tensor:
    """Scores whose tie-broken argmin over ``j`` is the best-suffix start -> FloatTensor[N, Lr+1].

    ``inf`` where ``j > |y|``. For ``costs.bleu1`` (fast path) and the brute force these are the
    selection costs ``selection_cost(p + y[j:], y)`` themselves; for ``costs.edit`` (fast path)
    they are ``edit(p, y[:j]) / max(|y|, 1)``, which has the same minimum and argmin set (see
    :func:`_edit_scores`). ``fast=False`` forces the brute force.
    """
    cost_fn = _cost_fn(selection_cost)
    if fast and cost_fn is costs.edit:
        return _edit_scores(prefix, ref, pad)
    if fast and cost_fn is costs.bleu1:
        return _bleu1_scores(prefix, ref, pad)
    return _brute_scores(prefix, ref, pad=pad, cost_fn=cost_fn, max_rows=max_rows)


def suffix_start(
    prefix: Tensor,
    ref: Tensor,
    pad: int,
    policy: str = "copy",
    selection_cost: CostLike = None,
    max_rows: int = MAX_ROWS,
    fast: bool = True,
) -> Tensor:
    """Where in the reference the policy's continuation starts -> LongTensor[N].

    prefix: LongTensor[N, Lp] (roll-in prefix, possibly with the forced candidate appended),
    ref: LongTensor[N, Lr]; both right-padded content tokens.

    - ``copy``: ``min(|p|, |y|)``.
    - ``best-suffix``: ``j`` in ``{0..|y|}`` minimising ``selection_cost(p + y[j:], y)``
      (a :mod:`costs` function or name; None: :data:`DEFAULT_SELECTION`). Ties: the ``j``
      closest to ``min(|p|, |y|)``, then the smallest ``j``. Brute force is chunked by
      ``max_rows`` candidate hypotheses; ``fast`` enables the exact edit / bleu1 shortcuts.
    """
    p_len, r_len = costs.lengths(prefix, pad), costs.lengths(ref, pad)
    copy = torch.minimum(p_len, r_len)
    if policy == "copy":
        return copy
    if policy != "best-suffix":
        raise ValueError(f"unknown reference policy {policy!r}; valid: {', '.join(POLICIES)}")
    scores = selection_scores(prefix, ref, pad=pad, selection_cost=selection_cost,
                              max_rows=max_rows, fast=fast)
    return select_start(scores, copy)


def reference_action(
    prefix: Tensor,
    ref: Tensor,
    pad: int,
    eos: int,
    policy: str = "copy",
    selection_cost: CostLike = None,
    max_rows: Optional[int] = None,
) -> Tensor:
    """Next token of the reference policy after ``prefix``: ``y[j]`` if ``j < |y|`` else ``eos``.

    prefix: LongTensor[N, Lp], ref: LongTensor[N, Lr] -> LongTensor[N]; ``j`` from
    :func:`suffix_start`.
    """
    j = suffix_start(prefix, ref, pad=pad, policy=policy, selection_cost=selection_cost,
                     max_rows=max_rows or MAX_ROWS)
    r_len = costs.lengths(ref, pad)
    if ref.size(1) == 0:
        return torch.full_like(j, eos)
    tok = ref.gather(1, j.clamp(max=ref.size(1) - 1).unsqueeze(1)).squeeze(1)
    return torch.where(j < r_len, tok, torch.full_like(tok, eos))


def copy_actions(rollin: Tensor, ref: Tensor, pad: int, eos: int) -> Tensor:
    """The ``copy`` reference action at every cell: ``y[t]`` while ``t < |y|``, then EOS.

    rollin: ``[B, T]`` (only its shape is read), ref: ``[B, Lr]`` -> ``[B, T]``."""
    B, T = rollin.shape
    ref_len = ref.ne(pad).sum(1, keepdim=True)
    t = torch.arange(T, device=rollin.device).unsqueeze(0)
    if ref.size(1) == 0:
        return rollin.new_full((B, T), eos)
    y = ref.gather(1, t.clamp(max=ref.size(1) - 1).expand(B, T))
    return torch.where(t < ref_len, y, torch.full_like(y, eos))


def cell_actions(rollin: Tensor, ref: Tensor, pad: int, eos: int, policy: str,
                 selection_cost: CostLike = None) -> Tensor:
    """The reference action at every cell of a roll-in: ``[B, T]``, cell ``t``'s prefix being
    ``rollin[:, :t]`` (``rollin: [B, T]``, ``ref: [B, Lr]``)."""
    if policy == "copy":
        return copy_actions(rollin, ref, pad=pad, eos=eos)
    B, T = rollin.shape
    t = torch.arange(T, device=rollin.device)
    prefixes = rollin.unsqueeze(1).expand(B, T, T).masked_fill(
        t.view(1, 1, T) >= t.view(1, T, 1), pad)
    refs = ref.unsqueeze(1).expand(B, T, ref.size(1))
    act = reference_action(prefixes.reshape(B * T, T), refs.reshape(B * T, -1), pad=pad,
                           eos=eos, policy=policy, selection_cost=selection_cost)
    return act.view(B, T)
