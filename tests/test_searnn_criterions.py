"""The registered SeaRNN criterions: equivalences, hand computations, options, training."""

import pytest
import torch

import brute_force as bf
import helpers
from fairseq_searnn.search import losses

REF_HAMMING = ["--rollin", "reference", "--rollout", "reference", "--searnn-reference", "copy",
               "--searnn-cost", "hamming"]


def _criterion(task, name, extra):
    cfg = helpers.parse_cfg(helpers.train_argv(task.cfg.data, "lstm", name, extra))
    return task.build_criterion(cfg.criterion)


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_ll_reference_hamming_equals_cross_entropy(data_bin, arch):
    _, task, model, crit = helpers.build(data_bin, arch, "searnn_ll", REF_HAMMING)
    ce = _criterion(task, "cross_entropy", [])
    sample = helpers.valid_batch(task, 8)
    model.train()
    loss, size, log = crit(model, sample)
    want, want_size, _ = ce(model, sample)
    assert size == want_size == sample["ntokens"]
    torch.testing.assert_close(loss, want)
    # gradients too
    g1 = torch.autograd.grad(loss, list(model.parameters()))
    g2 = torch.autograd.grad(ce(model, sample)[0], list(model.parameters()))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)
    assert log["searnn_min_cost"] == 0 and log["searnn_ref_cost"] == 0


