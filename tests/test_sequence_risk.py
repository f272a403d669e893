"""``sequence_risk``: the expected risk against hand computations (loss and gradient), the
degenerate candidate sets, the reference and repeats, keyed samples, the criterion contract."""

import pytest
import torch

import helpers
from fairseq_searnn.costs import get_cost
from fairseq_searnn.search import content, prev_output_tokens, risk

SHORT = ["--risk-max-len-b", "8"]


def _criterion(task, name, extra):
    cfg = helpers.parse_cfg(helpers.train_argv(task.cfg.data, "lstm", name, extra))
    return task.build_criterion(cfg.criterion)


def _grads(loss, model):
    return torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)


def test_expected_risk_equals_hand_computation_with_its_gradient():
    seq_lp = torch.tensor([[-1.0, -2.5, -0.3, -9.0], [-4.0, -1e4, -1e4, -3.0]],
                          dtype=torch.float64, requires_grad=True)
    costs = torch.tensor([[0.2, 0.9, 0.5, 0.1], [0.7, 0.3, 0.6, 0.4]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True, False], [True, True, False, True]])
    got = risk.expected_risk(seq_lp, costs, mask)
    (g,) = torch.autograd.grad(got.sum(), seq_lp)
    for b in range(2):
        ks = [k for k in range(4) if mask[b, k]]
        p = [float(seq_lp[b, k].detach().exp()) for k in ks]  # exp(-1e4) underflows to 0 here
        if sum(p) == 0:
            continue
        want = sum(p[i] * float(costs[b, k]) for i, k in enumerate(ks)) / sum(p)
        assert abs(float(got[b].detach()) - want) < 1e-12
        for i, k in enumerate(ks):  # d risk / d log p(u_k) = q_k (c_k - risk)
            assert abs(float(g[b, k]) - p[i] / sum(p) * (float(costs[b, k]) - want)) < 1e-12
        assert all(float(g[b, k]) == 0 for k in range(4) if not mask[b, k])
    assert torch.isfinite(got).all() and torch.isfinite(g).all()
    # a sentence without a candidate: 0, finite gradient
    empty = risk.expected_risk(seq_lp, costs, torch.zeros_like(mask))
    assert torch.equal(empty, torch.zeros(2, dtype=empty.dtype))


def test_repeated_candidates_are_masked_keeping_the_first():
    pad = 1
    cand = torch.tensor([[[5, 6, 2], [5, 6, 2], [7, 2, 1], [5, 6, 2]],
                         [[1, 1, 1], [8, 2, 1], [8, 2, 1], [9, 2, 1]]])
    want = torch.tensor([[True, False, True, False], [False, True, False, True]])
    assert torch.equal(risk.first_occurrences(cand, pad), want)


@pytest.mark.parametrize("arch,extra", [
    ("lstm", ["--risk-candidates", "beam", "--risk-size", "3", "--risk-add-reference"]),
    ("transformer", ["--risk-candidates", "sample", "--risk-size", "4"]),
])
def test_loss_and_gradient_equal_hand_computation(data_bin, arch, extra):
    """Per sentence: 0.3 x fairseq's label-smoothed cross-entropy + 0.7 x |y| x risk, the risk
    from one teacher-forced pass per candidate slot and a set of distinct candidates."""
    _, task, model, crit = helpers.build(data_bin, arch, "sequence_risk", extra + SHORT)
    ls = _criterion(task, "label_smoothed_cross_entropy", ["--label-smoothing", "0.1"])
    sample = helpers.valid_batch(task, 8)
    pad, eos = task.target_dictionary.pad(), task.target_dictionary.eos()
    model.train()
    torch.manual_seed(4)
    loss, size, log = crit(model, sample)
    torch.manual_seed(4)
    cand, mask, costs = crit.candidates(model, sample, seed=torch.initial_seed())
    target = sample["target"]
    ref = content(target, pad, eos)
    seq_lp = []
    for k in range(cand.size(1)):  # an ordinary batched forward per candidate slot
        prev = prev_output_tokens(cand[:, k], pad, eos)
        out = model(**dict(sample["net_input"], prev_output_tokens=prev))
        lp = model.get_normalized_probs(out, log_probs=True)
        tok = lp.gather(-1, cand[:, k].unsqueeze(-1)).squeeze(-1)
        seq_lp.append(tok.masked_fill(cand[:, k].eq(pad), 0).sum(1))
    want = 0.3 * ls(model, sample)[0]
    for b in range(cand.size(0)):
        seen, terms, norm = set(), 0.0, 0.0
        for k in range(cand.size(1)):
            row = tuple(cand[b, k][cand[b, k].ne(pad)].tolist())
            if row in seen:
                continue
            seen.add(row)
            hyp = content(cand[b, k: k + 1], pad, eos)
            c = float(get_cost("bleu")(hyp, ref[b: b + 1], pad))
            assert abs(c - float(costs[b, k])) < 1e-6
            p = seq_lp[k][b].exp()
            terms, norm = terms + c * p, norm + p
        assert len(seen) == int(mask[b].sum())
        want = want + 0.7 * int(target[b].ne(pad).sum()) * terms / norm
    assert size == sample["ntokens"]
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-5)
    for a, b in zip(_grads(loss, model), _grads(want, model)):
        if a is not None or b is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-5)  # float32 sums
    if "--risk-add-reference" in extra:  # slot 0: the reference, cost 0
        assert torch.equal(cand[:, 0, : target.size(1)], target)
        assert bool(mask[:, 0].all()) and float(costs[:, 0].abs().max()) < 1e-6
        assert float(log["risk_min_cost"]) < 1e-5


