"""Where the SeaRNN loss's target puts its mass, on a trained checkpoint: the share of the
target on the reference action (``target_ref_mass``, for LL the share of cells whose
minimum-cost token is the reference action) and the target's entropy, for several settings.

    python benchmarks/target_stats.py DATA-BIN --path CKPT --source-lang noisy \
        --target-lang clean --sentences 512 --out stats.json \
        --setting "searnn_ll --rollin learned --rollout mixed --rollout-mix-granularity rollout" \
        --setting "searnn_ll --rollin learned --rollout mixed --rollout-mix-granularity sentence"

Each ``--setting`` is a criterion name and its options, as given to fairseq-train. Cost
vectors come from ``criterion.collect_costs`` on the first ``--sentences`` sentences of
``--subset`` (seeded per batch). For ``ll`` the table also gives the share under the old tie
rule (ties to the lowest slot: reference action, EOS, then dictionary order).
"""

import argparse
import json
import shlex

import torch


def build_criterion(task, data, setting):
    """The criterion of ``setting`` (fairseq-train options) on ``task``."""
    from fairseq_searnn.recipes import train_config

    name, *extra = shlex.split(setting)
    cfg = train_config([data, "--task", "translation", "--arch", "lstm", "--criterion", name,
                        *extra])
    return task.build_criterion(cfg.criterion)


def measure(crit, model, batches, seed):
    """Means over rolled-out cells: target mass on the reference action and entropy."""
    from fairseq_searnn.search import losses

    sums = {"cells": 0, "ref_mass": 0.0, "entropy": 0.0, "ref_mass_lowest_slot": 0.0}
    for i, sample in enumerate(batches):
        torch.manual_seed(seed + i)  # the criterion keys its draws by torch.initial_seed()
        res = crit.collect_costs(model, sample)
        cells = res.cells
        q = losses.target(crit.target_name, res.costs, res.mask, crit.alpha, res.tiebreak)
        sums["cells"] += int(cells.sum())
        sums["ref_mass"] += float(q[..., 0][cells].sum())
        sums["entropy"] += float(losses.entropy(q)[cells].sum())
        if crit.target_name != "kl":
            first = losses.best_candidate(res.costs, res.mask)  # ties to the lowest slot
            sums["ref_mass_lowest_slot"] += float(first.eq(0)[cells].sum())
    n = max(sums["cells"], 1)
    out = {k: round(v / n, 4) for k, v in sums.items() if k != "cells"}
    if crit.target_name == "kl":
        del out["ref_mass_lowest_slot"]
    return {"cells": sums["cells"], "alpha": crit.alpha, **out}


def main(argv=None):
    from fairseq import checkpoint_utils

    import fairseq_searnn  # noqa: F401  (registers the criterions)

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="binarised data directory")
    p.add_argument("--path", required=True, help="checkpoint")
    p.add_argument("--source-lang", required=True)
    p.add_argument("--target-lang", required=True)
    p.add_argument("--subset", default="valid")
    p.add_argument("--sentences", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--setting", action="append", required=True,
                   help="criterion name and options (repeatable)")
    p.add_argument("--out", help="json file for the results")
    args = p.parse_args(argv)
    overrides = {"data": args.data, "source_lang": args.source_lang,
                 "target_lang": args.target_lang}
    models, _, task = checkpoint_utils.load_model_ensemble_and_task([args.path],
                                                                     arg_overrides=overrides)
    model = models[0].eval()
    task.load_dataset(args.subset)
    itr = task.get_batch_iterator(dataset=task.dataset(args.subset),
                                  max_sentences=args.batch_size, seed=args.seed,
                                  required_batch_size_multiple=1)
    batches, n = [], 0
    for sample in itr.next_epoch_itr(shuffle=False):
        batches.append(sample)
        n += sample["nsentences"]
        if n >= args.sentences:
            break
    rows = []
    print("| setting | alpha | target mass on the reference action | lowest-slot ties | "
          "entropy (nats) |\n|---|---|---|---|---|")
    for setting in args.setting:
        row = {"setting": setting, "sentences": n,
               **measure(build_criterion(task, args.data, setting), model, batches, args.seed)}
        rows.append(row)
        print(f"| `{setting}` | {row['alpha']:g} | {row['ref_mass']:.3f} | "
              f"{row.get('ref_mass_lowest_slot', float('nan')):.3f} | {row['entropy']:.3f} |",
              flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"checkpoint": args.path, "subset": args.subset, "rows": rows}, f,
                      indent=1)


if __name__ == "__main__":
    main()
