"""The three ways a checkpoint is run on a batch: teacher forcing, greedy and beam decoding.

Greedy decoding is the engine's batched :func:`fairseq_searnn.search.greedy_decode` (a loop
over steps); beam decoding is fairseq's ``SequenceGenerator`` built by the task, as
fairseq-generate runs it. Both stop a sentence at ``int(a * src_len + b)`` content tokens
(fairseq-generate's ``--max-len-a`` / ``--max-len-b``; ``src_len`` counts the source's EOS).
"""

from argparse import Namespace
from typing import Optional

import torch
from torch import Tensor

from fairseq_searnn.search import SearchConfig, greedy_decode, length_bound


def max_lengths(model, sample, max_len_a: float, max_len_b: int) -> Tensor:
    """``[B]`` content tokens a hypothesis may hold: ``int(a * src_len + b)``, at most what the
    decoder's positions allow."""
    net_input = sample["net_input"]
    src_lengths = net_input["src_lengths"]
    cfg = SearchConfig(max_len_a=max_len_a, max_len_b=max_len_b)
    bound = length_bound(cfg, src_lengths, src_lengths)
    return bound.clamp(max=max(int(model.max_decoder_positions()) - 1, 1)).to(
        sample["target"].device)


@torch.no_grad()
def teacher_forced_lprobs(model, sample, prev: Optional[Tensor] = None) -> Tensor:
    """``[B, T, V]`` log-probabilities of the next token after every gold prefix or, given the
    decoder inputs ``prev: [B, T]`` of other sequences (e.g. ``prev_output_tokens`` of the
    greedy hypotheses), after every prefix of those: one pass either way."""
    net_input = sample["net_input"]
    if prev is not None:
        net_input = dict(net_input, prev_output_tokens=prev)
    return model.get_normalized_probs(model(**net_input), log_probs=True)


@torch.no_grad()
def greedy(model, sample, max_len: Tensor, pad: int, eos: int) -> Tensor:
    """Greedy hypotheses ``[B, L]`` (EOS-terminated, pad after), ``max_len: [B]``."""
    return greedy_decode(model, sample["net_input"], max_len, pad, eos)


def build_generator(task, model, beam: int, max_len_a: float, max_len_b: int):
    """fairseq's beam-search generator for ``model``, as fairseq-generate builds it."""
    args = Namespace(beam=beam, max_len_a=max_len_a, max_len_b=max_len_b)
    return task.build_generator([model], args)


@torch.no_grad()
def beam(task, generator, model, sample, pad: int) -> Tensor:
    """Best beam hypotheses ``[B, L]`` (EOS-terminated, pad after) by ``task.inference_step``."""
    hypos = task.inference_step(generator, [model], sample)
    rows = [h[0]["tokens"] for h in hypos]
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=pad)