def test_kl_with_large_alpha_tends_to_ll(data_bin):
    extra = ["--rollin", "reference", "--rollout", "learned", "--searnn-cost", "edit",
             "--rollout-max-len-b", "10"]
    _, task, model, ll = helpers.build(data_bin, "lstm", "searnn_ll", extra)
    kl = _criterion(task, "searnn_kl", extra + ["--searnn-alpha", "1e5"])
    sample = helpers.valid_batch(task, 8)
    model.train()
    torch.testing.assert_close(kl(model, sample)[0], ll(model, sample)[0], rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name,loss", [("searnn_skl", "kl"), ("searnn_sll", "ll")])
def test_sampled_criterions_equal_hand_computation(data_bin, name, loss):
    extra = ["--searnn-tokens", "3", "--searnn-token-sampling", "policy", "--rollin", "learned",
             "--rollout", "mixed", "--searnn-cost", "bleu", "--searnn-alpha", "5",
             "--rollout-max-len-b", "10"]
    _, task, model, crit = helpers.build(data_bin, "transformer", name, extra)
    sample = helpers.valid_batch(task, 8)
    model.train()
    torch.manual_seed(7)
    loss_value, size, _ = crit(model, sample)
    torch.manual_seed(7)  # the criterion keys its draws by torch.initial_seed() and sample ids
    res = crit.collect_costs(model, sample)
    pad, eos = task.target_dictionary.pad(), task.target_dictionary.eos()
    prev = torch.cat([torch.full_like(res.rollin[:, :1], eos), res.rollin[:, :-1]], 1)
    prev = prev.masked_fill(res.rollin.eq(pad), pad)
    net_input = dict(sample["net_input"], prev_output_tokens=prev)
    lprobs = model.get_normalized_probs(model(**net_input), log_probs=True)
    want, cells, ties = 0.0, 0, 0
    for b, t in res.mask.any(-1).nonzero().tolist():
        ks = res.mask[b, t].nonzero().flatten()
        lp = lprobs[b, t, res.candidates[b, t, ks]]
        lp = lp - torch.logsumexp(lp, 0)
        c = res.costs[b, t, ks]
        if loss == "kl":
            want = want - (torch.softmax(-5 * c, 0) * lp).sum()
        else:  # ties of the minimum: the largest of the result's keyed tie-breaking draws
            draws = res.tiebreak[b, t, ks]
            tied = [i for i in range(len(ks)) if c[i] == c.min()]
            ties += len(tied) > 1
            want = want - lp[max(tied, key=lambda i: float(draws[i]))]
        cells += 1
    assert size == cells
    assert loss == "kl" or ties > 0  # the batch exercises the tie-breaking
    torch.testing.assert_close(loss_value, want, rtol=1e-5, atol=1e-5)


def test_ll_ties_are_broken_at_random_not_towards_the_first_slots(data_bin):
    """Wrong tokens often tie at the minimum (here: an untrained model's garbage roll-in, BLEU
    cost); the LL target among ties is uniformly random (keyed draws), not the reference
    action / EOS / dictionary order of the slot layout."""
    extra = ["--rollin", "learned", "--rollout", "mixed", "--searnn-cost", "bleu",
             "--rollout-max-len-b", "10"]
    _, task, model, crit = helpers.build(data_bin, "transformer", "searnn_ll", extra)
    sample = helpers.valid_batch(task, 16)
    torch.manual_seed(3)
    res = crit.collect_costs(model, sample)
    c = res.costs.masked_fill(~res.mask, float("inf"))
    tied = c.eq(c.min(-1, keepdim=True).values) & res.mask
    many = tied.sum(-1) > 2
    assert int(many.sum()) > 5
    slot = losses.best_candidate(res.costs, res.mask, res.tiebreak)
    assert bool(tied.gather(-1, slot.unsqueeze(-1)).squeeze(-1)[res.cells].all())  # a minimum
    first = tied.float().argmax(-1)  # the lowest tied slot, the old rule
    assert float((slot[many] != first[many]).float().mean()) > 0.3
    # the draws are the sentence's, whatever its batch neighbours
    one = {k: (v[:1] if k != "net_input" else {n: x[:1] for n, x in v.items()})
           for k, v in sample.items() if k in ("id", "target", "net_input")}
    one["ntokens"] = int(one["target"].ne(task.target_dictionary.pad()).sum())
    torch.manual_seed(3)
    alone = crit.collect_costs(model, one)
    T = alone.rollin.size(1)
    assert torch.equal(alone.tiebreak, res.tiebreak[:1, :T])


@pytest.mark.parametrize("w", [0.0, 0.5])
@pytest.mark.parametrize("name", ["searnn_kl", "searnn_skl"])
def test_unreduced_losses_sum_to_the_reduced_loss_and_sentence_avg(data_bin, name, w):
    extra = ["--rollin", "learned", "--rollout", "mixed", "--searnn-cost", "edit",
             "--searnn-mle-weight", str(w)] + (["--searnn-tokens", "3"] if "skl" in name else [])
    _, task, model, crit = helpers.build(data_bin, "lstm", name, extra)
    _, _, _, avg = helpers.build(data_bin, "lstm", name, extra + ["--sentence-avg"])
    sample = helpers.valid_batch(task, 8)
    model.train()
    torch.manual_seed(5)
    loss, size, log = crit(model, sample)
    torch.manual_seed(5)
    per_cell, size2, _ = crit(model, sample, reduce=False)
    assert per_cell.dim() == 2 and per_cell.size(0) == sample["target"].size(0)
    torch.testing.assert_close(per_cell.sum(), loss)
    assert size == size2 == log["searnn_cells"] > sample["target"].size(0)
    torch.manual_seed(5)
    loss3, size3, _ = avg(model, sample)
    torch.testing.assert_close(loss3, loss)
    assert size3 == sample["target"].size(0)
    model.eval()  # cheap validation and warm-up: per target token
    per_token, size4, _ = crit(model, sample, reduce=False)
    assert per_token.shape == sample["target"].shape and size4 == sample["ntokens"]
    torch.testing.assert_close(per_token.sum(), crit(model, sample)[0])
    assert avg(model, sample)[1] == sample["target"].size(0)


def test_sentence_avg_matches_cross_entropy(data_bin):
    extra = REF_HAMMING + ["--sentence-avg"]
    _, task, model, crit = helpers.build(data_bin, "lstm", "searnn_ll", extra)
    cfg = helpers.parse_cfg(helpers.train_argv(task.cfg.data, "lstm", "cross_entropy",
                                               ["--sentence-avg"]))
    ce = task.build_criterion(cfg.criterion)
    sample = helpers.valid_batch(task, 8)
    model.train()
    (a, na, _), (b, nb, _) = crit(model, sample), ce(model, sample)
    torch.testing.assert_close(a, b)
    assert na == nb == sample["target"].size(0)


def test_target_sharpness_is_logged(data_bin):
    """target_ref_mass / target_entropy: the loss's target distribution on the reference
    action and its entropy, per cell (one-hot on a* for LL, softmax(-alpha c) for KL)."""
    from fairseq.logging import metrics

    _, task, model, ll = helpers.build(data_bin, "lstm", "searnn_ll", REF_HAMMING)
    sample = helpers.valid_batch(task, 8)
    model.train()
    _, size, log = ll(model, sample)
    assert log["searnn_target_ref_mass"] == size and log["searnn_target_entropy"] == 0
    extra = ["--rollin", "learned", "--rollout", "reference", "--searnn-cost", "edit",
             "--searnn-alpha", "7"]
    _, _, _, kl = helpers.build(data_bin, "lstm", "searnn_kl", extra)
    torch.manual_seed(2)
    _, size, log = kl(model, sample)
    torch.manual_seed(2)
    res = kl.collect_costs(model, sample)
    mass = entropy = 0.0
    for b, t in res.mask.any(-1).nonzero().tolist():
        ks = res.mask[b, t].nonzero().flatten().tolist()
        q = torch.softmax(-7 * res.costs[b, t, ks].double(), 0)
        mass += float(q[ks.index(0)])
        entropy -= float((q * q.log()).sum())
    assert abs(float(log["searnn_target_ref_mass"]) - mass) < 1e-3
    assert abs(float(log["searnn_target_entropy"]) - entropy) < 1e-2
    with metrics.aggregate() as agg:
        kl.reduce_metrics([log])
        got = agg.get_smoothed_values()
    assert abs(got["target_ref_mass"] - mass / size) < 1e-3
    assert abs(got["target_entropy"] - entropy / size) < 1e-3


def test_training_length_bound_and_first_batch_report(data_bin, caplog):
    """An untrained model's learned roll-in stops at int(1.5 |y|) + 5 tokens in training (not
    at fairseq-generate's 200); the first batch's cost is logged once."""
    import logging

    extra = ["--rollin", "learned", "--rollout", "learned", "--searnn-cost", "edit"]
    _, task, model, crit = helpers.build(data_bin, "lstm", "searnn_kl", extra)
    sample = helpers.valid_batch(task, 8)
    pad, eos = task.target_dictionary.pad(), task.target_dictionary.eos()
    with torch.no_grad():  # an untrained decoder that never ends
        model.decoder.fc_out.bias[eos] = -1e4
    res = crit.collect_costs(model, sample)
    ref_len = sample["target"].ne(pad).sum(1) - 1
    assert torch.equal(res.rollin.ne(pad).sum(1) - 1, (1.5 * ref_len).long() + 5)
    model.train()
    with caplog.at_level(logging.INFO):
        crit(model, sample)
        crit(model, sample)
    report = [r.message for r in caplog.records if "SeaRNN batch of" in r.message]
    assert len(report) == 1 and "roll-outs per sentence" in report[0]


def test_full_criterion_warns_on_a_large_vocabulary(caplog):
    import logging
    from types import SimpleNamespace

    from fairseq.data import Dictionary

    from fairseq_searnn.criterions.searnn import SearnnKL, SearnnSKL
    from fairseq_searnn.criterions.searnn_config import SearnnConfig

    d = Dictionary()
    for i in range(400):
        d.add_symbol(f"w{i}")
    task = SimpleNamespace(target_dictionary=d)
    with caplog.at_level(logging.WARNING):
        SearnnKL(task, SearnnConfig())
    assert any("searnn_skl" in r.message for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        SearnnSKL(task, SearnnConfig(searnn_tokens=5))
    assert not caplog.records


def test_mle_weight_and_warmup_switch(data_bin):
    extra = REF_HAMMING[:-1] + ["edit", "--searnn-mle-weight", "1"]
    _, task, model, crit = helpers.build(data_bin, "lstm", "searnn_kl", extra)
    ce = _criterion(task, "cross_entropy", [])
    sample = helpers.valid_batch(task, 8)
    model.train()
    torch.testing.assert_close(crit(model, sample)[0], ce(model, sample)[0])
    crit.mle_only = True
    loss, size, log = crit(model, sample)
    torch.testing.assert_close(loss, ce(model, sample)[0])
    assert log["searnn_mle_active"] == sample["nsentences"]


@pytest.mark.parametrize("rollin", ["reference", "learned"])
def test_label_smoothed_token_term_equals_fairseq_label_smoothing(data_bin, rollin):
    extra = ["--rollin", rollin, "--rollout", "mixed", "--searnn-cost", "bleu",
             "--rollout-max-len-b", "8", "--searnn-tokens", "3", "--searnn-mle-weight", "1",
             "--searnn-mle-label-smoothing", "0.1"]
    _, task, model, crit = helpers.build(data_bin, "lstm", "searnn_skl", extra)
    ls = _criterion(task, "label_smoothed_cross_entropy", ["--label-smoothing", "0.1"])
    sample = helpers.valid_batch(task, 8)
    model.train()
    loss, _, log = crit(model, sample)
    want, _, want_log = ls(model, sample)
    torch.testing.assert_close(loss, want)
    torch.testing.assert_close(log["nll_loss"], want_log["nll_loss"])  # unsmoothed NLL
    g1 = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    g2 = torch.autograd.grad(ls(model, sample)[0], list(model.parameters()))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)
    crit.mle_only = True  # the warm-up updates are smoothed the same way
    torch.testing.assert_close(crit(model, sample)[0], want)
    assert not torch.equal(want, _criterion(task, "cross_entropy", [])(model, sample)[0])


def test_mle_weight_with_learned_rollin_uses_one_forward(data_bin):
    extra = ["--rollin", "learned", "--rollout", "mixed", "--searnn-cost", "edit",
             "--rollout-max-len-b", "8"]
    _, task, model, mixed = helpers.build(data_bin, "transformer", "searnn_kl",
                                          extra + ["--searnn-mle-weight", "0.25"])
    pure = _criterion(task, "searnn_kl", extra)
    ce = _criterion(task, "cross_entropy", [])
    sample = helpers.valid_batch(task, 8)
    model.train()
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(torch.is_grad_enabled()))
    torch.manual_seed(3)
    loss, size, _ = mixed(model, sample)
    assert calls == [True]  # one model(...) call carries the gradient
    torch.manual_seed(3)
    searnn = pure(model, sample)[0]
    want = 0.75 * searnn + 0.25 * ce(model, sample)[0]
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-4)


