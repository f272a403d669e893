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
    want, cells = 0.0, 0
    for b, t in res.mask.any(-1).nonzero().tolist():
        ks = res.mask[b, t].nonzero().flatten()
        lp = lprobs[b, t, res.candidates[b, t, ks]]
        lp = lp - torch.logsumexp(lp, 0)
        c = res.costs[b, t, ks]
        if loss == "kl":
            want = want - (torch.softmax(-5 * c, 0) * lp).sum()
        else:
            want = want - lp[int(torch.argmin(c))]
        cells += 1
    assert size == cells
    torch.testing.assert_close(loss_value, want, rtol=1e-5, atol=1e-5)


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
    (["--rollout-ref-prob", "1.5"], "searnn_kl", "--rollout-ref-prob"),
    (["--rollin-ref-prob", "-0.1"], "searnn_kl", "--rollin-ref-prob"),
    ([], "searnn_skl", "--searnn-tokens"),
    (["--searnn-tokens", "3"], "searnn_kl", "--searnn-tokens"),
    (["--searnn-tokens", "500"], "searnn_sll", "--searnn-tokens 500 exceeds"),
    (["--searnn-tokens", "3", "--searnn-neighbors", "2"], "searnn_skl", "--searnn-neighbors"),
    (["--searnn-cells", "-1"], "searnn_kl", "--searnn-cells"),
    (["--rollout-batch-size", "0"], "searnn_kl", "--rollout-batch-size"),
]


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
