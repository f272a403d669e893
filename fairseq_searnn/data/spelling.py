"""Spelling correction data (Bahdanau et al. 2017; SeaRNN, Section 4) from any English text.

Recipe (public actor-critic code): lowercase; alphabet ``a-z 0-9 , . ! ? #`` and space, any
other character becomes ``#``; the target is the line clipped so that it holds at most ``T``
symbols *counting the end marker* (``T - 1`` characters, then the end marker: the public
code appends the end marker, clips to ``clip_length = T`` and forces the end marker back);
the input is the target with each character replaced, with probability ``p``, by a symbol drawn
uniformly from the alphabet (substitution only: equal lengths; the end marker, which fairseq
appends to both sides, is never corrupted; a replaced character may draw its own symbol back,
so the rate of changed characters is ``p * 41 / 42``, slightly below ``p``).

Files are fairseq symbol files: one sentence per line, symbols separated by spaces, the space
character written as :data:`SPACE_SYMBOL`. Noise is redrawn per epoch through fairseq's data
sharding: ``copies`` noisy copies of the training set are binarised into shard directories
and passed as ``DIR:DIR/noise1:...``; fairseq's translation task trains epoch ``e`` on shard
``(e - 1) % copies`` (valid/test come from the first directory, with one fixed noise draw).

Command line: ``python -m fairseq_searnn.data.spelling --text FILE --out DIR [--p 0.3] ...``.
"""

import argparse
import contextlib
import hashlib
import io
import json
import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from fairseq_searnn import costs

ALPHABET: Tuple[str, ...] = tuple("abcdefghijklmnopqrstuvwxyz0123456789,.!?#") + (" ",)
UNKNOWN = "#"
SPACE_SYMBOL = "_"  # the space character in fairseq symbol files (not in ALPHABET)
# what a decoded symbol outside the alphabet (<unk>, <s>, fairseq's fillers) becomes: one
# character that is in no reference, so it counts as one error like any wrong symbol
FOREIGN = "\ufffd"
SRC, TGT = "noisy", "clean"  # fairseq language suffixes of the input and the target
_IN_ALPHABET = frozenset(ALPHABET)


def normalize(line: str) -> str:
    """Lowercase ``line``, strip surrounding whitespace, map characters outside the alphabet
    (tabs included) to ``#``."""
    return "".join(c if c in _IN_ALPHABET else UNKNOWN for c in line.strip().lower())


def clip(text: str, max_len: int) -> str:
    """The first ``max_len - 1`` characters: with the end marker, ``max_len`` symbols."""
    if max_len < 2:
        raise ValueError(f"max_len counts the end marker and must be >= 2, got {max_len}")
    return text[: max_len - 1]


def corrupt(text: str, p: float, rng: random.Random) -> str:
    """Replace each character of ``text``, with probability ``p``, by a uniform alphabet symbol
    (possibly the same one)."""
    return "".join(rng.choice(ALPHABET) if rng.random() < p else c for c in text)


def changed(noisy: Sequence[str], clean: Sequence[str]) -> Tuple[int, int]:
    """(characters that differ, total characters) over aligned equal-length sentences."""
    diff = total = 0
    for a, b in zip(noisy, clean):
        if len(a) != len(b):
            raise ValueError("substitution noise keeps lengths: got different lengths")
        diff += sum(x != y for x, y in zip(a, b))
        total += len(b)
    return diff, total


def to_symbols(text: str) -> str:
    """``"ab c"`` -> ``"a b _ c"`` (one fairseq symbol per character)."""
    return " ".join(SPACE_SYMBOL if c == " " else c for c in text)


