"""Batched statistics of outputs against references, as sums that add up over batches.

Every function takes whole batches (no loop over sentences) and returns integer or float sums;
:class:`Sums` adds them up over the batches of a split and turns them into rates at the end.

Conventions (``B`` sentences):

- ``ref: [B, T]`` the target as fairseq batches it: content tokens, then EOS, then pad.
- a *predicted sequence* ``pred: [B, L]`` is compared position by position with ``ref``; its
  symbols at positions ``t < pred_len[b]`` are the prediction (EOS included), later cells are
  ignored. Teacher-forced predictions have ``pred_len = ref_len``; decoded hypotheses end at
  their own EOS.
- *content* tensors ``[B, L]`` hold content tokens only (no EOS), right-padded with ``pad``.
"""

from typing import Dict, Iterable, Tuple

import torch
from torch import Tensor


class Sums:
    """Named sums accumulated over batches: scalars (:meth:`add`) and per-position vectors
    (:meth:`add_vector`, grown as longer batches arrive)."""

    def __init__(self):
        self.scalars: Dict[str, float] = {}
        self.vectors: Dict[str, Tensor] = {}

    def add(self, values: Dict[str, object]) -> None:
        """Add scalars (numbers or 0-d tensors) and 1-D tensors (per-position counts)."""
        for name, value in values.items():
            if torch.is_tensor(value) and value.dim() == 1:
                self.add_vector(name, value)
            else:
                self.scalars[name] = self.scalars.get(name, 0.0) + float(value)

    def add_vector(self, name: str, value: Tensor) -> None:
        """Add ``value: [W]`` to the vector ``name`` (zero-extended to the longer of the two)."""
        value = value.detach().double().cpu()
        old = self.vectors.get(name, torch.zeros(0, dtype=torch.float64))
        out = torch.zeros(max(old.numel(), value.numel()), dtype=torch.float64)
        out[: old.numel()] += old
        out[: value.numel()] += value
        self.vectors[name] = out

    def get(self, name: str) -> float:
        return self.scalars.get(name, 0.0)

    def ratio(self, num: str, den: str):
        """``sum(num) / sum(den)``, or None when nothing was counted."""
        d = self.get(den)
        return self.get(num) / d if d else None


def pad_to(x: Tensor, width: int, pad: int) -> Tensor:
    """``x: [B, L]`` cut or right-padded with ``pad`` to ``[B, width]``."""
    if x.size(1) >= width:
        return x[:, :width]
    return torch.cat([x, x.new_full((x.size(0), width - x.size(1)), pad)], dim=1)


def seq_lengths(seq: Tensor, pad: int) -> Tensor:
    """Symbols per row of right-padded ``seq: [B, L]`` (EOS counted when present): ``[B]``."""
    return seq.ne(pad).sum(1)


def teacher_forced(lprobs: Tensor, target: Tensor, pad: int) -> Tuple[Tensor, Dict[str, Tensor]]:
    """The model's next-token choices and scores under teacher forcing.

    Args:
        lprobs: ``[B, T, V]`` log-probabilities after the gold prefixes.
        target: ``[B, T]`` the reference (content + EOS, pad after).
    Returns: ``pred: [B, T]`` argmax with pad excluded (pad where ``target`` is pad), and sums
    ``tokens`` (reference symbols, EOS included), ``correct`` (argmax = reference) and ``nll``
    (nats, summed).
    """
    real = target.ne(pad)
    scores = lprobs.float().clone()
    scores[..., pad] = float("-inf")
    pred = scores.argmax(-1).masked_fill(~real, pad)
    nll = -lprobs.float().gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return pred, {"tokens": real.sum(), "correct": (pred.eq(target) & real).sum(),
                  "nll": nll[real].sum()}


def entropy_sums(lprobs: Tensor, seq: Tensor, pad: int) -> Dict[str, Tensor]:
    """The model's own predictive entropy at the positions of ``seq``.

    Args:
        lprobs: ``[B, L, V]`` log-probabilities of the next symbol at every position of
            ``seq`` (after its prefix: the gold one, or the model's own decoding).
        seq: ``[B, L]`` symbols (EOS included, pad after).
    Returns: sums ``entropy`` (nats, ``-sum_v p(v) log p(v)`` of the full distribution) and
    ``entropy_tokens`` over the positions where ``seq`` is not pad.
    """
    lp = lprobs.float()
    entropy = -(lp.exp() * lp).masked_fill(lp.isneginf(), 0.0).sum(-1)  # [B, L]
    real = seq.ne(pad)
    return {"entropy": entropy[real].sum(), "entropy_tokens": real.sum()}


