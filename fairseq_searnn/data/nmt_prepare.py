"""Machine-translation data pipelines of the examples: Multi30k and IWSLT14 German-English.

- Multi30k (``prepare_multi30k``): raw ``{train,val}.{de,en}`` -> a joint sentencepiece BPE
  model trained on the training split -> pieces -> fairseq binaries with a joined dictionary.
- IWSLT14 (``prepare_iwslt14``): the official archive ``de-en.tgz`` (downloaded from fairseq's
  public data mirror as fairseq's ``prepare-iwslt14.sh`` does, or a local archive / extracted
  directory) -> fairseq's recipe in Python: tag filtering, Moses tokenisation (sacremoses, with
  the Perl tokenizer's default escaping), ``clean-corpus-n`` (ratio 1.5, 1-175 tokens),
  lowercasing; valid = every 23rd training pair; test = dev2010 + dev2012 + tst2010-2012 ->
  joint BPE: sentencepiece (default) or the standard subword-nmt codes (``--bpe-codes``,
  applied by :class:`~fairseq_searnn.data.subword.SubwordNmtCodes`, which reproduces
  subword-nmt's ``apply_bpe.py``) -> fairseq binaries with a joined dictionary.

Every prepared directory holds ``bin/`` (for fairseq), ``ref/{split}.{lang}`` (the raw,
untokenised references that BLEU is computed against) and ``prep.json`` (how to undo the
subword / Moses steps: :func:`fairseq_searnn.data.nmt_eval.postprocess`). Subword models:
:mod:`fairseq_searnn.data.subword`; scoring: :mod:`fairseq_searnn.data.nmt_eval`.
"""

import contextlib
import html
import io
import json
import logging
import re
import shutil
import tarfile
import urllib.request
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

from fairseq_searnn.data.subword import SubwordNmtCodes, spm_encode, train_sentencepiece

IWSLT14_URL = "http://dl.fbaipublicfiles.com/fairseq/data/iwslt14/de-en.tgz"
IWSLT14_TEST_SETS = ("IWSLT14.TED.dev2010", "IWSLT14.TEDX.dev2012", "IWSLT14.TED.tst2010",
                     "IWSLT14.TED.tst2011", "IWSLT14.TED.tst2012")
SPLITS = ("train", "valid", "test")


def prep_info(prep_dir) -> Dict:
    """``prep.json`` of a prepared directory: languages, subword model, Moses / lowercasing,
    splits."""
    return json.loads((Path(prep_dir) / "prep.json").read_text())


def _write_info(prep_dir, info: Dict) -> None:
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


def clean_corpus(src: Sequence[str], tgt: Sequence[str], ratio: float = 1.5,
                 min_len: int = 1, max_len: int = 175) -> List[int]:
    """Indices of the pairs ``clean-corpus-n.perl -ratio R ... MIN MAX`` keeps (whitespace
    collapsed; token counts within [MIN, MAX]; length ratio at most R both ways)."""
    keep = []
    for i, (a, b) in enumerate(zip(src, tgt)):
        na, nb = len(a.split()), len(b.split())
        if not (min_len <= na <= max_len and min_len <= nb <= max_len):
            continue
        if na / nb > ratio or nb / na > ratio:
            continue
        keep.append(i)
    return keep


# ---------------------------------------------------------------------------------- IWSLT14

_TAGS_DROPPED = ("<url>", "<talkid>", "<keywords>")
_TAGS_STRIPPED = re.compile(r"</?(title|description)>")
_SEG = re.compile(r'<seg id="[0-9]*">\s*(.*?)\s*</seg>\s*$')


def iwslt_train_lines(path) -> List[str]:
    """``train.tags.de-en.L`` as fairseq filters it: lines with ``<url>``, ``<talkid>``,
    ``<keywords>`` dropped, ``<title>``/``<description>`` tags removed."""
    return [_TAGS_STRIPPED.sub("", line) for line in read_lines(path)
            if not any(t in line for t in _TAGS_DROPPED)]


def iwslt_xml_segments(path) -> List[str]:
    """The ``<seg id>`` texts of an IWSLT xml file (curly apostrophe made straight)."""
    out = []
    for line in read_lines(path):
        if "<seg id" in line:
            m = _SEG.search(line.strip("\r"))
            text = m.group(1) if m else re.sub(r"<[^>]+>", "", line).strip()
            out.append(text.replace("\u2019", "'"))
    return out