def from_symbols(line: str) -> str:
    """Inverse of :func:`to_symbols` (whitespace-separated symbols back to characters); a
    model's output symbol that is no character (``<unk>``, ``<s>``...) becomes :data:`FOREIGN`."""
    return "".join(" " if s == SPACE_SYMBOL else s if len(s) == 1 else FOREIGN
                   for s in line.split())


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance (unit insertion, deletion, substitution), by the package's one
    implementation (:func:`fairseq_searnn.costs.sequence_edit_distances`)."""
    return costs.sequence_edit_distances([a], [b])[0]


def edit_error(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Corpus edit error in percent: total edit distance / total reference characters * 100."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    total = sum(len(r) for r in refs)
    return 100.0 * sum(costs.sequence_edit_distances(hyps, refs)) / max(total, 1)


# ------------------------------------------------------------------------------------ corpora


def read_lines(path) -> List[str]:
    """Normalised non-empty lines of a UTF-8 text file (undecodable bytes become ``#``)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return [t for t in (normalize(line) for line in f) if t]


# ------------------------------------------------------------------------------ data set files


@dataclass
class SpellingStats:
    """What :func:`build` wrote, with the measured noise of each split."""

    p: float
    max_len: int
    copies: int
    seed: int
    corpus_lines: int
    corpus_sha1: str
    sentences: Dict[str, int] = field(default_factory=dict)
    changed_rate: Dict[str, float] = field(default_factory=dict)  # split -> changed / chars
    data: str = ""  # fairseq data argument: "BIN:BIN/noise1:..." (one shard per noisy copy)

    @property
    def train_changed_rate(self) -> float:
        keys = [k for k in self.changed_rate if k.startswith("train")]
        return sum(self.changed_rate[k] for k in keys) / len(keys)


def split_corpus(lines: Sequence[str], n_valid: int, n_test: int, seed: int,
                 max_len: int) -> Dict[str, List[str]]:
    """Clip every line and split them, after a seeded shuffle, into test / valid / train."""
    targets = [clip(t, max_len) for t in lines]
    targets = [t for t in targets if t]
    order = list(range(len(targets)))
    random.Random(f"split-{seed}").shuffle(order)
    if n_valid + n_test >= len(order):
        raise ValueError(f"{len(order)} sentences: too few for {n_valid} valid + {n_test} test")
    pick = [targets[i] for i in order]
    return {"test": pick[:n_test], "valid": pick[n_test:n_test + n_valid],
            "train": pick[n_test + n_valid:]}


def write_dictionary(path) -> None:
    """A fairseq dictionary holding the whole alphabet (space as :data:`SPACE_SYMBOL`)."""
    Path(path).write_text("".join(f"{to_symbols(c)} 1\n" for c in ALPHABET))


def _write_pair(prefix: Path, noisy: Sequence[str], clean: Sequence[str]) -> None:
    for lang, texts in ((SRC, noisy), (TGT, clean)):
        Path(f"{prefix}.{lang}").write_text("".join(to_symbols(t) + "\n" for t in texts))


def binarize(text_dir, dest_dir, dictionary, splits: Dict[str, str]) -> None:
    """fairseq's preprocessing (in-process) of ``text_dir/{prefix}.{noisy,clean}`` into
    ``dest_dir`` with the fixed alphabet dictionary; ``splits`` maps fairseq's
    ``trainpref``/``validpref``/``testpref`` to file prefixes."""
    from fairseq import options
    from fairseq_cli import preprocess

    logging.getLogger("fairseq_cli.preprocess").setLevel(logging.WARNING)
    argv = ["--source-lang", SRC, "--target-lang", TGT, "--destdir", str(dest_dir),
            "--srcdict", str(dictionary), "--tgtdict", str(dictionary), "--workers", "1"]
    for kind, prefix in splits.items():
        argv += [f"--{kind}", str(Path(text_dir) / prefix)]
    args = options.get_preprocessing_parser().parse_args(argv)
    with contextlib.redirect_stdout(io.StringIO()):
        preprocess.main(args)


def build(lines: Sequence[str], out_dir, p: float = 0.3, max_len: int = 10, copies: int = 1,
          seed: int = 1, n_valid: int = 1000, n_test: int = 1000,
          binarise: bool = True) -> SpellingStats:
    """Write the spelling data set of ``lines`` (normalised text lines) into ``out_dir``.

    ``out_dir/text``: ``{train,train1..,valid,test}.{noisy,clean}`` symbol files and
    ``dict.txt``; ``out_dir/bin`` (shard 0: train, valid, test) and ``out_dir/bin/noise{k}``
    (train only, noisy copy ``k``), all with the same dictionary; ``out_dir/stats.json``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    out = Path(out_dir)
    text, bindir = out / "text", out / "bin"
    text.mkdir(parents=True, exist_ok=True)
    sha1 = hashlib.sha1("\n".join(lines).encode()).hexdigest()
    stats = SpellingStats(p=p, max_len=max_len, copies=copies, seed=seed,
                          corpus_lines=len(lines), corpus_sha1=sha1)
    splits = split_corpus(lines, n_valid, n_test, seed, max_len)
    files = []
    for split, clean in splits.items():
        for k in range(copies if split == "train" else 1):
            name = split if k == 0 else f"{split}{k}"
            rng = random.Random(f"noise-{seed}-{name}")
            noisy = [corrupt(t, p, rng) for t in clean]
            diff, total = changed(noisy, clean)
            stats.sentences[name] = len(clean)
            stats.changed_rate[name] = diff / max(total, 1)
            _write_pair(text / name, noisy, clean)
            files.append(name)
    write_dictionary(text / "dict.txt")
    shards = [bindir] + [bindir / f"noise{k}" for k in range(1, copies)]
    stats.data = ":".join(str(s) for s in shards)
    if binarise:
        binarize(text, bindir, text / "dict.txt",
                 {"trainpref": "train", "validpref": "valid", "testpref": "test"})
        for k in range(1, copies):
            binarize(text, shards[k], text / "dict.txt", {"trainpref": f"train{k}"})
    (out / "stats.json").write_text(json.dumps(asdict(stats), indent=1) + "\n")
    return stats


def load_split(text_dir, split: str) -> Tuple[List[str], List[str]]:
    """(noisy inputs, clean targets) of a split written by :func:`build`, as character strings."""
    pair = []
    for lang in (SRC, TGT):
        with open(Path(text_dir) / f"{split}.{lang}", encoding="utf-8") as f:
            pair.append([from_symbols(line) for line in f])
    return pair[0], pair[1]


def main(argv: Optional[List[str]] = None) -> SpellingStats:
    parser = argparse.ArgumentParser(
        prog="python -m fairseq_searnn.data.spelling", description=__doc__.split("\n")[0])
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="any English text file, one sentence per line")
    src.add_argument("--stdlib", action="store_true",
                     help="use the docstrings of Python's standard library (offline)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--p", type=float, default=0.3, help="substitution probability")
    parser.add_argument("--max-len", type=int, default=10,
                        help="T: target symbols, end marker included (10 or 30)")
    parser.add_argument("--copies", type=int, default=10,
                        help="noisy copies of the training set (epoch e uses copy (e-1) %% n)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--valid", type=int, default=2000, help="valid sentences")
    parser.add_argument("--test", type=int, default=2000, help="test sentences")
    parser.add_argument("--max-lines", type=int, default=0,
                        help="use only the first N non-empty lines (0: all)")
    args = parser.parse_args(argv)
    if args.stdlib:
        from fairseq_searnn.data.demo_corpus import stdlib_docstring_lines  # imports this module

        lines = stdlib_docstring_lines()
    else:
        lines = read_lines(args.text)
    if args.max_lines:
        lines = lines[: args.max_lines]
    stats = build(lines, args.out, p=args.p, max_len=args.max_len, copies=args.copies,
                  seed=args.seed, n_valid=args.valid, n_test=args.test)
    rates = ", ".join(f"{k} {v:.4f}" for k, v in stats.changed_rate.items()
                      if not k[-1].isdigit())
    print(f"{stats.corpus_lines} lines -> " + ", ".join(
        f"{k} {v}" for k, v in stats.sentences.items() if not k[-1].isdigit())
        + f"; {args.copies} noisy train copies; p = {args.p}, changed rate: {rates}")
    print(f"fairseq data argument (written to {args.out}/data-path.txt):\n{stats.data}")
    Path(args.out, "data-path.txt").write_text(stats.data + "\n")
    return stats


if __name__ == "__main__":
    main()
