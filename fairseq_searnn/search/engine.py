"""Cost vectors for every cell of a batch, as SeaRNN's Algorithm 1 (batched): the engine only
sequences the phases, each owned by its module.

    roll-in     Search.roll_in -> search/rollin.py (reference: the target; learned / mixed:
                greedy decoding, decode_rollin)
    cells       search/sampling.py sample_cells (all, or C + the last two)
    candidates  search/reference.py cell_actions (slot 0) + search/sampling.py (full or
                sampled sets, from given or computed scores)
    roll-outs   search/rollout.py roll_out (reference / learned / mixed / focused)
    costs       fairseq_searnn/costs (one batched call)            => SearchResult

A criterion runs its training forward pass between :meth:`Search.roll_in` and
:meth:`Search.finish` and hands the detached scores over; :meth:`Search.collect` runs both
phases alone.
"""

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from fairseq_searnn import costs as cost_fns
from fairseq_searnn import keyed_random
from fairseq_searnn.search import precision, sampling
from fairseq_searnn.search import reference as ref_policy
from fairseq_searnn.search.decoding import eval_mode
from fairseq_searnn.search.host import Host
from fairseq_searnn.search.rollin import (
    RolledIn,
    decode_rollin,
    greedy_decode,
    prev_output_tokens,
)
from fairseq_searnn.search.rollout import (
    MIX_GRANULARITIES,
    ROLLOUTS,
    Entries,
    RolloutPolicy,
    roll_out,
)

__all__ = ["MIX_GRANULARITIES", "ROLLOUTS", "Search", "SearchConfig", "SearchResult",
           "content", "length_bound"]
#: without ``max_len_a/b``, learned roll-ins and roll-outs hold at most
#: ``int(REF_LEN_A * |y|) + REF_LEN_B`` content tokens (``|y|``: the reference's length)
REF_LEN_A, REF_LEN_B = 1.5, 5


@dataclass(frozen=True)
class SearchConfig:
    """Settings of the search (plain values). These defaults are the project's: the criterions'
    options (``--searnn-*``, ``--rollin*``, ``--rollout*``) take theirs from here."""

    cost: str = "bleu"
    rollin: str = "learned"
    rollin_ref_prob: float = 0.5  # mixed roll-in: reference action per step
    rollout: str = "mixed"
    rollout_ref_prob: float = 0.5
    rollout_mix_granularity: str = "sentence"
    rollout_focused_steps: int = 3
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
    # roll-ins, roll-outs, candidate scoring and greedy validation on a copy of the weights in
    # this dtype (precision.DTYPES); the training forward is the caller's
    decode_dtype: str = "float32"


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
        return keyed_random.uniform(self.keys.view(-1, 1, 1), keyed_random.Stream.TIES, t,
                                    self.candidates)


def content(tokens: Tensor, pad: int, eos: int) -> Tensor:
    """Content tokens of EOS-terminated rows ``[B, L]`` (EOS and after -> pad), trimmed."""
    body = tokens.ne(pad) & tokens.ne(eos) & tokens.ne(eos).long().cumprod(1).bool()
    width = int(body.sum(1).max().item()) if tokens.numel() else 0
    return tokens.masked_fill(~body, pad)[:, :width]