def test_one_candidate_gives_its_cost_and_no_risk_gradient(data_bin):
    extra = ["--risk-size", "1", "--risk-mle-weight", "0"] + SHORT
    _, task, model, crit = helpers.build(data_bin, "lstm", "sequence_risk", extra)
    crit.search.cost_fn = lambda hyp, ref, pad: torch.linspace(0.1, 0.9, hyp.size(0))
    sample = helpers.valid_batch(task, 8)
    model.train()
    loss, _, log = crit(model, sample)
    cand, mask, costs = crit.candidates(model, sample, seed=0)
    lengths = sample["target"].ne(task.target_dictionary.pad()).sum(1)
    torch.testing.assert_close(loss, (lengths * costs[:, 0]).sum())
    torch.testing.assert_close(log["risk_sum"], costs[:, 0].sum())
    assert all(g is None or float(g.abs().max()) == 0 for g in _grads(loss, model))


def test_equal_costs_give_a_constant_risk_and_no_gradient(data_bin):
    extra = ["--risk-size", "4", "--risk-mle-weight", "0"] + SHORT
    _, task, model, crit = helpers.build(data_bin, "lstm", "sequence_risk", extra)
    crit.search.cost_fn = lambda hyp, ref, pad: torch.full((hyp.size(0),), 0.4)
    sample = helpers.valid_batch(task, 8)
    model.train()
    loss, _, log = crit(model, sample)
    lengths = sample["target"].ne(task.target_dictionary.pad()).sum(1)
    torch.testing.assert_close(loss, 0.4 * lengths.sum().float())
    assert float(log["risk_candidates"]) > sample["target"].size(0)  # several candidates
    grads = [g for g in _grads(loss, model) if g is not None]
    assert grads and all(float(g.abs().max()) == 0 for g in grads)


def _one_sentence(sample, i):
    one = {"id": sample["id"][i: i + 1], "target": sample["target"][i: i + 1],
           "net_input": {k: v[i: i + 1] for k, v in sample["net_input"].items()}}
    one["ntokens"] = int(one["target"].ne(1).sum())
    return one


def test_keyed_samples_do_not_depend_on_the_batch(data_bin):
    extra = ["--risk-candidates", "sample", "--risk-size", "5"] + SHORT
    _, task, model, crit = helpers.build(data_bin, "transformer", "sequence_risk", extra)
    sample = helpers.valid_batch(task, 8)
    pad = task.target_dictionary.pad()
    cand, _, _ = crit.candidates(model, sample, seed=11)
    for i in (0, 5):
        alone, _, _ = crit.candidates(model, _one_sentence(sample, i), seed=11)
        width = alone.size(2)
        assert torch.equal(alone[0], cand[i, :, :width])
        assert bool(cand[i, :, width:].eq(pad).all())
    other, _, _ = crit.candidates(model, sample, seed=12)
    assert not torch.equal(other, cand)
    assert len({tuple(r.tolist()) for r in cand.view(-1, cand.size(2))}) > 8  # samples vary


def test_unreduced_losses_sum_to_the_reduced_loss_and_sentence_avg(data_bin):
    extra = ["--risk-size", "3"] + SHORT
    _, task, model, crit = helpers.build(data_bin, "lstm", "sequence_risk", extra)
    _, _, _, avg = helpers.build(data_bin, "lstm", "sequence_risk", extra + ["--sentence-avg"])
    ls = _criterion(task, "label_smoothed_cross_entropy", ["--label-smoothing", "0.1"])
    sample = helpers.valid_batch(task, 8)
    B = sample["target"].size(0)
    model.train()
    loss, size, log = crit(model, sample)
    per_sentence, size2, log2 = crit(model, sample, reduce=False)
    assert per_sentence.shape == (B,) and size == size2 == sample["ntokens"]
    torch.testing.assert_close(per_sentence.sum(), loss)
    assert set(log) == set(log2)
    loss3, size3, log3 = avg(model, sample)
    assert size3 == B
    torch.testing.assert_close(loss3, 0.3 * ls(model, sample)[0] + 0.7 * log3["risk_sum"])
    model.eval()  # validation: gold NLL per sentence and the greedy decoding's cost
    ce = _criterion(task, "cross_entropy", [])
    nll, size4, log4 = crit(model, sample, reduce=False)
    assert nll.shape == (B,) and size4 == sample["ntokens"]
    torch.testing.assert_close(nll.sum(), ce(model, sample)[0])
    assert set(log4) == set(log) and log4["searnn_greedy_sentences"] == B
    assert avg(model, sample)[1] == B


