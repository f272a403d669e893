"""Exact edit error of a spelling checkpoint: greedy decoding (fairseq-generate, beam 1) of a
split, then total edit distance / total reference characters x 100.

    python examples/spelling/evaluate.py --data DATA/bin --checkpoint SAVE/checkpoint_best.pt \
        [--split test] [--beam 1]
    # any English text of yours (one sentence per line): clipped to --max-len symbols, noise
    # drawn with a fixed --seed at --p, as the training data
    python examples/spelling/evaluate.py --text my.txt --checkpoint SAVE/checkpoint_best.pt \
        [--p 0.3] [--max-len 10] [--seed 1]
"""

import argparse
import random
import tempfile
from pathlib import Path

from fairseq_searnn import recipes
from fairseq_searnn.cli import user_dir
from fairseq_searnn.data import spelling


def generate(data, checkpoint, split, beam, results_dir, batch_size=500):
    """fairseq-generate (in-process) -> (hypotheses, references) as character strings.
    ``--required-batch-size-multiple 1``: fairseq's default (8) drops the last sentences of a
    split whose size is not a multiple of 8 (fairseq issue #5036)."""
    argv = [str(data), "--user-dir", user_dir(), "--path", str(checkpoint),
            "--task", "translation", "--source-lang", spelling.SRC,
            "--target-lang", spelling.TGT, "--gen-subset", split, "--beam", str(beam),
            "--batch-size", str(batch_size), "--required-batch-size-multiple", "1",
            "--max-len-a", "1", "--max-len-b", "5",
            "--cpu", "--results-path", str(results_dir)]
    hyps, refs = recipes.generate_pairs(recipes.generate_in_process(argv))
    return [spelling.from_symbols(h) for h in hyps], [spelling.from_symbols(r) for r in refs]


def binarize_text(path, out_dir, p, max_len, seed):
    """A ``test`` split of the spelling task from a user's text file in ``out_dir`` (noise
    drawn with ``seed``, as :func:`spelling.build` draws it): returns the binarised directory
    and the number of sentences."""
    clean = [t for t in (spelling.clip(line, max_len) for line in spelling.read_lines(path)) if t]
    if not clean:
        raise SystemExit(f"{path}: no text line")
    rng = random.Random(f"noise-{seed}-text")
    noisy = [spelling.corrupt(t, p, rng) for t in clean]
    text = Path(out_dir) / "text"
    text.mkdir(parents=True)
    for lang, lines in ((spelling.SRC, noisy), (spelling.TGT, clean)):
        (text / f"test.{lang}").write_text("".join(spelling.to_symbols(t) + "\n" for t in lines))
    spelling.write_dictionary(text / "dict.txt")
    bindir = Path(out_dir) / "bin"
    spelling.binarize(text, bindir, text / "dict.txt", {"testpref": "test"})
    return bindir, len(clean)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="binarised directory (DATA/bin)")
    source.add_argument("--text", help="any English text file, one sentence per line")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", default="test", help="--data: the split to score")
    p.add_argument("--beam", type=int, default=1)
    p.add_argument("--p", type=float, default=0.3, help="--text: noise probability")
    p.add_argument("--max-len", type=int, default=10,
                   help="--text: symbols per sentence, end marker included")
    p.add_argument("--seed", type=int, default=1, help="--text: seed of the noise")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data, split = args.data, args.split
        if args.text:
            data, _ = binarize_text(args.text, Path(tmp) / "data", args.p, args.max_len,
                                    args.seed)
            split = "test"
        hyps, refs = generate(data, args.checkpoint, split, args.beam, Path(tmp) / "gen")
    err = spelling.edit_error(hyps, refs)
    name = args.text or split
    print(f"{name}: {len(refs)} sentences, {sum(map(len, refs))} reference characters, "
          f"edit error {err:.2f}% (beam {args.beam})")
    return err


if __name__ == "__main__":
    main()
