"""Roll-in policies: reference (the target), learned (greedy) and mixed (per step); greedy
decoding of a batch (:func:`greedy_decode`, for validation and evaluation)."""

from typing import Callable, List, Optional

import torch
from fairseq import utils
from torch import Tensor

from fairseq_searnn import keyed_random
from fairseq_searnn.search.decoding import Decoder, IncrementalState, state_shapes

ROLLINS = ("reference", "learned", "mixed")
_STREAM_ROLLIN = 21


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
        nxt = decoder.step(prefix, state, encoder_out).argmax(-1)
        if record:
            states.append(utils.apply_to_sample(lambda x: x, state))
            if s == 1 and state_shapes(states[0]) != state_shapes(states[1]):
                states.clear()  # the state grows with the prefix: keep no snapshots
                record = False
        if ref_prob > 0:
            coin = keyed_random.uniform(keys, _STREAM_ROLLIN, s).lt(ref_prob)
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
    """Greedy decoding of a batch by ``model`` (its current mode; no grad).

    Args:
        net_input: the batch's ``net_input`` (fairseq's encoder inputs).
        max_len: ``[B]`` content tokens allowed per sentence, on the model's device; EOS is
            forced there.
        fixed_length: exactly ``max_len`` content tokens (EOS never chosen before).
    Returns: ``[B, T]`` EOS-terminated hypotheses, pad after.
    """
    encoder_out = model.encoder.forward_torchscript(net_input)
    decoder = Decoder(model, encoder_out, pad, eos, fixed_length=fixed_length)
    return decode_rollin(decoder, max_len, None, 0.0, None)

