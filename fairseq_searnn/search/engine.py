"""Cost vectors for every cell of a batch: roll-in, candidates, roll-outs, costs.

The flow (SeaRNN Algorithm 1, batched)::

    roll-in (reference: the target | learned / mixed: greedy decoding)   Search.roll_in
      -> cells (all, or C per sentence) -> reference action per cell        Search.finish
      -> candidates (full set, or sampled from given or computed scores)
      -> roll-out policy per candidate
      -> hypotheses: reference roll-outs without the network; learned roll-outs forked from
         the roll-in's incremental state, decoded together in chunks (all cells at once for
         fixed-size decoder states, cell by cell otherwise); after a greedy roll-in, the
         roll-out of the roll-in's own token is the rest of the roll-in (not decoded)
      -> costs of all finished sequences in one batched call  => SearchResult

A criterion runs its training forward pass between the two phases and hands its detached
scores to :meth:`Search.finish`; :meth:`Search.collect` runs both phases alone.
"""

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from fairseq_searnn import costs as cost_fns
from fairseq_searnn import keyed_random
from fairseq_searnn.search import reference as ref_policy
from fairseq_searnn.search import sampling
from fairseq_searnn.search.decoding import Decoder
from fairseq_searnn.search.rollin import decode_rollin
from fairseq_searnn.search.rollout import (
    complete,
    greedy_continuations,
    learned_rollouts,
    pad_to,
    prev_output_tokens,
)

ROLLOUTS = ("reference", "learned", "mixed", "focused")
#: mixed roll-outs: one policy draw per sentence (the authors' code), per cell, or per roll-out
MIX_GRANULARITIES = ("sentence", "cell", "rollout")
#: without ``max_len_a/b``, learned roll-ins and roll-outs hold at most
#: ``int(REF_LEN_A * |y|) + REF_LEN_B`` content tokens (``|y|``: the reference's length)
REF_LEN_A, REF_LEN_B = 1.5, 5
_STREAM_ROLLOUT, _STREAM_TIES = 31, 32


@dataclass
class SearchConfig:
    """Settings of the search (plain values; the criterions translate their options)."""

    cost: str = "hamming"
    rollin: str = "reference"
    rollin_ref_prob: float = 0.0
    rollout: str = "reference"
    rollout_ref_prob: float = 0.5
    rollout_mix_granularity: str = "sentence"
    rollout_focused_steps: int = 1
    reference: str = "copy"
    reference_cost: Optional[str] = None  # best-suffix selection cost; None = ``cost``
    tokens: int = 0  # 0: full candidate set
    token_sampling: str = "topk"
    sampling_temperature: float = 2.0
    neighbors: int = 0
    cells: int = 0  # drawn per sentence, + the EOS cell and the one before; 0: every cell
    # learned roll-ins / roll-outs hold at most int(a * src_len + b) content tokens when either
    # is set (the other then defaults to fairseq-generate's a = 0 / b = 200); None and None:
    # int(REF_LEN_A * |y|) + REF_LEN_B, |y| the reference's length
    max_len_a: Optional[float] = None
    max_len_b: Optional[int] = None
    fixed_length: bool = False  # exactly |y| content tokens; EOS only at the EOS cell
    rollout_batch_size: int = 1024


def length_bound(cfg: SearchConfig, src_lengths: Tensor, ref_lengths: Tensor) -> Tensor:
    """``[B]`` content tokens a learned roll-in or roll-out may hold (:class:`SearchConfig`):
    ``|y|`` with ``fixed_length``, ``int(a * src_len + b)`` when ``max_len_a`` or ``max_len_b``
    is set, else ``int(REF_LEN_A * |y|) + REF_LEN_B``."""
    if cfg.fixed_length:
        return ref_lengths.long()
    if cfg.max_len_a is None and cfg.max_len_b is None:
        return (REF_LEN_A * ref_lengths.double()).long() + REF_LEN_B
    a = cfg.max_len_a if cfg.max_len_a is not None else 0.0
    b = cfg.max_len_b if cfg.max_len_b is not None else 200
    return (a * src_lengths.double() + b).long().clamp(min=0)