def fetch_iwslt14(source: Optional[str], workdir) -> Path:
    """The extracted ``de-en`` directory: ``source`` may be that directory, a ``de-en.tgz``
    archive, or None (download :data:`IWSLT14_URL`, as fairseq's prepare-iwslt14.sh)."""
    workdir = Path(workdir)
    if source and Path(source).is_dir():
        return Path(source)
    archive = Path(source) if source else workdir / "de-en.tgz"
    if not source and not archive.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"downloading {IWSLT14_URL} ...", flush=True)
        with urllib.request.urlopen(IWSLT14_URL) as r, open(archive, "wb") as f:
            shutil.copyfileobj(r, f)
    with tarfile.open(archive) as tar:
        try:
            tar.extractall(workdir, filter="data")  # no absolute paths / links outside
        except TypeError:  # Python < 3.8.17 / 3.11.4: no extraction filters
            tar.extractall(workdir)
    found = sorted(workdir.glob("**/train.tags.de-en.de"))
    if not found:
        raise FileNotFoundError(f"no train.tags.de-en.de in {archive}")
    return found[0].parent


def iwslt14_layout_from_tokenised(tok_dir, dest, n_train: int, n_test: int = 20,
                                  src: str = "de", tgt: str = "en"):
    """An extracted ``de-en/`` directory laid out like the official archive, made from
    tokenised parallel files ``tok_dir/valid.{src,tgt}`` (e.g. the IWSLT14 valid split) for
    checking the pipeline and the recipes offline: the first ``n_train`` lines, detokenised,
    become ``train.tags`` (with the tag lines fairseq's script drops, and a ``<url>`` line
    every 50), the next ``2 * n_test`` two xml test sets. Returns ``(directory, raw)`` with
    ``raw[lang]`` the detokenised lines used."""
    orig = Path(dest) / f"{src}-{tgt}"
    orig.mkdir(parents=True, exist_ok=True)
    raw = {}
    for lang in (src, tgt):
        tok = read_lines(Path(tok_dir) / f"valid.{lang}", n_train + 2 * n_test)
        raw[lang] = moses_detokenize(tok, lang)
        body = [f"<url>http://www.ted.com/talks/{i}</url>" if i % 50 == 0 else line
                for i, line in enumerate(raw[lang][:n_train])]
        write_lines(orig / f"train.tags.{src}-{tgt}.{lang}",
                    ["<keywords>talks, science</keywords>", "<talkid>1</talkid>",
                     "<title>A talk</title>", "<description>TED talk.</description>", *body])
        for k, name in enumerate(IWSLT14_TEST_SETS[:2]):
            segs = raw[lang][n_train + n_test * k:n_train + n_test * (k + 1)]
            write_lines(orig / f"{name}.{src}-{tgt}.{lang}.xml",
                        ['<doc docid="1" genre="lectures">',
                         *(f'<seg id="{i + 1}"> {s} </seg>' for i, s in enumerate(segs)),
                         "</doc>"])
    return orig, raw


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


