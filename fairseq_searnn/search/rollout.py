"""Roll-outs: every entry ``(b, t, k)`` (sentence, cell, candidate slot) is finished from the
roll-in prefix ``rollin[b, :t]`` + candidate token by the learned policy (greedy
continuations forked from the roll-in's incremental state), the reference policy, or a mix.

:func:`roll_out` owns the choice: which entries the model finishes (:func:`learned_entries`:
learned / mixed per sentence, cell or roll-out / focused), the greedy-reuse shortcut after a
greedy roll-in (:func:`greedy_continuations`), the batched decoding
(:func:`learned_rollouts`) and the reference completion (:func:`complete`).
"""

from dataclasses import dataclass
from typing import Callable, List, NamedTuple, Optional

import torch
from fairseq import utils
from torch import Tensor

from fairseq_searnn import keyed_random
from fairseq_searnn.search import reference as ref_policy
from fairseq_searnn.search.decoding import Decoder, IncrementalState
from fairseq_searnn.search.rollin import RolledIn, prev_output_tokens

ROLLOUTS = ("reference", "learned", "mixed", "focused")
#: mixed roll-outs: one policy draw per sentence (the authors' code), per cell, or per roll-out
MIX_GRANULARITIES = ("sentence", "cell", "rollout")


@dataclass(frozen=True)
class RolloutPolicy:
    """How roll-outs are finished.

    mode: one of :data:`ROLLOUTS`; ref_prob: mixed, probability of the reference policy;
    granularity: mixed, one of :data:`MIX_GRANULARITIES`; focused_steps: focused, learned
    steps before the reference policy; reference: the reference policy (``copy`` /
    ``best-suffix``) and selection_cost its suffix-selection cost; batch_size: learned
    roll-outs decoded together.
    """

    mode: str
    ref_prob: float
    granularity: str
    focused_steps: int
    reference: str
    selection_cost: Callable
    batch_size: int


class Entries(NamedTuple):
    """The ``N`` entries to roll out: ``b, t, k, token: [N]`` (sentence, cell, candidate slot,
    candidate token); ``slots`` = K, the candidate slots per cell."""

    b: Tensor
    t: Tensor
    k: Tensor
    token: Tensor
    slots: int

    @classmethod
    def of(cls, candidates: Tensor, mask: Tensor) -> "Entries":
        """Every valid entry of ``candidates, mask: [B, T, K]``."""
        b, t, k = mask.nonzero(as_tuple=True)
        return cls(b=b, t=t, k=k, token=candidates[b, t, k], slots=candidates.size(2))


class Rollouts(NamedTuple):
    """``hypotheses: [N, L]`` finished content tokens (pad after) of every entry, how many
    the model finished (``learned``), how many of those were read off the roll-in
    (``reused``), and the tokens the model decoded for the others (``decoded``: generated
    tokens plus one end-of-sentence step per roll-out)."""

    hypotheses: Tensor
    learned: int
    reused: int
    decoded: int = 0


def learned_entries(policy: RolloutPolicy, keys: Tensor, entries: Entries) -> Tensor:
    """``[N]`` True where the policy gives the entry's roll-out to the model (the caller drops
    candidate EOS, which ends the hypothesis). ``keys: [B]`` per-sentence random keys."""
    b, t, k, _, slots = entries
    if policy.mode in ("learned", "focused"):
        learned = torch.ones_like(b, dtype=torch.bool)
    elif policy.mode == "reference":
        learned = torch.zeros_like(b, dtype=torch.bool)
    else:
        stream = keyed_random.Stream.ROLLOUT
        if policy.granularity == "sentence":  # every candidate of every cell alike
            u = keyed_random.uniform(keys[b], stream)
        elif policy.granularity == "cell":  # the candidates of a cell alike
            u = keyed_random.uniform(keys[b], stream, t)
        else:
            u = keyed_random.uniform(keys[b], stream, t * slots + k)
        learned = u.ge(policy.ref_prob)
    return learned


