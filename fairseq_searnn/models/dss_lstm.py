"""``dss_lstm``: fairseq's ``lstm`` trained with differentiable scheduled sampling.

Every option and size variant of ``lstm`` plus the ``--ss-*`` options of :class:`DSSLSTMConfig`.
Training forwards decode step by step, feeding each step the (relaxed) decision of the previous
one (:mod:`._lstm_steps`); evaluation (validation, ``fairseq-generate``/``-interactive``) is
exactly fairseq's ``lstm``: same parameters, same state dict, teacher forcing / hard argmax.
"""

from dataclasses import dataclass

from fairseq.dataclass.utils import gen_parser_from_dataclass
from fairseq.models import register_model
from fairseq.models.lstm import (
    LSTMModel,
    base_architecture,
    lstm_luong_wmt_en_de,
    lstm_wiseman_iwslt_de_en,
)

from fairseq_searnn.models._dss_base import (
    DSSConfig,
    DSSModelMixin,
    check_decoder_supported,
    config_from_args,
    register_variant,
)
from fairseq_searnn.models._lstm_steps import relaxed_decode


@dataclass
class DSSLSTMConfig(DSSConfig):
    """``--ss-*`` options of ``dss_lstm`` (see :class:`DSSConfig`)."""


@register_model("dss_lstm")
class DSSLSTMModel(DSSModelMixin, LSTMModel):
    """LSTM encoder-decoder (Bahdanau-style attention, input feeding) with relaxed feeding."""

    @staticmethod
    def add_args(parser):
        LSTMModel.add_args(parser)
        gen_parser_from_dataclass(parser, DSSLSTMConfig())

    @classmethod
    def build_model(cls, args, task):
        dss_cfg = config_from_args(DSSLSTMConfig, args)
        model = super().build_model(args, task)
        check_decoder_supported(model.decoder, "dss_lstm")
        model.dss_setup(dss_cfg)
        return model

    def forward(self, src_tokens, src_lengths, prev_output_tokens, incremental_state=None):
        """Training: ``(scores [B, T, V], None)`` of the relaxed decoder; otherwise ``lstm``."""
        feed = self.dss_feed(src_tokens) if incremental_state is None else None
        if feed is None:
            return super().forward(src_tokens, src_lengths, prev_output_tokens,
                                   incremental_state=incremental_state)
        encoder_out = self.encoder(src_tokens, src_lengths=src_lengths)
        return relaxed_decode(self.decoder, prev_output_tokens, encoder_out, feed)


def _variant(name, base):
    return register_variant("dss_lstm", DSSLSTMConfig, name, base)


dss_lstm = _variant("dss_lstm", base_architecture)
dss_lstm_wiseman_iwslt_de_en = _variant("dss_lstm_wiseman_iwslt_de_en", lstm_wiseman_iwslt_de_en)
dss_lstm_luong_wmt_en_de = _variant("dss_lstm_luong_wmt_en_de", lstm_luong_wmt_en_de)