def _encode_all(out: Path, texts: Dict[str, Dict[str, List[str]]], bpe: str, vocab: int,
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


def _finish(out: Path, info: Dict, src: str, tgt: str, splits: Sequence[str]) -> Path:
    binarize(out / "bpe", out / "bin", src, tgt, splits)
    info.update(src=src, tgt=tgt, splits=list(splits))
    _write_info(out, info)
    return out


def encode_lines(prep_dir, lines: Sequence[str], lang: str) -> List[str]:
    """Raw text -> the subword units a prepared directory's models read: Moses-tokenised and
    lowercased where the pipeline did (IWSLT14), then its sentencepiece model or BPE codes."""
    prep_dir = Path(prep_dir)
    info = prep_info(prep_dir)
    lines = list(lines)
    if info.get("moses"):
        lines = [" ".join(x.split()) for x in moses_tokenize(lines, lang)]
    if info.get("lowercase"):
        lines = [x.lower() for x in lines]
    if info["bpe"] == "sentencepiece":
        return spm_encode(prep_dir / info["spm_model"], lines)
    applier = SubwordNmtCodes(prep_dir / info["codes"])
    return [applier.segment(x) for x in lines]


def add_split(prep_dir, split: str, src_lines: Sequence[str], tgt_lines: Sequence[str]) -> Path:
    """A new split of raw parallel text in a prepared directory, binarised with its
    dictionary: ``ref/{split}.{lang}`` (raw), ``bpe/{split}.{lang}`` and
    ``bin/{split}.{src}-{tgt}.{lang}.{bin,idx}`` (fairseq's ``--gen-subset`` /
    ``--valid-subset`` name ``split``)."""
    import tempfile

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
    with tempfile.TemporaryDirectory() as tmp:  # fairseq names it "test"; renamed after
        binarize(prep_dir / "bpe", tmp, src, tgt, splits=("test",),
                 dictionary=prep_dir / "bin" / f"dict.{src}.txt", stems={"test": split})
        for lang in (src, tgt):
            for ext in ("bin", "idx"):
                shutil.move(Path(tmp) / f"test.{src}-{tgt}.{lang}.{ext}",
                            prep_dir / "bin" / f"{split}.{src}-{tgt}.{lang}.{ext}")
    _write_info(prep_dir, dict(info, splits=sorted(set(info.get("splits", [])) | {split})))
    return prep_dir


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
    _write_info(dest, dict(info, splits=[]))
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
    info = _encode_all(out, texts, "sentencepiece", vocab)
    info.update(lowercase=False, moses=False)
    return _finish(out, info, src, tgt, list(texts))


def prepare_iwslt14(source: Optional[str], out, bpe: str = "sentencepiece",
                    vocab: int = 10000, codes=None, max_lines: int = 0,
                    workdir=None) -> Path:
    """IWSLT14 de-en as fairseq's prepare-iwslt14.sh (see module doc). ``source``: the
    extracted ``de-en`` directory, a ``de-en.tgz``, or None to download. ``max_lines`` > 0
    keeps only the first training lines (tests)."""
    out = Path(out)
    orig = fetch_iwslt14(source, Path(workdir or out / "orig"))
    src, tgt = "de", "en"
    raw = {lang: iwslt_train_lines(orig / f"train.tags.de-en.{lang}") for lang in (src, tgt)}
    if len(raw[src]) != len(raw[tgt]):
        raise ValueError(f"{orig}: train.tags files have {len(raw[src])} / {len(raw[tgt])} "
                         "lines after tag filtering")
    if max_lines:
        raw = {lang: lines[:max_lines] for lang, lines in raw.items()}
    tok = {lang: moses_tokenize(lines, lang) for lang, lines in raw.items()}
    keep = clean_corpus(tok[src], tok[tgt])
    # clean-corpus-n.perl also collapses whitespace; lowercase.perl comes after cleaning
    tok = {lang: [" ".join(lines[i].split()).lower() for i in keep] for lang, lines in tok.items()}
    raw = {lang: [lines[i].strip() for i in keep] for lang, lines in raw.items()}
    texts: Dict[str, Dict[str, List[str]]] = {"train": {}, "valid": {}, "test": {}}
    refs: Dict[str, Dict[str, List[str]]] = {"train": {}, "valid": {}, "test": {}}
    for lang in (src, tgt):
        # awk NR%23: 1-based line numbers
        texts["valid"][lang] = [x for n, x in enumerate(tok[lang], 1) if n % 23 == 0]
        texts["train"][lang] = [x for n, x in enumerate(tok[lang], 1) if n % 23 != 0]
        refs["valid"][lang] = [x for n, x in enumerate(raw[lang], 1) if n % 23 == 0]
        refs["train"][lang] = [x for n, x in enumerate(raw[lang], 1) if n % 23 != 0]
        test_raw = []
        for name in IWSLT14_TEST_SETS:
            path = orig / f"{name}.de-en.{lang}.xml"
            if path.exists():
                test_raw.extend(iwslt_xml_segments(path))
        refs["test"][lang] = [html.unescape(x) for x in test_raw]
        texts["test"][lang] = [x.lower() for x in moses_tokenize(test_raw, lang)]
    if not texts["test"][src]:
        del texts["test"], refs["test"]
    for split in texts:
        for lang in (src, tgt):
            write_lines(out / "tok" / f"{split}.{lang}", texts[split][lang])
            write_lines(out / "ref" / f"{split}.{lang}", refs[split][lang])
    info = _encode_all(out, texts, bpe, vocab, codes)
    info.update(lowercase=True, moses=True)
    return _finish(out, info, src, tgt, list(texts))
