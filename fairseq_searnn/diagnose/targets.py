"""The SeaRNN target report: where a SeaRNN criterion's loss target puts its mass, against the
model, on the cells of a split.

For every batch the criterion's own search (``criterion.collect_costs``: its roll-in, cells,
candidates, roll-outs and cost) gives the cost vectors; the loss target is
``losses.target(criterion.target_name, costs, mask, alpha, tiebreak)`` (``softmax(-α c)`` for
the KL losses, one-hot on the cheapest candidate for LL). The model's probabilities are those
of one teacher-forced pass on ``[EOS] + roll-in[:-1]``: the distribution the model has at each
cell after the roll-in's prefix (the gold prefix with a reference roll-in). Draws are keyed by
``torch.initial_seed()`` and the sentence, as in training.
"""

import shlex
from typing import Dict, Optional, Sequence

import torch

from fairseq_searnn.search import losses, prev_output_tokens

KEYS = ("cells", "candidates", "ref_mass", "entropy", "ref_cost", "min_cost", "cheaper", "tied",
        "model_ref_prob", "model_candidate_mass", "model_ref_share", "repeat_cells",
        "repeat_mass", "repeat_model_prob", "repeat_cost_gap", "repeat_not_costlier")


def build_criterion(task, data: str, argv: Sequence[str]):
    """The criterion of the fairseq-train options ``argv`` (``["--criterion", NAME, ...]``)
    for ``task``, through fairseq's own option parsing."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(
        parser, [data, "--task", "translation", "--arch", "lstm", *argv])
    cfg = convert_namespace_to_omegaconf(args)
    criterion = task.build_criterion(cfg.criterion)
    if not hasattr(criterion, "collect_costs"):
        raise ValueError(f"the target report needs a SeaRNN criterion (searnn_ll, searnn_kl, "
                         f"searnn_sll, searnn_skl), not {cfg.criterion._name!r}")
    criterion.options = " ".join(shlex.quote(a) for a in argv)
    return criterion


def criterion_from_checkpoint(task, path):
    """The criterion a checkpoint was trained with, built for ``task`` from the options saved
    in it."""
    from fairseq import checkpoint_utils

    cfg = checkpoint_utils.load_checkpoint_to_cpu(str(path))["cfg"]
    criterion = task.build_criterion(cfg.criterion)
    if not hasattr(criterion, "collect_costs"):
        raise ValueError(f"{path} was trained with {cfg.criterion._name!r}: the target report "
                         "needs a SeaRNN criterion (searnn_ll, searnn_kl, searnn_sll, "
                         "searnn_skl)")
    criterion.options = f"the options saved in {path}"
    return criterion


class TargetStats:
    """Sums over the rolled-out cells of the batches given to :meth:`add`."""

    def __init__(self, criterion):
        self.criterion = criterion
        self.tot: Dict[str, float] = dict.fromkeys(KEYS, 0.0)

    @torch.no_grad()
    def add(self, model, sample) -> None:
        """Collect the cost vectors of ``sample`` and add its cells' statistics (puts ``model``
        in eval mode)."""
        crit, tot = self.criterion, self.tot
        model.eval()
        res = crit.collect_costs(model, sample)
        pad, eos = crit.padding_idx, crit.eos
        cells = res.cells  # [B, T]
        valid = res.mask
        q = losses.target(crit.target_name, res.costs, valid, crit.alpha, res.tiebreak)
        costs = res.costs.masked_fill(~valid, float("inf"))  # [B, T, K]
        ref_cost = costs[..., :1]
        others = valid.clone()
        others[..., 0] = False
        net_input = dict(sample["net_input"],
                         prev_output_tokens=prev_output_tokens(res.rollin, pad, eos))
        lp = model.get_normalized_probs(model(**net_input), log_probs=True)  # [B, T, V]
        lp_cand = lp.gather(-1, res.candidates)  # [B, T, K]
        p_cand = lp_cand.exp() * valid
        share = losses.restrict(lp_cand, valid)[..., 0].exp()  # what a sampled loss sees

        def add(key, values):
            tot[key] += float(values[cells].sum())

        tot["cells"] += float(cells.sum())
        add("candidates", valid.sum(-1))
        add("ref_mass", q[..., 0])
        add("entropy", losses.entropy(q))
        add("ref_cost", res.costs[..., 0])
        add("min_cost", costs.min(-1).values)
        add("cheaper", ((costs < ref_cost) & others).any(-1))
        add("tied", ((costs == ref_cost) & others).any(-1))
        add("model_ref_prob", p_cand[..., 0])
        add("model_candidate_mass", p_cand.sum(-1))
        add("model_ref_share", share)
        # repeating the roll-in's previous token (cell 0 has none), where it is a candidate
        # other than the reference action
        previous = torch.full_like(res.rollin, -1)
        previous[:, 1:] = res.rollin[:, :-1]
        repeat = res.candidates.eq(previous.unsqueeze(-1)) & others
        has = repeat.any(-1) & cells & res.candidates[..., 0].ne(previous)
        gap = costs.masked_fill(~repeat, float("inf")).min(-1).values - ref_cost.squeeze(-1)
        p_prev = lp.gather(-1, previous.clamp(min=0).unsqueeze(-1)).squeeze(-1).exp()
        tot["repeat_cells"] += float(has.sum())
        tot["repeat_mass"] += float((q * repeat).sum(-1)[has].sum())
        tot["repeat_model_prob"] += float(p_prev[has].sum())
        tot["repeat_cost_gap"] += float(gap[has].sum())
        tot["repeat_not_costlier"] += float(gap.le(0)[has].sum())

    def result(self) -> Dict[str, Optional[float]]:
        """Means over the cells (over the repeat cells for ``*repeat*``; None: none counted)."""
        t, crit = self.tot, self.criterion

        def mean(key, over="cells"):
            return t[key] / t[over] if t[over] else None

        return {
            "criterion": getattr(crit, "options", type(crit).__name__),
            "target": crit.target_name, "alpha": crit.alpha, "cells": int(t["cells"]),
            "candidates_per_cell": mean("candidates"),
            "target_mass_on_reference_action": mean("ref_mass"),
            "target_entropy": mean("entropy"),
            "reference_action_cost": mean("ref_cost"),
            "min_cost": mean("min_cost"),
            "model_prob_of_reference_action": mean("model_ref_prob"),
            "model_prob_of_the_candidates": mean("model_candidate_mass"),
            "model_share_of_reference_action_among_candidates": mean("model_ref_share"),
            "cells_with_a_cheaper_candidate": mean("cheaper"),
            "cells_with_a_candidate_tied_with_the_reference": mean("tied"),
            "cells_with_a_repeat_candidate": int(t["repeat_cells"]),
            "target_mass_on_the_repeat": mean("repeat_mass", "repeat_cells"),
            "model_prob_of_the_repeat": mean("repeat_model_prob", "repeat_cells"),
            "repeat_cost_minus_reference_cost": mean("repeat_cost_gap", "repeat_cells"),
            "repeat_not_costlier_than_reference": mean("repeat_not_costlier", "repeat_cells"),
        }

