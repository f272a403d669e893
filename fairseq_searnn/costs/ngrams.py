"""Clipped n-gram matches of (hyp, ref) row pairs, exact, with one per-row sort (the BLEU
sufficient statistics: :func:`ngram_stats`)."""

from typing import Dict, Tuple

import torch
from torch import Tensor

from fairseq_searnn.costs.rows import Packed, check_pair, length_chunks, lengths

_INT64_MAX = 2**63 - 1


def _row_ranks(tok: Tensor, content: Tensor) -> Tensor:
    """Dense rank (>= 1) of each content token among its row's content tokens.

    tok: LongTensor[n, W], content: BoolTensor[n, W] -> LongTensor[n, W] (non-content: any).
    """
    low = int(tok.min()) - 1 if tok.numel() else 0
    s, perm = torch.where(content, tok, low).sort(1)
    start = torch.ones_like(s, dtype=torch.bool)
    start[:, 1:] = s[:, 1:] != s[:, :-1]
    return torch.empty_like(perm).scatter_(1, perm, start.cumsum(1))


def _digits(packed: Packed, order: int) -> Tuple[Tensor, Tensor, int]:
    """Injective per-row token codes for n-gram keys of ``order`` digits.

    Returns ``(codes [n, W], side [n, W], bits)``: ``side`` is int32 +1 / -1 / 0 for hyp / ref /
    other cells; content tokens get codes in ``[1, 2**bits - 2]``, gap cells
    0 and tail cells ``2**bits - 1`` (so n-grams never run from one sequence into the next and an
    n-gram crossing an end is different from every complete one). Codes are ``tok - min + 1``
    when ``order * bits <= 63``, else per-row dense ranks; ``bits = 0`` means even ranks do not
    fit (caller falls back to :func:`_iterative_matches`).
    """
    tok = packed.tok
    is_h, is_r = packed.kinds(packed.cells)
    content = is_h | is_r
    side = is_h.to(torch.int32) - is_r.to(torch.int32)
    lo = int(tok.min()) if tok.numel() else 0
    span = (int(tok.max()) if tok.numel() else 0) - lo + 1
    bits = (span + 1).bit_length()
    if order * bits <= 63:
        codes = tok - (lo - 1)
    else:
        bits = (tok.size(1) + 2).bit_length()
        if order * bits > 63:
            return tok, side, 0
        codes = _row_ranks(tok, content)
    tail = (1 << bits) - 1
    codes = torch.where(content, codes, torch.where(packed.cells < packed.r_start, 0, tail))
    return codes, side, bits


def _packed_matches(hyp: Tensor, ref: Tensor, hl: Tensor, rl: Tensor, order: int) -> Tensor:
    """Clipped n-gram matches, n = 1..order, with one per-row sort -> LongTensor[n, order].

    Each cell of the packed row (:class:`Packed`, gap ``order - 1``) gets the key
    ``sum_d code[k + d] << (bits * (order - 1 - d))``: the n-gram starting there, read as
    ``order`` base-``2**bits`` digits. After sorting keys per row, the n-grams of order ``n``
    are runs of keys with equal top ``n`` digits. With ``s = +1`` for hyp cells, ``-1`` for ref
    cells and ``0`` otherwise, a run holding ``a`` hyp and ``b`` ref n-grams sums to ``a - b``,
    and ``sum_runs min(a, b) = (#hyp + #ref - sum_runs |a - b|) / 2``. Runs of n-grams that
    cross an end are singletons (distinct gap / tail codes), contributing ``min(n - 1, |h|) +
    min(n - 1, |r|)`` to ``sum |a - b|``, which is removed.
    """
    n_rows = hyp.size(0)
    packed = Packed(hyp, ref, hl, rl, order - 1)
    codes, side, bits = _digits(packed, order)
    if bits == 0:
        return _iterative_matches(hyp, ref, hl, rl, order)
    width = codes.size(1)
    codes = torch.nn.functional.pad(codes, (0, order - 1), value=(1 << bits) - 1)
    key = codes[:, :width]
    for d in range(1, order):
        key = (key << bits) | codes[:, d : d + width]
    keys, perm = key.sort(1)
    side = side.gather(1, perm)
    diff = torch.cat([torch.full_like(keys[:, :1], _INT64_MAX), keys[:, 1:] ^ keys[:, :-1]], 1)
    out = []
    for n in range(1, order + 1):
        run = (diff >= (1 << (bits * (order - n)))).cumsum(1)
        acc = torch.zeros(n_rows, width + 1, dtype=torch.int32, device=hyp.device)
        imbalance = acc.scatter_add_(1, run, side).abs().sum(1)
        grams = (hl - n + 1).clamp(min=0) + (rl - n + 1).clamp(min=0)
        ends = hl.clamp(max=n - 1) + rl.clamp(max=n - 1)
        out.append(torch.div(grams + ends - imbalance, 2, rounding_mode="floor"))
    return torch.stack(out, 1)


