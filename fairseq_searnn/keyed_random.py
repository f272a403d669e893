"""Counter-based random numbers keyed by integers (seed, update, sentence, position, ...).

fairseq seeds every process with the same ``seed + num_updates``; drawing from torch's global
generator would make a sentence's noise depend on which process or micro-batch holds it, and
on how many draws came before it. Here every draw is a pure function of its integer keys — for
example ``(torch.initial_seed(), sample id, cell, token)`` — computed elementwise on the device
with a 32-bit avalanche hash (MurmurHash3's finaliser), so results are independent of batching,
process count and device, and need no Python loop over sentences.
"""

from enum import IntEnum

import torch

_MASK32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9


class Stream(IntEnum):
    """The random streams of the project: one key per kind of draw, so that no two kinds of
    draw ever share their numbers (the first key after the seed)."""

    CELLS = 11  # sampled cells (search/sampling.py)
    TOKENS = 12  # sampled candidate tokens
    ROLLIN = 21  # mixed roll-in coins (search/rollin.py)
    ROLLOUT = 31  # mixed roll-out coins (search/rollout.py)
    TIES = 32  # LL tie-breaking (search/engine.py, SearchResult.tiebreak)
    RISK_SAMPLES = 41  # sampled candidates of sequence_risk (search/risk.py)
    DSS_GUMBEL = 0x67756D62  # Gumbel noise of relaxed feeding (models/relaxed_feeding.py)
    DSS_MIX = 0x6D697831  # gold-or-model choice of relaxed feeding


def _fmix32(h: torch.Tensor) -> torch.Tensor:
    """MurmurHash3 finaliser on int64 tensors holding values in [0, 2**32)."""
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & _MASK32  # int64 wrap-around keeps the low 32 bits exact
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & _MASK32
    return h ^ (h >> 16)


def hash_keys(*keys) -> torch.Tensor:
    """Hash broadcastable integer keys (ints or LongTensors) into int64 values in [0, 2**32).

    Each key is folded in with a different odd multiplier, so ``hash_keys(a, b)`` and
    ``hash_keys(b, a)`` differ. Keys may be negative or exceed 32 bits (both halves are used).
    """
    h = None
    device = next((k.device for k in keys if torch.is_tensor(k)), torch.device("cpu"))
    for i, key in enumerate(keys):
        key = torch.as_tensor(key, dtype=torch.long, device=device)
        lo, hi = key & _MASK32, (key >> 32) & _MASK32
        salt = (_GOLDEN * (2 * i + 1)) & _MASK32
        part = _fmix32((lo ^ salt) & _MASK32) ^ _fmix32((hi + salt + 0x632BE5AB) & _MASK32)
        h = part if h is None else _fmix32((h * 0x01000193 + part) & _MASK32)
    return h


def uniform(*keys, dtype=torch.float32) -> torch.Tensor:
    """Uniform draws in the open interval (0, 1), one per element of the broadcast keys."""
    h = hash_keys(*keys)
    return ((h >> 8).to(torch.float64) + 0.5).div_(2.0**24).to(dtype)


def gumbel(*keys, dtype=torch.float32) -> torch.Tensor:
    """Standard Gumbel(0, 1) draws ``-log(-log U)``, one per element of the broadcast keys."""
    u = uniform(*keys, dtype=torch.float64)
    return (-torch.log(-torch.log(u))).to(dtype)


def sequence_key(tokens: torch.Tensor, pad: int) -> torch.Tensor:
    """One int64 key per row of ``tokens: [B, L]``, invariant to right/left padding.

    Used where sample ids are unknown (models under stock criterions): a sentence is keyed by
    its own source tokens. Returns ``[B]``.
    """
    mask = tokens.ne(pad)
    pos = mask.long().cumsum(1)  # position among non-pad tokens, 1-based
    per_token = hash_keys(tokens, pos) * mask
    return hash_keys(per_token.sum(1), mask.sum(1))
