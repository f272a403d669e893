"""Sequence-level costs for SeaRNN, batched on padded token tensors (lower is better).

Every cost has the signature ``fn(hyp, ref, pad) -> FloatTensor[N]``:

- ``hyp``: LongTensor[N, Lh], ``ref``: LongTensor[N, Lr]; content tokens only (no BOS/EOS),
  right-padded with ``pad``. A row's length is its number of non-``pad`` tokens. Any lengths,
  including 0, and ``Lh = 0`` / ``Lr = 0`` / ``N = 0`` tensors are accepted.
- The result is float32 on the inputs' device, whatever the input integer dtype.

Costs (``|h|``, ``|r|`` are the row lengths):

- ``hamming``: number of positions ``i < max(|h|, |r|)`` with ``h_i != r_i`` (a position past the
  end of one sequence is a mismatch), divided by ``max(|r|, 1)``.
- ``edit``: Levenshtein distance (unit insert / delete / substitute) / ``max(|r|, 1)``.
- ``bleu``: ``1 - BLEU / 100`` with BLEU exactly ``sacrebleu.sentence_bleu(h, [r],
  smooth_method="add-k", smooth_value=1, tokenize="none", use_effective_order=True)`` on the
  token ids written in decimal (BLEU+1 of Lin & Och 2004, see :func:`bleu`).
- ``bleu1``: ``1 - BLEU / 100`` with sacrebleu's BLEU at ``max_ngram_order=1``.
- ``bleu-smooth-all``: ``1 - BLEU`` with the BLEU of the official SeaRNN code (add-one on every
  order, unigrams included; see :func:`bleu_smooth_all`).

Nothing is hashed: n-gram matching (:func:`ngram_stats`) and the edit distance's match masks
(:func:`edit_last_row`) use exact integer keys and per-row sorts. Rows are processed in chunks
of similar length (:func:`length_chunks`) so that padding costs little.

Modules: :mod:`~fairseq_searnn.costs.rows` (lengths, length buckets, the packed layout),
:mod:`~fairseq_searnn.costs.ngrams` (n-gram matching), :mod:`~fairseq_searnn.costs.sentence_bleu`
(the BLEU costs), :mod:`~fairseq_searnn.costs.levenshtein` (the package's one Levenshtein
distance) and :mod:`~fairseq_searnn.costs.registry` (Hamming, the costs by name). Import the
names from ``fairseq_searnn.costs``.
"""

from fairseq_searnn.costs.levenshtein import (
    edit,
    edit_distance,
    edit_last_row,
    normalised_edit,
    sequence_edit_distances,
)
from fairseq_searnn.costs.ngrams import ngram_stats
from fairseq_searnn.costs.registry import COSTS, CostFn, available, get_cost, hamming
from fairseq_searnn.costs.rows import (
    CHUNK_ROWS,
    SYMBOL_PAD,
    Packed,
    length_chunks,
    lengths,
    symbol_tensors,
)
from fairseq_searnn.costs.sentence_bleu import (
    bleu,
    bleu1,
    bleu1_from_counts,
    bleu_smooth_all,
    brevity_penalty,
    sacrebleu_score,
)

__all__ = [
    "CHUNK_ROWS", "COSTS", "CostFn", "Packed", "SYMBOL_PAD", "available", "bleu", "bleu1",
    "bleu1_from_counts", "bleu_smooth_all", "brevity_penalty", "edit", "edit_distance",
    "edit_last_row", "get_cost", "hamming", "length_chunks", "lengths", "ngram_stats",
    "normalised_edit", "sacrebleu_score", "sequence_edit_distances", "symbol_tensors",
]
