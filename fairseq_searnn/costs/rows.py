"""Row helpers shared by the costs: lengths, shape checks, length buckets, the packed
``[hyp | ref]`` layout, and symbol sequences as padded tensors."""

from typing import Dict, Hashable, List, Sequence, Tuple

import torch
from torch import Tensor

CHUNK_ROWS = 2048  # rows per length bucket


def lengths(tokens: Tensor, pad: int) -> Tensor:
    """Row lengths of right-padded ``tokens`` [N, L] -> LongTensor[N] (count of non-pad)."""
    return (tokens != pad).sum(1)


def check_pair(hyp: Tensor, ref: Tensor) -> Tuple[Tensor, Tensor]:
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


def narrow_ints(x: Tensor) -> Tensor:
    """``x`` as int32 when its values fit (sorting int32 is ~3x faster than int64 on CPU)."""
    if x.numel() and int(x.min()) >= -(2**31) and int(x.max()) < 2**31:
        return x.to(torch.int32)
    return x


SYMBOL_PAD = 0  # the pad id of :func:`symbol_tensors` (symbol ids start at 1)


def symbol_tensors(hyps: Sequence[Sequence[Hashable]], refs: Sequence[Sequence[Hashable]]):
    """Symbol sequences (token lists, or strings: one symbol per character) -> right-padded
    LongTensors ``hyp: [N, Lh]``, ``ref: [N, Lr]`` (pad :data:`SYMBOL_PAD`), with one id per
    distinct symbol (ids are local to the call: only equality matters)."""
    vocab: Dict[Hashable, int] = {}

    def encode(rows):
        ids = [[vocab.setdefault(s, len(vocab) + 1) for s in row] for row in rows]
        out = torch.full((len(ids), max(map(len, ids), default=0)), SYMBOL_PAD,
                         dtype=torch.long)
        for i, row in enumerate(ids):
            out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return out

    return encode(hyps), encode(refs)
