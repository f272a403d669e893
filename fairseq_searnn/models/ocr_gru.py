"""``ocr_gru``: GRU encoder-decoder with attention over feature-vector sources (OCR task).

Encoder: optional linear projection of each source vector (the OCR task's 128 pixels), then a
(bi)GRU. Decoder: a GRU cell fed the previous letter's embedding and an attention context
(dot-product attention queried by the previous decoder state), output layer on
``tanh(W [h; context])``. The decoder is a ``FairseqIncrementalDecoder`` whose cached state is
the GRU hidden state, so fairseq-generate and the SeaRNN engine decode it incrementally; a
teacher-forced pass runs the same step function over the target.
"""

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from fairseq.dataclass import FairseqDataclass
from fairseq.models import (
    FairseqEncoder,
    FairseqEncoderDecoderModel,
    FairseqIncrementalDecoder,
    register_model,
)
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

MAX_POSITIONS = 1024


@dataclass
class OcrGruConfig(FairseqDataclass):
    ocr_hidden_size: int = field(
        default=128, metadata={"help": "GRU size of the encoder (per direction) and decoder"})
    ocr_input_proj: int = field(
        default=0, metadata={"help": "linear projection of each source vector to this size "
                             "before the encoder GRU (0: feed the vectors as they are)"})
    ocr_embed_dim: int = field(
        default=64, metadata={"help": "embedding size of the decoder's previous letter"})
    ocr_unidirectional: bool = field(
        default=False, metadata={"help": "one-directional encoder GRU (default: bidirectional)"})
    ocr_dropout: float = field(
        default=0.0, metadata={"help": "dropout on the encoder inputs and outputs and on the "
                               "decoder's output layer"})


class OcrEncoder(FairseqEncoder):
    """``src_tokens: FloatTensor[B, S, D]`` (zero padded), ``src_lengths: [B]`` -> dict of
    ``out: [B, S, H']``, ``padding_mask: [B, S]`` (True at padding), ``final: [B, H']``."""

    def __init__(self, cfg: OcrGruConfig, input_dim: int):
        super().__init__(None)
        self.proj = nn.Linear(input_dim, cfg.ocr_input_proj) if cfg.ocr_input_proj > 0 else None
        bi = not cfg.ocr_unidirectional
        self.rnn = nn.GRU(cfg.ocr_input_proj or input_dim, cfg.ocr_hidden_size,
                          batch_first=True, bidirectional=bi)
        self.dropout = nn.Dropout(cfg.ocr_dropout)
        self.output_dim = cfg.ocr_hidden_size * (2 if bi else 1)

    def forward(self, src_tokens, src_lengths):
        x = src_tokens.to(self.rnn.weight_ih_l0.dtype)  # pixels (any dtype) -> weights
        if self.proj is not None:
            x = self.proj(x)
        packed = pack_padded_sequence(self.dropout(x), src_lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, final = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
        positions = torch.arange(x.size(1), device=x.device)
        return {
            "out": self.dropout(out),
            "padding_mask": positions.unsqueeze(0) >= src_lengths.to(x.device).unsqueeze(1),
            "final": torch.cat(list(final), dim=1),  # [B, directions * H]
        }

    def reorder_encoder_out(self, encoder_out, new_order):
        return {k: v.index_select(0, new_order) for k, v in encoder_out.items()}

    def max_positions(self):
        return MAX_POSITIONS


class OcrDecoder(FairseqIncrementalDecoder):
    """Attention GRU decoder; returns ``(logits [B, T, V], attention [B, T, S])``."""

    def __init__(self, cfg: OcrGruConfig, dictionary, encoder_dim: int):
        super().__init__(dictionary)
        hidden, embed = cfg.ocr_hidden_size, cfg.ocr_embed_dim
        self.embed = nn.Embedding(len(dictionary), embed, padding_idx=dictionary.pad())
        self.init = nn.Linear(encoder_dim, hidden)
        self.query = nn.Linear(hidden, encoder_dim, bias=False)
        self.cell = nn.GRUCell(embed + encoder_dim, hidden)
        self.combine = nn.Linear(hidden + encoder_dim, hidden)
        self.dropout = nn.Dropout(cfg.ocr_dropout)
        self.output = nn.Linear(hidden, len(dictionary))

    def forward(self, prev_output_tokens, encoder_out=None, incremental_state=None, **kwargs):
        """Teacher-forced over ``prev_output_tokens: [B, T]``; incrementally (the full prefix
        is passed, only its last token is new) from the cached hidden state."""
        cached = None
        if incremental_state is not None:
            prev_output_tokens = prev_output_tokens[:, -1:]
            cached = self.get_incremental_state(incremental_state, "state")
        h = torch.tanh(self.init(encoder_out["final"])) if cached is None else cached["hidden"]
        enc, mask = encoder_out["out"], encoder_out["padding_mask"]
        logits, attns = [], []
        for emb in self.embed(prev_output_tokens).unbind(1):
            score = torch.bmm(enc, self.query(h).unsqueeze(2)).squeeze(2)
            attn = F.softmax(score.masked_fill(mask, float("-inf")), dim=-1)
            context = torch.bmm(attn.unsqueeze(1), enc).squeeze(1)
            h = self.cell(torch.cat([emb, context], dim=1), h)
            out = torch.tanh(self.combine(torch.cat([h, context], dim=1)))
            logits.append(self.output(self.dropout(out)))
            attns.append(attn)
        if incremental_state is not None:
            self.set_incremental_state(incremental_state, "state", {"hidden": h})
        return torch.stack(logits, dim=1), torch.stack(attns, dim=1)

    def reorder_incremental_state(self, incremental_state, new_order):
        cached = self.get_incremental_state(incremental_state, "state")
        if cached is not None:
            self.set_incremental_state(incremental_state, "state",
                                       {"hidden": cached["hidden"].index_select(0, new_order)})

    def max_positions(self):
        return MAX_POSITIONS


@register_model("ocr_gru", dataclass=OcrGruConfig)
class OcrGruModel(FairseqEncoderDecoderModel):
    """GRU encoder-decoder for feature-vector sources (``--arch ocr_gru``, task ``ocr``)."""

    @classmethod
    def build_model(cls, cfg: OcrGruConfig, task):
        input_dim = getattr(task, "feature_dim", None)
        if input_dim is None:
            raise ValueError("ocr_gru needs a task with vector sources (``feature_dim``), "
                             "e.g. --task ocr")
        encoder = OcrEncoder(cfg, input_dim)
        return cls(encoder, OcrDecoder(cfg, task.target_dictionary, encoder.output_dim))