def test_logged_metrics(data_bin):
    from fairseq.logging import metrics

    _, task, model, crit = helpers.build(data_bin, "lstm", "sequence_risk", SHORT)
    sample = helpers.valid_batch(task, 8)
    model.train()
    _, size, log = crit(model, sample)
    with metrics.aggregate() as agg:
        crit.reduce_metrics([log, log])
        got = agg.get_smoothed_values()
    B = sample["target"].size(0)
    assert abs(got["risk"] - float(log["risk_sum"]) / B) < 1e-3
    assert 0 <= got["min_cost"] <= got["top_cost"] <= 1
    assert 1 <= got["candidates"] <= 16


BAD = [
    (["--risk-size", "0"], "--risk-size"),
    (["--risk-mle-weight", "1.5"], "--risk-mle-weight"),
    (["--risk-label-smoothing", "1"], "--risk-label-smoothing"),
    (["--risk-max-len-a", "-1"], "--risk-max-len-a"),
]


@pytest.mark.parametrize("extra,message", BAD)
def test_bad_options_fail_at_start_up(data_bin, extra, message):
    with pytest.raises(ValueError, match=message):
        helpers.build(data_bin, "lstm", "sequence_risk", extra)


def test_unknown_candidate_source_is_rejected_by_the_parser(data_bin, capsys):
    with pytest.raises(SystemExit):
        helpers.parse_cfg(helpers.train_argv(data_bin, "lstm", "sequence_risk",
                                             ["--risk-candidates", "nope"]))
    assert "--risk-candidates" in capsys.readouterr().err


def test_defaults():
    from fairseq_searnn.criterions.sequence_risk_config import SequenceRiskConfig

    cfg = SequenceRiskConfig()
    assert (str(cfg.risk_candidates), cfg.risk_size, cfg.risk_add_reference) == ("beam", 16,
                                                                                   False)
    assert (cfg.risk_mle_weight, cfg.risk_label_smoothing) == (0.3, 0.1)
    assert (cfg.risk_max_len_a, cfg.risk_max_len_b, str(cfg.risk_cost)) == (1.5, 5, "bleu")


def test_beam_search_is_built_once_per_model_and_options(data_bin, monkeypatch):
    """Training steps reuse one ``SequenceGenerator`` holding the current weights; another
    model or beam size builds a new one; the candidates equal a fresh generator's."""
    from fairseq.sequence_generator import SequenceGenerator

    from fairseq_searnn.criterions import sequence_risk

    extra = ["--risk-candidates", "beam", "--risk-size", "3"] + SHORT
    _, task, model, crit = helpers.build(data_bin, "transformer", "sequence_risk", extra)
    _, _, other, _ = helpers.build(data_bin, "transformer", "sequence_risk", extra)
    built = []

    class Counting(SequenceGenerator):
        def __init__(self, models, *args, **kwargs):
            built.append(models[0])
            super().__init__(models, *args, **kwargs)

    monkeypatch.setattr(sequence_risk, "SequenceGenerator", Counting)
    beams = []  # fairseq sets the beam size of models that have a set_beam_size (BART)
    model.set_beam_size = beams.append
    sample = helpers.valid_batch(task, 8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    for _ in range(2):  # two training steps
        optimizer.zero_grad()
        crit(model, sample)[0].backward()
        optimizer.step()
    assert built == [model] and beams[-1] == 3
    generator = crit.generator(model)
    SequenceGenerator([model], task.target_dictionary, beam_size=5)  # another beam search
    assert beams[-1] == 5
    fresh = _criterion(task, "sequence_risk", extra)
    got = crit.candidates(model, sample, seed=1)
    assert built == [model] and crit.generator(model) is generator and beams[-1] == 3
    for a, b in zip(got, fresh.candidates(model, sample, seed=1)):  # the updated weights
        assert torch.equal(a, b)
    assert crit.generator(other) is not generator and built[-1] is other
    crit.cfg.risk_size = 2
    assert crit.generator(model).beam_size == 2 and built[-1] is model
    assert len(built) == 4  # fresh's, the other model's, the new beam size's
