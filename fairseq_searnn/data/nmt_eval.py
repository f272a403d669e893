"""Scoring translations against a prepared directory (:mod:`fairseq_searnn.data.nmt_prepare`):
subword units removed, Moses detokenisation where the pipeline tokenised, then sacrebleu
against the raw references in ``ref/`` (:func:`bleu`) or, for IWSLT14, against the tokenised
ones (:func:`tokenized_bleu`, what fairseq-generate reports with ``--remove-bpe``)."""

from pathlib import Path
from typing import Iterable, List, Optional, Sequence

from fairseq_searnn.data.nmt_prepare import moses_detokenize, prep_info, read_lines
from fairseq_searnn.data.subword import remove_subwords

__all__ = ["bleu", "bleu_signature", "lowercased", "postprocess", "prep_info",
           "score_checkpoint", "tokenized_bleu", "translate"]


def postprocess(prep_dir, lines: Iterable[str], lang: str) -> List[str]:
    """Model outputs (subword units, as fairseq-generate's ``H`` lines without
    ``--post-process``) -> detokenised text comparable with ``ref/``."""
    lines = remove_subwords(prep_dir, list(lines))
    if prep_info(prep_dir).get("moses"):
        lines = moses_detokenize(lines, lang)
    return lines


def lowercased(prep_dir) -> bool:
    """Whether a prepared directory's BLEU is case-insensitive (IWSLT14's lowercased output)."""
    return bool(prep_info(prep_dir).get("lowercase", False))


def bleu(prep_dir, hyps_subword: Sequence[str], split: str, lowercase: Optional[bool] = None):
    """sacrebleu corpus BLEU of detokenised hypotheses against ``ref/{split}.{tgt}`` (raw).
    ``lowercase`` defaults to the pipeline's (IWSLT14 output is lowercased)."""
    import sacrebleu

    info = prep_info(prep_dir)
    refs = read_lines(Path(prep_dir) / "ref" / f"{split}.{info['tgt']}")
    if len(refs) != len(hyps_subword):
        raise ValueError(f"{len(hyps_subword)} hypotheses for {len(refs)} references "
                         f"of {split}")
    hyps = postprocess(prep_dir, hyps_subword, info["tgt"])
    lc = lowercased(prep_dir) if lowercase is None else lowercase
    return sacrebleu.corpus_bleu(hyps, [refs], lowercase=lc), hyps


def bleu_signature(prep_dir) -> str:
    """sacreBLEU's signature of :func:`bleu`'s scores on a prepared directory (e.g.
    ``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0``)."""
    from sacrebleu.metrics import BLEU

    metric = BLEU(lowercase=lowercased(prep_dir))
    metric.corpus_score(["x"], [["x"]])  # the signature counts references: one per sentence
    return str(metric.get_signature())


def tokenized_bleu(prep_dir, hyps_subword: Sequence[str], split: str):
    """BLEU on the pipeline's Moses-tokenised, lowercased text (what fairseq-generate
    reports for IWSLT14 with ``--remove-bpe``); IWSLT14 only."""
    import sacrebleu

    info = prep_info(prep_dir)
    if not info.get("moses"):
        raise ValueError("tokenised BLEU needs a Moses-tokenised pipeline (IWSLT14)")
    refs = read_lines(Path(prep_dir) / "tok" / f"{split}.{info['tgt']}")
    return sacrebleu.corpus_bleu(remove_subwords(prep_dir, hyps_subword), [refs],
                                 tokenize="none")


def translate(prep_dir, checkpoint, split: str, results_dir, beam: int = 1,
              lenpen: float = 1.0, temperature: float = 1.0, max_len_a: float = 0.0,
              max_len_b: int = 200, batch_size: int = 64) -> List[str]:
    """Subword-level hypotheses of ``split`` in sentence order (fairseq-generate, in this
    process, output under ``results_dir``). ``--required-batch-size-multiple 1``: with
    fairseq's default (8), batch_by_size drops the last sentences of a split whose size is
    not a multiple of 8 (fairseq issue #5036)."""
    from fairseq_searnn import recipes
    from fairseq_searnn.cli import user_dir

    info = prep_info(prep_dir)
    argv = [str(Path(prep_dir) / "bin"), "--user-dir", user_dir(), "--path", str(checkpoint),
            "--task", "translation", "--source-lang", info["src"],
            "--target-lang", info["tgt"], "--gen-subset", split, "--beam", str(beam),
            "--lenpen", str(lenpen), "--temperature", str(temperature),
            "--max-len-a", str(max_len_a), "--max-len-b", str(max_len_b),
            "--batch-size", str(batch_size), "--required-batch-size-multiple", "1", "--cpu",
            "--results-path", str(results_dir)]
    return recipes.generate_hypotheses(recipes.generate_in_process(argv))


def score_checkpoint(prep_dir, checkpoint, split: str, **generate):
    """``(result, hypotheses)``: sacreBLEU of ``checkpoint`` on ``split`` (:func:`translate`
    with the ``generate`` options, then :func:`bleu`) — ``result`` holds the split, beam,
    temperature, sentence count, ``sacrebleu``, its detail and its signature
    (:func:`bleu_signature`), plus ``tokenized_bleu`` for a Moses-tokenised pipeline;
    ``hypotheses`` are detokenised."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pieces = translate(prep_dir, checkpoint, split, tmp, **generate)
    score, hyps = bleu(prep_dir, pieces, split)
    result = {"split": split, "beam": generate.get("beam", 1),
              "temperature": generate.get("temperature", 1.0), "sentences": len(hyps),
              "sacrebleu": round(score.score, 2), "detail": str(score),
              "signature": bleu_signature(prep_dir)}
    if prep_info(prep_dir).get("moses"):
        result["tokenized_bleu"] = round(tokenized_bleu(prep_dir, pieces, split).score, 2)
    return result, hyps
