"""Relaxed feeding for differentiable scheduled sampling (Goyal, Dyer & Berg-Kirkpatrick, 2017).

Plain torch, no fairseq imports, nothing registered. Given the output scores ``s`` of decoder
step ``i - 1`` this computes the input embedding of step ``i``, one of the four feeds of the
paper's Table 1 (``E`` is the decoder's input embedding table, ``G ~ Gumbel(0, 1)``)::

    hard-greedy   e(argmax_y s(y))                     scheduled sampling, Bengio et al. (2015)
    hard-sample   e(argmax_y s(y) + G(y))  = a sample of softmax(s)    (Bengio et al., sampled)
    soft-greedy   sum_y e(y) softmax(α s)(y)           α-soft argmax (section 3.1)
    soft-sample   sum_y e(y) softmax(α (s + G))(y)     concrete / Gumbel-softmax (section 3.2)

and mixes it with the gold token per position: gold with probability ε, the model's (relaxed)
decision otherwise. The padding symbol is never a decision (its score is masked out, as in
fairseq's generator), and positions whose gold token is padding always get the gold (padding)
embedding, so a sequence's padding pattern — hence its positions and attention masks — never
changes. All random draws are keyed (:mod:`fairseq_searnn.keyed_random`) by
``(seed, sentence key, position[, token])``: a sentence's noise does not depend on its batch.
"""

from typing import Optional

import torch
from torch import Tensor

from fairseq_searnn import keyed_random

FEEDS = ("hard-greedy", "hard-sample", "soft-greedy", "soft-sample")


def soft_argmax(scores: Tensor, alpha: float) -> Tensor:
    """``softmax(α · scores)`` over the last dimension: ``[..., V] -> [..., V]``.

    Stable for any ``α > 0`` including huge values (α = inf gives the one-hot argmax): the
    detached row maximum is subtracted before scaling, which leaves value and gradient unchanged.
    Computed in float32 at least (float64 stays float64).
    """
    s = scores if scores.dtype in (torch.float32, torch.float64) else scores.float()
    alpha = min(float(alpha), torch.finfo(s.dtype).max)
    s = s - s.max(dim=-1, keepdim=True).values.detach()
    return torch.softmax(alpha * s, dim=-1)


def gumbel_noise(seed: int, seq_keys: Tensor, positions: Tensor, vocab: int, dtype) -> Tensor:
    """Gumbel(0, 1) noise ``[N, V]`` for rows keyed by ``seq_keys: [N]``, ``positions: [N]``."""
    tokens = torch.arange(vocab, device=seq_keys.device)
    return keyed_random.gumbel(seed, keyed_random.Stream.DSS_GUMBEL, seq_keys[:, None],
                               positions[:, None], tokens[None, :], dtype=dtype)


def mix_uniforms(seed: int, seq_keys: Tensor, positions: Tensor) -> Tensor:
    """Uniform(0, 1) draws ``[B, L]`` deciding gold vs. model per (sentence, position)."""
    return keyed_random.uniform(seed, keyed_random.Stream.DSS_MIX, seq_keys[:, None],
                                positions[None, :], dtype=torch.float64)


class RelaxedFeed:
    """The feeding policy of one training forward.

    Args:
        embed: the decoder's input embedding (``nn.Embedding``: ``embed(tokens)`` and
            ``embed.weight: [V, D]``).
        feed: one of :data:`FEEDS`.
        alpha: α > 0 of the soft feeds (unused by the hard feeds).
        epsilon: probability of feeding the gold token, in [0, 1].
        seq_keys: ``[B]`` int64 keys of the batch's sentences.
        seed: integer key of this update (e.g. ``torch.initial_seed()``).
        pad: the target dictionary's padding index.
    """

    def __init__(self, embed, feed: str, alpha: float, epsilon: float, seq_keys: Tensor,
                 seed: int, pad: int):
        if feed not in FEEDS:
            raise ValueError(f"unknown feed {feed!r}; choose one of {', '.join(FEEDS)}")
        self.embed, self.feed, self.alpha, self.epsilon = embed, feed, alpha, epsilon
        self.seq_keys, self.seed, self.pad = seq_keys, seed, pad

    def gold_mask(self, prev_output_tokens: Tensor) -> Tensor:
        """``[B, T]`` bool: True where step j is fed the gold ``prev_output_tokens[:, j]``.

        Column 0 (the BOS/EOS start symbol: no previous decision) and padding are always gold.
        """
        positions = torch.arange(prev_output_tokens.size(1), device=prev_output_tokens.device)
        mask = mix_uniforms(self.seed, self.seq_keys, positions) < self.epsilon
        mask = mask | prev_output_tokens.eq(self.pad)
        mask[:, 0] = True
        return mask

    def decide(self, scores: Tensor, seq_keys: Tensor, positions: Tensor) -> Tensor:
        """Embeddings ``[N, D]`` of the model's (relaxed) decisions from ``scores: [N, V]``.

        ``seq_keys, positions: [N]`` key the Gumbel noise of each row (``positions`` are the
        positions being fed, i.e. one more than the step that produced the scores).
        """
        scores = scores.masked_fill(_one_hot_mask(scores, self.pad), float("-inf"))
        if self.feed.endswith("sample"):
            noise = gumbel_noise(self.seed, seq_keys, positions, scores.size(-1), scores.dtype)
            scores = scores + noise
        if self.feed.startswith("hard"):
            return self.embed(scores.argmax(dim=-1))
        weight = self.embed.weight
        return soft_argmax(scores, self.alpha).to(weight.dtype) @ weight

    def mix(self, gold_emb: Tensor, scores: Tensor, gold_mask: Tensor,
            positions: Tensor) -> Tensor:
        """Per-position mixture ``[B, L, D]`` of gold embeddings and relaxed decisions.

        Args:
            gold_emb: ``[B, L, D]`` embeddings of the gold tokens at ``positions``.
            scores: ``[B, L, V]`` scores of the steps just before ``positions``.
            gold_mask: ``[B, L]`` bool, True where the gold is fed (see :meth:`gold_mask`).
            positions: ``[L]`` int64 positions being fed.
        Only rows that feed a decision are relaxed (cost and noise scale with 1 - ε).
        """
        bsz, length = gold_mask.shape
        flat = (~gold_mask).reshape(-1).nonzero().squeeze(1)
        if flat.numel() == 0:
            return gold_emb
        rows, cols = flat // length, flat % length
        decided = self.decide(
            scores.reshape(bsz * length, -1).index_select(0, flat),
            self.seq_keys.index_select(0, rows), positions.index_select(0, cols),
        )
        out = gold_emb.reshape(bsz * length, -1).index_put((flat,), decided.to(gold_emb.dtype))
        return out.view_as(gold_emb)

    def step(self, scores: Tensor, gold_emb: Tensor, gold_mask: Tensor, position: int) -> Tensor:
        """Input embedding ``[B, D]`` of step ``position`` from the previous step's ``scores:
        [B, V]``, the gold embeddings ``gold_emb: [B, D]`` and ``gold_mask: [B]``."""
        positions = torch.full((1,), position, dtype=torch.long, device=scores.device)
        out = self.mix(gold_emb[:, None], scores[:, None], gold_mask[:, None], positions)
        return out[:, 0]


def _one_hot_mask(scores: Tensor, index: Optional[int]) -> Tensor:
    """``[V]`` bool mask selecting ``index`` (broadcasts over ``scores: [N, V]``)."""
    mask = torch.zeros(scores.size(-1), dtype=torch.bool, device=scores.device)
    if index is not None and 0 <= index < scores.size(-1):
        mask[index] = True
    return mask

