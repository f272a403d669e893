"""The SeaRNN search, plain torch: roll-in -> cells -> candidates -> roll-outs -> costs, and the
per-cell losses; the sequence-level expected risk over candidate sets (``risk``). Shells
(criterions, tasks, scripts) import from here, never a submodule.

    from fairseq_searnn.search import Search, SearchConfig
    res = Search(SearchConfig(cost="edit"), tgt_dict).collect(model, sample, seed=1)
    res.rollin, res.candidates, res.costs, res.mask   # [B, T], [B, T, K] x 3

The model decodes through a :class:`Host` (``search/host.py``): fairseq's models are wrapped
on the fly; another library brings its own (``fairseq_searnn.hf.HFHost`` for ``transformers``).
"""

from fairseq_searnn.search import checks, losses, objective, precision, risk
from fairseq_searnn.search.decoding import eval_mode
from fairseq_searnn.search.engine import (
    MIX_GRANULARITIES,
    ROLLOUTS,
    RolledIn,
    Search,
    SearchConfig,
    SearchResult,
    content,
    length_bound,
)
from fairseq_searnn.search.host import Host, as_host
from fairseq_searnn.search.losses import APPENDIX_LOSSES, LOSSES, SAMPLED_SOFTMAXES
from fairseq_searnn.search.reference import POLICIES as REFERENCE_POLICIES
from fairseq_searnn.search.rollin import ROLLINS, greedy_decode, prev_output_tokens
from fairseq_searnn.search.rollout import Entries, RolloutPolicy, roll_out
from fairseq_searnn.search.sampling import STRATEGIES, allowed_tokens, emittable_tokens
from fairseq_searnn.search.teacher_forcing import interleaved

__all__ = [
    "APPENDIX_LOSSES", "LOSSES", "MIX_GRANULARITIES", "REFERENCE_POLICIES", "ROLLINS",
    "ROLLOUTS", "SAMPLED_SOFTMAXES", "STRATEGIES", "Entries", "Host", "RolledIn",
    "RolloutPolicy", "Search",
    "SearchConfig", "SearchResult", "allowed_tokens", "as_host", "checks", "content",
    "emittable_tokens", "eval_mode", "greedy_decode", "interleaved", "length_bound", "losses",
    "objective", "precision", "prev_output_tokens", "risk", "roll_out",
]
