"""Multi30k de-en: joint sentencepiece BPE on the training split, encode, binarise (joined
dictionary). Writes OUT/bin (fairseq data), OUT/ref (raw references), OUT/spm.model.

    python examples/nmt/prepare_multi30k.py --raw-dir ../shared/data/multi30k/raw \
        --out data/multi30k [--vocab 8000]
"""

import argparse

from fairseq_searnn.data.multi30k import prepare_multi30k


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--raw-dir", required=True,
                   help="directory with train.{de,en} and val.{de,en} (optionally test.*)")
    p.add_argument("--out", required=True)
    p.add_argument("--vocab", type=int, default=8000, help="joint sentencepiece vocabulary")
    p.add_argument("--src", default="de")
    p.add_argument("--tgt", default="en")
    p.add_argument("--max-lines", type=int, default=0, help="first N lines per split (tests)")
    args = p.parse_args(argv)
    out = prepare_multi30k(args.raw_dir, args.out, args.vocab, args.src, args.tgt,
                           args.max_lines)
    print(f"prepared {out}: fairseq data {out / 'bin'}")
    return out


if __name__ == "__main__":
    main()
