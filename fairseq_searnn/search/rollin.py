"""Roll-in policies: reference (the target), learned (greedy) and mixed (per step); greedy
decoding of a batch (:func:`greedy_decode`, for validation and evaluation)."""

from typing import Callable, List, Optional

import torch
from fairseq import utils
from torch import Tensor

from fairseq_searnn import keyed_random
from fairseq_searnn.search.decoding import (
    Decoder,
    IncrementalState,
    eval_mode,
    greedy_choice,
    state_shapes,
)
from fairseq_searnn.search.host import as_host

ROLLINS = ("reference", "learned", "mixed")


def prev_output_tokens(rollin: Tensor, pad: int, eos: int) -> Tensor:
    """Decoder inputs ``[EOS] + rollin[:-1]`` with pad where ``rollin`` is pad: ``[B, T]``
    (the teacher-forced input that scores every cell of a roll-in in one pass)."""
    prev = torch.cat([rollin.new_full((rollin.size(0), 1), eos), rollin[:, :-1]], dim=1)
    return prev.masked_fill(rollin.eq(pad), pad)


class RolledIn:
    """A batch after the roll-in, waiting for the roll-outs.

    Args:
        model: the :class:`~fairseq_searnn.search.host.Host` that decodes (or a fairseq model,
            wrapped by ``as_host``); net_input: the batch's encoder inputs.
        rollin: ``[B, T]`` EOS-terminated roll-in (the target for the reference roll-in).
        keys: ``[B]`` per-sentence random keys; ref: ``[B, Lr]`` reference content tokens;
        max_len: ``[B]`` content tokens a learned roll-in / roll-out may hold.
        fixed_length: decodings never choose EOS (they end at ``max_len``).
    Attributes set by the roll-in: ``greedy`` (the roll-in is the model's greedy decoding)
    and ``rollin_states`` (its decoder state at every cell, when kept: :func:`decode_rollin`).
    The encoder output is computed on first use (:attr:`decoder`).
    """

    def __init__(self, model, net_input, pad: int, eos: int, rollin: Tensor, keys: Tensor,
                 ref: Tensor, max_len: Tensor, fixed_length: bool = False):
        self.host = as_host(model)
        self.model = self.host.model  # the module whose mode decoding sets
        self.net_input, self.pad, self.eos = net_input, pad, eos
        self.rollin, self.keys, self.ref, self.max_len = rollin, keys, ref, max_len
        self.fixed_length = fixed_length
        self.greedy = False
        self.rollin_states: Optional[List[IncrementalState]] = None
        self.clock = None  # the engine's phase timer
        self._decoder: Optional[Decoder] = None

    @property
    def prev_output_tokens(self) -> Tensor:
        """``[B, T]`` the teacher-forced decoder input that scores every cell of the roll-in."""
        return prev_output_tokens(self.rollin, self.pad, self.eos)

    @property
    def decoder(self) -> Decoder:
        """:class:`Decoder` over the batch's eval-mode encoder output (computed once)."""
        if self._decoder is None:
            with eval_mode(self.model), torch.no_grad():
                encoder_out = self.host.encode(self.net_input)
            self._decoder = Decoder(self.host, encoder_out, pad=self.pad, eos=self.eos,
                                    fixed_length=self.fixed_length)
        return self._decoder


@torch.no_grad()
def decode_rollin(
    decoder: Decoder,
    max_len: Tensor,
    reference_action: Callable[[Tensor], Tensor],
    ref_prob: float,
    keys: Tensor,
    states: Optional[List[IncrementalState]] = None,
) -> Tensor:
    """Greedy (``ref_prob = 0``) or mixed roll-in, one step at a time for ``B`` sentences.

    At each step a sentence takes the reference action with probability ``ref_prob`` (drawn
    per sentence and step from ``keys``), else the model's greedy token (pad masked). EOS is
    forced once the roll-in holds ``max_len`` content tokens.

    Args:
        decoder: :class:`Decoder` over the batch's encoder output.
        max_len: ``[B]`` content tokens allowed per sentence.
        reference_action: maps the content prefix ``[B, s]`` to the reference policy's next
            token ``[B]``.
        ref_prob: probability of the reference action per step (0 = learned roll-in).
        keys: ``[B]`` int64 per-sentence random keys.
        states: optional list, filled with the decoder state at every cell (``states[t]``:
            after the prefix ``rollin[:, :t]``, ``B`` rows) when the decoder's state has a
            fixed size (an RNN: cheap snapshots that the learned roll-outs fork instead of
            running the roll-in again); left empty otherwise (a Transformer's cache grows, and
            snapshots of every step would cost memory quadratic in the length).
    Returns: ``rollin: [B, T]`` EOS-terminated, pad after.
    """
    B = max_len.size(0)
    pad, eos = decoder.pad, decoder.eos
    device = max_len.device
    rows = torch.arange(B, device=device)
    encoder_out = decoder.encoder_rows(rows)
    prefix = torch.full((B, 1), eos, dtype=torch.long, device=device)
    out = torch.full((B, int(max_len.max().item()) + 1), pad, dtype=torch.long, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    state = {}
    record = states is not None
    for s in range(out.size(1)):
        nxt = greedy_choice(decoder.step(prefix, state, encoder_out))
        if record:
            states.append(utils.apply_to_sample(lambda x: x, state))
            if s == 1 and state_shapes(states[0]) != state_shapes(states[1]):
                states.clear()  # the state grows with the prefix: keep no snapshots
                record = False
        if ref_prob > 0:
            coin = keyed_random.uniform(keys, keyed_random.Stream.ROLLIN, s).lt(ref_prob)
            nxt = torch.where(coin, reference_action(prefix[:, 1:]), nxt)
        nxt = nxt.masked_fill(max_len.le(s), eos)
        nxt = nxt.masked_fill(done, pad)
        out[:, s] = nxt
        done = done | nxt.eq(eos)
        if bool(done.all()):
            break
        prefix = torch.cat([prefix, nxt.unsqueeze(1)], dim=1)
    return out[:, : s + 1]


@torch.no_grad()
def greedy_decode(model, net_input, max_len: Tensor, pad: int, eos: int,
                  fixed_length: bool = False) -> Tensor:
    """Greedy decoding of a batch by ``model`` (a fairseq model or a
    :class:`~fairseq_searnn.search.host.Host`; its current mode; no grad).

    Args:
        net_input: the batch's ``net_input`` (fairseq's encoder inputs).
        max_len: ``[B]`` content tokens allowed per sentence, on the model's device; EOS is
            forced there.
        fixed_length: exactly ``max_len`` content tokens (EOS never chosen before).
    Returns: ``[B, T]`` EOS-terminated hypotheses, pad after.
    """
    host = as_host(model)
    decoder = Decoder(host, host.encode(net_input), pad=pad, eos=eos, fixed_length=fixed_length)
    return decode_rollin(decoder, max_len, reference_action=None, ref_prob=0.0, keys=None)