@dataclass
class SearchResult:
    """Cost vectors of a batch. ``T`` = roll-in length (EOS incl.), ``K`` = candidate slots.

    rollin: ``[B, T]`` token the roll-in emits at each cell (EOS-terminated, pad after).
    candidates: ``[B, T, K]`` tokens tried at each cell (slot 0: the reference action).
    costs: ``[B, T, K]`` float32 cost of the finished sequence when ``candidates[b, t, k]`` is
        forced at cell ``t`` after prefix ``rollin[b, :t]``; unspecified where not ``mask``.
    mask: ``[B, T, K]`` real entries (cell rolled out, candidate valid).
    """

    rollin: Tensor
    candidates: Tensor
    costs: Tensor
    mask: Tensor
    stats: Dict[str, float] = field(default_factory=dict)
    #: with ``keep_hypotheses``: ``(entries [N, 3] of (b, t, k), hypotheses [N, L])``
    hypotheses: Optional[Tuple[Tensor, Tensor]] = None
    #: ``[B]`` the sentences' random keys (the tie-breaking draws derive from them)
    keys: Optional[Tensor] = None

    @property
    def cells(self) -> Tensor:
        """``[B, T]`` cells that were rolled out."""
        return self.mask.any(2)

    @property
    def tiebreak(self) -> Optional[Tensor]:
        """``[B, T, K]`` uniform draws keyed by (sentence, cell, candidate token), for breaking
        ties of the minimum cost uniformly at random (:func:`losses.best_candidate`)."""
        if self.keys is None:
            return None
        T = self.candidates.size(1)
        t = torch.arange(T, device=self.candidates.device).view(1, T, 1)
        return keyed_random.uniform(self.keys.view(-1, 1, 1), _STREAM_TIES, t, self.candidates)


def content(tokens: Tensor, pad: int, eos: int) -> Tensor:
    """Content tokens of EOS-terminated rows ``[B, L]`` (EOS and after -> pad), trimmed."""
    body = tokens.ne(pad) & tokens.ne(eos) & tokens.ne(eos).long().cumprod(1).bool()
    width = int(body.sum(1).max().item()) if tokens.numel() else 0
    return tokens.masked_fill(~body, pad)[:, :width]


def reference_actions(rollin: Tensor, ref: Tensor, pad: int, eos: int, policy: str, sel_cost):
    """Reference action at every cell: ``rollin: [B, T]``, ``ref: [B, Lr]`` -> ``[B, T]``.
    Cell ``t``'s roll-in prefix is ``rollin[:, :t]``."""
    B, T = rollin.shape
    if policy == "copy":
        ref_len = ref.ne(pad).sum(1, keepdim=True)
        t = torch.arange(T, device=rollin.device).unsqueeze(0)
        y = ref.gather(1, t.clamp(max=max(ref.size(1) - 1, 0)).expand(B, T)) if ref.size(1) else (
            rollin.new_full((B, T), eos))
        return torch.where(t < ref_len, y, torch.full_like(y, eos))
    t = torch.arange(T, device=rollin.device)
    prefixes = rollin.unsqueeze(1).expand(B, T, T).masked_fill(t.view(1, 1, T) >= t.view(1, T, 1),
                                                               pad)
    refs = ref.unsqueeze(1).expand(B, T, ref.size(1))
    act = ref_policy.reference_action(prefixes.reshape(B * T, T), refs.reshape(B * T, -1), pad,
                                      eos, policy, sel_cost)
    return act.view(B, T)


