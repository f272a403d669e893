"""Multi30k German-English (:func:`prepare_multi30k`): raw ``{train,val}.{de,en}`` -> a joint
sentencepiece BPE model trained on the training split -> pieces -> fairseq binaries with a
joined dictionary (:mod:`fairseq_searnn.data.nmt_prepare`)."""

from pathlib import Path
from typing import Dict, List

from fairseq_searnn.data.nmt_prepare import (
    binarize_prepared,
    encode_all,
    read_lines,
    write_lines,
)


def prepare_multi30k(raw_dir, out, vocab: int = 8000, src: str = "de", tgt: str = "en",
                     max_lines: int = 0) -> Path:
    """Multi30k: ``raw_dir/{train,val[,test*]}.{de,en}`` -> ``out`` (see module doc).
    ``val`` becomes fairseq's ``valid``; ``test`` is used when ``raw_dir/test.{src,tgt}``
    exists (e.g. test_2016_flickr renamed)."""
    raw, out = Path(raw_dir), Path(out)
    names = {"train": "train", "valid": "val", "test": "test"}
    texts: Dict[str, Dict[str, List[str]]] = {}
    for split, name in names.items():
        if all((raw / f"{name}.{lang}").exists() for lang in (src, tgt)):
            texts[split] = {lang: read_lines(raw / f"{name}.{lang}", max_lines)
                            for lang in (src, tgt)}
    if "train" not in texts or "valid" not in texts:
        raise FileNotFoundError(f"{raw} needs train.{{{src},{tgt}}} and val.{{{src},{tgt}}}")
    for split, by_lang in texts.items():
        for lang, lines in by_lang.items():
            write_lines(out / "ref" / f"{split}.{lang}", lines)
    info = encode_all(out, texts, "sentencepiece", vocab)
    info.update(lowercase=False, moses=False)
    return binarize_prepared(out, info, src, tgt, list(texts))