@torch.no_grad()
def roll_out(batch: RolledIn, entries: Entries, policy: RolloutPolicy) -> Rollouts:
    """Finish every entry of a rolled-in ``batch`` (:class:`RolledIn`) under ``policy``."""
    pad, eos, rollin = batch.pad, batch.eos, batch.rollin
    b, t, _, token, _ = entries
    N, T = b.numel(), rollin.size(1)
    learned = learned_entries(policy, batch.keys, entries) & token.ne(eos)
    # prefix + candidate (a candidate EOS: the prefix alone)
    pos = torch.arange(T, device=rollin.device)
    prefix_a = rollin[b].masked_fill(pos.unsqueeze(0) >= t.unsqueeze(1), pad)
    prefix_a[torch.arange(N, device=rollin.device), t] = torch.where(token.eq(eos), pad, token)

    gen, unfinished = prefix_a.new_full((N, 0), pad), torch.zeros_like(learned)
    steps = policy.focused_steps if policy.mode == "focused" else None
    # after a greedy roll-in, the roll-out of the roll-in's own token is the roll-in
    reused = learned & token.eq(rollin[b, t]) if batch.greedy else torch.zeros_like(learned)
    n_learned, n_reused = int(learned.sum()), int(reused.sum())
    decoded = 0
    if n_learned > n_reused:
        gen, unfinished = learned_rollouts(
            decoder=batch.decoder, rollin=rollin, b=b, t=t, prefix_a=prefix_a,
            learned=learned & ~reused, max_len=batch.max_len, batch_size=policy.batch_size,
            max_steps=steps, rollin_states=batch.rollin_states)
        decoded = int(gen.ne(pad).sum()) + n_learned - n_reused
    if n_reused > 0:
        idx = reused.nonzero().squeeze(1)
        cont, done = greedy_continuations(rollin=rollin[b[idx]], t=t[idx],
                                          max_len=batch.max_len[b[idx]], pad=pad, eos=eos,
                                          max_steps=steps)
        gen = pad_to(gen, cont.size(1), pad)
        gen[idx, : cont.size(1)] = cont
        unfinished[idx] = ~done
    hyp = prefix_a if gen.size(1) == 0 else ref_policy.concat(
        prefix_a, gen, start=torch.zeros_like(b), pad=pad)
    # reference roll-outs, and focused roll-outs cut after m steps, finish with the reference
    # policy's continuation
    hyp = complete(hyp, batch.ref, b=b, use_ref=(~learned | unfinished) & token.ne(eos),
                   pad=pad, policy=policy.reference, sel_cost=policy.selection_cost)
    return Rollouts(hyp, n_learned, n_reused, decoded)


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
    rollin_states: Optional[List[IncrementalState]] = None,
):
    """Greedy continuations of the entries ``learned: [N]``.

    One incremental pass runs the roll-in ``rollin: [B, T]`` for the batch; at cell ``t`` its
    state is forked over the cell's learned entries (``batch_size`` rows at a time), the forced
    candidate (``prefix_a[n, t]``; ``prefix_a: [N, T]`` = roll-in prefix + candidate) is fed,
    and the rows are decoded together until EOS or ``max_len[b]`` (``[B]``), or for
    ``max_steps`` tokens (focused roll-outs). With ``batch_cells`` and a decoder whose state
    has a fixed size (an RNN, :meth:`Decoder.has_fixed_size_state`), the roll-outs of all cells
    are decoded together, ``batch_size`` rows at a time, from the roll-in's state at each cell;
    otherwise (a Transformer's cache grows with the prefix) cell by cell. ``rollin_states``
    (the snapshots a learned roll-in kept, :func:`decode_rollin`) spare the pass over the
    roll-in when they cover every cell to roll out.

    Returns ``gen: [N, G]`` generated tokens (pad where none) and ``unfinished: [N]`` (rows cut
    by ``max_steps``, to be finished by the reference policy).
    """
    pad, eos = decoder.pad, decoder.eos
    N = b.numel()
    B = rollin.size(0)
    device = rollin.device
    pieces, unfinished = [], torch.zeros(N, dtype=torch.bool, device=device)
    prev = prev_output_tokens(rollin, pad, eos)
    state = {}
    sel = learned.nonzero().squeeze(1)
    cell_of = t[sel]
    last = int(cell_of.max().item())
    kept = rollin_states is not None and len(rollin_states) > last
    batched = batch_cells and last > 0 and (kept or decoder.has_fixed_size_state(prev))
    wanted = set(cell_of.unique().tolist()) if batched else set()
    use_kept = batched and kept  # the roll-in's own snapshots: no second pass over it
    snapshots = {cell: rollin_states[cell] for cell in wanted} if use_kept else {}
    enc_all = None if use_kept else decoder.encoder_rows(torch.arange(B, device=device))
    for cell in range(0 if use_kept else last + 1):
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
            tokens, finished = decoder.greedy(inputs, forked, rows=rows, length=length,
                                              max_len=max_len[rows], max_steps=max_steps)
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
            tokens, finished = decoder.greedy(inputs, forked, rows=rows, length=cells + 1,
                                              max_len=max_len[rows], max_steps=max_steps)
            pieces.append((chunk, tokens))
            unfinished[chunk] = ~finished
    width = max((p[1].size(1) for p in pieces), default=0)
    gen = torch.full((N, width), pad, dtype=torch.long, device=device)
    for chunk, tokens in pieces:
        gen[chunk, : tokens.size(1)] = tokens
    return gen, unfinished


