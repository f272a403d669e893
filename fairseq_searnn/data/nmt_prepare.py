"""Machine-translation data pipelines of the examples, the parts every dataset shares: text
files, Moses (de)tokenisation, a joint subword model applied to every split, fairseq binaries
with a joined dictionary, splits added later, source reversal. The datasets:
:mod:`fairseq_searnn.data.multi30k` and :mod:`fairseq_searnn.data.iwslt14`.

Every prepared directory holds ``bin/`` (for fairseq), ``ref/{split}.{lang}`` (the raw,
untokenised references that BLEU is computed against) and ``prep.json`` (how to undo the
subword / Moses steps: :func:`fairseq_searnn.data.nmt_eval.postprocess`). Subword models:
:mod:`fairseq_searnn.data.subword`; scoring: :mod:`fairseq_searnn.data.nmt_eval`.
"""

import contextlib
import io
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

from fairseq_searnn.data.subword import SubwordNmtCodes, spm_encode, train_sentencepiece

SPLITS = ("train", "valid", "test")


def prep_info(prep_dir) -> Dict:
    """``prep.json`` of a prepared directory: languages, subword model, Moses / lowercasing,
    splits."""
    return json.loads((Path(prep_dir) / "prep.json").read_text())


def write_info(prep_dir, info: Dict) -> None:
    """Write ``prep.json`` of a prepared directory."""
    (Path(prep_dir) / "prep.json").write_text(json.dumps(info, indent=1) + "\n")


