"""Sequence-level costs for SeaRNN, batched on padded token tensors (lower is better).

Every cost has the signature ``fn(hyp, ref, pad) -> FloatTensor[N]``:

- ``hyp``: LongTensor[N, Lh], ``ref``: LongTensor[N, Lr]; content tokens only (no BOS/EOS),
  right-padded with ``pad``. A row's length is its number of non-``pad`` tokens. Any lengths,
  including 0, and ``Lh = 0`` / ``Lr = 0`` / ``N = 0`` tensors are accepted.
- The result is float32 on the inputs' device, whatever the input integer dtype.

Costs (``|h|``, ``|r|`` are the row lengths):

- ``hamming``: number of positions ``i < max(|h|, |r|)`` with ``h_i != r_i`` (a position past the
  end of one sequence is a mismatch), divided by ``max(|r|, 1)``.
- ``edit``: Levenshtein distance (unit insert / delete / substitute) / ``max(|r|, 1)``.
- ``bleu``: ``1 - BLEU / 100`` with BLEU exactly ``sacrebleu.sentence_bleu(h, [r],
  smooth_method="add-k", smooth_value=1, tokenize="none", use_effective_order=True)`` on the
  token ids written in decimal (BLEU+1 of Lin & Och 2004, see :func:`bleu`).
- ``bleu1``: ``1 - BLEU / 100`` with sacrebleu's BLEU at ``max_ngram_order=1``.
- ``bleu-smooth-all``: ``1 - BLEU`` with the BLEU of the official SeaRNN code (add-one on every
  order, unigrams included; see :func:`bleu_smooth_all`).

Nothing is hashed: n-gram matching (:func:`ngram_stats`) and the edit distance's match masks
(:func:`edit_last_row`) use exact integer keys and per-row sorts. Rows are processed in chunks
of similar length (:func:`length_chunks`) so that padding costs little.
"""

from typing import Callable, Dict, List, Tuple

import torch
from torch import Tensor

CostFn = Callable[[Tensor, Tensor, int], Tensor]

_INT64_MAX = 2**63 - 1
_WORD = 64  # bits per word of the bit-parallel edit distance
CHUNK_ROWS = 2048  # rows per length bucket

# ------------------------------------------------------------------------------------ helpers


def lengths(tokens: Tensor, pad: int) -> Tensor:
    """Row lengths of right-padded ``tokens`` [N, L] -> LongTensor[N] (count of non-pad)."""
    return (tokens != pad).sum(1)


def _check(hyp: Tensor, ref: Tensor) -> Tuple[Tensor, Tensor]:
    """Validate shapes ([N, Lh], [N, Lr], same N) and return int64 views."""
    if hyp.dim() != 2 or ref.dim() != 2 or hyp.size(0) != ref.size(0):
        raise ValueError(
            f"expected hyp [N, Lh] and ref [N, Lr], got {tuple(hyp.shape)} and {tuple(ref.shape)}"
        )
    return hyp.long(), ref.long()


def length_chunks(sizes: Tensor, chunk_rows: int = CHUNK_ROWS) -> List[Tensor]:
    """Split rows into chunks of at most ``chunk_rows`` rows of similar ``sizes`` (LongTensor[N]).

    Returns a list of LongTensor row indices (rows sorted by size, then cut).
    """
    order = torch.argsort(sizes)
    return list(order.split(chunk_rows)) if order.numel() else []


class Packed:
    """Rows laid out as ``[hyp content | gap cells | ref content | tail cells]``.

    Built from hyp: LongTensor[n, Lh], ref: LongTensor[n, Lr], their lengths hl / rl:
    LongTensor[n] and ``gap`` cells after the hypothesis. ``tok``: LongTensor[n, W] with
    ``W = max(hl + rl) + gap``; gap and tail cells hold 0 or arbitrary tokens of the row.
    :meth:`kinds` classifies packed cell indices.
    """

    def __init__(self, hyp: Tensor, ref: Tensor, hl: Tensor, rl: Tensor, gap: int):
        n, lh = hyp.shape
        self.width = (int((hl + rl).max()) if n else 0) + gap
        self.h_end = hl.unsqueeze(1)
        self.r_start = self.h_end + gap
        self.r_end = self.r_start + rl.unsqueeze(1)
        tok = hyp.new_zeros(n, max(lh, self.width) + ref.size(1))
        tok[:, :lh] = hyp  # hyp padding is overwritten by the reference or left in gap / tail
        cols = self.r_start + torch.arange(ref.size(1), device=hyp.device)
        self.tok = tok.scatter_(1, cols, ref)[:, : self.width]
        self.cells = torch.arange(self.width, device=hyp.device).expand(n, -1)

    def kinds(self, idx: Tensor) -> Tuple[Tensor, Tensor]:
        """For packed indices idx: LongTensor[n, m]: (is hyp content, is ref content) bool."""
        return idx < self.h_end, (idx >= self.r_start) & (idx < self.r_end)


