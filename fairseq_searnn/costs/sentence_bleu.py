"""Sentence-BLEU costs from the n-gram statistics of :mod:`fairseq_searnn.costs.ngrams`:
``bleu`` (sacrebleu's BLEU+1), ``bleu1`` and ``bleu-smooth-all`` (the official SeaRNN code's)."""

from typing import Dict

import torch
from torch import Tensor

from fairseq_searnn.costs.ngrams import ngram_stats


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
