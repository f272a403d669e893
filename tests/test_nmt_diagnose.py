"""examples/nmt/diagnose_targets.py: the sKL target statistics against a cell-by-cell count."""

import math

import pytest
import torch

import helpers

SKL = ["--rollin", "reference", "--rollout", "mixed", "--searnn-cost", "bleu",
       "--searnn-reference", "best-suffix", "--searnn-reference-cost", "bleu1",
       "--searnn-tokens", "3", "--searnn-token-sampling", "topk-neighbors",
       "--searnn-neighbors", "2", "--searnn-alpha", "5"]


def test_target_statistics_match_a_cell_by_cell_count(data_bin):
    diag = helpers.load_example("nmt", "diagnose_targets")
    _, task, model, crit = helpers.build(data_bin, "lstm", "searnn_skl", SKL)
    sample = helpers.valid_batch(task, max_sentences=6)
    got = diag.diagnose(crit, model, [sample])

    res = crit.collect_costs(model, sample)  # the same draws: keyed by seed and sentence
    with torch.no_grad():
        p = model.get_normalized_probs(model(**sample["net_input"]), log_probs=False)
    n = ref_mass = cheaper = tied = p_ref = p_cands = share = 0
    r = r_mass = r_prob = r_gap = r_not_costlier = 0
    B, T, K = res.candidates.shape
    for b in range(B):
        for t in range(T):
            valid = [k for k in range(K) if res.mask[b, t, k]]
            if 0 not in valid:
                continue
            c = {k: res.costs[b, t, k].item() for k in valid}
            z = sum(math.exp(-crit.alpha * c[k]) for k in valid)
            q = {k: math.exp(-crit.alpha * c[k]) / z for k in valid}
            tok = {k: res.candidates[b, t, k].item() for k in valid}
            n += 1
            ref_mass += q[0]
            cheaper += any(c[k] < c[0] for k in valid if k)
            tied += any(c[k] == c[0] for k in valid if k)
            p_ref += p[b, t, tok[0]].item()
            p_cands += sum(p[b, t, tok[k]].item() for k in valid)
            share += p[b, t, tok[0]].item() / sum(p[b, t, tok[k]].item() for k in valid)
            last = sample["target"][b, t - 1].item() if t else None
            rep = [k for k in valid if k and tok[k] == last]
            if rep and tok[0] != last:
                r += 1
                r_mass += sum(q[k] for k in rep)
                r_prob += p[b, t, last].item()
                gap = min(c[k] for k in rep) - c[0]
                r_gap += gap
                r_not_costlier += gap <= 0
    assert n == got["cells"] > 0 and r == got["cells_with_a_repeat_candidate"] > 0
    for key, value in [("target_mass_on_reference_action", ref_mass / n),
                       ("model_prob_of_reference_action", p_ref / n),
                       ("model_prob_of_the_candidates", p_cands / n),
                       ("model_share_of_reference_action_among_candidates", share / n),
                       ("cells_with_a_cheaper_candidate", cheaper / n),
                       ("cells_with_a_candidate_tied_with_the_reference", tied / n),
                       ("target_mass_on_the_repeat", r_mass / r),
                       ("model_prob_of_the_repeat", r_prob / r),
                       ("repeat_cost_minus_reference_cost", r_gap / r),
                       ("repeat_not_costlier_than_reference", r_not_costlier / r)]:
        assert got[key] == pytest.approx(value, abs=1e-5), key


def test_learned_rollin_runs_are_refused(data_bin):
    """The model's probabilities are read off the gold prefixes: only a reference roll-in
    puts the cells there."""
    diag = helpers.load_example("nmt", "diagnose_targets")
    learned = [a if a != "reference" else "learned" for a in SKL[:2]] + SKL[2:]
    _, task, model, crit = helpers.build(data_bin, "lstm", "searnn_skl", learned)
    with pytest.raises(ValueError, match="--rollin reference"):
        diag.diagnose(crit, model, [helpers.valid_batch(task, max_sentences=2)])
