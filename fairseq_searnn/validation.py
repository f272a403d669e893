"""Corpus-level test errors of decoded sentences, from summable statistics (validation).

The ``searnn_translation`` task decodes the validation set and reports the error the model is
trained for. Each batch gives integer statistics (:func:`sentence_stats`) that can be summed
over batches and over processes (fairseq all-reduces logging outputs by summation); the corpus
metric is a function of the sums only (:func:`corpus_score`), so it is exact whatever the
sharding. No fairseq imports: inputs are strings, e.g. ``Dictionary.string`` outputs.

- ``hamming`` / ``edit``: ``100 * total errors / total reference symbols``, where a sentence's
  symbols are its whitespace-separated tokens (after BPE / sentencepiece removal) and its
  errors are those of :func:`fairseq_searnn.costs.hamming` (mismatching positions, a position
  past the end of one sequence counting as a mismatch) or the Levenshtein distance. This is the
  way the paper reports OCR's Hamming error ("total Hamming error, normalized by the total
  number of characters on the test set", Section 4).
- ``bleu``: sacrebleu corpus BLEU (its default ``13a`` tokenizer and ``exp`` smoothing, as
  fairseq's ``--eval-bleu``), from summed n-gram matches / totals and lengths.
"""

from typing import Dict, List, Mapping, Sequence

from fairseq_searnn import costs

METRICS = ("hamming", "edit", "bleu")
BLEU_ORDER = 4
_PAD = costs.SYMBOL_PAD


def stat_keys(metric: str) -> List[str]:
    """Logging-output keys of ``metric``'s statistics (identical for every batch)."""
    _check(metric)
    if metric == "bleu":
        return ([f"_searnn_bleu_counts_{i}" for i in range(BLEU_ORDER)]
                + [f"_searnn_bleu_totals_{i}" for i in range(BLEU_ORDER)]
                + ["_searnn_bleu_sys_len", "_searnn_bleu_ref_len"])
    return ["_searnn_errors", "_searnn_ref_len"]


def sentence_stats(metric: str, hyps: Sequence[str], refs: Sequence[str]) -> Dict[str, int]:
    """Summed statistics of the (hypothesis, reference) string pairs: {key: int}."""
    _check(metric)
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    keys = stat_keys(metric)
    if not hyps:
        return dict.fromkeys(keys, 0)
    if metric == "bleu":
        import sacrebleu

        score = sacrebleu.corpus_bleu(list(hyps), [list(refs)])
        values = [*score.counts, *score.totals, score.sys_len, score.ref_len]
        return {k: int(v) for k, v in zip(keys, values)}
    hyp, ref = costs.symbol_tensors([h.split() for h in hyps], [r.split() for r in refs])
    ref_len = costs.lengths(ref, _PAD)
    if metric == "edit":
        errors = costs.edit_distance(hyp, ref, _PAD)
    else:  # costs.hamming divides by max(|r|, 1): undo it (exact: float32 error << 0.5)
        errors = (costs.hamming(hyp, ref, _PAD).double() * ref_len.clamp(min=1)).round()
    return {"_searnn_errors": int(errors.sum()), "_searnn_ref_len": int(ref_len.sum())}


def corpus_score(metric: str, sums: Mapping[str, float]) -> float:
    """The corpus metric from summed statistics (``sums[key]`` for every key of
    :func:`stat_keys`): error rate in percent (hamming, edit) or BLEU (bleu)."""
    _check(metric)
    if metric == "bleu":
        from sacrebleu.metrics import BLEU

        n = BLEU_ORDER
        bleu = BLEU.compute_bleu(
            correct=[int(sums[f"_searnn_bleu_counts_{i}"]) for i in range(n)],
            total=[int(sums[f"_searnn_bleu_totals_{i}"]) for i in range(n)],
            sys_len=int(sums["_searnn_bleu_sys_len"]), ref_len=int(sums["_searnn_bleu_ref_len"]),
            smooth_method="exp")
        return float(bleu.score)
    return 100.0 * float(sums["_searnn_errors"]) / max(float(sums["_searnn_ref_len"]), 1.0)


def _check(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown validation metric {metric!r}; valid: {', '.join(METRICS)}")
