"""The Hamming cost and the registry of costs by name (``--searnn-cost``, validation)."""

from typing import Callable, Dict, List

import torch
from torch import Tensor

from fairseq_searnn.costs.levenshtein import edit
from fairseq_searnn.costs.rows import check_pair, lengths
from fairseq_searnn.costs.sentence_bleu import bleu, bleu1, bleu_smooth_all

CostFn = Callable[[Tensor, Tensor, int], Tensor]


def hamming(hyp: Tensor, ref: Tensor, pad: int) -> Tensor:
    """Hamming cost: mismatching positions ``i < max(|h|, |r|)`` / ``max(|r|, 1)``.

    hyp: LongTensor[N, Lh], ref: LongTensor[N, Lr] -> FloatTensor[N].
    """
    hyp, ref = check_pair(hyp, ref)
    hl, rl = lengths(hyp, pad), lengths(ref, pad)
    width = min(hyp.size(1), ref.size(1))
    both = torch.arange(width, device=hyp.device) < torch.minimum(hl, rl).unsqueeze(1)
    same = ((hyp[:, :width] == ref[:, :width]) & both).sum(1)
    wrong = torch.maximum(hl, rl) - same
    return (wrong.double() / rl.clamp(min=1).double()).to(torch.float32)


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
