"""Levenshtein distance, bit-parallel (Myers 1999, multi-word form of Hyyro 2003) and
vectorised over rows: the ``edit`` cost, the last DP row for the best-suffix reference policy,
and distances of symbol sequences (strings, token lists)."""

from typing import Hashable, List, Sequence, Tuple

import torch
from torch import Tensor

from fairseq_searnn.costs.rows import (
    SYMBOL_PAD,
    Packed,
    check_pair,
    length_chunks,
    lengths,
    narrow_ints,
    symbol_tensors,
)

_WORD = 64  # bits per word of the bit-parallel edit distance


def _match_masks(hyp: Tensor, ref: Tensor, hl: Tensor, rl: Tensor, words: int) -> Tensor:
    """Match bit-masks of the bit-parallel edit distance -> LongTensor[n, Lh, words].

    Bit ``j % 64`` of word ``j // 64`` at ``[r, i]`` is set iff ``ref[r, j] == hyp[r, i]``
    (``j < rl[r]``; entries ``i >= hl[r]`` are arbitrary). One per-row sort of the packed
    ``[hyp | ref]`` tokens (:class:`Packed`): each run of equal tokens ORs (sums: the bits are
    distinct) the bits of its reference cells, then every cell reads its run's mask.
    """
    n, lh = hyp.shape
    packed = Packed(hyp, ref, hl, rl, 0)
    keys, perm = narrow_ints(packed.tok).sort(1)
    start = torch.ones_like(keys, dtype=torch.bool)
    torch.ne(keys[:, 1:], keys[:, :-1], out=start[:, 1:])
    run = start.cumsum(1)
    pos = perm - packed.r_start  # position in the reference for reference cells
    is_r = (pos >= 0) & (perm < packed.r_end)
    bit = torch.ones_like(pos).bitwise_left_shift_(pos & (_WORD - 1)).masked_fill_(~is_r, 0)
    masks = torch.zeros(n, (packed.width + 1) * words, dtype=torch.long, device=hyp.device)
    if words == 1:
        masks.scatter_add_(1, run, bit)
        return torch.empty_like(perm).scatter_(1, perm, masks.gather(1, run))[:, :lh, None]
    run = run * words
    masks.scatter_add_(1, run + (pos >> 6).masked_fill_(~is_r, 0), bit)
    out = torch.empty(n, words, packed.width, dtype=torch.long, device=hyp.device)
    for w in range(words):
        out[:, w].scatter_(1, perm, masks.gather(1, run + w))
    return out[:, :, :lh].transpose(1, 2)


def _myers_column(peq: Tensor, hl: Tensor, words: int) -> Tuple[List[Tensor], List[Tensor]]:
    """Run the multi-word Myers / Hyyro recurrence over the hypothesis positions.

    peq: LongTensor[Lh, words, n] (:func:`_match_masks`, transposed), hl: LongTensor[n] sorted
    ascending.
    Returns per-word lists of LongTensor[n] ``(pv, mv)``: bit j set iff
    ``D[j + 1] - D[j] = +1`` / ``-1`` in the DP column of the full hypothesis, where
    ``D[j] = levenshtein(hyp, ref[:j])``. Step ``i`` only updates the rows with ``hl > i``,
    a suffix of the rows (work: ``sum(hl)`` row-steps).
    """
    n, device = peq.size(2), peq.device
    pv = [torch.full((n,), -1, dtype=torch.long, device=device) for _ in range(words)]
    mv = [torch.zeros(n, dtype=torch.long, device=device) for _ in range(words)]
    steps = int(hl[-1]) if n else 0
    firsts = torch.searchsorted(hl, torch.arange(steps, device=device), right=True).tolist()
    for i, first in enumerate(firsts):
        h_pos, h_neg = None, None  # horizontal delta +1 on the top row
        for w in range(words):
            p, m, eq = pv[w][first:], mv[w][first:], peq[i, w, first:]
            xv = eq | m
            if h_neg is not None:
                eq = eq | h_neg
            xh = eq & p
            xh += p
            xh ^= p
            xh |= eq
            ph = xh | p
            ph.bitwise_not_()
            ph |= m
            mh = p & xh
            if w + 1 < words:
                out_pos, out_neg = (ph < 0).long(), (mh < 0).long()  # bit 63 = sign bit
            ph <<= 1
            ph |= 1 if h_pos is None else h_pos
            mh <<= 1
            if h_neg is not None:
                mh |= h_neg
            torch.bitwise_or(xv, ph, out=p).bitwise_not_().bitwise_or_(mh)  # new pv, in place
            torch.bitwise_and(ph, xv, out=m)  # new mv, in place
            if w + 1 < words:
                h_pos, h_neg = out_pos, out_neg
    return pv, mv


def _popcount(x: Tensor) -> Tensor:
    """Number of set bits of each int64 (two's complement) -> LongTensor like ``x``."""
    x = x - ((x >> 1) & 0x5555555555555555)
    x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0F
    return (x * 0x0101010101010101) >> 56 & 0xFF


