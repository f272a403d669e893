"""Multi30k German-English (:func:`prepare_multi30k`): raw ``{train,val}.{de,en}`` and the
test set (``test2016``, the standard one: :func:`find_test_prefix`) -> a joint sentencepiece
BPE model trained on the training split -> pieces -> fairseq binaries with a joined dictionary
(:mod:`fairseq_searnn.data.nmt_prepare`)."""

from pathlib import Path
from typing import Dict, List, Optional

from fairseq_searnn.data.nmt_prepare import (
    binarize_prepared,
    encode_all,
    read_lines,
    write_lines,
)

TEST_PREFIXES = ("test", "test2016", "test_2016_flickr")  # looked for in this order


def find_test_prefix(raw_dir, src: str = "de", tgt: str = "en",
                     prefix: Optional[str] = None) -> Optional[str]:
    """The file prefix of the raw test set in ``raw_dir``: ``prefix`` when given (then
    ``raw_dir/PREFIX.{src,tgt}`` must exist: FileNotFoundError), else the first of
    :data:`TEST_PREFIXES` whose two files exist (``test2016`` in ``../shared/data/multi30k/raw``,
    ``test_2016_flickr`` as the Multi30k repository names it), else None (no test split)."""
    raw = Path(raw_dir)

    def present(name):
        return all((raw / f"{name}.{lang}").exists() for lang in (src, tgt))

    if prefix is not None:
        if not present(prefix):
            raise FileNotFoundError(f"no {prefix}.{src} / {prefix}.{tgt} in {raw}")
        return prefix
    return next((name for name in TEST_PREFIXES if present(name)), None)


def prepare_multi30k(raw_dir, out, vocab: int = 8000, src: str = "de", tgt: str = "en",
                     max_lines: int = 0, test_prefix: Optional[str] = None) -> Path:
    """Multi30k: ``raw_dir/{train,val}.{src,tgt}`` and a test set -> ``out`` (see module doc).
    ``val`` becomes fairseq's ``valid``; the test set (:func:`find_test_prefix`: ``test_prefix``,
    else the first of ``test``, ``test2016``, ``test_2016_flickr`` present) becomes ``test``,
    its raw lines the references ``ref/test.{src,tgt}``; without one there is no ``test``
    split. ``max_lines`` > 0 keeps the first lines of every split (tests)."""
    raw, out = Path(raw_dir), Path(out)
    names = {"train": "train", "valid": "val"}
    test = find_test_prefix(raw, src, tgt, test_prefix)
    if test is not None:
        names["test"] = test
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
    info.update(lowercase=False, moses=False, test_prefix=test)
    return binarize_prepared(out, info, src, tgt, list(texts))