def _narrow_ints(x: Tensor) -> Tensor:
    """``x`` as int32 when its values fit (sorting int32 is ~3x faster than int64 on CPU)."""
    if x.numel() and -(2**31) <= int(x.min()) and int(x.max()) < 2**31:
        return x.to(torch.int32)
    return x


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
    hyp, ref = _check(hyp, ref)
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


# --------------------------------------------------------------------------------------- BLEU


def brevity_penalty(hyp_len: Tensor, ref_len: Tensor) -> Tensor:
    """sacrebleu's BP: ``exp(1 - r / h)`` if ``0 < h < r``, 0 if ``h = 0 < r``, else 1.

    hyp_len, ref_len: LongTensor[...] (broadcastable) -> DoubleTensor[...].
    """
    h, r = hyp_len.double(), ref_len.double()
    bp = torch.where(h > 0, torch.exp(1.0 - r / h.clamp(min=1.0)), 0.0)
    return torch.where(h < r, bp, 1.0)


def sacrebleu_score(stats: Dict[str, Tensor], smooth_value: float = 1.0) -> Tensor:
    """sacrebleu's sentence BLEU (add-k smoothing, effective order) from :func:`ngram_stats`.

    Returns DoubleTensor[N] in [0, 100]. With ``K`` the stats' max order, ``m_n`` / ``c_n`` the
    matches / totals and ``k = smooth_value``::

        BLEU = 0                           if m_1 = 0 (sacrebleu's early stop: no match at all)
        BLEU = BP * exp(mean_n log p_n)    otherwise, n = 1..K, with
        p_1 = 100 m_1 / c_1,  p_n = 100 (m_n + k) / (c_n + k) for n > 1.

    With add-k and ``k > 0`` the effective order is always ``K`` (no smoothed total is 0).
    """
    m, c = stats["matches"].double(), stats["totals"].double()
    m = torch.cat([m[:, :1], m[:, 1:] + smooth_value], 1)
    c = torch.cat([c[:, :1], c[:, 1:] + smooth_value], 1).clamp(min=1.0)
    logs = torch.log((100.0 * m / c).clamp(min=1e-300)).mean(1)
    score = brevity_penalty(stats["hyp_len"], stats["ref_len"]) * torch.exp(logs)
    return torch.where(stats["matches"][:, 0] > 0, score, 0.0)


def bleu(hyp: Tensor, ref: Tensor, pad: int) -> Tensor:
    """BLEU+1 cost ``1 - BLEU / 100``: [N, Lh], [N, Lr] -> FloatTensor[N].

    BLEU equals ``sacrebleu.sentence_bleu(h, [r], smooth_method="add-k", smooth_value=1,
    tokenize="none", use_effective_order=True).score`` (sacrebleu 2.x) on the decimal token ids:
    4-gram BLEU, add-one smoothing for n > 1 only, 0 without any unigram match (so 0 for an
    empty hypothesis or reference), brevity penalty ``exp(1 - |r| / |h|)`` when ``|h| < |r|``.
    """
    cost = 1.0 - sacrebleu_score(ngram_stats(hyp, ref, pad, 4)) / 100.0
    return cost.to(device=ref.device, dtype=torch.float32)


def bleu1_from_counts(matches: Tensor, hyp_len: Tensor, ref_len: Tensor) -> Tensor:
    """bleu1 cost from clipped unigram matches and lengths (LongTensor[...]) -> FloatTensor[...].

    ``1 - BP * m / |h|`` (cost 1 if ``m = 0``), computed in float64 then cast to float32. Shared
    by :func:`bleu1` and the exact fast path of the best-suffix reference policy, so both give
    bit-identical values (hence identical ties).
    """
    score = brevity_penalty(hyp_len, ref_len) * matches.double() / hyp_len.clamp(min=1).double()
    return (1.0 - torch.where(matches > 0, score, 0.0)).float()


