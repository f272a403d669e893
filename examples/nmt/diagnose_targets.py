"""Where the sKL target of a SeaRNN NMT run puts its mass, on training batches.

    python examples/nmt/diagnose_targets.py --run runs/multi30k-s2/searnn-cheap \
        --weights runs/multi30k-s2/mle-pretrain/checkpoint_last.pt --batches 8

Rebuilds the task and criterion of ``--run`` (its ``checkpoint_last.pt``: data, criterion
options, α) with the model weights of ``--weights`` (default: the run's own), collects the
cost vectors of ``--batches`` training batches as a training step does (the same engine and
options; draws keyed by ``--seed`` and the sentence; candidates from eval-mode scores), and
reports means over the cells: the target ``softmax(-α · cost)``'s mass on
the reference action (candidate slot 0) against the model's probability of it (of the whole
vocabulary, and its share among the candidates, which is what the sampled losses see); the
model's probability of the candidates; how often another candidate costs strictly less or the
same; and the target mass, model probability and cost of the candidate that repeats the
previous reference token (a word repetition) where it is a candidate and not the reference
action. Prints one JSON line.
"""

import argparse
import json
import os
from pathlib import Path

import torch


def diagnose(criterion, model, batches):
    """Means over the rolled-out cells of ``batches`` (fairseq samples; ``None`` where there
    is nothing to average). Needs a reference roll-in: the cells' prefixes are then the gold
    prefixes, which one teacher-forced pass scores. Puts ``model`` in eval mode."""
    from fairseq_searnn.search import losses

    if criterion.cfg.rollin != "reference":
        raise ValueError(f"diagnose needs a run with --rollin reference, not "
                         f"{criterion.cfg.rollin!r}: the model's probabilities are read off "
                         f"the gold prefixes")
    model.eval()

    tot = dict.fromkeys(("cells", "ref_mass", "cheaper", "tied", "model_ref_prob",
                         "model_candidate_mass", "model_ref_share",
                         "repeat_cells", "repeat_mass", "repeat_model_prob", "repeat_cost_gap",
                         "repeat_not_costlier"), 0.0)
    for sample in batches:
        res = criterion.collect_costs(model, sample)
        cells = res.mask[..., 0]  # [B, T] rolled-out cells
        costs = res.costs.masked_fill(~res.mask, float("inf"))
        q = losses.target_distribution(res.costs, res.mask, criterion.alpha)
        ref_cost = costs[..., :1]
        others = torch.ones_like(res.mask)
        others[..., 0] = False
        others &= res.mask
        T = res.candidates.size(1)
        with torch.no_grad():  # teacher-forced log-probabilities at the cells: [B, T, V]
            lp = model.get_normalized_probs(model(**sample["net_input"]), log_probs=True)[:, :T]
        lp_cand = lp.gather(-1, res.candidates)  # [B, T, K]
        p_cand = lp_cand.exp() * res.mask
        p_ref = p_cand[..., 0]
        tot["cells"] += cells.sum().item()
        tot["ref_mass"] += q[..., 0][cells].sum().item()
        tot["cheaper"] += ((costs < ref_cost) & others).any(-1)[cells].sum().item()
        tot["tied"] += ((costs == ref_cost) & others).any(-1)[cells].sum().item()
        tot["model_ref_prob"] += p_ref[cells].sum().item()
        tot["model_candidate_mass"] += p_cand.sum(-1)[cells].sum().item()
        share = losses.restrict(lp_cand, res.mask)[..., 0].exp()  # as the sampled losses see it
        tot["model_ref_share"] += share[cells].sum().item()
        # the previous reference token: target[t - 1]; cell 0 has none
        previous = torch.full_like(res.candidates[..., 0], -1)
        previous[:, 1:] = sample["target"][:, :T - 1]
        repeat = (res.candidates == previous.unsqueeze(-1)) & others
        has = repeat.any(-1) & cells & (res.candidates[..., 0] != previous)
        tot["repeat_cells"] += has.sum().item()
        tot["repeat_mass"] += (q * repeat).sum(-1)[has].sum().item()
        p_prev = lp.gather(-1, previous.clamp(min=0).unsqueeze(-1)).squeeze(-1).exp()
        tot["repeat_model_prob"] += p_prev[has].sum().item()
        gap = (costs.masked_fill(~repeat, float("inf")).min(-1).values - ref_cost.squeeze(-1))
        tot["repeat_cost_gap"] += gap[has].sum().item()
        tot["repeat_not_costlier"] += (gap <= 0)[has].sum().item()
    n, r = tot["cells"] or float("nan"), tot["repeat_cells"] or float("nan")
    out = {"cells": int(tot["cells"]),
           "target_mass_on_reference_action": tot["ref_mass"] / n,
           "model_prob_of_reference_action": tot["model_ref_prob"] / n,
           "model_prob_of_the_candidates": tot["model_candidate_mass"] / n,
           "model_share_of_reference_action_among_candidates": tot["model_ref_share"] / n,
           "cells_with_a_cheaper_candidate": tot["cheaper"] / n,
           "cells_with_a_candidate_tied_with_the_reference": tot["tied"] / n,
           "cells_with_a_repeat_candidate": int(tot["repeat_cells"]),
           "target_mass_on_the_repeat": tot["repeat_mass"] / r,
           "model_prob_of_the_repeat": tot["repeat_model_prob"] / r,
           "repeat_cost_minus_reference_cost": tot["repeat_cost_gap"] / r,
           "repeat_not_costlier_than_reference": tot["repeat_not_costlier"] / r}
    return {k: None if v != v else v for k, v in out.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, type=Path, help="a SeaRNN run directory")
    p.add_argument("--weights", type=Path, help="checkpoint whose model weights to use")
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from fairseq import checkpoint_utils, tasks

    import fairseq_searnn  # noqa: F401  (registers the plugin, loads its checkpoints)

    state = checkpoint_utils.load_checkpoint_to_cpu(str(args.run / "checkpoint_last.pt"))
    cfg = state["cfg"]
    task = tasks.setup_task(cfg.task)
    criterion = task.build_criterion(cfg.criterion)
    model = task.build_model(cfg.model)
    weights = state if args.weights is None else checkpoint_utils.load_checkpoint_to_cpu(
        str(args.weights))
    model.load_state_dict(weights["model"])
    task.load_dataset("train")
    itr = task.get_batch_iterator(task.dataset("train"), max_sentences=cfg.dataset.batch_size,
                                  max_tokens=cfg.dataset.max_tokens, seed=args.seed,
                                  required_batch_size_multiple=1).next_epoch_itr(shuffle=True)
    torch.manual_seed(args.seed)
    batches = [next(itr) for _ in range(args.batches)]
    report = {"run": str(args.run), "weights": str(args.weights or "the run's own"),
              "alpha": criterion.alpha, "batches": args.batches, "seed": args.seed,
              **diagnose(criterion, model, batches)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