def position_errors(pred: Tensor, pred_len: Tensor, ref: Tensor, pad: int) -> Dict[str, Tensor]:
    """Errors position by position against the reference, and how they compound.

    Position ``t`` of a sentence (``t <= |y|``, EOS included) is an error when the prediction
    has no symbol there (it ended earlier) or a different one. A position is *comparable* when
    both sequences have a symbol there.

    Args:
        pred: ``[B, L]`` predicted symbols, valid at ``t < pred_len``.
        pred_len: ``[B]`` predicted symbols per sentence (EOS included).
        ref: ``[B, T]`` the reference.
    Returns: sums ``errors_by_position`` and ``tokens_by_position`` (``[T]`` vectors), and the
    error counts ``*_errors`` over ``*_tokens`` of comparable positions: ``prefix_ok`` (every
    earlier position correct), ``next`` (the position right after the first error) and
    ``after`` (every position after the first error).
    """
    T = ref.size(1)
    pos = torch.arange(T, device=ref.device).unsqueeze(0)
    in_ref = pos < seq_lengths(ref, pad).unsqueeze(1)
    in_pred = pos < pred_len.to(ref.device).unsqueeze(1)
    err = in_ref & (~in_pred | pad_to(pred, T, pad).ne(ref))
    before = err.long().cumsum(1) - err.long()  # errors at earlier positions
    comparable = in_ref & in_pred
    first = err & before.eq(0)
    nxt = torch.zeros_like(first)
    nxt[:, 1:] = first[:, :-1]
    groups = {"prefix_ok": comparable & before.eq(0), "next": nxt & comparable,
              "after": comparable & before.gt(0)}
    out = {"errors_by_position": err.sum(0), "tokens_by_position": in_ref.sum(0)}
    for name, where in groups.items():
        out[f"{name}_errors"] = (err & where).sum()
        out[f"{name}_tokens"] = where.sum()
    return out


def ngram_repeats(content: Tensor, pad: int, n: int) -> Tuple[Tensor, Tensor]:
    """Repeated n-grams within each row of ``content: [B, L]``: the n-gram starting at ``i`` is
    a repeat when the same n-gram starts at an earlier ``j < i`` of the same row.
    Returns ``(repeats, n-grams)`` summed over rows."""
    B, L = content.shape
    m = L - n + 1
    if m <= 0 or B == 0:
        zero = content.new_zeros(())
        return zero, zero
    eq = content.unsqueeze(2).eq(content.unsqueeze(1))  # [B, L, L]
    same = eq[:, :m, :m].clone()
    for k in range(1, n):
        same &= eq[:, k:k + m, k:k + m]
    earlier = torch.ones(m, m, dtype=torch.bool, device=content.device).tril(-1)
    starts = torch.arange(m, device=content.device).unsqueeze(0)
    valid = starts < (seq_lengths(content, pad) - n + 1).unsqueeze(1)
    repeated = (same & earlier).any(2) & valid
    return repeated.sum(), valid.sum()


def output_stats(content: Tensor, pad: int, unk: int, specials: Tensor,
                 orders: Iterable[int] = (1, 2, 3, 4)) -> Dict[str, Tensor]:
    """Pathology counts of ``content: [B, L]`` (hypotheses or references).

    Args:
        unk: the dictionary's ``<unk>`` id.
        specials: ``[S]`` ids of the other special symbols a model could emit (``<s>``,
            ``madeupword`` fillers).
        orders: n-gram orders of the repeat counts.
    Returns: sums ``sentences``, ``symbols``, ``adjacent_repeats`` (a symbol equal to the one
    before) over ``adjacent_pairs``, ``repeat_{n}`` over ``ngrams_{n}`` (:func:`ngram_repeats`),
    ``unk`` and ``special`` (emitted symbols).
    """
    real = content.ne(pad)
    lens = real.sum(1)
    out = {"sentences": content.new_tensor(content.size(0)), "symbols": lens.sum(),
           "adjacent_repeats": (content[:, 1:].eq(content[:, :-1]) & real[:, 1:]).sum(),
           "adjacent_pairs": (lens - 1).clamp(min=0).sum(),
           "unk": (content.eq(unk) & real).sum(),
           "special": (torch.isin(content, specials.to(content.device)) & real).sum()}
    for n in orders:
        out[f"repeat_{n}"], out[f"ngrams_{n}"] = ngram_repeats(content, pad, n)
    return out


def cost_sums(costs: Tensor, ref_content: Tensor, pad: int, count_errors: bool
              ) -> Dict[str, Tensor]:
    """Sums of the per-sentence ``costs: [B]`` (``fairseq_searnn.costs``, normalised by
    ``max(|y|, 1)``) and, with ``count_errors`` (Hamming, edit), the error counts
    ``cost * max(|y|, 1)`` and reference symbols ``|y|``: the corpus error rate's terms."""
    ref_len = seq_lengths(ref_content, pad)
    out = {"cost": costs.double().sum(), "cost_sentences": costs.new_tensor(costs.numel())}
    if count_errors:
        out["errors"] = (costs.double() * ref_len.clamp(min=1)).round().sum()
        out["ref_symbols"] = ref_len.sum()
    return out