def read_lines(path, limit: int = 0) -> List[str]:
    """Lines of a UTF-8 file without their newline (the first ``limit`` if > 0)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            out.append(line.rstrip("\n"))
            if limit and len(out) >= limit:
                break
    return out


def write_lines(path, lines: Iterable[str]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")


# ----------------------------------------------------------------------------------- Moses


def moses_tokenize(lines: Iterable[str], lang: str) -> List[str]:
    """``tokenizer.perl -l LANG`` (default: escaping on, no aggressive hyphen splitting)."""
    from sacremoses import MosesTokenizer

    tok = MosesTokenizer(lang=lang)
    return [tok.tokenize(line, escape=True, return_str=True, aggressive_dash_splits=False)
            for line in lines]


def moses_detokenize(lines: Iterable[str], lang: str) -> List[str]:
    """``detokenizer.perl -l LANG`` (unescapes ``&apos;`` etc.)."""
    from sacremoses import MosesDetokenizer

    detok = MosesDetokenizer(lang=lang)
    return [detok.detokenize(line.split(), unescape=True) for line in lines]


# ------------------------------------------------------------------------------- binarising


def binarize(text_dir, dest_dir, src: str, tgt: str, splits: Sequence[str] = SPLITS,
             workers: int = 1, dictionary=None, stems: Optional[Dict[str, str]] = None) -> Path:
    """fairseq's preprocessing of ``text_dir/{stem}.{src,tgt}`` (``stem``: ``stems[split]``,
    default the split's name) for ``splits`` among train / valid / test, with a joined
    dictionary: built from the training split, or the existing ``dictionary`` file."""
    from fairseq import options
    from fairseq_cli import preprocess

    logging.getLogger("fairseq_cli.preprocess").setLevel(logging.WARNING)
    argv = ["--source-lang", src, "--target-lang", tgt, "--destdir", str(dest_dir),
            "--workers", str(workers)]
    argv += (["--srcdict", str(dictionary), "--tgtdict", str(dictionary)] if dictionary
             else ["--joined-dictionary"])
    for split, flag in (("train", "--trainpref"), ("valid", "--validpref"),
                        ("test", "--testpref")):
        if split in splits:
            argv += [flag, str(Path(text_dir) / (stems or {}).get(split, split))]
    args = options.get_preprocessing_parser().parse_args(argv)
    with contextlib.redirect_stdout(io.StringIO()):
        preprocess.main(args)
    return Path(dest_dir)


def encode_all(out: Path, texts: Dict[str, Dict[str, List[str]]], bpe: str, vocab: int,
                codes=None) -> Dict[str, str]:
    """Joint subword model on the training split, applied to every split into ``out/bpe``."""
    info: Dict[str, str] = {"bpe": bpe}
    langs = list(texts["train"])
    if bpe == "sentencepiece":
        train_files = []
        for lang in langs:
            write_lines(out / "spm-train" / f"train.{lang}", texts["train"][lang])
            train_files.append(out / "spm-train" / f"train.{lang}")
        model = train_sentencepiece(train_files, out / "spm", vocab)
        shutil.rmtree(out / "spm-train")
        info["spm_model"] = model.name
        encode = lambda lines: spm_encode(model, lines)  # noqa: E731
    elif bpe == "subword-nmt":
        if codes is None:
            raise ValueError("--bpe subword-nmt needs --bpe-codes (e.g. the standard "
                             "fairseq 10k codes)")
        shutil.copy(codes, out / "code")
        info["codes"] = "code"
        applier = SubwordNmtCodes(out / "code")
        encode = lambda lines: [applier.segment(x) for x in lines]  # noqa: E731
    else:
        raise ValueError(f"unknown bpe {bpe!r}: sentencepiece or subword-nmt")
    for split, by_lang in texts.items():
        for lang, lines in by_lang.items():
            write_lines(out / "bpe" / f"{split}.{lang}", encode(lines))
    return info


def binarize_prepared(out: Path, info: Dict, src: str, tgt: str, splits: Sequence[str]) -> Path:
    """``out/bpe`` -> ``out/bin`` (joined dictionary from the training split), and
    ``prep.json``: ``info`` with the languages and ``splits``."""
    binarize(out / "bpe", out / "bin", src, tgt, splits)
    info.update(src=src, tgt=tgt, splits=list(splits))
    write_info(out, info)
    return out


def encode_lines(prep_dir, lines: Sequence[str], lang: str) -> List[str]:
    """Raw text -> the subword units a prepared directory's models read: Moses-tokenised and
    lowercased where the pipeline did (IWSLT14), then its sentencepiece model or BPE codes,
    then, for the source language of a :func:`reversed_source` directory, reversed."""
    prep_dir = Path(prep_dir)
    info = prep_info(prep_dir)
    lines = list(lines)
    if info.get("moses"):
        lines = [" ".join(x.split()) for x in moses_tokenize(lines, lang)]
    if info.get("lowercase"):
        lines = [x.lower() for x in lines]
    if info["bpe"] == "sentencepiece":
        units = spm_encode(prep_dir / info["spm_model"], lines)
    else:
        applier = SubwordNmtCodes(prep_dir / info["codes"])
        units = [applier.segment(x) for x in lines]
    if info.get("reverse_source") and lang == info["src"]:
        units = [reverse_units(x) for x in units]
    return units


def add_split(prep_dir, split: str, src_lines: Sequence[str], tgt_lines: Sequence[str]) -> Path:
    """A new split of raw parallel text in a prepared directory, binarised with its
    dictionary: ``ref/{split}.{lang}`` (raw), ``bpe/{split}.{lang}`` and
    ``bin/{split}.{src}-{tgt}.{lang}.{bin,idx}`` (fairseq's ``--gen-subset`` /
    ``--valid-subset`` name ``split``)."""
    prep_dir = Path(prep_dir)
    info = prep_info(prep_dir)
    src, tgt = info["src"], info["tgt"]
    if len(src_lines) != len(tgt_lines):
        raise ValueError(f"{len(src_lines)} source lines for {len(tgt_lines)} target lines")
    if not re.fullmatch(r"[A-Za-z0-9_]+", split):
        raise ValueError(f"split name {split!r}: letters, digits and _ only")
    for lang, lines in ((src, src_lines), (tgt, tgt_lines)):
        write_lines(prep_dir / "ref" / f"{split}.{lang}", lines)
        write_lines(prep_dir / "bpe" / f"{split}.{lang}", encode_lines(prep_dir, lines, lang))
    binarize_split(prep_dir, split)
    return prep_dir


def ensure_split(prep_dir, split: str, raw_prefix=None) -> Path:
    """A prepared directory with its ``split``: kept when listed in ``prep.json``, else added
    (:func:`add_split`) from the raw files ``RAW_PREFIX.{src,tgt}`` (e.g.
    ``multi30k/raw/test2016``). SystemExit, naming ``--test-raw``, when it has neither."""
    info = prep_info(prep_dir)
    if split in info.get("splits", []):
        return Path(prep_dir)
    if not raw_prefix:
        raise SystemExit(f"{prep_dir} has no {split} split: prepare it again with "
                         "prepare_multi30k.py (it picks up RAW/test2016.*), or give "
                         "--test-raw RAW/test2016")
    src, tgt = (read_lines(f"{raw_prefix}.{lang}") for lang in (info["src"], info["tgt"]))
    return add_split(prep_dir, split, src, tgt)


def binarize_split(prep_dir, split: str) -> Path:
    """``bpe/{split}.{src,tgt}`` of a prepared directory -> ``bin/{split}.{src}-{tgt}.*`` with
    its dictionary, and ``split`` listed in ``prep.json``."""
    import tempfile

    prep_dir = Path(prep_dir)
    info = prep_info(prep_dir)
    src, tgt = info["src"], info["tgt"]
    with tempfile.TemporaryDirectory() as tmp:  # fairseq names it "test"; renamed after
        binarize(prep_dir / "bpe", tmp, src, tgt, splits=("test",),
                 dictionary=prep_dir / "bin" / f"dict.{src}.txt", stems={"test": split})
        for lang in (src, tgt):
            for ext in ("bin", "idx"):
                shutil.move(Path(tmp) / f"test.{src}-{tgt}.{lang}.{ext}",
                            prep_dir / "bin" / f"{split}.{src}-{tgt}.{lang}.{ext}")
    write_info(prep_dir, dict(info, splits=sorted(set(info.get("splits", [])) | {split})))
    return prep_dir


def reverse_units(line: str) -> str:
    """The subword units of one encoded sentence in reverse order."""
    return " ".join(reversed(line.split()))


def reversed_source(prep_dir, dest) -> Path:
    """A copy of a prepared directory at ``dest`` whose models read every source sentence
    backwards: the order of its subword units reversed (fairseq still appends EOS), the input
    reversal of Sutskever et al. (2014) that the SeaRNN authors apply to their NMT encoder
    (``--revert_input_sequence``). Subword model, dictionary, targets and ``ref/`` are the
    original's; ``prep.json`` says ``reverse_source``, so :func:`encode_lines` and
    :func:`add_split` reverse the source of text added later. Splits already in ``dest`` are
    kept; the original's others are added."""
    prep_dir, dest = Path(prep_dir), Path(dest)
    info = prep_info(prep_dir)
    if info.get("reverse_source"):
        raise ValueError(f"{prep_dir} already reverses the source")
    src, tgt = info["src"], info["tgt"]
    if not (dest / "prep.json").exists():
        scratch_copy(prep_dir, dest)
        write_info(dest, dict(prep_info(dest), reverse_source=True))
    done = set(prep_info(dest).get("splits", []))
    for folder in ("ref", "bpe"):
        (dest / folder).mkdir(exist_ok=True)
    for split in info["splits"]:
        if split in done:
            continue
        for lang in (src, tgt):
            shutil.copy(prep_dir / "ref" / f"{split}.{lang}", dest / "ref" / f"{split}.{lang}")
        units = read_lines(prep_dir / "bpe" / f"{split}.{src}")
        write_lines(dest / "bpe" / f"{split}.{src}", [reverse_units(x) for x in units])
        shutil.copy(prep_dir / "bpe" / f"{split}.{tgt}", dest / "bpe" / f"{split}.{tgt}")
        binarize_split(dest, split)
    return dest


