"""Sequence-level expected risk (Edunov et al., NAACL 2018, "Risk", eq. 4) over candidate sets.

For a source ``x`` with candidate set ``U(x)`` and costs ``cost(t, u)`` against the reference
``t``::

    L_Risk = sum_u cost(t, u) * p(u | x) / sum_u' p(u' | x)

``p(u | x)`` is the model's sequence probability (the product of its token probabilities,
EOS included). Plain torch, batched over sentences:

* :func:`sample_candidates`: ``n`` ancestral samples per sentence from a
  :class:`~fairseq_searnn.search.host.Host`, every draw keyed by the sentence
  (:mod:`fairseq_searnn.keyed_random`), so a sentence's samples do not depend on its batch;
* :func:`with_reference`: the reference prepended to the candidates;
* :func:`first_occurrences`: ``U(x)`` is a set: a candidate repeating an earlier one is masked;
* :func:`sequence_logprobs` and :func:`expected_risk`: the loss, normalised in log space.
"""

import torch
from torch import Tensor

from fairseq_searnn import keyed_random
from fairseq_searnn.search.decoding import Decoder
from fairseq_searnn.search.host import as_host

CANDIDATE_SOURCES = ("beam", "sample")


@torch.no_grad()
def sample_candidates(model, net_input: dict, n: int, keys: Tensor, max_len: Tensor, pad: int,
                      eos: int) -> Tensor:
    """``n`` ancestral samples per sentence (no grad; the model's current mode).

    Every sentence's rows decode together: at step ``s`` sample ``j`` of sentence ``b`` takes
    the token at which the model's cumulative distribution first exceeds the keyed uniform draw
    ``u(keys[b], RISK_SAMPLES, j, s)`` (inverse-CDF sampling; pad never drawn). EOS is forced
    once a sample holds ``max_len[b]`` content tokens.

    Args:
        model: a fairseq encoder-decoder model or a :class:`~fairseq_searnn.search.host.Host`.
        net_input: the batch's encoder inputs (``B`` sentences).
        n: samples per sentence.
        keys: ``[B]`` int64 per-sentence random keys.
        max_len: ``[B]`` content tokens allowed per sentence.
    Returns: ``[B, n, L]`` EOS-terminated samples, pad after.
    """
    host = as_host(model)
    decoder = Decoder(host, host.encode(net_input), pad=pad, eos=eos)
    B = keys.size(0)
    device = keys.device
    sentence = torch.arange(B, device=device).repeat_interleave(n)  # [R], R = B * n
    sample_id = torch.arange(n, device=device).repeat(B)
    row_keys = keys.to(device)[sentence]
    row_max = max_len.to(device)[sentence]
    encoder_out = decoder.encoder_rows(sentence)
    prefix = torch.full((B * n, 1), eos, dtype=torch.long, device=device)
    out = torch.full((B * n, int(max_len.max().item()) + 1), pad, dtype=torch.long,
                     device=device)
    done = torch.zeros(B * n, dtype=torch.bool, device=device)
    state: dict = {}
    for s in range(out.size(1)):
        probs = torch.softmax(decoder.step(prefix, state, encoder_out).double(), dim=-1)
        cdf = probs.cumsum(-1)
        cdf = cdf / cdf[:, -1:]  # the last entry exactly 1
        u = keyed_random.uniform(row_keys, keyed_random.Stream.RISK_SAMPLES, sample_id, s,
                                 dtype=torch.float64)
        nxt = torch.searchsorted(cdf, u.unsqueeze(1), right=True).squeeze(1)
        nxt = nxt.clamp(max=cdf.size(1) - 1)
        nxt = nxt.masked_fill(row_max.le(s), eos).masked_fill(done, pad)
        out[:, s] = nxt
        done = done | nxt.eq(eos)
        if bool(done.all()):
            break
        prefix = torch.cat([prefix, nxt.unsqueeze(1)], dim=1)
    return out[:, : s + 1].view(B, n, -1)


def with_reference(candidates: Tensor, target: Tensor, pad: int) -> Tensor:
    """The reference ``target: [B, T]`` (EOS-terminated) prepended as candidate 0 to
    ``candidates: [B, n, L]``: ``[B, n + 1, max(L, T)]``."""
    width = max(candidates.size(2), target.size(1))
    cand = torch.nn.functional.pad(candidates, (0, width - candidates.size(2)), value=pad)
    ref = torch.nn.functional.pad(target, (0, width - target.size(1)), value=pad)
    return torch.cat([ref.unsqueeze(1), cand], dim=1)


def first_occurrences(candidates: Tensor, pad: int) -> Tensor:
    """``[B, K]`` True for the non-empty candidates of ``candidates: [B, K, L]`` that repeat
    no earlier candidate of their sentence."""
    same = candidates.unsqueeze(2).eq(candidates.unsqueeze(1)).all(-1)  # [B, K, K]
    K = candidates.size(1)
    earlier = torch.ones(K, K, dtype=torch.bool, device=candidates.device).tril(-1)
    repeated = (same & earlier).any(-1)
    return candidates.ne(pad).any(-1) & ~repeated


def sequence_logprobs(lprobs: Tensor, candidates: Tensor, pad: int) -> Tensor:
    """``[B, K]`` log-probabilities of whole candidates: the sum of ``lprobs: [B, K, L', V]``
    (``L' >= L``, teacher-forced on each candidate) at the tokens of ``candidates: [B, K, L]``
    (pad ignored)."""
    L = candidates.size(2)
    token = lprobs[:, :, :L].gather(-1, candidates.unsqueeze(-1)).squeeze(-1)
    return token.masked_fill(candidates.eq(pad), 0.0).sum(-1)


def candidate_distribution(seq_lp: Tensor, mask: Tensor) -> Tensor:
    """``[B, K]`` the model's distribution ``p(u) / sum_u' p(u')`` over the valid candidates
    (``mask: [B, K]``) from ``seq_lp: [B, K]``, normalised in log space (0 where masked, and on
    a sentence without a candidate)."""
    lp = _at_least_float32(seq_lp).masked_fill(~mask, float("-inf"))
    norm = torch.logsumexp(lp, dim=-1, keepdim=True)
    norm = norm.masked_fill(~mask.any(-1, keepdim=True), 0.0)
    return (lp - norm).exp().masked_fill(~mask, 0.0)


def expected_risk(seq_lp: Tensor, costs: Tensor, mask: Tensor) -> Tensor:
    """``[B]`` ``sum_u cost(u) p(u) / sum_u' p(u')`` over the valid candidates (0 for a
    sentence without one).

    Computed as ``c_mean + sum_u q(u) (cost(u) - c_mean)`` (``c_mean``: the candidates' mean
    cost, a constant; the same value as ``sum_u q(u) cost(u)`` since ``sum_u q(u) = 1``): equal
    costs then give exactly no gradient, and float rounding does not scale with the costs.

    Args:
        seq_lp: ``[B, K]`` sequence log-probabilities (:func:`sequence_logprobs`).
        costs: ``[B, K]`` the candidates' costs; mask: ``[B, K]`` the valid ones.
    """
    q = candidate_distribution(seq_lp, mask)
    c = costs.to(q.dtype).masked_fill(~mask, 0.0)
    mean = c.sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp(min=1)
    centred = (c - mean).masked_fill(~mask, 0.0)
    return (q * centred).sum(-1) + mean.squeeze(-1)


def _at_least_float32(x: Tensor) -> Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))