def _edit_columns(hyp: Tensor, ref: Tensor, pad: int):
    """Shared part of :func:`edit_last_row` and :func:`edit_distance`.

    Returns ``(order, hl, rl, pv, mv)``: rows sorted by hypothesis length (``order``:
    LongTensor[N], ``hl`` / ``rl`` lengths in that order) and the per-word vertical-delta bit
    vectors of :func:`_myers_column` (lists of LongTensor[N], same order).
    """
    hyp, ref = check_pair(hyp, ref)
    hl, rl = lengths(hyp, pad), lengths(ref, pad)
    n, device = hyp.size(0), hyp.device
    steps = int(hl.max()) if n else 0
    words = max(1, -(-int(rl.max() if n else 0) // _WORD))
    order = torch.argsort(hl, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n, device=device)
    peq = torch.zeros(steps, words, n, dtype=torch.long, device=device)  # rows in ``order``
    for rows in length_chunks(hl + rl):
        h_len, r_len = hl[rows], rl[rows]
        h = hyp.narrow(1, 0, int(h_len.max())).index_select(0, rows)
        r = ref.narrow(1, 0, int(r_len.max())).index_select(0, rows)
        masks = _match_masks(h, r, h_len, r_len, words)
        peq[: h.size(1)].index_copy_(2, rank[rows], masks.permute(1, 2, 0))
    hl, rl = hl[order], rl[order]
    pv, mv = _myers_column(peq, hl, words)
    return order, hl, rl, pv, mv


def edit_last_row(hyp: Tensor, ref: Tensor, pad: int) -> Tensor:
    """Edit distances of each hypothesis to every prefix of its reference.

    hyp: LongTensor[N, Lh], ref: LongTensor[N, Lr], right-padded with ``pad``.
    Returns LongTensor[N, Lr + 1]: ``out[n, j] = levenshtein(hyp[n, :|h|], ref[n, :j])`` for
    ``j <= |r_n|`` (the last row of the DP table); entries ``j > |r_n|`` are -1.

    Bit-parallel algorithm of Myers (1999) in the multi-word form of Hyyro (2003) / edlib,
    vectorised over rows: the reference is the pattern (64 positions per int64 word), the loop
    runs over hypothesis positions with O(words) tensor ops over the rows still running. Match
    masks are built in chunks of rows of similar total length (:func:`length_chunks`).
    """
    order, hl, rl, pv, mv = _edit_columns(hyp, ref, pad)
    out = torch.full((hyp.size(0), ref.size(1) + 1), -1, dtype=torch.long, device=hyp.device)
    width = int(rl.max()) if rl.numel() else 0
    shifts = torch.arange(_WORD, device=hyp.device)
    delta = torch.cat([((p.unsqueeze(1) >> shifts) & 1) - ((m.unsqueeze(1) >> shifts) & 1)
                       for p, m in zip(pv, mv)], 1)[:, :width]
    col = torch.cat([hl.unsqueeze(1), hl.unsqueeze(1) + delta.cumsum(1)], 1)
    keep = torch.arange(width + 1, device=hyp.device) <= rl.unsqueeze(1)
    out[order, : width + 1] = torch.where(keep, col, -1)
    return out


def edit_distance(hyp: Tensor, ref: Tensor, pad: int) -> Tensor:
    """Levenshtein distance of each row pair: [N, Lh], [N, Lr] -> LongTensor[N].

    ``|h| + popcount(pv & low bits) - popcount(mv & low bits)`` over the first ``|r|`` bits of
    the final Myers column (see :func:`edit_last_row`).
    """
    order, hl, rl, pv, mv = _edit_columns(hyp, ref, pad)
    dist = hl.clone()
    for w, (p, m) in enumerate(zip(pv, mv)):
        bits = (rl - w * _WORD).clamp(0, _WORD)
        low = torch.where(bits >= _WORD, -1, (torch.ones_like(bits) << bits) - 1)
        dist += _popcount(p & low) - _popcount(m & low)
    out = torch.empty_like(dist)
    out[order] = dist
    return out


def normalised_edit(dist: Tensor, ref_len: Tensor) -> Tensor:
    """``dist / max(ref_len, 1)`` as float32 (LongTensor[...] of the same shape)."""
    return (dist.double() / ref_len.clamp(min=1).double()).float()


def edit(hyp: Tensor, ref: Tensor, pad: int) -> Tensor:
    """Edit cost: Levenshtein distance / ``max(|r|, 1)``. [N, Lh], [N, Lr] -> FloatTensor[N]."""
    return normalised_edit(edit_distance(hyp, ref, pad), lengths(ref, pad)).to(ref.device)


def sequence_edit_distances(hyps: Sequence[Sequence[Hashable]],
                            refs: Sequence[Sequence[Hashable]]) -> List[int]:
    """Levenshtein distance (unit insertion, deletion, substitution) of each (hyp, ref) pair of
    symbol sequences: strings (one symbol per character) or token lists. :func:`edit_distance`
    on the sequences' :func:`~fairseq_searnn.costs.rows.symbol_tensors`."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    hyp, ref = symbol_tensors(hyps, refs)
    return edit_distance(hyp, ref, SYMBOL_PAD).tolist()
