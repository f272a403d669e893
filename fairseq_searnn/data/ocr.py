"""The OCR data of Taskar et al. (2003), ``letter.data``: parsing, folds, writing, scoring.

Format (gzip or plain text, detected from the content): one letter per line, tab-separated,
134 columns ``id letter next_id word_id position fold`` then 128 binary pixels (16 rows x 8
columns, row-major). A word ends at the line whose ``next_id`` is ``-1``. The real file holds
52,152 letters in 6,877 words, 10 folds, 26 lower-case letters, word lengths 3-14.

Plain Python / torch; no fairseq. Used by the ``ocr`` task and the OCR example.
"""

import gzip
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

import torch

PIXELS = 128  # 16 x 8 binary image per letter
ALPHABET = "abcdefghijklmnopqrstuvwxyz"
_COLUMNS = 6 + PIXELS


@dataclass
class OcrWord:
    """One word: ``letters`` (its characters), ``pixels: uint8 [L, 128]``, ``fold``."""

    letters: str
    pixels: torch.Tensor
    fold: int


def _open_text(path):
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt") if gzipped else open(path)


def read_letter_data(path) -> List[OcrWord]:
    """All words of a ``letter.data`` file (``.gz`` or plain), in file order.

    Raises ``ValueError`` (with the line number) on a malformed line, a non-binary pixel,
    a fold or word id changing inside a word, or a last word without ``next_id == -1``.
    """
    with _open_text(path) as f:
        lines = f.read().splitlines()
    heads, pixels = [], []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split("\t", 6)
        if len(fields) != 7 or len(fields[6]) != 2 * PIXELS - 1 or len(fields[1]) != 1:
            raise ValueError(f"{path}:{n}: expected {_COLUMNS} tab-separated columns "
                             "(id, one-character letter, next_id, word_id, position, fold, "
                             f"{PIXELS} pixels)")
        heads.append((n, fields[:6]))
        pixels.append(fields[6])
    # every pixel is one character followed by a tab: check them all at once
    buf = torch.frombuffer(bytearray("\t".join(pixels) + "\t", "latin-1"), dtype=torch.uint8)
    buf = buf.view(-1, 2)
    bad = (buf[:, 0] - ord("0")).gt(1) | buf[:, 1].ne(ord("\t"))
    if bool(bad.any()):
        line = heads[int(bad.nonzero()[0, 0]) // PIXELS][0]
        raise ValueError(f"{path}:{line}: pixels must be 0 or 1, tab-separated")
    values = (buf[:, 0] - ord("0")).view(-1, PIXELS)
    words: List[OcrWord] = []
    start, key = 0, None
    for i, (n, (_, _, next_id, word_id, _, fold)) in enumerate(heads):
        try:
            here = (int(fold), word_id)
            last = int(next_id) == -1
        except ValueError:
            raise ValueError(f"{path}:{n}: next_id and fold must be integers") from None
        if i > start and here != key:
            raise ValueError(f"{path}:{n}: fold or word id changes inside a word")
        key = here
        if last:
            text = "".join(h[1][1] for h in heads[start:i + 1])
            words.append(OcrWord(text, values[start:i + 1].clone(), here[0]))
            start = i + 1
    if start != len(heads):
        raise ValueError(f"{path}: the last word does not end (no next_id == -1)")
    return words


def write_letter_data(path, words: Iterable[OcrWord]) -> Path:
    """Write ``words`` in the ``letter.data`` format (gzip when ``path`` ends in ``.gz``)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    letter_id = 0
    with opener(path, "wt") as f:
        for word_id, word in enumerate(words, 1):
            for pos, (letter, pix) in enumerate(zip(word.letters, word.pixels.tolist()), 1):
                letter_id += 1
                nxt = -1 if pos == len(word.letters) else letter_id + 1
                head = [letter_id, letter, nxt, word_id, pos, word.fold]
                f.write("\t".join(map(str, head + [int(p) for p in pix])) + "\n")
    return path


def split_words(words: Sequence[OcrWord], test_fold: int, valid_fold: int) -> Dict[str, list]:
    """``{"train", "valid", "test"}`` word lists: ``test`` = fold ``test_fold``, ``valid`` =
    fold ``valid_fold`` (empty when ``valid_fold < 0``), ``train`` = every other fold."""
    if valid_fold == test_fold:
        raise ValueError(f"the validation fold must differ from the test fold ({test_fold})")
    out: Dict[str, list] = {"train": [], "valid": [], "test": []}
    for w in words:
        split = "test" if w.fold == test_fold else "valid" if w.fold == valid_fold else "train"
        out[split].append(w)
    return out


def hamming_errors(hyp: Sequence, ref: Sequence) -> int:
    """Positions ``i < max(|hyp|, |ref|)`` where ``hyp[i] != ref[i]`` (past an end: error).
    The paper's OCR metric is ``100 * sum(errors) / sum(|ref|)`` over the test fold."""
    return sum(a != b for a, b in zip(hyp, ref)) + abs(len(hyp) - len(ref))


def synthetic_words(n_words: int, seed: int = 0, folds: int = 10, letters: str = ALPHABET[:8],
                    min_len: int = 3, max_len: int = 8, noise: float = 0.05) -> List[OcrWord]:
    """A learnable toy corpus in the real format: each letter has a fixed random 16x8 template
    (from ``seed``), flipped pixel by pixel with probability ``noise``; folds cycle."""
    rng = random.Random(seed)
    templates = {c: [rng.random() < 0.3 for _ in range(PIXELS)] for c in letters}
    words = []
    for i in range(n_words):
        text = "".join(rng.choice(letters) for _ in range(rng.randint(min_len, max_len)))
        pix = [[int(p != (rng.random() < noise)) for p in templates[c]] for c in text]
        words.append(OcrWord(text, torch.tensor(pix, dtype=torch.uint8), i % folds))
    return words
