"""IWSLT14 German-English as fairseq's ``prepare-iwslt14.sh`` (:func:`prepare_iwslt14`): the
official archive ``de-en.tgz`` (downloaded from fairseq's public data mirror as that script
does, or a local archive / extracted directory) -> tag filtering, Moses tokenisation
(sacremoses, with the Perl tokenizer's default escaping), ``clean-corpus-n`` (ratio 1.5, 1-175
tokens), lowercasing; valid = every 23rd training pair; test = dev2010 + dev2012 +
tst2010-2012 -> joint BPE: sentencepiece (default) or the standard subword-nmt codes
(``--bpe-codes``, applied by :class:`~fairseq_searnn.data.subword.SubwordNmtCodes`, which
reproduces subword-nmt's ``apply_bpe.py``) -> fairseq binaries with a joined dictionary
(:mod:`fairseq_searnn.data.nmt_prepare`).
"""

import html
import re
import shutil
import tarfile
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from fairseq_searnn.data.nmt_prepare import (
    binarize_prepared,
    encode_all,
    moses_detokenize,
    moses_tokenize,
    read_lines,
    write_lines,
)

IWSLT14_URL = "http://dl.fbaipublicfiles.com/fairseq/data/iwslt14/de-en.tgz"
IWSLT14_TEST_SETS = ("IWSLT14.TED.dev2010", "IWSLT14.TEDX.dev2012", "IWSLT14.TED.tst2010",
                     "IWSLT14.TED.tst2011", "IWSLT14.TED.tst2012")


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
    info = encode_all(out, texts, bpe, vocab, codes)
    info.update(lowercase=True, moses=True)
    return binarize_prepared(out, info, src, tgt, list(texts))
