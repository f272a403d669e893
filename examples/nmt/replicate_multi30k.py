"""Multi30k de-en table: an MLE LSTM, then the same wall-time budget of fine-tuning from it
with each method; validation BLEU with greedy decoding and beam search (with and without
logit rescaling).

    python examples/nmt/replicate_multi30k.py --prep data/multi30k --out runs/multi30k \
        [--pretrain-updates 2500] [--pretrain-minutes 40] [--minutes 10] [--methods ...]

1. ``train.sh METHOD=mle ARCH=lstm DROPOUT=0.3`` for ``--pretrain-updates`` updates (Adam 1e-3
   decaying to 1e-5) or ``--pretrain-minutes``, whichever comes first;
2. its last checkpoint, stripped to the weights (no optimiser state, update count or training
   time, so every fine-tune starts its schedules and its wall-time budget at zero), is the
   start of every method in ``--methods``, each trained for ``--minutes`` of wall time with
   Adam at a constant 1e-4 and the same batches of 64 sentences and dropout 0.3;
3. ``evaluate.py`` scores the last checkpoint of every run on the whole validation split
   (sacreBLEU against the raw references): greedy, beam 5, and beam 5 with ``--temperature
   0.5`` (logit rescaling). Validation during training uses the first 256 sentences
   (``--max-valid-steps 4``) for the learning curves only; no checkpoint is selected on it.

One torch thread per run, ``--jobs`` runs at a time. Writes ``OUT/summary.md``,
``OUT/summary.json`` and ``OUT/curves.png``; finished runs and evaluations are not redone.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

from fairseq_searnn import recipes
from fairseq_searnn.recipes import replication

HERE = Path(__file__).resolve().parent

SEARNN_CHEAP = {"METHOD": "searnn-cheap", "CELLS": "4", "TOKENS": "5", "NEIGHBORS": "2",
                "FOCUSED": "2"}
# fine-tuning methods: train.sh environment, extra fairseq-train options, validation interval
METHODS = {
    "mle": ({"METHOD": "mle"}, [], 100),
    # cheapest SeaRNN that keeps the paper's structure: reference roll-in, sKL with alpha 200,
    # sentence-BLEU cost, top-k + ground-truth neighbour tokens; 4 cells per sentence,
    # top-5 + neighbours within 2 positions, roll-outs focused to 2 learned steps
    "searnn-cheap": (SEARNN_CHEAP, [], 25),
    # the same plus token cross-entropy on the gold target: (1 - w) sKL + w NLL, w = 0.2 (the
    # sKL sums over 4 cells a sentence, the NLL over all its ~13 target tokens)
    "searnn-cheap-mle": (SEARNN_CHEAP, ["--searnn-mle-weight", "0.2"], 25),
    # differentiable scheduled sampling; gold-token probability k / (k + exp(i / k)), k = 100
    # updates (0.83 at 300 updates, 0.20 at 600); annealed alpha: x1.005 per update
    "dss-soft-greedy": ({"METHOD": "dss", "FEED": "soft-greedy", "SS_ALPHA": "1",
                         "DECAY_K": "100"}, [], 100),
    "dss-soft-greedy-annealed": ({"METHOD": "dss", "FEED": "soft-greedy", "SS_ALPHA": "1",
                                  "DECAY_K": "100"}, ["--ss-alpha-growth", "1.005"], 100),
    "dss-soft-sample": ({"METHOD": "dss", "FEED": "soft-sample", "SS_ALPHA": "1",
                         "DECAY_K": "100"}, [], 100),
    "dss-soft-sample-annealed": ({"METHOD": "dss", "FEED": "soft-sample", "SS_ALPHA": "1",
                                  "DECAY_K": "100"}, ["--ss-alpha-growth", "1.005"], 100),
    "ss-hard": ({"METHOD": "ss", "DECAY_K": "100"}, [], 100),
}
DECODES = [(1, 1.0), (5, 1.0), (5, 0.5)]  # (beam, temperature)
COMMON = ["--validate-interval", "1000", "--max-valid-steps", "4", "--log-interval", "50"]


def _env(args, save, **extra):
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PREP=str(args.prep),
                ARCH="lstm", DROPOUT="0.3", SAVE=str(save), SEED=str(args.seed), **extra)


def pretrain(args):
    """MLE from scratch; returns its run directory."""
    out = args.out / "mle-pretrain"
    log = out / "train.log"
    if log.exists() and "done training" in log.read_text():
        return out
    out.mkdir(parents=True, exist_ok=True)
    env = _env(args, out, METHOD="mle", MAX_UPDATE=str(args.pretrain_updates))
    recipes.run_logged(
        ["bash", HERE / "train.sh", "--stop-time-hours", f"{args.pretrain_minutes / 60:.3f}",
         "--validate-interval-updates", "250", *COMMON], log, env)
    return out


def finetune(args, init, method):
    out = args.out / method
    log = out / "train.log"
    if log.exists() and "done training" in log.read_text():
        return out
    out.mkdir(parents=True, exist_ok=True)
    env_extra, options, every = METHODS[method]
    env = _env(args, out, MAX_UPDATE="1000000", **env_extra)
    recipes.run_logged(
        ["bash", HERE / "train.sh", "--finetune-from-model", init, "--lr", "1e-4",
         "--end-learning-rate", "1e-4", "--stop-time-hours", f"{args.minutes / 60:.4f}",
         "--validate-interval-updates", str(every), *COMMON, *options], log, env)
    return out


def evaluate(args, run):
    """sacreBLEU of the run's last checkpoint for every decode in DECODES."""
    def compute():
        scores = {}
        for beam, temperature in DECODES:
            tmp = run / "evaluate.json"
            start = time.time()
            recipes.run_logged(
                [sys.executable, HERE / "evaluate.py", "--prep", args.prep, "--checkpoint",
                 run / "checkpoint_last.pt", "--split", "valid", "--beam", str(beam),
                 "--temperature", str(temperature), "--max-len-a", "1.2", "--max-len-b", "10"],
                tmp, dict(os.environ, OMP_NUM_THREADS="1"))
            result = json.loads(tmp.read_text().strip().splitlines()[-1])
            scores[f"beam{beam}_T{temperature:g}"] = {"bleu": result["sacrebleu"],
                                                      "seconds": round(time.time() - start)}
        return scores
    return replication.cached(run / "bleu.json", compute)