def bleu1(hyp: Tensor, ref: Tensor, pad: int) -> Tensor:
    """BLEU-1 cost ``1 - BLEU / 100``: [N, Lh], [N, Lr] -> FloatTensor[N].

    BLEU equals ``sacrebleu.metrics.BLEU(max_ngram_order=1, smooth_method="add-k",
    smooth_value=1, tokenize="none", effective_order=True).sentence_score(h, [r]).score``:
    add-k only smooths orders n > 1, so this is ``100 * BP * m_1 / |h|`` (clipped unigram
    precision times brevity penalty; 0 if ``m_1 = 0``).
    """
    stats = ngram_stats(hyp, ref, pad, 1)
    cost = bleu1_from_counts(stats["matches"][:, 0], stats["hyp_len"], stats["ref_len"])
    return cost.to(ref.device)


def bleu_smooth_all(hyp: Tensor, ref: Tensor, pad: int) -> Tensor:
    """BLEU cost of the official SeaRNN code (``cython/fast_bleu.pyx``): ``1 - BLEU``.

    [N, Lh], [N, Lr] -> FloatTensor[N]. With ``m_n`` clipped n-gram matches and
    ``c_n = max(|h| - n + 1, 0)`` hypothesis n-grams, n = 1..4::

        BLEU = 0                                                   if m_1 = 0
        BLEU = BP * prod_{n=1..4} ((m_n + 1) / (c_n + 1)) ** (1/4)  otherwise,

    i.e. add-one on every order including unigrams, BP = ``exp(1 - |r| / |h|)`` if
    ``|h| < |r|`` else 1; BLEU is in [0, 1] (not percent). Not sacrebleu-compatible.
    """
    stats = ngram_stats(hyp, ref, pad, 4)
    m, c = stats["matches"].double(), stats["totals"].double()
    score = brevity_penalty(stats["hyp_len"], stats["ref_len"])
    score = score * torch.exp(torch.log((m + 1.0) / (c + 1.0)).mean(1))
    cost = 1.0 - torch.where(stats["matches"][:, 0] > 0, score, 0.0)
    return cost.to(device=ref.device, dtype=torch.float32)


# --------------------------------------------------------------------------------------- edit


def _match_masks(hyp: Tensor, ref: Tensor, hl: Tensor, rl: Tensor, words: int) -> Tensor:
    """Match bit-masks of the bit-parallel edit distance -> LongTensor[n, Lh, words].

    Bit ``j % 64`` of word ``j // 64`` at ``[r, i]`` is set iff ``ref[r, j] == hyp[r, i]``
    (``j < rl[r]``; entries ``i >= hl[r]`` are arbitrary). One per-row sort of the packed
    ``[hyp | ref]`` tokens (:class:`Packed`): each run of equal tokens ORs (sums: the bits are
    distinct) the bits of its reference cells, then every cell reads its run's mask.
    """
    n, lh = hyp.shape
    packed = Packed(hyp, ref, hl, rl, 0)
    keys, perm = _narrow_ints(packed.tok).sort(1)
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
    hyp, ref = _check(hyp, ref)
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


# ------------------------------------------------------------------------------------ hamming


def hamming(hyp: Tensor, ref: Tensor, pad: int) -> Tensor:
    """Hamming cost: mismatching positions ``i < max(|h|, |r|)`` / ``max(|r|, 1)``.

    hyp: LongTensor[N, Lh], ref: LongTensor[N, Lr] -> FloatTensor[N].
    """
    hyp, ref = _check(hyp, ref)
    hl, rl = lengths(hyp, pad), lengths(ref, pad)
    width = min(hyp.size(1), ref.size(1))
    both = torch.arange(width, device=hyp.device) < torch.minimum(hl, rl).unsqueeze(1)
    same = ((hyp[:, :width] == ref[:, :width]) & both).sum(1)
    wrong = torch.maximum(hl, rl) - same
    return (wrong.double() / rl.clamp(min=1).double()).to(torch.float32)


# ----------------------------------------------------------------------------------- registry

COSTS: Dict[str, CostFn] = {
    "hamming": hamming,
    "edit": edit,
    "bleu": bleu,
    "bleu1": bleu1,
    "bleu-smooth-all": bleu_smooth_all,
}


def available() -> List[str]:
    """Names accepted by :func:`get_cost`."""
    return sorted(COSTS)


def get_cost(name: str) -> CostFn:
    """The cost function called ``name``; ValueError (listing the valid names) if unknown."""
    try:
        return COSTS[name]
    except KeyError:
        raise ValueError(f"unknown cost {name!r}; valid costs: {', '.join(available())}") from None
