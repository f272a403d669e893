#!/usr/bin/env python3
"""Do SeaRNN models lose accuracy under beam search, and does ``--temperature`` recover it?

The official SeaRNN code's logs show its NMT models losing 1.5-2.4 BLEU under beam 10 unless
the logits are rescaled. fairseq-generate's ``--temperature T`` divides the logits by ``T``
before the softmax (greedy decoding is unchanged; beam scores are sharpened for ``T < 1``).
This script measures it on a toy translation task (reverse the sentence, map letters to
upper-case tokens, ``a``/``b`` become two tokens; the test fixture's task):

    python examples/beam_rescaling/run.py --out runs/beam_rescaling

1. writes the corpus and binarises it (``fairseq-preprocess``);
2. trains the same small LSTM with token cross-entropy (``mle``) and SeaRNN's sampled KL
   (``skl``: learned roll-in, mixed roll-out, sentence BLEU+1 cost, K sampled tokens, alpha)
   with ``fairseq-train --task searnn_translation``, the same number of updates;
3. decodes the test set with ``fairseq-generate`` at every beam size and temperature and
   scores corpus BLEU (sacrebleu, default tokenizer) and the edit error (total Levenshtein
   errors / total reference tokens x 100, :mod:`fairseq_searnn.validation`).

Every command is printed before it runs; ``OUT/results.json`` and ``OUT/results.md`` hold the
numbers. Arguments after ``--`` go to both fairseq-train runs.
"""

import argparse
import json
import random
import shutil
import time
from pathlib import Path

from fairseq_searnn import recipes
from fairseq_searnn.cli import user_dir

ALPHABET = [chr(ord("a") + i) for i in range(12)]


def target_of(words):
    out = []
    for w in reversed(words):
        out.append(w.upper())
        if w in ("a", "b"):
            out.append(w.upper() * 2)
    return out


def write_corpus(directory, sizes, seed, max_len):
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        src, tgt = [], []
        for _ in range(n):
            words = [rng.choice(ALPHABET) for _ in range(rng.randint(1, max_len))]
            src.append(" ".join(words))
            tgt.append(" ".join(target_of(words)))
        (directory / f"{split}.src").write_text("\n".join(src) + "\n")
        (directory / f"{split}.tgt").write_text("\n".join(tgt) + "\n")


def criterion_args(method, args):
    """``mle`` or ``skl`` (any SeaRNN loss): learned roll-in, mixed roll-out, sentence BLEU+1
    cost, roll-outs of at most twice the source length + 5 tokens."""
    return recipes.criterion_args(method, "bleu", tokens=args.tokens, alpha=args.alpha,
                                  cells=args.cells, max_len=(2, 5))


def train(method, args, data, extra):
    save = args.out / f"ck-{method}"
    start = time.time()
    recipes.run_logged([
        recipes.tool("fairseq-train"), data, "--user-dir", user_dir(),
        "--task", "searnn_translation", "--source-lang", "src", "--target-lang", "tgt",
        "--arch", "lstm", "--encoder-embed-dim", "64", "--encoder-hidden-size", "64",
        "--decoder-embed-dim", "64", "--decoder-hidden-size", "64",
        "--decoder-out-embed-dim", "64", "--dropout", "0",
        "--optimizer", "adam", "--lr", str(args.lr), "--max-tokens", str(args.max_tokens),
        "--max-update", str(args.updates), "--seed", str(args.seed), "--cpu",
        "--num-workers", "0", "--disable-validation", "--no-epoch-checkpoints",
        "--save-dir", save, "--log-format", "simple", "--log-interval", "50",
        *criterion_args(method, args), *extra], args.out / f"train-{method}.log")
    return save / "checkpoint_last.pt", time.time() - start


def decode(checkpoint, data, beam, temperature, args):
    """``(hypotheses, references)`` of the test set, fairseq-generate's output read back."""
    out = recipes.run_output([
        recipes.tool("fairseq-generate"), data, "--user-dir", user_dir(),
        "--task", "searnn_translation", "--source-lang", "src", "--target-lang", "tgt",
        "--path", checkpoint, "--gen-subset", "test", "--beam", str(beam),
        "--temperature", str(temperature), "--max-len-a", "2", "--max-len-b", "5",
        "--batch-size", "128", "--cpu", "--num-workers", "0"])
    return recipes.generate_pairs(out)


def score(hyps, refs):
    import sacrebleu

    from fairseq_searnn import validation

    edit = validation.corpus_score("edit", validation.sentence_stats("edit", hyps, refs))
    return {"bleu": round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2),
            "edit": round(edit, 2),
            "len_ratio": round(sum(len(h.split()) for h in hyps)
                               / max(sum(len(r.split()) for r in refs), 1), 3)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/beam_rescaling"))
    parser.add_argument("--methods", default="mle,skl")
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--max-tokens", type=int, default=500)
    parser.add_argument("--tokens", type=int, default=3, help="skl: K sampled tokens per cell")
    parser.add_argument("--cells", type=int, default=0, help="skl: cells per sentence (0: all)")
    parser.add_argument("--alpha", type=float, default=20.0, help="skl: KL alpha")
    parser.add_argument("--beams", default="1,5,10")
    parser.add_argument("--temperatures", default="1,0.5,0.25")
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args, extra = parser.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    args.out.mkdir(parents=True, exist_ok=True)

    text, data = args.out / "text", args.out / "bin"
    write_corpus(text, {"train": args.train_size, "valid": 100, "test": args.test_size},
                 args.seed, max_len=7)
    shutil.rmtree(data, ignore_errors=True)
    recipes.run_output([recipes.tool("fairseq-preprocess"), "--source-lang", "src",
                        "--target-lang", "tgt", "--trainpref", text / "train",
                        "--validpref", text / "valid", "--testpref", text / "test",
                        "--destdir", data, "--workers", "1"])

    results = {"args": {k: str(v) for k, v in vars(args).items()}, "extra": extra, "runs": []}
    rows = ["| method | beam | temperature | BLEU | edit error % | hyp/ref length |",
            "|---|---|---|---|---|---|"]
    for method in args.methods.split(","):
        checkpoint, seconds = train(method, args, data, extra)
        results[f"train_seconds_{method}"] = round(seconds, 1)
        for beam in map(int, args.beams.split(",")):
            temps = [1.0] if beam == 1 else list(map(float, args.temperatures.split(",")))
            for temperature in temps:
                s = score(*decode(checkpoint, data, beam, temperature, args))
                results["runs"].append({"method": method, "beam": beam,
                                        "temperature": temperature, **s})
                rows.append(f"| {method} | {beam} | {temperature:g} | {s['bleu']:.2f} | "
                            f"{s['edit']:.2f} | {s['len_ratio']:.3f} |")
                print(rows[-1], flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "results.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