def test_cheap_validation_logs_gold_nll_and_greedy_cost(data_bin):
    _, task, model, crit = helpers.build(data_bin, "transformer", "searnn_kl",
                                         ["--searnn-cost", "edit", "--rollout-max-len-b", "6"])
    ce = _criterion(task, "cross_entropy", [])
    sample = helpers.valid_batch(task, 8)
    model.eval()
    loss, size, log = crit(model, sample)
    torch.testing.assert_close(loss, ce(model, sample)[0])
    pad, eos = task.target_dictionary.pad(), task.target_dictionary.eos()
    total = 0.0
    for b in range(sample["target"].size(0)):
        enc = bf.encode_one(model, sample["net_input"]["src_tokens"][b], pad)
        hyp, _ = bf.greedy(model, enc, [], 6, pad, eos)
        total += bf.cost_of("edit", hyp, bf.strip(sample["target"][b], pad, eos), pad)
    assert abs(float(log["searnn_greedy_cost"]) - total) < 1e-4
    assert log["searnn_greedy_sentences"] == sample["target"].size(0)


@pytest.mark.parametrize("name", ["searnn_ll", "searnn_kl", "searnn_sll", "searnn_skl"])
def test_short_training_decreases_the_loss(data_bin, name):
    extra = ["--searnn-cost", "edit", "--rollout-max-len-b", "10", "--searnn-alpha", "10"]
    if name in ("searnn_sll", "searnn_skl"):
        extra += ["--searnn-tokens", "4"]
    _, task, model, crit = helpers.build(data_bin, "lstm", name, extra)
    sample = helpers.valid_batch(task, 16, split="train")
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    model.train()
    seen = []
    for step in range(15):
        torch.manual_seed(step)
        loss, size, _ = crit(model, sample)
        assert torch.isfinite(loss)
        opt.zero_grad()
        (loss / size).backward()
        opt.step()
        seen.append(float(loss.detach() / size))
    assert sum(seen[-3:]) / 3 < 0.9 * seen[0], seen


