"""One-hypothesis-at-a-time re-computations of roll-ins and roll-outs (test oracles).

Every decoder call here is a full, non-incremental pass over the whole prefix for a single
sentence encoded on its own: nothing is shared with the batched engine but the model. A model
is a fairseq encoder-decoder or a :class:`~fairseq_searnn.search.Host` (its ``encode`` and
teacher-forced ``score``, never its incremental ``step`` / ``fork``).
"""

import torch

from fairseq_searnn import costs
from fairseq_searnn.search import Host, Search


def strip(row, pad, eos=None):
    """Python list of the content tokens of a 1-D tensor (stops at EOS if given)."""
    out = []
    for x in row.tolist():
        if x == pad or (eos is not None and x == eos):
            break
        out.append(x)
    return out


def encode_one(model, src_row, pad):
    src = torch.tensor([[x for x in src_row.tolist() if x != pad]])
    if isinstance(model, Host):
        return model.encode({"src_tokens": src, "src_lengths": torch.tensor([src.size(1)]),
                             "attention_mask": torch.ones_like(src)})
    return model.encoder(src, src_lengths=torch.tensor([src.size(1)]))


def last_scores(model, enc, tokens):
    """Scores ``[V]`` of the token after ``tokens: [1, L]`` by one teacher-forced pass."""
    if isinstance(model, Host):
        return model.score(tokens, enc)[0, -1]
    out, _ = model.decoder(tokens, encoder_out=enc)
    return out[0, -1]


def length_bound(cfg, src_len, ref_len):
    """Content tokens a learned roll-in / roll-out may hold (SearchConfig's documented rule)."""
    if cfg.fixed_length:
        return ref_len
    if cfg.max_len_a is None and cfg.max_len_b is None:
        return int(1.5 * ref_len) + 5
    a = 0.0 if cfg.max_len_a is None else cfg.max_len_a
    return max(int(a * src_len + (200 if cfg.max_len_b is None else cfg.max_len_b)), 0)


@torch.no_grad()
def greedy(model, enc, prefix, max_len, pad, eos, max_steps=None, fixed_length=False):
    """Greedy continuation of ``prefix`` (list); returns (hypothesis list, ended flag).
    ``fixed_length``: EOS is never chosen (the hypothesis ends at ``max_len``)."""
    hyp = list(prefix)
    steps = 0
    while len(hyp) < max_len:
        if max_steps is not None and steps >= max_steps:
            return hyp, False
        scores = last_scores(model, enc, torch.tensor([[eos] + hyp])).double().clone()
        scores[pad] = float("-inf")
        if fixed_length:
            scores[eos] = float("-inf")
        a = int(scores.argmax())
        steps += 1
        if a == eos:
            return hyp, True
        hyp.append(a)
    return hyp, True


def cost_of(name, hyp, ref, pad):
    """Cost of one (hyp, ref) pair of lists under ``costs.get_cost(name)``."""
    width = max(len(hyp), len(ref), 1)
    h = torch.full((1, width), pad)
    r = torch.full((1, width), pad)
    h[0, : len(hyp)] = torch.tensor(hyp, dtype=torch.long)
    r[0, : len(ref)] = torch.tensor(ref, dtype=torch.long)
    return float(costs.get_cost(name)(h, r, pad)[0])


def reference_start(prefix, ref, policy, sel_cost, pad):
    """Where the reference continuation starts in ``ref`` (Appendix C.2), by brute force."""
    copy = min(len(prefix), len(ref))
    if policy == "copy":
        return copy
    scored = [(cost_of(sel_cost, prefix + ref[j:], ref, pad), abs(j - copy), j)
              for j in range(len(ref) + 1)]
    return min(scored)[2]


def reference_action(prefix, ref, policy, sel_cost, pad, eos):
    j = reference_start(prefix, ref, policy, sel_cost, pad)
    return ref[j] if j < len(ref) else eos


def expected_entry(model, enc, rollin_prefix, a, ref, cfg, max_len, pad, eos, learned):
    """Brute-force hypothesis of one (cell, candidate) entry."""
    sel = cfg.reference_cost or cfg.cost
    if a == eos:
        return list(rollin_prefix)
    hyp = list(rollin_prefix) + [a]
    if learned:
        steps = cfg.rollout_focused_steps if cfg.rollout == "focused" else None
        hyp, ended = greedy(model, enc, hyp, max_len, pad, eos, max_steps=steps,
                               fixed_length=cfg.fixed_length)
        if ended:
            return hyp
    return hyp + ref[reference_start(hyp, ref, cfg.reference, sel, pad):]


def check_against_brute_force(task, model, sample, cfg):
    d = task.target_dictionary
    pad, eos = d.pad(), d.eos()
    search = Search(cfg, d)
    res = search.collect(model, sample, seed=123, keep_hypotheses=True)
    entries, hyps = res.hypotheses
    got = {tuple(e): strip(h, pad) for e, h in zip(entries.tolist(), hyps)}
    src = sample["net_input"]["src_tokens"]
    kinds = {}  # (b, t, k) -> the roll-out policies that explain the entry
    for b in range(src.size(0)):
        enc = encode_one(model, src[b], pad)
        ref = strip(sample["target"][b], pad, eos)
        max_len = length_bound(cfg, int(sample["net_input"]["src_lengths"][b]), len(ref))
        rollin = strip(res.rollin[b], pad, eos)
        if cfg.rollin == "reference":
            assert rollin == ref
        elif cfg.rollin == "learned":
            assert rollin == greedy(model, enc, [], max_len, pad, eos,
                                       fixed_length=cfg.fixed_length)[0]
        n_cells = len(rollin) + 1
        assert res.rollin[b, len(rollin)] == eos
        for t in range(res.rollin.size(1)):
            rolled = bool(res.mask[b, t].any())
            if cfg.cells == 0:
                assert rolled == (t < n_cells)
            elif t >= n_cells:
                assert not rolled
            if not rolled:
                continue
            act = reference_action(rollin[:t], ref, cfg.reference, cfg.reference_cost or
                                      cfg.cost, pad, eos)
            assert res.candidates[b, t, 0] == act and res.mask[b, t, 0]
            for k in res.mask[b, t].nonzero().flatten().tolist():
                a = int(res.candidates[b, t, k])
                options = {"reference": [False], "learned": [True], "focused": [True],
                           "mixed": [False, True]}[cfg.rollout]
                matches = [learned for learned in options if expected_entry(
                    model, enc, rollin[:t], a, ref, cfg, max_len, pad, eos, learned)
                    == got[(b, t, k)]]
                assert matches, (b, t, k, got[(b, t, k)])
                kinds[(b, t, k)] = set(matches)
                want = cost_of(cfg.cost, got[(b, t, k)], ref, pad)
                assert abs(float(res.costs[b, t, k]) - want) < 1e-5
        if cfg.cells:  # C drawn, plus the EOS cell and the one before when not drawn
            rolled = res.mask[b].any(1)
            assert bool(rolled[n_cells - 1]) and bool(rolled[max(n_cells - 2, 0)])
            assert min(cfg.cells, n_cells) <= int(rolled.sum()) <= min(cfg.cells + 2, n_cells)
    return res, kinds
