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

from fairseq_searnn import recipes
from fairseq_searnn.cli import user_dir
from fairseq_searnn.data import nmt_eval
from fairseq_searnn.data.nmt_prepare import add_split, read_lines, scratch_copy, write_lines


def generate(prep, checkpoint, split, beam, results_dir, batch_size=64, lenpen=1.0,
             max_len_a=0.0, max_len_b=200, temperature=1.0):
    """Subword-level hypotheses of ``split`` in sentence order (fairseq-generate, in-process).
    ``--required-batch-size-multiple 1``: with fairseq's default (8), batch_by_size drops the
    last sentences of a split whose size is not a multiple of 8 (fairseq issue #5036)."""
    info = nmt_eval.prep_info(prep)
    argv = [str(Path(prep) / "bin"), "--user-dir", user_dir(), "--path", str(checkpoint),
            "--task", "translation", "--source-lang", info["src"],
            "--target-lang", info["tgt"], "--gen-subset", split, "--beam", str(beam),
            "--lenpen", str(lenpen), "--temperature", str(temperature),
            "--max-len-a", str(max_len_a),
            "--max-len-b", str(max_len_b), "--batch-size", str(batch_size),
            "--required-batch-size-multiple", "1", "--cpu", "--results-path", str(results_dir)]
    return recipes.generate_hypotheses(recipes.generate_in_process(argv))


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
        pieces = generate(prep, args.checkpoint, split, args.beam, Path(tmp) / "gen",
                          args.batch_size, args.lenpen, args.max_len_a, args.max_len_b,
                          args.temperature)
        score, hyps = nmt_eval.bleu(prep, pieces, split)
        result = {"split": args.src_file or split, "beam": args.beam,
                  "temperature": args.temperature, "sentences": len(hyps),
                  "sacrebleu": round(score.score, 2), "detail": str(score)}
        if nmt_eval.prep_info(prep).get("moses") and not args.src_file:
            result["tokenized_bleu"] = round(
                nmt_eval.tokenized_bleu(prep, pieces, split).score, 2)
    if args.out:
        write_lines(args.out, hyps)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
