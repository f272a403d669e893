"""A lean exact decoding step for fairseq's ``lstm`` (eval mode): :class:`LstmHost`.

fairseq's ``AttentionLayer`` scores a step as ``(source_hids * x).sum(2)`` over
``[S, B, d]``: an elementwise product, then a reduction, memory-bound. Here the encoder output
is kept batch-first ``[B, S, d]`` once per batch and both attention products are batched
matrix products; the decoder state is three tensors (``h``, ``c``: ``[layers, R, H]``,
``feed``: ``[R, H]``) forked with one ``index_select`` each. The computation is otherwise
``LSTMDecoder.extract_features`` + ``output_layer`` of fairseq 0.12 step by step, without
dropout (tested equal to fairseq's forward).
"""

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from fairseq_searnn.search.host import Host, State


class LstmEncoding(NamedTuple):
    """``outs: [B, S, d]``, ``hiddens, cells: [layers, B, H]``, ``mask: [B, S]`` (True at pad,
    or None)."""

    outs: Tensor
    hiddens: Tensor
    cells: Tensor
    mask: Optional[Tensor]


def supports(model) -> bool:
    """Whether ``model`` is fairseq's ``lstm`` (stock ``LSTMEncoder`` / ``LSTMDecoder``, dot
    attention or none, no adaptive softmax) in eval mode: where :class:`LstmHost` is exact."""
    from fairseq.models.lstm import AttentionLayer, LSTMDecoder, LSTMEncoder

    decoder, encoder = getattr(model, "decoder", None), getattr(model, "encoder", None)
    return (type(decoder) is LSTMDecoder and type(encoder) is LSTMEncoder
            and not decoder.training and decoder.adaptive_softmax is None
            and (decoder.attention is None or type(decoder.attention) is AttentionLayer))


class LstmHost(Host):
    """:class:`~fairseq_searnn.search.host.Host` of a fairseq ``lstm`` model (eval mode)."""

    def __init__(self, model):
        self.model = model
        self.decoder = model.decoder

    def encode(self, net_input: dict) -> LstmEncoding:
        return self.prepare(self.model.encoder.forward_torchscript(net_input))

    def prepare(self, encoder_out) -> LstmEncoding:
        if isinstance(encoder_out, LstmEncoding):
            return encoder_out
        outs, hiddens, cells, mask = encoder_out[:4]
        if mask is not None:
            mask = mask.t() if mask.numel() > 0 else None
        return LstmEncoding(outs.transpose(0, 1).contiguous(), hiddens, cells, mask)

    def encoder_rows(self, encoder_out: LstmEncoding, index: Tensor) -> LstmEncoding:
        outs, hiddens, cells, mask = encoder_out
        return LstmEncoding(outs.index_select(0, index), hiddens.index_select(1, index),
                            cells.index_select(1, index),
                            None if mask is None else mask.index_select(0, index))

    def fork(self, state: State, index: Tensor, rows: int) -> State:
        """Rows ``index: [R']`` of ``state`` (new tensors)."""
        if len(state) == 0:
            return {}
        return {"h": state["h"].index_select(1, index), "c": state["c"].index_select(1, index),
                "feed": state["feed"].index_select(0, index)}

    def step(self, prefix: Tensor, state: State, encoder_out: LstmEncoding) -> Tensor:
        """Scores ``[R, V]`` after ``prefix: [R, L]``; the state (``h, c: [layers, R, H]``,
        ``feed: [R, H]``) holds ``prefix[:, :-1]``, or is empty and the whole prefix is fed
        (as fairseq's decoder does)."""
        if len(state) == 0 and prefix.size(1) > 1:
            self.step(prefix[:, :-1], state, encoder_out)
        dec = self.decoder
        x = dec.embed_tokens(prefix[:, -1])  # [R, E]
        if len(state) == 0:
            h = [encoder_out.hiddens[i] for i in range(dec.num_layers)]
            c = [encoder_out.cells[i] for i in range(dec.num_layers)]
            if dec.encoder_hidden_proj is not None:
                h = [dec.encoder_hidden_proj(y) for y in h]
                c = [dec.encoder_cell_proj(y) for y in c]
            feed = x.new_zeros(x.size(0), dec.hidden_size)
        else:
            h, c, feed = list(state["h"].unbind(0)), list(state["c"].unbind(0)), state["feed"]
        layer_input = torch.cat((x, feed), dim=1)
        for i, rnn in enumerate(dec.layers):
            hidden, cell = rnn(layer_input, (h[i], c[i]))
            layer_input = hidden + h[i] if dec.residuals else hidden
            h[i], c[i] = hidden, cell
        out = hidden if dec.attention is None else self._attend(hidden, encoder_out)
        state["h"], state["c"], state["feed"] = torch.stack(h), torch.stack(c), out
        if hasattr(dec, "additional_fc"):
            out = dec.additional_fc(out)
        return dec.output_layer(out)

    def _attend(self, hidden: Tensor, enc: LstmEncoding) -> Tensor:
        """fairseq's ``AttentionLayer`` on ``hidden: [R, H]`` with batched matrix products."""
        attn = self.decoder.attention
        query = attn.input_proj(hidden)  # [R, d]
        scores = torch.bmm(enc.outs, query.unsqueeze(2)).squeeze(2)  # [R, S]
        if enc.mask is not None:
            scores = scores.masked_fill(enc.mask, float("-inf"))
        weights = F.softmax(scores, dim=1)
        context = torch.bmm(weights.unsqueeze(1), enc.outs).squeeze(1)  # [R, d]
        return torch.tanh(attn.output_proj(torch.cat((context, hidden), dim=1)))

    def score(self, prev_output_tokens: Tensor, encoder_out: LstmEncoding) -> Tensor:
        """fairseq's forward on decoder inputs ``[B, T]``: ``[B, T, V]``."""
        outs, hiddens, cells, mask = encoder_out
        fairseq_out = (outs.transpose(0, 1), hiddens, cells,
                       None if mask is None else mask.t())
        out, _ = self.decoder(prev_output_tokens, encoder_out=fairseq_out)
        return out