BAD = [
    (["--searnn-alpha", "0"], "searnn_kl", "--searnn-alpha"),
    (["--searnn-mle-label-smoothing", "1"], "searnn_skl", "--searnn-mle-label-smoothing"),
    (["--rollout-ref-prob", "1.5"], "searnn_kl", "--rollout-ref-prob"),
    (["--rollin-ref-prob", "-0.1"], "searnn_kl", "--rollin-ref-prob"),
    ([], "searnn_skl", "--searnn-tokens"),
    (["--searnn-tokens", "3"], "searnn_kl", "--searnn-tokens"),
    (["--searnn-tokens", "500"], "searnn_sll", "--searnn-tokens 500 exceeds"),
    (["--searnn-tokens", "3", "--searnn-neighbors", "2"], "searnn_skl", "--searnn-neighbors"),
    (["--searnn-cells", "-1"], "searnn_kl", "--searnn-cells"),
    (["--rollout-batch-size", "0"], "searnn_kl", "--rollout-batch-size"),
    (["--searnn-fixed-length", "--searnn-reference", "best-suffix"], "searnn_kl",
     "--searnn-reference copy"),
]


def test_defaults_are_the_authors(data_bin):
    """Mixed roll-outs drawn per sentence, alpha per cost (200 for BLEU, 50 for edit /
    Hamming), free-length outputs unless asked (or the task says so)."""
    _, _, _, crit = helpers.build(data_bin, "lstm", "searnn_kl", [])
    cfg = crit.search.cfg
    assert (cfg.rollout, cfg.rollout_mix_granularity, cfg.rollout_ref_prob) == (
        "mixed", "sentence", 0.5)
    assert crit.alpha == 200 and not cfg.fixed_length
    _, _, _, crit = helpers.build(data_bin, "lstm", "searnn_kl", ["--searnn-cost", "edit",
                                                                  "--searnn-fixed-length"])
    assert crit.alpha == 50 and crit.search.cfg.fixed_length


