"""Roll-outs: greedy continuations forked from the roll-in's incremental state, and reference
completions. ``N`` entries ``(b, t, k)``: sentence, cell and candidate slot of each roll-out."""

from typing import Optional

import torch
from fairseq import utils
from torch import Tensor

from fairseq_searnn.search import reference as ref_policy
from fairseq_searnn.search.decoding import Decoder


def prev_output_tokens(rollin: Tensor, pad: int, eos: int) -> Tensor:
    """Decoder inputs ``[EOS] + rollin[:-1]`` with pad where ``rollin`` is pad: ``[B, T]``."""
    prev = torch.cat([rollin.new_full((rollin.size(0), 1), eos), rollin[:, :-1]], dim=1)
    return prev.masked_fill(rollin.eq(pad), pad)


@torch.no_grad()
def learned_rollouts(
    decoder: Decoder,
    rollin: Tensor,
    b: Tensor,
    t: Tensor,
    prefix_a: Tensor,
    learned: Tensor,
    max_len: Tensor,
    batch_size: int,
    max_steps: Optional[int] = None,
    batch_cells: bool = True,
):
    """Greedy continuations of the entries ``learned: [N]``.

    One incremental pass runs the roll-in ``rollin: [B, T]`` for the batch; at cell ``t`` its
    state is forked over the cell's learned entries (``batch_size`` rows at a time), the forced
    candidate (``prefix_a[n, t]``; ``prefix_a: [N, T]`` = roll-in prefix + candidate) is fed,
    and the rows are decoded together until EOS or ``max_len[b]`` (``[B]``), or for
    ``max_steps`` tokens (focused roll-outs). With ``batch_cells`` and a decoder whose state
    has a fixed size (an RNN, :meth:`Decoder.has_fixed_size_state`), the roll-outs of all cells
    are decoded together, ``batch_size`` rows at a time, from the roll-in's state at each cell;
    otherwise (a Transformer's cache grows with the prefix) cell by cell.

    Returns ``gen: [N, G]`` generated tokens (pad where none) and ``unfinished: [N]`` (rows cut
    by ``max_steps``, to be finished by the reference policy).
    """
    pad, eos = decoder.pad, decoder.eos
    N = b.numel()
    B = rollin.size(0)
    device = rollin.device
    pieces, unfinished = [], torch.zeros(N, dtype=torch.bool, device=device)
    prev = prev_output_tokens(rollin, pad, eos)
    enc_all = decoder.encoder_rows(torch.arange(B, device=device))
    state = {}
    sel = learned.nonzero().squeeze(1)
    cell_of = t[sel]
    last = int(cell_of.max().item())
    batched = batch_cells and last > 0 and decoder.has_fixed_size_state(prev)
    snapshots = {}
    wanted = set(cell_of.unique().tolist()) if batched else set()
    for cell in range(last + 1):
        decoder.step(prev[:, : cell + 1], state, enc_all)  # state after prefix rollin[:cell]
        if batched:
            if cell in wanted:
                snapshots[cell] = utils.apply_to_sample(lambda x: x, state)
            continue
        for chunk in sel[cell_of.eq(cell)].split(max(batch_size, 1)):
            rows = b[chunk]
            forked = decoder.reorder(state, rows, B)
            inputs = torch.cat([prev[rows, : cell + 1], prefix_a[chunk, cell:cell + 1]], 1)
            length = torch.full_like(chunk, cell + 1)
            tokens, finished = decoder.greedy(inputs, forked, rows, length, max_len[rows],
                                              max_steps)
            pieces.append((chunk, tokens))
            unfinished[chunk] = ~finished
    if batched:
        dims = decoder.batch_dims(snapshots[last], B)
        order = cell_of.argsort(stable=True)
        for part in order.split(max(batch_size, 1)):
            chunk, cells = sel[part], cell_of[part]
            groups = torch.unique_consecutive(cells, return_counts=True)
            states, start = [], 0
            for cell, count in zip(groups[0].tolist(), groups[1].tolist()):
                states.append(decoder.reorder(snapshots[cell], b[chunk[start:start + count]], B))
                start += count
            forked = decoder.cat_states(states, dims)
            rows = b[chunk]
            inputs = prefix_a[chunk, cells].unsqueeze(1)  # the candidates; the state holds the rest
            tokens, finished = decoder.greedy(inputs, forked, rows, cells + 1, max_len[rows],
                                              max_steps)
            pieces.append((chunk, tokens))
            unfinished[chunk] = ~finished
    width = max((p[1].size(1) for p in pieces), default=0)
    gen = torch.full((N, width), pad, dtype=torch.long, device=device)
    for chunk, tokens in pieces:
        gen[chunk, : tokens.size(1)] = tokens
    return gen, unfinished


def complete(hyp: Tensor, ref: Tensor, b: Tensor, use_ref: Tensor, pad: int, policy: str,
             sel_cost) -> Tensor:
    """Append the reference policy's continuation to the rows ``use_ref: [N]`` of
    ``hyp: [N, L]`` (``ref: [B, Lr]``, ``b: [N]`` sentence of each row); never truncated."""
    if not bool(use_ref.any()):
        return hyp
    idx = use_ref.nonzero().squeeze(1)
    rows_ref = ref[b[idx]]
    start = ref_policy.suffix_start(hyp[idx], rows_ref, pad, policy, sel_cost)
    done = ref_policy.concat(hyp[idx], rows_ref, start, pad)
    width = max(hyp.size(1), done.size(1))
    hyp = _pad_to(hyp, width, pad)
    hyp[idx] = _pad_to(done, width, pad)
    return hyp


def _pad_to(x: Tensor, width: int, pad: int) -> Tensor:
    if x.size(1) >= width:
        return x
    return torch.cat([x, x.new_full((x.size(0), width - x.size(1)), pad)], dim=1)
