"""Relaxed decoding through a stock fairseq ``TransformerDecoderBase`` (training only).

fairseq's ``extract_features`` embeds token ids itself and has no hook for input embeddings, so
:func:`features_from_embeddings` re-traces its code path (fairseq 0.12,
``extract_features_scriptable``) from given token embeddings: ``embed_scale``, quant noise,
``project_in_dim``, positions, ``layernorm_embedding``, dropout, the layers (self-attention
padding mask, future mask / incremental state, alignment attention), final layer norm,
``project_out_dim``. Positions are always computed from the full gold prefix (never from the
incremental state, which would restart them at each call), so step j gets position j exactly as
in teacher forcing.

- :func:`step_by_step` (exact): one step at a time on an incremental state; step j is fed the
  relaxation of step j - 1's scores from the same forward.
- :func:`two_pass` (approximation, Mihaylova & Martins 2019): a teacher-forced first pass gives
  the scores of every step; a second, parallel pass consumes their relaxation. Step j's input
  then comes from teacher-forced step j - 1, not from the second pass's own decisions.
"""

from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from fairseq_searnn.models.relaxed_feeding import RelaxedFeed

Extra = Dict[str, List[Optional[Tensor]]]


def _embed(decoder, tok_emb: Tensor, positions: Optional[Tensor]) -> Tensor:
    """Token embeddings ``[B, t, D_in]`` (+ positions ``[B, t, C]``) -> input ``[t, B, C]``."""
    x = decoder.embed_scale * tok_emb
    if decoder.quant_noise is not None:
        x = decoder.quant_noise(x)
    if decoder.project_in_dim is not None:
        x = decoder.project_in_dim(x)
    if positions is not None:
        x = x + positions
    if decoder.layernorm_embedding is not None:
        x = decoder.layernorm_embedding(x)
    x = decoder.dropout_module(x)
    return x.transpose(0, 1)


def _encoder_tensors(encoder_out) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    enc = padding_mask = None
    if encoder_out is not None and len(encoder_out["encoder_out"]) > 0:
        enc = encoder_out["encoder_out"][0]
    if encoder_out is not None and len(encoder_out["encoder_padding_mask"]) > 0:
        padding_mask = encoder_out["encoder_padding_mask"][0]
    return enc, padding_mask


def _self_attn_padding_mask(decoder, prev_output_tokens: Tensor) -> Optional[Tensor]:
    """``[B, T]`` padding mask of the gold inputs, or None (as fairseq decides it)."""
    pad = prev_output_tokens.eq(decoder.padding_idx)
    return pad if decoder.cross_self_attention or pad.any() else None


def _run_layers(decoder, layers, x, enc, enc_mask, incremental_state, self_attn_mask,
                self_attn_padding_mask, alignment_layer):
    """Decoder layers on ``x: [t, B, C]``; returns ``(features [B, t, C_out], attention of
    ``alignment_layer`` (``[heads, B, t, S]`` or None), inner states)``."""
    attn = None
    inner_states = [x]
    for idx, layer in enumerate(layers):
        x, layer_attn, _ = layer(
            x, enc, enc_mask, incremental_state,
            self_attn_mask=self_attn_mask,
            self_attn_padding_mask=self_attn_padding_mask,
            need_attn=bool(idx == alignment_layer),
            need_head_weights=bool(idx == alignment_layer),
        )
        inner_states.append(x)
        if layer_attn is not None and idx == alignment_layer:
            attn = layer_attn.float().to(x)
    if decoder.layer_norm is not None:
        x = decoder.layer_norm(x)
    x = x.transpose(0, 1)
    if decoder.project_out_dim is not None:
        x = decoder.project_out_dim(x)
    return x, attn, inner_states


def _extra(attn: Optional[Tensor], alignment_heads: Optional[int], inner_states) -> Extra:
    if attn is not None:
        if alignment_heads is not None:
            attn = attn[:alignment_heads]
        attn = attn.mean(dim=0)  # [B, T, S]
    return {"attn": [attn], "inner_states": inner_states}