@pytest.mark.parametrize("extra,name,message", BAD)
def test_bad_options_fail_at_start_up(data_bin, extra, name, message):
    with pytest.raises(ValueError, match=message):
        helpers.build(data_bin, "lstm", name, extra)


def test_unknown_cost_is_rejected_by_the_parser(data_bin, capsys):
    with pytest.raises(SystemExit):
        helpers.parse_cfg(helpers.train_argv(data_bin, "lstm", "searnn_kl",
                                             ["--searnn-cost", "nope"]))
    assert "--searnn-cost" in capsys.readouterr().err


def test_non_incremental_decoder_is_refused(data_bin):
    _, task, model, crit = helpers.build(data_bin, "lstm", "searnn_kl")

    class Plain(torch.nn.Module):
        decoder = torch.nn.Linear(2, 2)

    with pytest.raises(ValueError, match="FairseqIncrementalDecoder"):
        crit.collect_costs(Plain(), helpers.valid_batch(task, 2))


def test_loss_names_are_the_engine_losses():
    assert set(losses.LOSSES) == {"ll", "kl", "llcas", "hinge"}


def test_every_search_setting_comes_from_an_option():
    """One source of defaults: the options' defaults are the engine's, and every setting of
    the engine is reached by its option."""
    import dataclasses

    from fairseq_searnn.criterions.searnn_config import (
        SEARCH_OPTIONS,
        SearnnConfig,
        search_config,
    )
    from fairseq_searnn.search import SearchConfig

    assert set(SEARCH_OPTIONS) == {f.name for f in dataclasses.fields(SearchConfig)}
    assert search_config(SearnnConfig()) == SearchConfig()
    other = {"cost": "edit", "rollin": "mixed", "rollin_ref_prob": 0.25, "rollout": "focused",
             "rollout_ref_prob": 0.75, "rollout_mix_granularity": "cell",
             "rollout_focused_steps": 7, "reference": "best-suffix", "reference_cost": "bleu1",
             "tokens": 4, "token_sampling": "biased", "sampling_temperature": 3.0,
             "neighbors": 2, "cells": 5, "max_len_a": 1.5, "max_len_b": 7,
             "fixed_length": True, "rollout_batch_size": 33, "decode_dtype": "bfloat16"}
    assert set(other) == set(SEARCH_OPTIONS)
    cfg = SearnnConfig(**{SEARCH_OPTIONS[name]: value for name, value in other.items()})
    got = search_config(cfg)
    for name, value in other.items():
        assert getattr(got, name) == value != getattr(SearchConfig(), name), name