def scratch_copy(prep_dir, dest) -> Path:
    """A prepared directory without data splits at ``dest``: ``prep.json``, the subword model
    and the dictionaries, for :func:`add_split` on text of one's own."""
    prep_dir, dest = Path(prep_dir), Path(dest)
    info = prep_info(prep_dir)
    (dest / "bin").mkdir(parents=True, exist_ok=True)
    for lang in (info["src"], info["tgt"]):
        shutil.copy(prep_dir / "bin" / f"dict.{lang}.txt", dest / "bin")
    model = info.get("spm_model") or info["codes"]
    shutil.copy(prep_dir / model, dest / model)
    write_info(dest, dict(info, splits=[]))
    return dest


def split_valid_halves(prep_dir, names: Sequence[str] = ("select", "report")) -> Path:
    """Two fixed halves of the ``valid`` split as new splits (:func:`add_split`): pairs 1, 3,
    5, ... in ``names[0]`` (checkpoint selection, early stopping), pairs 2, 4, ... in
    ``names[1]`` (where results are reported). Kept when both exist."""
    prep_dir = Path(prep_dir)
    info = prep_info(prep_dir)
    if all(n in info.get("splits", []) for n in names):
        return prep_dir
    src, tgt = (read_lines(prep_dir / "ref" / f"valid.{lang}")
                for lang in (info["src"], info["tgt"]))
    for offset, name in enumerate(names):
        add_split(prep_dir, name, src[offset::2], tgt[offset::2])
    return prep_dir
