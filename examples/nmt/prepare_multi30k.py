"""Multi30k de-en: joint sentencepiece BPE on the training split, encode, binarise (joined
dictionary). Writes OUT/bin (fairseq data), OUT/ref (raw references), OUT/spm.model.

    python examples/nmt/prepare_multi30k.py --raw-dir ../shared/data/multi30k/raw \
        --out data/multi30k [--vocab 8000] [--test-prefix test2016]

``train`` and ``val`` become fairseq's ``train`` and ``valid``; the test set becomes ``test``:
``RAW/PREFIX.{de,en}`` for ``--test-prefix PREFIX``, else the first of ``test``, ``test2016``
(the layout of ``../shared/data/multi30k/raw``) and ``test_2016_flickr`` (the Multi30k
repository's name) found in the raw directory; none found, no ``test`` split.
"""

import argparse

from fairseq_searnn.data.multi30k import TEST_PREFIXES, prepare_multi30k
from fairseq_searnn.data.nmt_prepare import prep_info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--raw-dir", required=True,
                   help="directory with train.{de,en}, val.{de,en} and a test set")
    p.add_argument("--out", required=True)
    p.add_argument("--vocab", type=int, default=8000, help="joint sentencepiece vocabulary")
    p.add_argument("--src", default="de")
    p.add_argument("--tgt", default="en")
    p.add_argument("--max-lines", type=int, default=0, help="first N lines per split (tests)")
    p.add_argument("--test-prefix", default=None,
                   help="the test set's files RAW/PREFIX.{de,en} (default: the first of "
                        f"{', '.join(TEST_PREFIXES)} present)")
    args = p.parse_args(argv)
    out = prepare_multi30k(args.raw_dir, args.out, args.vocab, args.src, args.tgt,
                           args.max_lines, args.test_prefix)
    test = prep_info(out)["test_prefix"]
    print(f"prepared {out}: fairseq data {out / 'bin'}; test split: "
          + (f"{args.raw_dir}/{test}.*" if test else "none"))
    return out


if __name__ == "__main__":
    main()