def _dense_rank(x: Tensor) -> Tensor:
    """Dense rank (from 0) of every value of ``x`` among all of them -> LongTensor like ``x``.

    Sort-based (``torch.unique(return_inverse=True)`` is much slower on CPU).
    """
    flat = x.reshape(-1)
    values, perm = flat.sort()
    start = torch.ones_like(values, dtype=torch.bool)
    start[1:] = values[1:] != values[:-1]
    return torch.empty_like(perm).scatter_(0, perm, start.cumsum(0) - 1).view(x.shape)


def _iterative_matches(hyp: Tensor, ref: Tensor, hl: Tensor, rl: Tensor, order: int) -> Tensor:
    """Fallback of :func:`_packed_matches` for huge vocabularies and rows -> LongTensor[n, order].

    Order-n ids: ``rank(id_{n-1}[i]) * base + rank(tok[i + n - 1])`` where ranks are dense over
    the chunk's (row, value) pairs (:func:`_dense_rank`), so ids stay exact in int64; matches are
    ``#{hyp n-grams whose occurrence index among equal hyp n-grams < their count in ref}``.
    """
    n_rows, lh = hyp.shape
    row = torch.arange(n_rows, device=hyp.device).unsqueeze(1)
    tok = _dense_rank(torch.cat([hyp, ref], 1))
    base = int(tok.max()) + 1 if tok.numel() else 1
    ids = row * base + tok
    k = torch.arange(ids.size(1), device=hyp.device)
    is_h = k < lh
    out = []
    for n in range(1, order + 1):
        if n > 1:
            ids = _dense_rank(ids)
            ids = ids * base + torch.nn.functional.pad(tok[:, n - 1 :], (0, n - 1))
        ok_h = is_h & (k < (hl - n + 1).unsqueeze(1))
        ok_r = ~is_h & (k - lh < (rl - n + 1).unsqueeze(1))
        h_ids, r_ids = ids[ok_h], ids[ok_r].sort().values
        h_sorted, perm = torch.sort(h_ids, stable=True)
        cells = torch.arange(h_ids.numel(), device=hyp.device)
        occ = cells - torch.searchsorted(h_sorted, h_sorted)
        in_ref = torch.searchsorted(r_ids, h_sorted, right=True)
        in_ref = in_ref - torch.searchsorted(r_ids, h_sorted)
        rows = row.expand_as(ids)[ok_h][perm]
        out.append(torch.bincount(rows[occ < in_ref], minlength=n_rows))
    return torch.stack(out, 1)


def ngram_stats(
    hyp: Tensor, ref: Tensor, pad: int, max_order: int, method: str = "packed"
) -> Dict[str, Tensor]:
    """BLEU sufficient statistics of each (hyp, ref) row pair.

    Args:
        hyp: LongTensor[N, Lh], ref: LongTensor[N, Lr], right-padded with ``pad``.
        max_order: largest n-gram order (>= 1).
        method: ``"packed"`` (one sort per row, :func:`_packed_matches`; falls back by itself
            when codes cannot fit in int64) or ``"iterative"`` (:func:`_iterative_matches`).

    Returns:
        dict with ``matches`` and ``totals`` LongTensor[N, max_order] (clipped n-gram matches
        and hypothesis n-gram counts for n = 1..max_order), ``hyp_len``, ``ref_len``
        LongTensor[N].
    """
    hyp, ref = check_pair(hyp, ref)
    hl, rl = lengths(hyp, pad), lengths(ref, pad)
    matches = torch.zeros(hyp.size(0), max_order, dtype=torch.long, device=hyp.device)
    fn = _packed_matches if method == "packed" else _iterative_matches
    for rows in length_chunks(hl + rl):
        h_len, r_len = hl[rows], rl[rows]
        h = hyp[rows, : int(h_len.max())]
        r = ref[rows, : int(r_len.max())]
        matches[rows] = fn(h, r, h_len, r_len, max_order)
    n = torch.arange(max_order, device=hyp.device)
    totals = (hl.unsqueeze(1) - n).clamp(min=0)
    return {"matches": matches, "totals": totals, "hyp_len": hl, "ref_len": rl}
