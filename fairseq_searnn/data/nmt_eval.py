"""Scoring translations against a prepared directory (:mod:`fairseq_searnn.data.nmt_prepare`):
subword units removed, Moses detokenisation where the pipeline tokenised, then sacrebleu
against the raw references in ``ref/`` (:func:`bleu`) or, for IWSLT14, against the tokenised
ones (:func:`tokenized_bleu`, what fairseq-generate reports with ``--remove-bpe``)."""

import json
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

from fairseq_searnn.data.nmt_prepare import moses_detokenize, read_lines
from fairseq_searnn.data.subword import remove_subwords


def prep_info(prep_dir) -> Dict:
    """``prep.json`` of a prepared directory: languages, subword model, Moses / lowercasing."""
    return json.loads((Path(prep_dir) / "prep.json").read_text())


def postprocess(prep_dir, lines: Iterable[str], lang: str) -> List[str]:
    """Model outputs (subword units, as fairseq-generate's ``H`` lines without
    ``--post-process``) -> detokenised text comparable with ``ref/``."""
    lines = remove_subwords(prep_dir, list(lines))
    if prep_info(prep_dir).get("moses"):
        lines = moses_detokenize(lines, lang)
    return lines


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
    lc = info.get("lowercase", False) if lowercase is None else lowercase
    return sacrebleu.corpus_bleu(hyps, [refs], lowercase=lc), hyps


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
