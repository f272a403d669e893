#!/usr/bin/env python3
"""OCR recipe of SeaRNN (Leblond et al., ICLR 2018, Section 4): train, decode the test fold
greedily, report the Hamming error (total errors / total characters x 100).

    python examples/ocr/run.py kl --data ../shared/data/ocr/letter.data.gz --out runs/ocr-kl

Methods: ``mle`` (cross-entropy), ``ll`` / ``kl`` (SeaRNN, every token of every cell; learned
roll-in and mixed roll-out unless ``--rollin`` / ``--rollout`` say otherwise), ``sll`` / ``skl``
(the same with 5 sampled tokens per cell). Every
run uses the paper's setup: GRU 128, SGD with constant step 0.5, batches of 64 words, Hamming
cost, fixed-length outputs (one letter per image: roll-ins, roll-outs and greedy decoding
emit exactly as many letters as the word has, as the authors' code). Stage ``train`` runs
``fairseq-train`` (best checkpoint by the validation fold's greedy Hamming error; with
``--valid-fold -1`` every non-test fold trains, as in the paper, and the last checkpoint is
tested), stage ``test`` decodes the test fold greedily (the task's fixed-length decoding, in
process; with ``--free-length``, ``fairseq-generate --beam 1``) and scores it. Each command is
printed before it runs; ``OUT/result.json`` holds the numbers and the wall times. Arguments
after ``--`` go to fairseq-train.
"""

import argparse
import json
import time
from pathlib import Path

from fairseq_searnn import recipes
from fairseq_searnn.cli import user_dir
from fairseq_searnn.data.ocr import hamming_errors
from fairseq_searnn.recipes import METHODS


def task_args(args):
    out = ["--user-dir", user_dir(), "--task", "ocr", "--ocr-data", str(args.data),
           "--ocr-test-fold", str(args.test_fold), "--ocr-valid-fold", str(args.valid_fold),
           "--cpu"]
    if args.free_length:
        out += ["--ocr-free-length", "--ocr-eval-max-len-b", str(args.max_len_b)]
    return out


def criterion_args(args):
    """The method's criterion options: Hamming cost, the roll-out mixing the reference and
    the learned policy half and half; with ``--free-length``, roll-outs stop at the word's
    letters + ``--max-len-b`` (else exactly the word's letters, the task's fixed length)."""
    return recipes.criterion_args(
        args.method, "hamming", args.rollin, args.rollout, ref_prob=0.5, alpha=args.alpha,
        tokens=args.tokens, sampling=args.sampling,
        max_len=(1, args.max_len_b) if args.free_length else None)


def train_argv(args, extra=()):
    """fairseq-train arguments (without the program name)."""
    if args.valid_fold < 0:  # every non-test fold trains (as in the paper): no validation
        validation = ["--disable-validation"]
    else:
        validation = ["--ocr-eval-hamming", "--best-checkpoint-metric", "hamming"]
    return [
        *task_args(args), *validation, "--arch", "ocr_gru",
        "--ocr-hidden-size", str(args.hidden_size), *criterion_args(args),
        "--optimizer", "sgd", "--lr", str(args.lr), "--lr-scheduler", "fixed",
        "--batch-size", str(args.batch_size), "--max-epoch", str(args.max_epoch),
        "--seed", str(args.seed), "--num-workers", "0",
        "--save-dir", str(args.out), "--no-epoch-checkpoints",
        "--log-format", "simple", "--log-interval", "20", "--no-progress-bar", *extra,
    ]


def generate_argv(args, checkpoint):
    """fairseq-generate arguments: greedy decoding of the test fold."""
    return [*task_args(args), "--path", str(checkpoint), "--gen-subset", "test", "--beam", "1",
            "--max-len-a", "1", "--max-len-b", str(args.max_len_b), "--batch-size", "64"]


def decode_test(args, checkpoint, out_file):
    """Greedy fixed-length decoding of the test fold (the task's validation decoding):
    ``(errors, characters, words)``; ``out_file`` gets ``T-``/``H-`` lines like generate's."""
    import torch
    from fairseq import checkpoint_utils

    import fairseq_searnn  # noqa: F401  (registers the task and model)

    overrides = {"ocr_data": str(args.data), "ocr_test_fold": args.test_fold,
                 "ocr_valid_fold": args.valid_fold}
    models, _, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(checkpoint)], arg_overrides=overrides)
    model = models[0].eval()
    task.load_dataset("test")
    itr = task.get_batch_iterator(dataset=task.dataset("test"), max_sentences=64)
    d, errors, chars, lines = task.target_dictionary, 0, 0, []
    with torch.no_grad():
        for sample in itr.next_epoch_itr(shuffle=False):
            hyp = task.decode(model, sample)
            for i, sid in enumerate(sample["id"].tolist()):
                ref, out = sample["target"][i], hyp[i]
                lines.append(f"T-{sid}\t{d.string(ref[ref.ne(d.pad())])}")
                lines.append(f"H-{sid}\t0\t{d.string(out[out.ne(d.pad())])}")
            e, c = task.hamming(model, sample)
            errors, chars = errors + e, chars + c
    Path(out_file).write_text("\n".join(lines) + "\n")
    return errors, chars, len(lines) // 2


