"""One-hypothesis-at-a-time re-computations of roll-ins and roll-outs (test oracles).

Every decoder call here is a full, non-incremental pass over the whole prefix for a single
sentence encoded on its own: nothing is shared with the batched engine but the model.
"""

import torch

from fairseq_searnn import costs


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
    return model.encoder(src, src_lengths=torch.tensor([src.size(1)]))


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
        out, _ = model.decoder(torch.tensor([[eos] + hyp]), encoder_out=enc)
        scores = out[0, -1].double().clone()
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
