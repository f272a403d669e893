"""The engine's :class:`~fairseq_searnn.search.Host` for ``transformers`` encoder-decoder models
(``AutoModelForSeq2SeqLM``; tested on Marian and T5): :class:`HFHost`.

The encoder runs once per batch; the decoder runs incrementally on the model's own cache (an
``EncoderDecoderCache`` of ``DynamicCache`` layers: self-attention keys and values growing by
one position per step, cross-attention keys and values computed at the first step). Between
steps the state is kept as plain tensors, ``{"layers": ((self_k, self_v, cross_k, cross_v),
...)}`` with every tensor ``[R, heads, length, head_dim]``, so that forking is one
``index_select`` per tensor and the engine can inspect its shapes; the cache object is rebuilt
around them for each call.

The engine's decoder inputs start with its BOS, the target dictionary's EOS (fairseq's
convention); the model's own start symbol (``config.decoder_start_token_id``) replaces it in
the first position.
"""

import inspect
from typing import NamedTuple, Optional

import torch
from torch import Tensor

from fairseq_searnn.search import Host

State = dict


class HFEncoding(NamedTuple):
    """``hidden: [B, S, d]`` the encoder's last hidden states, ``mask: [B, S]`` (1 at source
    tokens, 0 at pad)."""

    hidden: Tensor
    mask: Tensor


def _cache_classes():
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    return DynamicCache, EncoderDecoderCache


class HFHost(Host):
    """:class:`~fairseq_searnn.search.Host` of a ``transformers`` encoder-decoder model.

    Args:
        model: a ``PreTrainedModel`` with ``get_encoder()`` whose forward takes
            ``encoder_outputs``, ``decoder_input_ids`` and a cache (``cache`` in transformers
            5, ``past_key_values`` before).
        bos: the engine's BOS id (the target dictionary's EOS, :class:`HFDictionary`).
        pad: the source padding id (when a batch has no ``attention_mask``).
    """

    def __init__(self, model, bos: int, pad: Optional[int] = None):
        self.model = model
        self.bos = int(bos)
        start = model.config.decoder_start_token_id
        if start is None:
            raise ValueError(f"{type(model).__name__} has no config.decoder_start_token_id: "
                             "the decoder's first input is unknown")
        self.start = int(start)
        self.pad = model.config.pad_token_id if pad is None else pad
        params = inspect.signature(model.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"

    def decoder_inputs(self, prefix: Tensor) -> Tensor:
        """``prefix: [R, L]`` with the engine's BOS in the first column replaced by the model's
        start symbol (a copy)."""
        out = prefix.clone()
        out[:, 0] = torch.where(out[:, 0].eq(self.bos), torch.full_like(out[:, 0], self.start),
                                out[:, 0])
        return out

    def encode(self, net_input: dict) -> HFEncoding:
        """``net_input``: ``src_tokens: [B, S]`` (the batch's ``input_ids``) and optionally its
        ``attention_mask: [B, S]``."""
        src = net_input["src_tokens"]
        mask = net_input.get("attention_mask")
        if mask is None:
            mask = src.ne(self.pad).long()
        out = self.model.get_encoder()(input_ids=src, attention_mask=mask)
        return HFEncoding(out.last_hidden_state, mask)

    def encoder_rows(self, encoder_out: HFEncoding, index: Tensor) -> HFEncoding:
        return HFEncoding(encoder_out.hidden.index_select(0, index),
                          encoder_out.mask.index_select(0, index))

    def step(self, prefix: Tensor, state: State, encoder_out: HFEncoding) -> Tensor:
        """Feeds the tokens of ``prefix: [R, L]`` the cache does not hold yet (the last one
        after the first step; the whole prefix on an empty state) and returns the logits
        ``[R, V]`` of the next token."""
        layers = state.get("layers")
        cached = 0 if not layers else layers[0][0].size(2)
        fed = prefix[:, cached:]
        if cached == 0:
            fed = self.decoder_inputs(fed)
        out = self._forward(fed, encoder_out, self._cache(layers))
        cache = out.get("cache", None)
        cache = out.past_key_values if cache is None else cache
        state["layers"] = tuple(
            (s.keys, s.values, c.keys, c.values)
            for s, c in zip(cache.self_attention_cache.layers,
                            cache.cross_attention_cache.layers))
        return out.logits[:, -1, :]

    def fork(self, state: State, index: Tensor, rows: int) -> State:
        if not state.get("layers"):
            return {}
        return {"layers": tuple(tuple(t.index_select(0, index) for t in layer)
                                for layer in state["layers"])}

    def score(self, prev_output_tokens: Tensor, encoder_out: HFEncoding) -> Tensor:
        """Teacher-forced logits ``[B, T, V]`` (the engine's BOS first in every row)."""
        return self._forward(self.decoder_inputs(prev_output_tokens), encoder_out, None).logits

    def _forward(self, decoder_input_ids: Tensor, enc: HFEncoding, cache):
        from transformers.modeling_outputs import BaseModelOutput

        kwargs = {self.cache_arg: cache} if cache is not None else {}
        return self.model(encoder_outputs=BaseModelOutput(last_hidden_state=enc.hidden),
                          attention_mask=enc.mask, decoder_input_ids=decoder_input_ids,
                          use_cache=cache is not None, **kwargs)

    @staticmethod
    def _cache(layers):
        """An ``EncoderDecoderCache`` around the tensors of a state (empty: a fresh cache)."""
        dynamic, encoder_decoder = _cache_classes()
        if not layers:
            return encoder_decoder(dynamic(), dynamic())
        return encoder_decoder(dynamic([layer[:2] for layer in layers]),
                               dynamic([layer[2:] for layer in layers]))