class Search:
    """Collects :class:`SearchResult` for batches, for one model family and dictionary.

    Args:
        cfg: :class:`SearchConfig`.
        tgt_dict: the target dictionary (special ids, allowed candidate symbols).
    """

    def __init__(self, cfg: SearchConfig, tgt_dict):
        self.cfg = cfg
        self.pad, self.eos = tgt_dict.pad(), tgt_dict.eos()
        self.allowed = sampling.allowed_tokens(tgt_dict)  # full candidate sets
        self.drawable = sampling.emittable_tokens(tgt_dict)  # what sampled sets draw from
        self.cost_fn = cost_fns.get_cost(cfg.cost)
        self.sel_cost = cost_fns.get_cost(cfg.reference_cost or cfg.cost)

    @property
    def needs_states(self) -> bool:
        """Whether roll-outs run the network (learned / mixed / focused)."""
        return self.cfg.rollout != "reference"

    @property
    def needs_scores(self) -> bool:
        """Whether candidate sampling reads the model's scores at the cells."""
        return self.cfg.tokens > 0 and self.cfg.token_sampling != "uniform"

    def collect(self, model, sample, seed: int, keep_hypotheses: bool = False) -> SearchResult:
        """Cost vectors for ``sample`` (a fairseq batch) under ``model`` (eval mode inside).
        ``seed`` keys the random draws with the sample ids. Same as :meth:`roll_in` then
        :meth:`finish`."""
        return self.finish(self.roll_in(model, sample, seed), keep_hypotheses=keep_hypotheses)

    @torch.no_grad()
    def roll_in(self, model, sample, seed: int) -> "RolledIn":
        """Phase 1 (no grad, eval mode): the roll-in of every sentence of ``sample``."""
        with _eval(model):
            return self._roll_in(model, sample, seed)

    @torch.no_grad()
    def finish(self, batch: "RolledIn", lprobs: Optional[Tensor] = None,
               keep_hypotheses: bool = False) -> SearchResult:
        """Phase 2 (no grad, eval mode): candidates, roll-outs and costs of a rolled-in batch.

        lprobs: optional ``[B, T', V]`` (``T' >= T``) log-probabilities of the model at the
        roll-in cells, e.g. the detached output of the training forward pass; saves the
        scoring pass of the sampled criterions (:attr:`needs_scores`).
        """
        with _eval(batch.model):
            return self._finish(batch, lprobs, keep_hypotheses)

    def _roll_in(self, model, sample, seed):
        cfg, pad, eos = self.cfg, self.pad, self.eos
        clock = _Clock()
        net_input, target = sample["net_input"], sample["target"]
        device = target.device
        ids = sample.get("id")
        if ids is None:  # not a fairseq batch: key sentences by their source tokens
            ids = keyed_random.sequence_key(net_input["src_tokens"], pad)
        keys = keyed_random.hash_keys(seed, ids.to(device))
        ref = content(target, pad, eos)
        src_lengths = net_input["src_lengths"].to(device)
        max_len = length_bound(cfg, src_lengths, ref.ne(pad).sum(1))
        batch = RolledIn(model, net_input, pad, eos, target, keys, ref, max_len, clock,
                         cfg.fixed_length)
        if cfg.rollin != "reference":
            # snapshots of the roll-in's decoder states, forked by the learned roll-outs
            states = [] if self.needs_states else None
            ref_prob = cfg.rollin_ref_prob if cfg.rollin == "mixed" else 0.0
            batch.rollin = self._rollin(batch.decoder, ref, max_len, keys, ref_prob, states)
            batch.rollin_states = states or None
            batch.greedy = ref_prob == 0
        clock.lap("rollin")
        return batch

    def _finish(self, batch, lprobs, keep_hypotheses):
        cfg, pad, eos = self.cfg, self.pad, self.eos
        clock, rollin, ref, keys = batch.clock, batch.rollin, batch.ref, batch.keys
        clock.resume()
        device = rollin.device
        cand, mask = self._candidates(batch, lprobs)
        T, K = cand.size(1), cand.size(2)
        b, t, k = mask.nonzero(as_tuple=True)  # every rolled-out entry
        a = cand[b, t, k]
        learned = self._learned_entries(keys, b, t, k, K) & a.ne(eos)
        # prefix + candidate (candidate EOS: the prefix alone)
        pos = torch.arange(T, device=device)
        prefix_a = rollin[b].masked_fill(pos.unsqueeze(0) >= t.unsqueeze(1), pad)
        prefix_a[torch.arange(b.numel(), device=device), t] = torch.where(a.eq(eos), pad, a)
        clock.lap("candidates")

        gen = prefix_a.new_full((b.numel(), 0), pad)
        unfinished = torch.zeros_like(learned)
        n_learned = int(learned.sum().item())
        steps = cfg.rollout_focused_steps if cfg.rollout == "focused" else None
        # after a greedy roll-in, the roll-out of the roll-in's own token is the roll-in
        reused = (learned & a.eq(rollin[b, t])) if batch.greedy else torch.zeros_like(learned)
        n_reused = int(reused.sum().item())
        if n_learned > n_reused:
            gen, unfinished = learned_rollouts(batch.decoder, rollin, b, t, prefix_a,
                                               learned & ~reused, batch.max_len,
                                               cfg.rollout_batch_size, steps,
                                               rollin_states=batch.rollin_states)
        if n_reused > 0:
            idx = reused.nonzero().squeeze(1)
            cont, done = greedy_continuations(rollin[b[idx]], t[idx], batch.max_len[b[idx]],
                                              pad, eos, steps)
            gen = pad_to(gen, cont.size(1), pad)
            gen[idx, : cont.size(1)] = cont
            unfinished[idx] = ~done
        hyp = prefix_a if gen.size(1) == 0 else ref_policy.concat(prefix_a, gen,
                                                                    torch.zeros_like(b), pad)
        # reference roll-outs, and focused roll-outs cut after m steps, finish with the
        # reference policy's continuation
        hyp = complete(hyp, ref, b, (~learned | unfinished) & a.ne(eos), pad, cfg.reference,
                       self.sel_cost)
        clock.lap("rollouts")  # learned and reference roll-outs
        costs = torch.zeros(T * K * rollin.size(0), dtype=torch.float32, device=device)
        costs[(b * T + t) * K + k] = self.cost_fn(hyp, ref[b], pad).float()
        clock.lap("costs")
        stats = {"rollouts": float(b.numel()), "learned_rollouts": float(n_learned),
                 "reused_rollouts": float(n_reused),
                 "search_time": clock.total, **clock.laps}
        kept = (torch.stack([b, t, k], 1), hyp) if keep_hypotheses else None
        return SearchResult(rollin, cand, costs.view(-1, T, K), mask, stats, kept, keys)

    def _rollin(self, decoder, ref, max_len, keys, ref_prob, states=None):
        """Learned (``ref_prob = 0``, greedy) or mixed roll-in: ``[B, T]``."""
        cfg = self.cfg

        def act(prefix):
            return ref_policy.reference_action(prefix, ref, self.pad, self.eos, cfg.reference,
                                               self.sel_cost)

        return decode_rollin(decoder, max_len, act, ref_prob, keys, states)

    def _candidates(self, batch, lprobs):
        """Candidates and mask ``[B, T, K]`` of the cells to roll out."""
        cfg, pad, eos, rollin, ref = self.cfg, self.pad, self.eos, batch.rollin, batch.ref
        cell_mask = sampling.sample_cells(rollin.ne(pad), cfg.cells, batch.keys)
        ref_act = reference_actions(rollin, ref, pad, eos, cfg.reference, self.sel_cost)
        if cfg.tokens <= 0:
            cand, mask = sampling.full_candidates(ref_act, self.allowed)
        else:
            if self.needs_scores and lprobs is None:
                logits, _ = batch.model.decoder(prev_output_tokens(rollin, pad, eos),
                                                encoder_out=batch.decoder.encoder_out)
                lprobs = torch.log_softmax(logits.float(), dim=-1)
            elif lprobs is not None:
                lprobs = lprobs[:, : rollin.size(1)].float()
            cand, mask = sampling.sampled_candidates(
                ref_act, lprobs, self.drawable, cfg.token_sampling, cfg.tokens, batch.keys, eos,
                cfg.sampling_temperature, ref, ref.ne(pad).sum(1), cfg.neighbors)
        if cfg.fixed_length:  # EOS is the only action at the EOS cell, and only there
            at_end = torch.arange(cand.size(1), device=cand.device).unsqueeze(0).ge(
                ref.ne(pad).sum(1, keepdim=True))
            mask = mask & cand.eq(eos).eq(at_end.unsqueeze(2))
        return cand, mask & cell_mask.unsqueeze(2)

    def _learned_entries(self, keys, b, t, k, K) -> Tensor:
        """``[N]`` True where the entry's roll-out runs the learned policy."""
        cfg = self.cfg
        n = b.numel()
        if cfg.rollout in ("learned", "focused"):
            return torch.ones(n, dtype=torch.bool, device=b.device)
        if cfg.rollout == "reference":
            return torch.zeros(n, dtype=torch.bool, device=b.device)
        if cfg.rollout_mix_granularity == "sentence":  # every candidate of every cell alike
            u = keyed_random.uniform(keys[b], _STREAM_ROLLOUT)
        elif cfg.rollout_mix_granularity == "cell":  # the candidates of a cell alike
            u = keyed_random.uniform(keys[b], _STREAM_ROLLOUT, t)
        else:
            u = keyed_random.uniform(keys[b], _STREAM_ROLLOUT, t * K + k)
        return u.ge(cfg.rollout_ref_prob)

