"""Step-by-step relaxed decoding through a stock fairseq ``LSTMDecoder`` (training only).

Mirrors ``LSTMDecoder.extract_features`` + ``output_layer`` (fairseq 0.12) with one change: the
input embedding of step ``j > 0`` is :meth:`RelaxedFeed.step` of step ``j - 1``'s scores, which
are therefore computed inside the loop (the output head is applied per step). Gradients flow
from every step's loss through the soft decisions into all earlier steps.
"""

from typing import Tuple

import torch
from torch import Tensor

from fairseq_searnn.models.relaxed_feeding import RelaxedFeed


def relaxed_decode(decoder, prev_output_tokens: Tensor, encoder_out: Tuple,
                   feed: RelaxedFeed) -> Tuple[Tensor, None]:
    """Training forward of ``decoder`` with relaxed feeding.

    Args:
        decoder: a fairseq ``LSTMDecoder`` with an encoder (attention optional), no adaptive
            softmax.
        prev_output_tokens: ``[B, T]`` gold decoder inputs (EOS + target[:-1]).
        encoder_out: the ``LSTMEncoder`` output tuple ``(outs [S, B, H], hiddens [L, B, H],
            cells [L, B, H], padding_mask [S, B])``.
        feed: the relaxed feeding policy of this forward.
    Returns:
        ``(scores [B, T, V], None)`` like ``LSTMDecoder.forward`` in training mode.
    """
    encoder_outs, encoder_hiddens, encoder_cells, encoder_padding_mask = encoder_out[:4]
    bsz, seqlen = prev_output_tokens.size()
    gold_emb = decoder.embed_tokens(prev_output_tokens)  # [B, T, D]
    gold_mask = feed.gold_mask(prev_output_tokens)  # [B, T]

    prev_hiddens = [encoder_hiddens[i] for i in range(decoder.num_layers)]
    prev_cells = [encoder_cells[i] for i in range(decoder.num_layers)]
    if decoder.encoder_hidden_proj is not None:
        prev_hiddens = [decoder.encoder_hidden_proj(y) for y in prev_hiddens]
        prev_cells = [decoder.encoder_cell_proj(y) for y in prev_cells]
    input_feed = gold_emb.new_zeros(bsz, decoder.hidden_size)

    scores = []
    for j in range(seqlen):
        if j == 0:
            emb = gold_emb[:, 0]
        else:
            emb = feed.step(scores[-1], gold_emb[:, j], gold_mask[:, j], j)
        x = decoder.dropout_in_module(emb)
        layer_input = torch.cat((x, input_feed), dim=1)
        for i, rnn in enumerate(decoder.layers):
            hidden, cell = rnn(layer_input, (prev_hiddens[i], prev_cells[i]))
            layer_input = decoder.dropout_out_module(hidden)
            if decoder.residuals:
                layer_input = layer_input + prev_hiddens[i]
            prev_hiddens[i] = hidden
            prev_cells[i] = cell
        if decoder.attention is not None:
            out, _ = decoder.attention(hidden, encoder_outs, encoder_padding_mask)
        else:
            out = hidden
        out = decoder.dropout_out_module(out)
        input_feed = out

        features = out  # [B, H]
        if hasattr(decoder, "additional_fc") and decoder.adaptive_softmax is None:
            features = decoder.dropout_out_module(decoder.additional_fc(features))
        scores.append(decoder.output_layer(features))  # [B, V]
    return torch.stack(scores, dim=1), None
