"""What the search needs from a model family: a host.

The engine decodes through a :class:`Host` and nothing else: encode a batch once, take rows of
that encoding, feed one token to the decoder on an incremental state, fork a state over rows,
and score a teacher-forced batch. :class:`FairseqHost` implements it for any fairseq
``FairseqEncoderDecoderModel`` whose decoder is a ``FairseqIncrementalDecoder``;
:class:`fairseq_searnn.search.lstm_host.LstmHost` is a leaner exact step for fairseq's ``lstm``;
another library's models get a host of their own (:func:`as_host` passes any ``Host`` through).

Conventions: decoder inputs start with the engine's BOS (the target dictionary's EOS, as in
fairseq); a host whose model starts otherwise maps it. A state starts as ``{}`` and is changed
in place by :meth:`Host.step`; :meth:`Host.fork` never changes its input.
"""

from typing import Any, Dict, Optional

import torch
from fairseq import utils
from torch import Tensor

State = Dict[str, Any]
#: :func:`as_host` gives fairseq's ``lstm`` its lean step (benchmarks turn it off to compare)
LEAN_STEPS = True


class Host:
    """Incremental decoding of an encoder-decoder model (the interface; see module doc).

    Attributes:
        model: the ``torch.nn.Module`` whose train / eval mode the engine sets while decoding.
    """

    model: torch.nn.Module

    def encode(self, net_input: dict) -> Any:
        """The encoder output of a batch (``B`` rows), in the host's own format."""
        raise NotImplementedError

    def prepare(self, encoder_out: Any) -> Any:
        """The host's format of an encoder output made by the model itself (identity unless the
        host keeps its own layout)."""
        return encoder_out

    def encoder_rows(self, encoder_out: Any, index: Tensor) -> Any:
        """Rows ``index: [R]`` of an encoder output."""
        raise NotImplementedError

    def step(self, prefix: Tensor, state: State, encoder_out: Any) -> Tensor:
        """Raw scores (logits) ``[R, V]`` of the next token after ``prefix: [R, L]`` (the whole
        prefix, BOS first; a host with a fixed-size state reads only its last column), the
        model's dtype. ``state`` holds the prefix but its last token and is updated in place."""
        raise NotImplementedError

    def fork(self, state: State, index: Tensor, rows: int) -> State:
        """A new state holding rows ``index: [R']`` of ``state`` (``rows`` rows; untouched)."""
        raise NotImplementedError

    def score(self, prev_output_tokens: Tensor, encoder_out: Any) -> Tensor:
        """Teacher-forced raw scores ``[B, T, V]`` of decoder inputs ``[B, T]``."""
        raise NotImplementedError


class FairseqHost(Host):
    """A fairseq encoder-decoder model with an incremental decoder (``lstm``, ``transformer``,
    the OCR model, ...): fairseq's own encoder, decoder and state reordering."""

    def __init__(self, model):
        self.model = model

    def encode(self, net_input: dict) -> Any:
        return self.prepare(self.model.encoder.forward_torchscript(net_input))

    def encoder_rows(self, encoder_out, index: Tensor):
        return self.model.encoder.reorder_encoder_out(encoder_out, index)

    def step(self, prefix: Tensor, state: State, encoder_out) -> Tensor:
        out, _ = self.model.decoder(prefix, encoder_out=encoder_out, incremental_state=state)
        return out[:, -1, :]

    def fork(self, state: State, index: Tensor, rows: int) -> State:
        """fairseq's attention skips reordering cached encoder-decoder keys when the number of
        rows is unchanged (a beam-search shortcut); a same-size reorder therefore goes through
        an intermediate state with one extra row so that every cache is really reordered."""
        forked = utils.apply_to_sample(lambda t: t, state)
        if len(forked) == 0:
            return forked
        reorder = self.model.decoder.reorder_incremental_state_scripting
        if index.numel() == rows:
            reorder(forked, torch.cat([index, index[:1]]))
            index = torch.arange(index.numel(), device=index.device)
        reorder(forked, index)
        return forked

    def score(self, prev_output_tokens: Tensor, encoder_out) -> Tensor:
        out, _ = self.model.decoder(prev_output_tokens, encoder_out=encoder_out)
        return out


def as_host(model, lean: Optional[bool] = None) -> Host:
    """``model`` as a :class:`Host`: a host is returned as it is; a fairseq model gets the lean
    LSTM step where it is exact (:func:`~fairseq_searnn.search.lstm_host.supports`; ``lean``
    False forces fairseq's own decoder), else :class:`FairseqHost`."""
    if isinstance(model, Host):
        return model
    from fairseq_searnn.search import lstm_host

    lean = LEAN_STEPS if lean is None else lean
    if lean and lstm_host.supports(model):
        return lstm_host.LstmHost(model)
    return FairseqHost(model)