class RolledIn:
    """A batch after the roll-in (:meth:`Search.roll_in`), waiting for :meth:`Search.finish`.

    rollin: ``[B, T]`` EOS-terminated roll-in (the target for the reference roll-in); keys:
    ``[B]`` per-sentence random keys; ref: ``[B, Lr]`` reference content; max_len: ``[B]``
    content tokens allowed per sentence; greedy: whether the roll-in is the model's greedy
    decoding (learned roll-in); rollin_states: the roll-in's decoder state at every cell, when
    kept (:func:`decode_rollin`); fixed_length: decodings never choose EOS. The encoder output
    is computed on first use.
    """

    def __init__(self, model, net_input, pad, eos, rollin, keys, ref, max_len, clock,
                 fixed_length=False):
        self.model, self.net_input, self.pad, self.eos = model, net_input, pad, eos
        self.rollin, self.keys, self.ref, self.max_len, self.clock = (rollin, keys, ref,
                                                                      max_len, clock)
        self.fixed_length = fixed_length
        self.greedy = False
        self.rollin_states = None
        self._decoder: Optional[Decoder] = None

    @property
    def decoder(self) -> Decoder:
        """:class:`Decoder` over the batch's eval-mode encoder output (computed once)."""
        if self._decoder is None:
            with _eval(self.model), torch.no_grad():
                encoder_out = self.model.encoder.forward_torchscript(self.net_input)
            self._decoder = Decoder(self.model, encoder_out, self.pad, self.eos,
                                    fixed_length=self.fixed_length)
        return self._decoder


@contextmanager
def _eval(model):
    """Eval mode inside, the previous mode restored after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class _Clock:
    """Wall time of the search's phases (``laps``: seconds per phase name)."""

    def __init__(self):
        self.last = time.perf_counter()
        self.laps: Dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps["time_" + name] = now - self.last
        self.last = now

    def resume(self) -> None:
        """Continue timing after a pause (time since the last lap is not counted)."""
        self.last = time.perf_counter()

    @property
    def total(self) -> float:
        return sum(self.laps.values())
