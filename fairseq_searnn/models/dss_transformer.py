"""``dss_transformer``: fairseq's ``transformer`` trained with differentiable scheduled sampling.

Every option and size variant of ``transformer`` plus the ``--ss-*`` options of
:class:`DSSTransformerConfig`. Training forwards feed each step the (relaxed) decision of the
previous one, either exactly (``--ss-passes step``: step by step on an incremental state) or
approximately (``--ss-passes two``, see :mod:`._transformer_steps`). Evaluation (validation,
``fairseq-generate``/``-interactive``) is exactly fairseq's ``transformer`` with the same weights.
"""

from dataclasses import dataclass, field

from fairseq.dataclass import ChoiceEnum
from fairseq.dataclass.utils import gen_parser_from_dataclass
from fairseq.models import register_model
from fairseq.models.transformer import TransformerModel
from fairseq.models.transformer.transformer_legacy import (
    base_architecture,
    tiny_architecture,
    transformer_iwslt_de_en,
    transformer_vaswani_wmt_en_de_big,
    transformer_vaswani_wmt_en_fr_big,
    transformer_wmt_en_de,
    transformer_wmt_en_de_big,
    transformer_wmt_en_de_big_t2t,
)

from fairseq_searnn.models import _transformer_steps
from fairseq_searnn.models._dss_base import (
    DSSConfig,
    DSSModelMixin,
    check_decoder_supported,
    config_from_args,
    register_variant,
)

PASSES = ("step", "two")
PASSES_CHOICES = ChoiceEnum(list(PASSES))


@dataclass
class DSSTransformerConfig(DSSConfig):
    """``--ss-*`` options of ``dss_transformer`` (:class:`DSSConfig` plus the pass mode)."""

    ss_passes: PASSES_CHOICES = field(
        default="step",
        metadata={"help": "'step': exact, decode step by step on the incremental state (each "
                  "step consumes the previous step's scores of the same forward); 'two': "
                  "approximation of Mihaylova & Martins (2019), a teacher-forced first pass "
                  "gives the scores, a parallel second pass consumes their relaxation"},
    )
    ss_detach_first_pass: bool = field(
        default=False,
        metadata={"help": "with --ss-passes two: run the first pass without gradient (by "
                  "default gradients flow through the relaxation into the first pass)"},
    )


@register_model("dss_transformer")
class DSSTransformerModel(DSSModelMixin, TransformerModel):
    """Transformer encoder-decoder (Vaswani et al., 2017) with relaxed feeding."""

    @classmethod
    def add_args(cls, parser):
        TransformerModel.add_args(parser)
        gen_parser_from_dataclass(parser, DSSTransformerConfig())

    @classmethod
    def build_model(cls, args, task):
        dss_cfg = config_from_args(DSSTransformerConfig, args)
        passes = str(dss_cfg.ss_passes)
        if passes not in PASSES:
            raise ValueError(f"--ss-passes must be step or two, got {passes!r}")
        if passes == "step" and getattr(args, "checkpoint_activations", False):
            raise ValueError("dss_transformer: --ss-passes step does not support "
                             "--checkpoint-activations (recomputation would replay the "
                             "incremental state); use --ss-passes two")
        model = super().build_model(args, task)
        check_decoder_supported(model.decoder, "dss_transformer")
        model.dss_setup(dss_cfg)
        return model

    def forward(self, src_tokens, src_lengths, prev_output_tokens, return_all_hiddens: bool = True,
                features_only: bool = False, alignment_layer=None, alignment_heads=None):
        """Training: ``(scores [B, T, V] or features, extra)`` of the relaxed decoder;
        otherwise exactly ``transformer``."""
        feed = self.dss_feed(src_tokens)
        if feed is None:
            return super().forward(src_tokens, src_lengths, prev_output_tokens,
                                   return_all_hiddens=return_all_hiddens,
                                   features_only=features_only, alignment_layer=alignment_layer,
                                   alignment_heads=alignment_heads)
        encoder_out = self.encoder(src_tokens, src_lengths=src_lengths,
                                   return_all_hiddens=return_all_hiddens)
        if str(self.dss_cfg.ss_passes) == "two":
            features, scores, extra = _transformer_steps.two_pass(
                self.decoder, prev_output_tokens, encoder_out, feed,
                detach_first_pass=self.dss_cfg.ss_detach_first_pass,
                alignment_layer=alignment_layer, alignment_heads=alignment_heads,
            )
        else:
            features, scores, extra = _transformer_steps.step_by_step(
                self.decoder, prev_output_tokens, encoder_out, feed,
                alignment_layer=alignment_layer, alignment_heads=alignment_heads,
            )
        return (features if features_only else scores), extra


def _variant(name, base):
    return register_variant("dss_transformer", DSSTransformerConfig, name, base)


dss_transformer = _variant("dss_transformer", base_architecture)
dss_transformer_tiny = _variant("dss_transformer_tiny", tiny_architecture)
dss_transformer_iwslt_de_en = _variant("dss_transformer_iwslt_de_en", transformer_iwslt_de_en)
dss_transformer_wmt_en_de = _variant("dss_transformer_wmt_en_de", transformer_wmt_en_de)
dss_transformer_vaswani_wmt_en_de_big = _variant(
    "dss_transformer_vaswani_wmt_en_de_big", transformer_vaswani_wmt_en_de_big)
dss_transformer_vaswani_wmt_en_fr_big = _variant(
    "dss_transformer_vaswani_wmt_en_fr_big", transformer_vaswani_wmt_en_fr_big)
dss_transformer_wmt_en_de_big = _variant("dss_transformer_wmt_en_de_big", transformer_wmt_en_de_big)
dss_transformer_wmt_en_de_big_t2t = _variant(
    "dss_transformer_wmt_en_de_big_t2t", transformer_wmt_en_de_big_t2t)
