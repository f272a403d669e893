"""The SeaRNN fine-tuning step on a converged translation model, against the control's step
(label-smoothed cross-entropy), where its time goes, and the floor a roll-out engine could
reach.

On a trained model the learned roll-outs end where the model ends its sentences, unlike the
untrained models of ``bench_engine.py``, whose roll-outs run to the length limit. For each
setting, on the same ``--batches`` training batches of 64 sentences (fixed order), from the
same weights: the best time of forward + backward + Adam step (one warm-up step first), and
the search's phases in that step (roll-in, candidates, roll-outs, costs; the rest is the
loss's forward, backward and step). Settings:

- ``control``: ``label_smoothed_cross_entropy --label-smoothing 0.1``;
- ``used``: the SeaRNN settings of ``examples/nmt/converged.py`` (sKL, reference roll-in,
  mixed roll-out, sentence BLEU, best-suffix BLEU-1 reference, alpha 200, top-5 tokens +
  neighbours within 2, 6 cells + the EOS cell and the one before, 0.3 x label-smoothed token
  loss);
- ``paper``: the paper's NMT settings (20 cells, top-15 tokens + neighbours within 5), the
  rest as ``used``.

The floor: the control's step plus the tokens the roll-outs decoded, at the rate fairseq's
``SequenceGenerator`` decodes (greedy, the same model, batches of 64 and of 512 sentences of
the training set): what a SeaRNN step would cost if its roll-outs ran as fast as greedy
generation, with nothing else added.

    OMP_NUM_THREADS=1 python benchmarks/bench_nmt_converged.py --prep runs/data/multi30k \\
        --checkpoint runs/nmt-conv/lstm/baseline/checkpoint_best.pt [--batches 4] \\
        [--repeats 2] [--json FILE]
"""

import argparse
import copy
import json
import logging
import time
from argparse import Namespace
from pathlib import Path

import bench_engine  # beside this script, whose folder Python puts first on sys.path
import torch

from fairseq_searnn.recipes import train_config

NMT_SEARNN = ["--criterion", "searnn_skl", "--searnn-cost", "bleu-smooth-all",
              "--rollin", "reference", "--rollout", "mixed", "--searnn-alpha", "200",
              "--searnn-token-sampling", "topk-neighbors", "--searnn-reference", "best-suffix",
              "--searnn-reference-cost", "bleu1", "--rollout-max-len-a", "1.5",
              "--rollout-max-len-b", "10", "--searnn-mle-weight", "0.3",
              "--searnn-mle-label-smoothing", "0.1"]
SETTINGS = {
    "control": ["--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1"],
    "used": [*NMT_SEARNN, "--searnn-tokens", "5", "--searnn-neighbors", "2",
             "--searnn-cells", "6"],
    "paper": [*NMT_SEARNN, "--searnn-tokens", "15", "--searnn-neighbors", "5",
              "--searnn-cells", "20"],
}
PHASES = ("time_rollin", "time_candidates", "time_rollouts", "time_costs",
          "time_loss_backward")


def load(prep: Path, checkpoint: str):
    from fairseq import checkpoint_utils

    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
        [checkpoint], arg_overrides={"data": str(prep / "bin")})
    task.load_dataset("train")
    return models[0], cfg, task


def batches(task, n: int, size: int, seed: int = 1):
    itr = task.get_batch_iterator(dataset=task.dataset("train"), max_sentences=size,
                                  required_batch_size_multiple=1, seed=seed)
    out = []
    for sample in itr.next_epoch_itr(shuffle=True):
        out.append(sample)
        if len(out) == n:
            break
    return out


def criterion(task, cfg, args):
    argv = [str(task.cfg.data), "--task", "translation", "--arch", cfg.model._name, *args]
    return task.build_criterion(train_config(argv).criterion)


def generator_tokens_per_s(task, model, samples):
    """Greedy fairseq generation of the samples' sources: tokens (EOS included) per second."""
    gen = task.build_generator([model], Namespace(beam=1, max_len_a=1.5, max_len_b=10))
    model.eval()
    tokens, start = 0, time.perf_counter()
    with torch.no_grad():
        for sample in samples:
            for hypos in task.inference_step(gen, [model], sample):
                tokens += hypos[0]["tokens"].numel()
    return tokens / (time.perf_counter() - start)


def run(args) -> dict:
    model, cfg, task = load(args.prep, args.checkpoint)
    samples = batches(task, args.batches, 64)
    init = copy.deepcopy(model.state_dict())
    rates = {size: generator_tokens_per_s(task, model, batches(task, max(1, args.batches * 64
                                                                          // size), size))
             for size in (64, 512)}
    out = {"checkpoint": args.checkpoint, "batches": args.batches, "sentences_per_batch": 64,
           "generator_tokens_per_s": {str(k): v for k, v in rates.items()}, "settings": {}}
    for name, options in SETTINGS.items():
        crit = criterion(task, cfg, options)
        rows = []
        for sample in samples:
            model.load_state_dict(init)
            best, breakdown = bench_engine.step_time(task, model, crit, sample, args.repeats)
            rows.append({"step_s": best, **breakdown})
        mean = {k: sum(r.get(k, 0.0) for r in rows) / len(rows) for k in rows[0]}
        out["settings"][name] = {"options": " ".join(options), **mean}
        print(f"{name}: {mean['step_s']:.3f} s / step", flush=True)
    control = out["settings"]["control"]["step_s"]
    for row in out["settings"].values():
        row["vs_control"] = row["step_s"] / control
        if "decoded_tokens" in row:
            for size, rate in rates.items():
                floor = control + row["decoded_tokens"] / rate
                row[f"floor_s_gen{size}"] = floor
                row[f"vs_floor_gen{size}"] = row["step_s"] / floor
    return out


def table(res: dict) -> str:
    rates = res["generator_tokens_per_s"]
    lines = [f"SequenceGenerator, greedy: {rates['64']:.0f} tokens/s at 64 sentences, "
             f"{rates['512']:.0f} at 512", "",
             "| setting | s / step | x control | roll-in | candidates | roll-outs | costs "
             "| loss fwd+bwd+step | decoded tokens / step | floor (s, gen 64 / 512) "
             "| x floor (64 / 512) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in res["settings"].items():
        phases = " | ".join(f"{r.get(p, 0.0):.3f}" if p in r else "-" for p in PHASES)
        if "decoded_tokens" in r:
            floor = (f"{r['decoded_tokens']:.0f} | {r['floor_s_gen64']:.2f} / "
                     f"{r['floor_s_gen512']:.2f} | {r['vs_floor_gen64']:.1f} / "
                     f"{r['vs_floor_gen512']:.1f}")
        else:
            floor = "- | - | -"
        lines.append(f"| {name} | {r['step_s']:.3f} | {r['vs_control']:.1f} | {phases} "
                     f"| {floor} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prep", required=True, type=Path, help="made by prepare_multi30k.py")
    p.add_argument("--checkpoint", required=True, help="a converged translation model")
    p.add_argument("--batches", type=int, default=4, help="training batches of 64 sentences")
    p.add_argument("--repeats", type=int, default=2, help="timed steps per batch (best kept)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    logging.getLogger("fairseq").setLevel(logging.WARNING)
    torch.manual_seed(1)
    res = run(args)
    print(table(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return res


if __name__ == "__main__":
    main()