def summarise(args, runs):
    """runs: {name: directory}; writes summary.md / .json and curves.png."""
    rows, series, summary = [], [], {}
    pre_updates = replication.train_updates((runs["mle-pretrain"] / "train.log").read_text())
    for name, run in runs.items():
        text = (run / "train.log").read_text()
        curve = replication.valid_curve(text, "searnn_bleu")
        updates = replication.train_updates(text)
        offset = 0 if name == "mle-pretrain" else pre_updates
        bleu = evaluate(args, run)
        wall = replication.train_seconds(text)
        summary[name] = {"updates": updates, "train_wall_s": wall, "valid_curve_256": curve,
                         **bleu}
        g, b, bt = (bleu[k]["bleu"] for k in ("beam1_T1", "beam5_T1", "beam5_T0.5"))
        per_update = f"{wall / max(updates, 1):.2f}"
        rows.append(f"| {name} | {updates} | {per_update} | {g:.2f} | {b:.2f} ({b - g:+.2f}) | "
                    f"{bt:.2f} ({bt - g:+.2f}) |")
        if curve:
            series.append((name, [offset + u for u, _ in curve], [v for _, v in curve]))
    lines = ["| run | updates | s / update | greedy BLEU | beam 5 (vs greedy) | "
             "beam 5, T = 0.5 (vs greedy) |", "|---|---|---|---|---|---|", *rows]
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("\n".join(lines))
    replication.plot_curves(series, "updates (fine-tunes start at the MLE run's last)",
                            "validation BLEU, first 256 sentences, greedy",
                            "Multi30k de-en, LSTM 256", args.out / "curves.png")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--prep", required=True, type=Path, help="made by prepare_multi30k.py")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--pretrain-updates", type=int, default=2500)
    p.add_argument("--pretrain-minutes", type=float, default=40.0)
    p.add_argument("--minutes", type=float, default=10.0, help="wall time per fine-tune")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jobs", type=int, default=1, help="fine-tunes at a time (1 thread each)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    pre = pretrain(args)
    init = args.out / "mle-pretrain-weights.pt"
    if not init.exists():
        replication.weights_only(pre / "checkpoint_last.pt", init)
    runs = replication.run_all(lambda m: finetune(args, init, m), [(m,) for m in args.methods],
                               args.jobs)
    summarise(args, {"mle-pretrain": pre, **dict(zip(args.methods, runs))})


if __name__ == "__main__":
    main()
