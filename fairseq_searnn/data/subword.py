"""Subword units of the translation pipelines: joint sentencepiece BPE models, and subword-nmt
merge codes applied as subword-nmt's ``apply_bpe.py`` does (:class:`SubwordNmtCodes`);
:func:`remove_subwords` undoes either."""

import json
import re
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple


def train_sentencepiece(files: Sequence, model_prefix, vocab_size: int,
                        max_sentences: int = 2_000_000) -> Path:
    """A joint BPE sentencepiece model over ``files`` (full character coverage)."""
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        input=",".join(str(f) for f in files), model_prefix=str(model_prefix),
        vocab_size=vocab_size, model_type="bpe", character_coverage=1.0,
        input_sentence_size=max_sentences, shuffle_input_sentence=True,
        hard_vocab_limit=False, minloglevel=2)
    return Path(f"{model_prefix}.model")


def spm_processor(model):
    """The sentencepiece processor of a ``.model`` file."""
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(model))


def spm_encode(model, lines: Iterable[str]) -> List[str]:
    """Each line as space-separated sentencepiece pieces."""
    sp = spm_processor(model)
    return [" ".join(sp.encode(line, out_type=str)) for line in lines]


class SubwordNmtCodes:
    """Applies subword-nmt BPE merge codes (``learn_bpe.py`` output, version 0.1 or 0.2) the
    way ``apply_bpe.py -c CODES`` does without vocabulary / glossaries / dropout: words split
    on single spaces, merges applied by rank, ``@@`` continuation markers."""

    def __init__(self, path, separator: str = "@@"):
        with open(path, encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f]
        self.version = (0, 1)
        if lines and lines[0].startswith("#version:"):
            self.version = tuple(int(x) for x in re.findall(r"\d+", lines[0])[:2])
            lines = lines[1:]
        codes = [tuple(line.strip("\r\n ").split(" ")) for line in lines if line.strip()]
        for i, code in enumerate(codes):
            if len(code) != 2:
                raise ValueError(f"{path}: line {i + 2} is not a merge pair: {code!r}")
        self.ranks = {code: i for i, code in reversed(list(enumerate(codes)))}
        self.separator = separator
        self.cache: Dict[str, Tuple[str, ...]] = {}

    def encode_word(self, word: str) -> Tuple[str, ...]:
        if word in self.cache:
            return self.cache[word]
        if len(word) == 1:
            return (word,)
        if self.version == (0, 1):
            parts = list(word) + ["</w>"]
        else:
            parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            pairs = [(self.ranks[p], i, p) for i, p in enumerate(zip(parts, parts[1:]))
                     if p in self.ranks]
            if not pairs:
                break
            best = min(pairs)[2]
            merged, i = [], 0
            for _, j, p in pairs:
                if p != best or j < i:
                    continue
                merged.extend(parts[i:j])
                merged.append(best[0] + best[1])
                i = j + 2
            merged.extend(parts[i:])
            parts = merged
        if parts[-1] == "</w>":
            parts = parts[:-1]
        elif parts[-1].endswith("</w>"):
            parts[-1] = parts[-1][: -len("</w>")]
        self.cache[word] = out = tuple(parts)
        return out

    def segment(self, line: str) -> str:
        out = []
        for word in line.strip("\r\n ").split(" "):
            if not word:
                continue
            parts = self.encode_word(word)
            out.extend(p + self.separator for p in parts[:-1])
            out.append(parts[-1])
        return " ".join(out)


def remove_subwords(prep_dir, lines: Iterable[str]) -> List[str]:
    """Subword-level lines (space-separated units) of a prepared directory -> words: its
    sentencepiece model decodes them, or subword-nmt's ``@@`` continuation markers go."""
    info = json.loads((Path(prep_dir) / "prep.json").read_text())
    if info["bpe"] == "sentencepiece":
        sp = spm_processor(Path(prep_dir) / info["spm_model"])
        return [sp.decode_pieces(x.split()) for x in lines]
    return [(x + " ").replace("@@ ", "").rstrip() for x in lines]
