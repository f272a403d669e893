"""IWSLT14 de-en as fairseq's prepare-iwslt14.sh: the official de-en.tgz (downloaded from
fairseq's data mirror when no --source is given, or a local archive / extracted directory),
Moses tokenisation + cleaning + lowercasing (sacremoses), valid = every 23rd training pair,
test = dev2010 + dev2012 + tst2010-2012, joint BPE, binarised with a joined dictionary.

    python examples/nmt/prepare_iwslt14.py --out data/iwslt14 [--source de-en.tgz|de-en/] \
        [--bpe sentencepiece --vocab 10000 | --bpe subword-nmt --bpe-codes CODES]
"""

import argparse

from fairseq_searnn.data.iwslt14 import IWSLT14_URL, prepare_iwslt14


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--source", default=None,
                   help=f"de-en.tgz or its extracted de-en/ directory (default: download "
                        f"{IWSLT14_URL})")
    p.add_argument("--out", required=True)
    p.add_argument("--bpe", choices=["sentencepiece", "subword-nmt"], default="sentencepiece")
    p.add_argument("--vocab", type=int, default=10000, help="sentencepiece vocabulary")
    p.add_argument("--bpe-codes", default=None,
                   help="subword-nmt codes, e.g. ../shared/data/iwslt14/bpe10k/code "
                        "(fairseq's standard 10k joint BPE)")
    p.add_argument("--max-lines", type=int, default=0, help="first N training lines (tests)")
    args = p.parse_args(argv)
    out = prepare_iwslt14(args.source, args.out, args.bpe, args.vocab, args.bpe_codes,
                          args.max_lines)
    print(f"prepared {out}: fairseq data {out / 'bin'}")
    return out


if __name__ == "__main__":
    main()