def greedy_continuations(rollin: Tensor, t: Tensor, max_len: Tensor, pad: int, eos: int,
                         max_steps: Optional[int] = None):
    """Learned roll-outs read off a greedy roll-in: forcing the roll-in's own token
    ``rollin[r, t[r]]`` at cell ``t[r]`` and decoding greedily repeats the roll-in, so its
    continuation is ``rollin[r, t[r] + 1:]`` up to EOS (the same EOS forced at ``max_len``).

    rollin: ``[R, T]`` rows of a greedy roll-in (EOS-terminated); t: ``[R]`` cells whose token is
    content; max_len: ``[R]`` content tokens allowed. Returns what :meth:`Decoder.greedy` would:
    ``gen: [R, G]`` generated tokens (pad after) and ``finished: [R]`` (False where the
    ``max_steps`` of a focused roll-out end before the continuation does).
    """
    n = (rollin.ne(pad) & rollin.ne(eos)).sum(1)  # content tokens of each roll-in
    rest = n - (t + 1)
    finished = torch.ones_like(rest, dtype=torch.bool)
    if max_steps is not None:
        # decoding steps to the end: one per token, plus the EOS step unless max_len forces it
        finished = torch.where(n >= max_len, rest, rest + 1).le(max_steps)
        rest = rest.clamp(max=max_steps)
    width = int(rest.max().item()) if rest.numel() else 0
    j = torch.arange(width, device=rollin.device).unsqueeze(0)
    idx = (t.unsqueeze(1) + 1 + j).clamp(max=rollin.size(1) - 1)
    gen = rollin.gather(1, idx).masked_fill(j >= rest.unsqueeze(1), pad)
    return gen, finished


def complete(hyp: Tensor, ref: Tensor, b: Tensor, use_ref: Tensor, pad: int, policy: str,
             sel_cost) -> Tensor:
    """Append the reference policy's continuation to the rows ``use_ref: [N]`` of
    ``hyp: [N, L]`` (``ref: [B, Lr]``, ``b: [N]`` sentence of each row); never truncated."""
    if not bool(use_ref.any()):
        return hyp
    idx = use_ref.nonzero().squeeze(1)
    rows_ref = ref[b[idx]]
    start = ref_policy.suffix_start(hyp[idx], rows_ref, pad=pad, policy=policy,
                                    selection_cost=sel_cost)
    done = ref_policy.concat(hyp[idx], rows_ref, start=start, pad=pad)
    width = max(hyp.size(1), done.size(1))
    hyp = pad_to(hyp, width, pad)
    hyp[idx] = pad_to(done, width, pad)
    return hyp


def pad_to(x: Tensor, width: int, pad: int) -> Tensor:
    """``x: [N, L]`` right-padded with ``pad`` to at least ``width`` columns."""
    if x.size(1) >= width:
        return x
    return torch.cat([x, x.new_full((x.size(0), width - x.size(1)), pad)], dim=1)
