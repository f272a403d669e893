"""BLEU of a translation checkpoint: fairseq-generate (greedy: --beam 1, or beam search),
subword units removed, Moses detokenisation where the pipeline tokenised, then sacrebleu
against the raw references of the prepared directory (lowercased for IWSLT14, whose
outputs are lowercase). IWSLT14 also gets the tokenised BLEU fairseq reports.

    python examples/nmt/evaluate.py --prep data/multi30k --checkpoint SAVE/checkpoint_best.pt \
        [--split valid] [--beam 1] [--out hyps.txt]

Any raw parallel text of one's own (one sentence per line, untokenised) is scored the same
way: ``--src-file test.de --ref-file test.en`` encodes the source with the prepared
directory's pipeline (its sentencepiece model or Moses + BPE codes) and dictionary, in a
temporary directory, instead of a prepared ``--split``.
"""

import argparse
import json
import tempfile
from pathlib import Path

from fairseq_searnn.data import nmt_eval
from fairseq_searnn.data.nmt_prepare import add_split, read_lines, scratch_copy, write_lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--prep", required=True, help="directory made by a prepare_*.py script")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", default="valid", help="a split of the prepared directory")
    p.add_argument("--src-file", help="raw source sentences of one's own (with --ref-file)")
    p.add_argument("--ref-file", help="their raw reference translations")
    p.add_argument("--beam", type=int, default=1)
    p.add_argument("--lenpen", type=float, default=1.0)
    p.add_argument("--temperature", type=float, default=1.0,
                   help="fairseq-generate --temperature: logits / T before the softmax "
                        "(greedy is unchanged; T < 1 sharpens beam scores)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-len-a", type=float, default=0.0,
                   help="hypotheses hold at most a * source length + b tokens")
    p.add_argument("--max-len-b", type=int, default=200)
    p.add_argument("--out", default=None, help="write the detokenised hypotheses here")
    args = p.parse_args(argv)
    if (args.src_file is None) != (args.ref_file is None):
        p.error("--src-file and --ref-file go together")
    with tempfile.TemporaryDirectory() as tmp:
        prep, split = args.prep, args.split
        if args.src_file:
            prep, split = scratch_copy(args.prep, Path(tmp) / "prep"), "own"
            src, ref = read_lines(args.src_file), read_lines(args.ref_file)
            if len(src) != len(ref) or not src:
                p.error(f"--src-file has {len(src)} lines, --ref-file {len(ref)}: "
                        "one sentence per line, the same number, at least one")
            add_split(prep, split, src, ref)
        result, hyps = nmt_eval.score_checkpoint(
            prep, args.checkpoint, split, beam=args.beam, lenpen=args.lenpen,
            temperature=args.temperature, max_len_a=args.max_len_a, max_len_b=args.max_len_b,
            batch_size=args.batch_size)
        if args.src_file:  # no tokenised references of one's own text
            result = dict(result, split=args.src_file)
            result.pop("tokenized_bleu", None)
    if args.out:
        write_lines(args.out, hyps)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
