"""Several teacher-forced decoder inputs in one model call: :func:`interleaved`.

A training step may need the model's scores on more than one decoder input of the same
sentences (the roll-in and the gold prefix; the sequence-level risk's hypotheses). Distributed
wrappers expect one forward per step, so the inputs are interleaved per sentence into one
batch (row ``b * n + i`` holds input ``i`` of sentence ``b``: the source order, sorted by
length for packed encoders, stays sorted), scored once and split again.
"""

from typing import Any, Callable, List, Sequence

import torch
from torch import Tensor

#: ``score(repeat, stacked)``: see :func:`interleaved`
Score = Callable[[Callable[[Any], Any], Tensor], Tensor]


def interleaved(score: Score, prevs: Sequence[Tensor], pad: int) -> List[Tensor]:
    """The outputs of one ``score`` call on the decoder inputs ``prevs``, one per input.

    Args:
        score: called once as ``score(repeat, stacked)``, where ``stacked: [B * n, T]`` holds
            the inputs interleaved per sentence (row ``b * n + i`` is ``prevs[i][b]``, padded
            with ``pad`` to ``T = max T_i``) and ``repeat`` maps a per-sentence source tensor
            ``[B, ...]`` to its rows ``[B * n, ...]`` (anything else, scalars included, is
            returned as is); returns per-row scores ``[B * n, T, V]``. With one input, no
            copy is made: ``stacked`` is ``prevs[0]`` and ``repeat`` the identity.
        prevs: the ``n`` decoder inputs, ``[B, T_i]`` each.
        pad: the padding id.

    Returns:
        ``n`` tensors ``[B, T_i, V]``: the scores of each input.
    """
    n = len(prevs)
    if n == 1:
        return [score(lambda value: value, prevs[0])]

    def repeat(value):
        if torch.is_tensor(value) and value.dim() > 0:
            return value.repeat_interleave(n, 0)
        return value

    B, T = prevs[0].size(0), max(p.size(1) for p in prevs)
    stacked = torch.stack([torch.nn.functional.pad(p, (0, T - p.size(1)), value=pad)
                           for p in prevs], 1).view(B * n, T)
    out = score(repeat, stacked)
    out = out.view(B, n, T, *out.shape[2:])
    return [out[:, i, : p.size(1)] for i, p in enumerate(prevs)]