def features_from_embeddings(decoder, prev_output_tokens: Tensor, tok_emb: Tensor, encoder_out,
                             alignment_layer: Optional[int] = None,
                             alignment_heads: Optional[int] = None) -> Tuple[Tensor, Extra]:
    """``decoder.extract_features`` (full sequence, causal mask) with the token embeddings
    ``tok_emb: [B, T, D_in]`` in place of ``embed_tokens(prev_output_tokens)``.

    ``prev_output_tokens: [B, T]`` still defines the positions and the padding mask. Returns
    ``(features [B, T, C_out], extra)`` like fairseq.
    """
    if alignment_layer is None:
        alignment_layer = decoder.num_layers - 1
    enc, enc_mask = _encoder_tensors(encoder_out)
    positions = None
    if decoder.embed_positions is not None:
        positions = decoder.embed_positions(prev_output_tokens)
    x = _embed(decoder, tok_emb, positions)
    features, attn, inner_states = _run_layers(
        decoder, decoder.layers, x, enc, enc_mask, None, decoder.buffered_future_mask(x),
        _self_attn_padding_mask(decoder, prev_output_tokens), alignment_layer,
    )
    return features, _extra(attn, alignment_heads, inner_states)


def step_by_step(decoder, prev_output_tokens: Tensor, encoder_out, feed: RelaxedFeed,
                 alignment_layer: Optional[int] = None, alignment_heads: Optional[int] = None
                 ) -> Tuple[Tensor, Tensor, Extra]:
    """Exact relaxed decoding, one step at a time on a fresh incremental state.

    Args:
        prev_output_tokens: ``[B, T]`` gold decoder inputs (they give positions, padding and
            the gold embeddings that ε mixes in).
    Returns:
        ``(features [B, T, C_out], scores [B, T, V], extra)``.
    """
    if alignment_layer is None:
        alignment_layer = decoder.num_layers - 1
    enc, enc_mask = _encoder_tensors(encoder_out)
    seqlen = prev_output_tokens.size(1)
    positions = None
    if decoder.embed_positions is not None:
        positions = decoder.embed_positions(prev_output_tokens)  # [B, T, C], full prefix
    pad_mask = _self_attn_padding_mask(decoder, prev_output_tokens)
    gold_emb = decoder.embed_tokens(prev_output_tokens)  # [B, T, D_in]
    gold_mask = feed.gold_mask(prev_output_tokens)  # [B, T]
    layers = list(decoder.layers)  # one LayerDrop draw for the whole sequence, as in fairseq
    state: Dict[str, Dict[str, Optional[Tensor]]] = {}

    features, scores, attns, inner = [], [], [], []
    for j in range(seqlen):
        if j == 0:
            tok = gold_emb[:, 0]
        else:
            tok = feed.step(scores[-1][:, 0], gold_emb[:, j], gold_mask[:, j], j)
        x = _embed(decoder, tok[:, None], None if positions is None else positions[:, j:j + 1])
        feat, attn, inner_j = _run_layers(
            decoder, layers, x, enc, enc_mask, state, None,
            None if pad_mask is None else pad_mask[:, j:j + 1], alignment_layer,
        )
        features.append(feat)
        scores.append(decoder.output_layer(feat))  # [B, 1, V]
        attns.append(attn)
        inner.append(inner_j)
    attn = None if attns[0] is None else torch.cat(attns, dim=2)
    inner_states = [torch.cat(states, dim=0) for states in zip(*inner)]
    return (torch.cat(features, dim=1), torch.cat(scores, dim=1),
            _extra(attn, alignment_heads, inner_states))


def two_pass(decoder, prev_output_tokens: Tensor, encoder_out, feed: RelaxedFeed,
             detach_first_pass: bool = False, alignment_layer: Optional[int] = None,
             alignment_heads: Optional[int] = None) -> Tuple[Tensor, Tensor, Extra]:
    """Two-pass approximation: teacher-forced pass 1, relaxed-input pass 2 (both parallel).

    With ``detach_first_pass`` pass 1 runs without gradient (cheaper; the loss then reaches the
    parameters only through pass 2, and nothing flows into earlier steps' scores); otherwise
    gradients flow through the relaxation into pass 1. Returns ``(features, scores, extra)``
    of pass 2.
    """
    with torch.set_grad_enabled(torch.is_grad_enabled() and not detach_first_pass):
        first, _ = decoder.extract_features(prev_output_tokens, encoder_out=encoder_out)
        first_scores = decoder.output_layer(first)  # [B, T, V]
    seqlen = prev_output_tokens.size(1)
    gold_emb = decoder.embed_tokens(prev_output_tokens)
    gold_mask = feed.gold_mask(prev_output_tokens)
    positions = torch.arange(1, seqlen, device=prev_output_tokens.device)
    fed = feed.mix(gold_emb[:, 1:], first_scores[:, :-1], gold_mask[:, 1:], positions)
    tok_emb = torch.cat([gold_emb[:, :1], fed], dim=1)
    features, extra = features_from_embeddings(
        decoder, prev_output_tokens, tok_emb, encoder_out, alignment_layer, alignment_heads
    )
    return features, decoder.output_layer(features), extra