class Search:
    """Collects :class:`SearchResult` for batches, for one model family and dictionary.

    Args:
        cfg: :class:`SearchConfig`.
        tgt_dict: the target dictionary (special ids, allowed candidate symbols): ``pad()``,
            ``eos()``, ``bos()``, ``unk()``, ``symbols``, ``len()``.
        cost_fn: a cost ``(hyp [N, L], ref [N, Lr], pad) -> [N]`` scoring the roll-outs instead
            of ``cfg.cost`` (e.g. on detokenised text, ``fairseq_searnn.hf.TextCost``); the
            best-suffix selection cost stays ``cfg.reference_cost or cfg.cost``.
    """

    def __init__(self, cfg: SearchConfig, tgt_dict,
                 cost_fn: Optional[Callable[[Tensor, Tensor, int], Tensor]] = None):
        self.cfg = cfg
        self.pad, self.eos = tgt_dict.pad(), tgt_dict.eos()
        self.allowed = sampling.allowed_tokens(tgt_dict)  # full candidate sets
        self.drawable = sampling.emittable_tokens(tgt_dict)  # what sampled sets draw from
        self.cost_fn = cost_fn or cost_fns.get_cost(cfg.cost)
        self.sel_cost = cost_fns.get_cost(cfg.reference_cost or cfg.cost)
        self.decode_dtype = precision.dtype_of(cfg.decode_dtype)
        self._low_precision = precision.LowPrecisionCopy(self.decode_dtype)
        self.policy = RolloutPolicy(
            mode=cfg.rollout, ref_prob=cfg.rollout_ref_prob,
            granularity=cfg.rollout_mix_granularity, focused_steps=cfg.rollout_focused_steps,
            reference=cfg.reference, selection_cost=self.sel_cost,
            batch_size=cfg.rollout_batch_size)

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

    def decoding_model(self, model):
        """What decodes for ``model`` (a fairseq model or a
        :class:`~fairseq_searnn.search.host.Host`): itself in float32, else its copy in
        ``decode_dtype`` holding its current weights (a host keeps its own precision)."""
        return model if isinstance(model, Host) else self._low_precision(model)

    def _region(self, model):
        """No grad and the decoding dtype's own precision (an outer autocast disabled)."""
        module = model.model if isinstance(model, Host) else model
        return precision.decoding(self.decode_dtype, precision.device_of(module))

    def roll_in(self, model, sample, seed: int,
                rollin_ref_prob: Optional[float] = None) -> RolledIn:
        """Phase 1 (no grad, eval mode): the roll-in of every sentence of ``sample`` by
        ``model`` (a fairseq model or a host). ``rollin_ref_prob``: the mixed roll-in's
        reference probability for this batch (e.g. scheduled), instead of the config's."""
        with self._region(model):
            decoding = self.decoding_model(model)
            module = decoding.model if isinstance(decoding, Host) else decoding
            with eval_mode(module):
                return self._roll_in(decoding, sample, seed=seed,
                                     rollin_ref_prob=rollin_ref_prob)

    def finish(self, batch: RolledIn, lprobs: Optional[Tensor] = None,
               keep_hypotheses: bool = False) -> SearchResult:
        """Phase 2 (no grad, eval mode): cells, candidates, roll-outs and costs of a rolled-in
        batch.

        lprobs: optional ``[B, T', V]`` (``T' >= T``) log-probabilities of the model at the
        roll-in cells, e.g. the detached output of the training forward pass; saves the
        scoring pass of the sampled criterions (:attr:`needs_scores`).
        """
        with self._region(batch.model), eval_mode(batch.model):
            return self._finish(batch, lprobs, keep_hypotheses)

    def greedy(self, model, sample, max_len_a: float = 0.0, max_len_b: int = 200) -> Tensor:
        """Greedy decoding of ``sample`` (``[B, T]``, EOS-terminated; the model's current
        mode): exactly ``|y|`` tokens with ``fixed_length``, else at most
        ``int(max_len_a * src_len + max_len_b)`` (fairseq-generate's bound)."""
        cfg = self.cfg if self.cfg.fixed_length else SearchConfig(max_len_a=max_len_a,
                                                                   max_len_b=max_len_b)
        ref = content(sample["target"], self.pad, self.eos)
        max_len = length_bound(cfg, sample["net_input"]["src_lengths"].to(ref.device),
                               ref.ne(self.pad).sum(1))
        with self._region(model):
            return greedy_decode(self.decoding_model(model), sample["net_input"],
                                 max_len=max_len, pad=self.pad, eos=self.eos,
                                 fixed_length=self.cfg.fixed_length)

    def _roll_in(self, model, sample, seed, rollin_ref_prob):
        cfg, pad, eos = self.cfg, self.pad, self.eos
        clock = _Clock()
        net_input, target = sample["net_input"], sample["target"]
        device = target.device
        ids = sample.get("id")
        if ids is None:  # not a fairseq batch: key sentences by their source tokens
            ids = keyed_random.sequence_key(net_input["src_tokens"], pad)
        keys = keyed_random.hash_keys(seed, ids.to(device))
        ref = content(target, pad, eos)
        max_len = length_bound(cfg, net_input["src_lengths"].to(device), ref.ne(pad).sum(1))
        batch = RolledIn(model, net_input, pad=pad, eos=eos, rollin=target, keys=keys, ref=ref,
                         max_len=max_len, fixed_length=cfg.fixed_length)
        batch.clock = clock
        if cfg.rollin != "reference":
            # snapshots of the roll-in's decoder states, forked by the learned roll-outs
            states = [] if self.needs_states else None
            if cfg.rollin == "learned":
                ref_prob = 0.0
            else:
                ref_prob = cfg.rollin_ref_prob if rollin_ref_prob is None else rollin_ref_prob

            def act(prefix):
                return ref_policy.reference_action(prefix, ref, pad=pad, eos=eos,
                                                   policy=cfg.reference,
                                                   selection_cost=self.sel_cost)

            batch.rollin = decode_rollin(batch.decoder, max_len, reference_action=act,
                                         ref_prob=ref_prob, keys=keys, states=states)
            batch.rollin_states = states or None
            batch.greedy = ref_prob == 0
        clock.lap("rollin")
        return batch

    def _finish(self, batch, lprobs, keep_hypotheses):
        clock, rollin = batch.clock, batch.rollin
        clock.resume()
        cand, mask = self._candidates(batch, lprobs)  # cells and their candidates
        entries = Entries.of(cand, mask)
        clock.lap("candidates")
        out = roll_out(batch, entries, self.policy)  # every entry finished
        clock.lap("rollouts")
        B, T, K = cand.shape
        costs = torch.zeros(B * T * K, dtype=torch.float32, device=rollin.device)
        costs[(entries.b * T + entries.t) * K + entries.k] = self.cost_fn(
            out.hypotheses, batch.ref[entries.b], self.pad).float()
        clock.lap("costs")
        stats = {"rollouts": float(entries.b.numel()), "learned_rollouts": float(out.learned),
                 "reused_rollouts": float(out.reused), "decoded_tokens": float(out.decoded),
                 "search_time": clock.total,
                 **clock.laps}
        kept = None
        if keep_hypotheses:
            kept = (torch.stack([entries.b, entries.t, entries.k], 1), out.hypotheses)
        return SearchResult(rollin=rollin, candidates=cand, costs=costs.view(B, T, K),
                            mask=mask, stats=stats, hypotheses=kept, keys=batch.keys)

    def _candidates(self, batch, lprobs):
        """Candidates and mask ``[B, T, K]`` of the cells to roll out."""
        cfg, pad, eos, rollin, ref = self.cfg, self.pad, self.eos, batch.rollin, batch.ref
        cell_mask = sampling.sample_cells(rollin.ne(pad), cfg.cells, batch.keys)
        ref_act = ref_policy.cell_actions(rollin, ref, pad=pad, eos=eos, policy=cfg.reference,
                                          selection_cost=self.sel_cost)
        if cfg.tokens <= 0:
            cand, mask = sampling.full_candidates(ref_act, self.allowed)
        else:
            if self.needs_scores and lprobs is None:
                decoder = batch.decoder
                logits = decoder.host.score(prev_output_tokens(rollin, pad, eos),
                                            decoder.encoder_out)
                lprobs = torch.log_softmax(logits.float(), dim=-1)
            elif lprobs is not None:
                lprobs = lprobs[:, : rollin.size(1)].float()
            cand, mask = sampling.sampled_candidates(
                ref_act, lprobs, self.drawable, strategy=cfg.token_sampling, k=cfg.tokens,
                keys=batch.keys, eos=eos, temperature=cfg.sampling_temperature, reference=ref,
                ref_len=ref.ne(pad).sum(1), neighbors=cfg.neighbors)
        if cfg.fixed_length:  # EOS is the only action at the EOS cell, and only there
            at_end = torch.arange(cand.size(1), device=cand.device).unsqueeze(0).ge(
                ref.ne(pad).sum(1, keepdim=True))
            mask = mask & cand.eq(eos).eq(at_end.unsqueeze(2))
        return cand, mask & cell_mask.unsqueeze(2)


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
