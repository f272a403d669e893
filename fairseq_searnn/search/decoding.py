"""Incremental decoding through a :class:`~fairseq_searnn.search.host.Host`: step, fork,
expand, greedy continuation.

Rows of a decoding batch index into one encoder pass (:meth:`Decoder.encoder_rows`); the
decoder state of rows is forked with :meth:`Decoder.reorder`. A fairseq model is wrapped in its
host (:func:`~fairseq_searnn.search.host.as_host`): fairseq's ``lstm`` and ``transformer``
families, the OCR model of the examples, any ``FairseqIncrementalDecoder``.
"""

from contextlib import contextmanager
from typing import Dict, List, Optional

import torch
from torch import Tensor

from fairseq_searnn.search.host import as_host

IncrementalState = Dict[str, Dict[str, Optional[Tensor]]]
#: greedy decoding drops finished rows from its batch once they are more than this share of it
#: (fewer state reorders; finished rows computed meanwhile are ignored). 0: at every step a row
#: finishes, the default: waiting for a quarter (0.25) was 8 % slower on the converged Multi30k
#: LSTM (benchmarks/bench_precision.py, docs/performance.md)
COMPACT_SHARE = 0.0


@contextmanager
def eval_mode(model):
    """``model`` in eval mode inside the block, its previous mode restored after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class Decoder:
    """Greedy incremental decoding of a model's decoder over rows of one encoder pass.

    Args:
        model: a :class:`~fairseq_searnn.search.host.Host`, or a fairseq encoder-decoder model
            (wrapped by ``as_host``; in eval mode, called under ``torch.no_grad``).
        encoder_out: the encoder output for the ``B`` sentences of the batch (the model's own
            format or the host's: ``Host.prepare`` is applied).
        pad, eos: the target dictionary's special ids.
        fixed_length: never choose EOS (fixed-length outputs: every decoding then runs to its
            ``max_len``, where EOS is forced).
    """

    def __init__(self, model, encoder_out, pad: int, eos: int, fixed_length: bool = False):
        self.host = as_host(model)
        self.model = self.host.model
        self.encoder_out = self.host.prepare(encoder_out)
        self.pad = pad
        self.eos = eos
        self.fixed_length = fixed_length

    def encoder_rows(self, index: Tensor):
        """Encoder output for rows ``index: [R]`` (sentence of each row)."""
        return self.host.encoder_rows(self.encoder_out, index)

    def step(self, prefix: Tensor, state: IncrementalState, encoder_out) -> Tensor:
        """Feed the last token of ``prefix: [R, L]`` (the full prefix, BOS=EOS first: a
        Transformer takes positions from its length); returns the scores (logits, the model's
        dtype) ``[R, V]`` of the next token, pad (and EOS with ``fixed_length``) masked to
        ``-inf``: their argmax is the greedy decision. Updates ``state`` in place."""
        scores = self.host.step(prefix, state, encoder_out)
        scores[:, self.pad] = float("-inf")
        if self.fixed_length:
            scores[:, self.eos] = float("-inf")
        return scores

    def reorder(self, state: IncrementalState, index: Tensor, rows: int) -> IncrementalState:
        """A new state holding rows ``index: [R']`` of ``state`` (``rows`` rows; left
        untouched)."""
        return self.host.fork(state, index, rows)

    def has_fixed_size_state(self, prefix: Tensor) -> bool:
        """Whether the decoder's incremental state keeps the same shapes from one step to the
        next (an RNN; a Transformer's key cache grows), probed on the first row of
        ``prefix: [R, L]`` (``L >= 2``). Such a decoder reads only the last token fed and its
        states at different steps can be batched together (:meth:`cat_states`)."""
        if prefix.size(1) < 2 or prefix.size(0) == 0:
            return False
        state: IncrementalState = {}
        enc = self.encoder_rows(prefix.new_zeros(1))
        self.step(prefix[:1, :1], state, enc)
        first = state_shapes(state)
        self.step(prefix[:1, :2], state, enc)
        return len(first) > 0 and first == state_shapes(state)

    def batch_dims(self, state: IncrementalState, rows: int) -> List[int]:
        """The batch dimension of every tensor of ``state`` (``rows`` rows), in
        :func:`_leaves` order, found by reordering to ``rows + 1`` rows (fairseq's LSTM keeps
        ``[layers, B, H]`` hidden states, its attention caches ``[B, heads, T, d]``)."""
        index = torch.cat([torch.arange(rows), torch.zeros(1, dtype=torch.long)])
        probe = self.reorder(state, index.to(next(_leaves(state)).device), rows)
        dims = []
        for before, after in zip(_leaves(state), _leaves(probe)):
            changed = [d for d, (x, y) in enumerate(zip(before.shape, after.shape)) if x != y]
            if len(changed) != 1:
                raise ValueError(f"cannot find the batch dimension of a decoder state tensor "
                                 f"of shape {tuple(before.shape)}")
            dims.append(changed[0])
        return dims

    @staticmethod
    def cat_states(states: List[IncrementalState], dims: List[int]) -> IncrementalState:
        """Concatenate states of the same structure along their batch dimensions ``dims``."""
        if len(states) == 1:
            return states[0]
        columns = zip(*(list(_leaves(s)) for s in states))
        merged = iter([torch.cat(ts, dim) for ts, dim in zip(columns, dims)])
        return _rebuild(states[0], merged)

    @torch.no_grad()
    def greedy(
        self,
        prefix: Tensor,
        state: IncrementalState,
        rows: Tensor,
        length: Tensor,
        max_len: Tensor,
        max_steps: Optional[int] = None,
    ):
        """Continue ``R`` hypotheses greedily until EOS, ``max_len`` or ``max_steps``.

        Args:
            prefix: ``[R, L]`` decoder inputs so far (EOS first, then the hypothesis tokens),
                all rows of equal length ``L`` (rows grouped by cell share it); for a decoder
                with a fixed-size state, only the last column is read.
            state: incremental state after consuming ``prefix[:, :-1]``, one row per
                hypothesis (updated in place: pass a fork to keep it).
            rows: ``[R]`` sentence index of each row (for the encoder output).
            length: ``[R]`` content tokens each hypothesis holds already.
            max_len: ``[R]`` content tokens allowed; EOS is forced when reached.
            max_steps: stop after this many generated tokens (focused roll-outs).
        Returns:
            ``tokens: [R, G]`` generated content tokens (pad after the end; EOS excluded) and
            ``finished: [R]`` True where the hypothesis ended (EOS chosen or forced), False
            where ``max_steps`` cut it.
        """
        R = prefix.size(0)
        device = prefix.device
        budget = (max_len - length).clamp(min=0)
        steps = int(budget.max().item()) + 1 if R > 0 else 0
        if max_steps is not None:
            steps = min(steps, max_steps)
        tokens = prefix.new_full((R, max(steps, 0)), self.pad)
        finished = torch.zeros(R, dtype=torch.bool, device=device)
        active = torch.arange(R, device=device)
        enc = self.encoder_rows(rows)
        # rows whose budget is already spent end now (EOS forced), without running the network
        keep = budget.gt(0)
        finished[~keep] = True
        active, state, enc, cur = self._compact(active, keep, state, enc, prefix)
        live = torch.ones_like(active, dtype=torch.bool)  # rows of ``active`` still decoding
        for s in range(steps):
            if active.numel() == 0:
                break
            nxt = greedy_choice(self.step(cur, state, enc))
            ended = nxt.eq(self.eos)
            write = live & ~ended
            tokens[active[write], s] = nxt[write]
            done = live & (ended | budget[active].le(s + 1))
            finished[active[done]] = True
            live = live & ~done
            cur = torch.cat([cur, nxt.unsqueeze(1)], dim=1)
            dead = live.numel() - int(live.sum())
            if dead > 0 and (dead == live.numel() or dead > COMPACT_SHARE * live.numel()):
                active, state, enc, cur = self._compact(active, live, state, enc, cur)
                live = live[live]
        return tokens, finished

    def _compact(self, active, keep, state, enc, cur):
        """Drop the rows where ``keep: [R]`` is False from ``active: [R]``, the state, the
        encoder rows and the inputs ``cur: [R, L]``."""
        if bool(keep.all()):
            return active, state, enc, cur
        index = keep.nonzero().squeeze(1)
        if index.numel() == 0:
            return active[index], state, enc, cur[index]
        state = self.reorder(state, index, keep.numel())
        enc = self.host.encoder_rows(enc, index)
        return active[index], state, enc, cur[index]


def greedy_choice(scores: Tensor) -> Tensor:
    """``[R]`` index of the first maximum of ``scores: [R, V]``, as ``argmax``: ``max``'s
    indices, which a CPU finds 2-3 times faster than ``argmax`` for bfloat16 scores (and as
    fast for float32; docs/performance.md)."""
    return scores.max(dim=-1).indices


def state_shapes(state: IncrementalState) -> list:
    """Shapes of the tensors of a decoder state, in :func:`_leaves` order."""
    return [t.shape for t in _leaves(state)]


def _leaves(x):
    """The tensors of a nested dict / list / tuple, in a fixed order (None skipped)."""
    if torch.is_tensor(x):
        yield x
    elif isinstance(x, dict):
        for key in sorted(x):
            yield from _leaves(x[key])
    elif isinstance(x, (list, tuple)):
        for item in x:
            yield from _leaves(item)


def _rebuild(x, tensors):
    """``x`` with its tensors replaced, in :func:`_leaves` order, by the iterator ``tensors``."""
    if torch.is_tensor(x):
        return next(tensors)
    if isinstance(x, dict):
        out = {key: None for key in x}
        for key in sorted(x):
            out[key] = _rebuild(x[key], tensors)
        return out
    if isinstance(x, (list, tuple)):
        return type(x)(_rebuild(item, tensors) for item in x)
    return x
