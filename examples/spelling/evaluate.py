"""Exact edit error of a spelling checkpoint: greedy decoding (fairseq-generate, beam 1) of a
split, then total edit distance / total reference characters x 100.

    python examples/spelling/evaluate.py --data DATA/bin --checkpoint SAVE/checkpoint_best.pt \
        [--split test] [--beam 1]
"""

import argparse
import contextlib
import io
import tempfile
from pathlib import Path

from fairseq_searnn.cli import user_dir
from fairseq_searnn.data import spelling


def generate(data, checkpoint, split, beam, results_dir, batch_size=500):
    """fairseq-generate (in-process) -> (hypotheses, references) as character strings.
    ``--required-batch-size-multiple 1``: fairseq's default (8) drops the last sentences of a
    split whose size is not a multiple of 8 (fairseq issue #5036)."""
    from fairseq import options
    from fairseq_cli import generate as gen

    argv = [str(data), "--user-dir", user_dir(), "--path", str(checkpoint),
            "--task", "translation", "--source-lang", spelling.SRC,
            "--target-lang", spelling.TGT, "--gen-subset", split, "--beam", str(beam),
            "--batch-size", str(batch_size), "--required-batch-size-multiple", "1",
            "--max-len-a", "1", "--max-len-b", "5",
            "--cpu", "--results-path", str(results_dir)]
    args = options.parse_args_and_arch(options.get_generation_parser(), argv)
    with contextlib.redirect_stdout(io.StringIO()):
        gen.main(args)
    hyps, refs = {}, {}
    for line in (Path(results_dir) / f"generate-{split}.txt").read_text().splitlines():
        kind, _, rest = line.partition("-")
        if kind in ("H", "T"):
            fields = rest.split("\t")
            text = fields[-1] if len(fields) > (2 if kind == "H" else 1) else ""
            (hyps if kind == "H" else refs)[int(fields[0])] = spelling.from_symbols(text)
    ids = sorted(refs)
    return [hyps[i] for i in ids], [refs[i] for i in ids]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="binarised directory (DATA/bin)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--beam", type=int, default=1)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        hyps, refs = generate(args.data, args.checkpoint, args.split, args.beam, tmp)
    err = spelling.edit_error(hyps, refs)
    print(f"{args.split}: {len(refs)} sentences, {sum(map(len, refs))} reference characters, "
          f"edit error {err:.2f}% (beam {args.beam})")
    return err


if __name__ == "__main__":
    main()
