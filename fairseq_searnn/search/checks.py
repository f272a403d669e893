"""Checks of a SeaRNN setup, shared by the shells: each problem is a message naming the option,
as the shell spells it (``flag``: ``--searnn-tokens`` on fairseq's command line, ``tokens``
as a keyword argument).

Settings are the :class:`~fairseq_searnn.search.SearchConfig` fields plus the objective's
``alpha`` (None: per cost), ``mle_weight``, ``label_smoothing`` and (optional, default
``restricted``) ``sampled_softmax``.
"""

from typing import Callable, Iterator, Mapping

from fairseq_searnn import costs
from fairseq_searnn.search.losses import SAMPLED_SOFTMAXES
from fairseq_searnn.search.reference import POLICIES
from fairseq_searnn.search.rollin import ROLLINS
from fairseq_searnn.search.rollout import MIX_GRANULARITIES, ROLLOUTS
from fairseq_searnn.search.sampling import STRATEGIES

Flag = Callable[[str], str]
#: the choices of each named setting
CHOICES = {"rollin": ROLLINS, "rollout": ROLLOUTS, "rollout_mix_granularity": MIX_GRANULARITIES,
           "reference": POLICIES, "token_sampling": STRATEGIES}


def problems(s: Mapping, sampled: bool, vocab: int, fixed_length: bool,
             flag: Flag) -> Iterator[str]:
    """Messages for every invalid value or combination of the settings ``s``; ``vocab``: the
    candidate symbols of the target vocabulary, ``sampled``: sLL / sKL."""
    if vocab <= 1:
        yield ("the target dictionary holds only special symbols: no candidate token "
               "besides EOS")
    yield from _choices(s, flag)
    yield from _values(s, flag)
    yield from _candidates(s, sampled, vocab, flag)
    yield from _policies(s, fixed_length, flag)


def _choices(s: Mapping, flag: Flag) -> Iterator[str]:
    for name, choices in CHOICES.items():
        if str(s[name]) not in choices:
            yield f"{flag(name)} {s[name]!r} unknown; choose from {', '.join(choices)}"
    for name in ("cost", "reference_cost"):
        if s[name] is not None and str(s[name]) not in costs.available():
            yield (f"{flag(name)} {s[name]!r} unknown; choose from "
                   f"{', '.join(costs.available())}")


def _values(s: Mapping, flag: Flag) -> Iterator[str]:
    """Out-of-range values."""
    for name in ("rollin_ref_prob", "rollout_ref_prob", "mle_weight"):
        if not 0.0 <= s[name] <= 1.0:
            yield f"{flag(name)} must be in [0, 1], got {s[name]}"
    if not 0.0 <= s["label_smoothing"] < 1.0:
        yield f"{flag('label_smoothing')} must be in [0, 1), got {s['label_smoothing']}"
    if s["alpha"] is not None and s["alpha"] <= 0:
        yield f"{flag('alpha')} must be > 0, got {s['alpha']}"
    if s["sampling_temperature"] <= 0:
        yield f"{flag('sampling_temperature')} must be > 0"
    if s["cells"] < 0:
        yield f"{flag('cells')} must be >= 0 (0: every cell)"
    if s["rollout_batch_size"] <= 0:
        yield f"{flag('rollout_batch_size')} must be > 0"
    if (s["max_len_b"] or 0) < 0 or (s["max_len_a"] or 0) < 0:
        yield f"{flag('max_len_a')} and {flag('max_len_b')} must be >= 0"


def _candidates(s: Mapping, sampled: bool, vocab: int, flag: Flag) -> Iterator[str]:
    """Candidate-set settings that do not fit the loss."""
    tokens = flag("tokens")
    if sampled and s["tokens"] <= 0:
        yield f"sampled SeaRNN criterions need {tokens} K > 0"
    if not sampled and s["tokens"] > 0:
        yield (f"{tokens} applies to the sampled losses (sLL / sKL); the full ones try every "
               "symbol")
    if s["tokens"] > vocab:
        yield (f"{tokens} {s['tokens']} exceeds the {vocab} candidate symbols of the target "
               "dictionary")
    softmax = str(s.get("sampled_softmax", "restricted"))
    if softmax not in SAMPLED_SOFTMAXES:
        yield (f"{flag('sampled_softmax')} {softmax!r} unknown; choose from "
               f"{', '.join(SAMPLED_SOFTMAXES)}")
    elif softmax == "full" and not sampled:
        yield (f"{flag('sampled_softmax')} full applies to the sampled losses (sLL / sKL); "
               "the full ones use the full softmax already")
    if s["neighbors"] < 0 or (s["neighbors"] > 0 and s["token_sampling"] != "topk-neighbors"):
        yield (f"{flag('neighbors')} W >= 0 needs {flag('token_sampling')} topk-neighbors")


def _policies(s: Mapping, fixed_length: bool, flag: Flag) -> Iterator[str]:
    """Roll-out / reference policies that do not fit together."""
    if fixed_length and str(s["reference"]) != "copy":
        yield (f"fixed-length outputs ({flag('fixed_length')}, or the task's) need "
               f"{flag('reference')} copy: a best suffix changes the length")
    if s["rollout"] == "focused" and s["rollout_focused_steps"] < 1:
        yield f"{flag('rollout_focused_steps')} must be >= 1"