def checkpoint_name(args):
    """The checkpoint the test stage decodes: best on the validation fold, else the last."""
    return "checkpoint_last.pt" if args.valid_fold < 0 else "checkpoint_best.pt"


def hamming_from_generate(text):
    """``(errors, characters, words)`` of fairseq-generate output (``T-``/``H-`` lines)."""
    hyps, refs = recipes.generate_pairs(text)
    if not refs:
        raise ValueError("generate output: 0 references, 0 hypotheses")
    errors = sum(hamming_errors(h.split(), r.split()) for h, r in zip(hyps, refs))
    return errors, sum(len(r.split()) for r in refs), len(refs)


def parse_args(argv=None):
    from fairseq_searnn.search import ROLLINS, ROLLOUTS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("method", choices=METHODS, help="training criterion (see above)")
    p.add_argument("--data", required=True, help="letter.data or letter.data.gz")
    p.add_argument("--out", type=Path, help="output directory (default: runs/ocr-METHOD)")
    p.add_argument("--stages", default="train,test", help="comma-separated: train, test")
    p.add_argument("--max-epoch", type=int, default=50, help="training epochs")
    p.add_argument("--hidden-size", type=int, default=128, help="GRU size (paper: 128)")
    p.add_argument("--batch-size", type=int, default=64, help="words per batch (paper: 64)")
    p.add_argument("--lr", type=float, default=0.5, help="constant SGD step (paper: 0.5)")
    p.add_argument("--alpha", type=float, default=40.0,
                   help="kl / skl: target softmax(-alpha * cost); the paper tunes it on "
                        "validation data without reporting it (see README)")
    p.add_argument("--tokens", type=int, default=5, help="sll / skl: tokens per cell")
    p.add_argument("--sampling", default="topk",
                   help="sll / skl: uniform, policy, biased or topk")
    p.add_argument("--rollin", default="learned", choices=ROLLINS,
                   help="SeaRNN roll-in policy (paper's best OCR setting: learned)")
    p.add_argument("--rollout", default="mixed", choices=ROLLOUTS,
                   help="SeaRNN roll-out policy (paper's best OCR setting: mixed, p = 0.5)")
    p.add_argument("--free-length", action="store_true",
                   help="outputs of free length (the model chooses where to stop) instead of "
                        "one letter per image")
    p.add_argument("--max-len-b", type=int, default=5,
                   help="--free-length: roll-ins and roll-outs stop at the word's letters + "
                        "this; validation and test decoding at the batch's longest word + this")
    p.add_argument("--test-fold", type=int, default=0, help="test fold (never tuned on)")
    p.add_argument("--valid-fold", type=int, default=1, help="validation fold")
    p.add_argument("--seed", type=int, default=1, help="fairseq --seed")
    args, extra = p.parse_known_args(argv)
    if extra and extra[0] == "--":
        extra = extra[1:]
    args.out = args.out or Path("runs") / f"ocr-{args.method}"
    return args, extra


def main(argv=None):
    args, extra = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    result_path = args.out / "result.json"
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    result["method"] = args.method
    stages = args.stages.split(",")
    if "train" in stages:
        result["train_wall_s"] = round(recipes.run_logged(
            [recipes.tool("fairseq-train"), *train_argv(args, extra)], args.out / "train.log"), 1)
    if "test" in stages:
        gen, checkpoint = args.out / "test.generate.txt", args.out / checkpoint_name(args)
        if args.free_length:
            result["test_wall_s"] = round(recipes.run_logged(
                [recipes.tool("fairseq-generate"), *generate_argv(args, checkpoint)], gen), 1)
            errors, chars, words = hamming_from_generate(gen.read_text())
        else:
            start = time.time()
            errors, chars, words = decode_test(args, checkpoint, gen)
            result["test_wall_s"] = round(time.time() - start, 1)
        result.update(test_words=words, test_characters=chars, test_errors=errors,
                      test_hamming_error_percent=round(100.0 * errors / chars, 2))
    result_path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
