"""collect_costs against one-hypothesis-at-a-time brute force (full non-incremental passes)."""

import dataclasses

import pytest
import torch

import brute_force as bf
import helpers
from fairseq_searnn.search import Search, SearchConfig


@pytest.fixture(scope="module")
def models(data_bin):
    """Tiny lstm and transformer in float64 (greedy ties cannot flip between code paths),
    briefly trained so that greedy decoding ends with EOS at various lengths."""
    out = {}
    for arch in ("lstm", "transformer"):
        _, task, model, _ = helpers.build(data_bin, arch)
        helpers.quick_fit(task, model)
        model.double().eval()
        out[arch] = (task, model, helpers.valid_batch(task, max_sentences=6))
    return out


CASES = [
    # (rollin, rollout, reference, cost, tokens)
    ("reference", "reference", "copy", "hamming", 0),
    ("reference", "reference", "best-suffix", "edit", 3),
    ("learned", "reference", "best-suffix", "bleu", 3),
    ("reference", "learned", "copy", "bleu1", 3),
    ("learned", "learned", "copy", "edit", 0),
    ("learned", "mixed", "best-suffix", "hamming", 4),
    ("mixed", "focused", "copy", "bleu", 3),
    ("learned", "focused", "copy", "edit", 3),
]


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
@pytest.mark.parametrize("rollin,rollout,reference,cost,tokens", CASES)
def test_collect_costs_equals_brute_force(models, arch, rollin, rollout, reference, cost, tokens):
    task, model, sample = models[arch]
    cfg = SearchConfig(cost=cost, rollin=rollin, rollin_ref_prob=0.5, rollout=rollout,
                       reference=reference, tokens=tokens, max_len_b=9, rollout_batch_size=7,
                       rollout_focused_steps=2)
    res, kinds = bf.check_against_brute_force(task, model, sample, cfg)
    if rollout == "mixed":
        assert set().union(*kinds.values()) == {False, True}


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_decoded_tokens_count_what_the_model_generated(models, arch):
    """``stats["decoded_tokens"]``: over the learned roll-outs (candidate EOS ends at once),
    the tokens generated after the candidate plus one end-of-sentence step each."""
    task, model, sample = models[arch]
    pad, eos = task.target_dictionary.pad(), task.target_dictionary.eos()
    cfg = SearchConfig(cost="edit", rollin="reference", rollout="learned", max_len_b=9)
    res, _ = bf.check_against_brute_force(task, model, sample, cfg)
    entries, hyps = res.hypotheses
    want = 0
    for (b, t, k), hyp in zip(entries.tolist(), hyps):
        if int(res.candidates[b, t, k]) != eos:
            want += len(bf.strip(hyp, pad)) - t  # candidate + continuation - candidate + EOS
    assert res.stats["decoded_tokens"] == want > 0
    reference = dataclasses.replace(cfg, rollout="reference")
    assert Search(reference, task.target_dictionary).collect(model, sample, 3).stats[
        "decoded_tokens"] == 0


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_greedy_rollin_reads_its_own_token_off_the_rollin(models, arch):
    """After a learned roll-in, the learned roll-out of the roll-in's own token is the roll-in:
    it is never decoded (top-k always holds it), and the result still equals brute force.
    A mixed roll-in is not greedy: nothing is read off."""
    task, model, sample = models[arch]
    eos = task.target_dictionary.eos()
    cfg = SearchConfig(cost="hamming", rollin="learned", rollout="learned", tokens=3,
                       max_len_b=9)
    res, _ = bf.check_against_brute_force(task, model, sample, cfg)
    own = res.mask & res.candidates.eq(res.rollin.unsqueeze(2)) & res.rollin.ne(eos).unsqueeze(2)
    assert res.stats["reused_rollouts"] == int(own.sum()) == int(
        (res.cells & res.rollin.ne(eos)).sum()) > 0
    cfg = dataclasses.replace(cfg, rollin="mixed", rollin_ref_prob=0.5)
    assert Search(cfg, task.target_dictionary).collect(model, sample, 3).stats[
        "reused_rollouts"] == 0


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
@pytest.mark.parametrize("tokens", [0, 3])
def test_fixed_length_equals_brute_force(models, arch, tokens):
    """Fixed-length outputs: learned roll-ins and roll-outs hold exactly |y| tokens (EOS never
    chosen before), EOS is a candidate only at the EOS cell and is the only one there."""
    task, model, sample = models[arch]
    d = task.target_dictionary
    cfg = SearchConfig(cost="hamming", rollin="learned", rollout="mixed", tokens=tokens,
                       fixed_length=True, rollout_batch_size=7)
    res, kinds = bf.check_against_brute_force(task, model, sample, cfg)
    assert set().union(*kinds.values()) == {False, True}
    entries, hyps = res.hypotheses
    ref_len = sample["target"].ne(d.pad()).sum(1) - 1  # EOS excluded
    assert torch.equal(res.rollin.ne(d.pad()).sum(1) - 1, ref_len)
    assert torch.equal(hyps.ne(d.pad()).sum(1), ref_len[entries[:, 0]])
    is_eos = res.candidates.eq(d.eos()) & res.mask
    at_end = torch.arange(res.rollin.size(1)).unsqueeze(0).eq(ref_len.unsqueeze(1))
    assert torch.equal(is_eos.any(2), at_end) and torch.equal(res.mask.sum(2)[at_end],
                                                              torch.ones(int(at_end.sum()),
                                                                         dtype=torch.long))


@pytest.mark.parametrize("granularity", ["sentence", "cell", "rollout"])
def test_mixed_rollout_granularity(models, granularity):
    """Mixed roll-outs: one policy per sentence (the authors' code: all candidates of all cells
    finished alike), per cell (the candidates of a cell alike) or per roll-out."""
    import copy

    task, model, sample = models["lstm"]
    model = copy.deepcopy(model)  # a model that always says the same word: learned roll-outs
    with torch.no_grad():  # then differ from the reference's and each entry shows its policy
        model.decoder.fc_out.bias[task.target_dictionary.nspecial] += 100.0
    cfg = SearchConfig(cost="edit", rollin="reference", rollout="mixed", tokens=4, max_len_b=9,
                       rollout_mix_granularity=granularity)
    res, kinds = bf.check_against_brute_force(task, model, sample, cfg)
    assert set().union(*kinds.values()) == {False, True}
    known = {e: next(iter(m)) for e, m in kinds.items() if len(m) == 1}  # unambiguous entries

    def policies_by(group):
        out = {}
        for e, learned in known.items():
            out.setdefault(group(e), set()).add(learned)
        return out

    per_sentence = policies_by(lambda e: e[0])
    per_cell = policies_by(lambda e: e[:2])
    if granularity == "sentence":
        assert all(len(p) == 1 for p in per_sentence.values())
    elif granularity == "cell":
        assert all(len(p) == 1 for p in per_cell.values())
        assert any(len(p) == 2 for p in per_sentence.values())
    else:
        assert any(len(p) == 2 for p in per_cell.values())


def test_cells_subsampling_and_length_limit(models):
    task, model, sample = models["lstm"]
    cfg = SearchConfig(cost="edit", rollin="learned", rollout="learned", tokens=2, cells=2,
                       max_len_a=0.5, max_len_b=1)
    bf.check_against_brute_force(task, model, sample, cfg)


def test_batched_equals_one_sentence_at_a_time(models):
    """Token for token: a sentence's roll-outs do not depend on its batch neighbours."""
    task, model, sample = models["transformer"]
    cfg = SearchConfig(cost="bleu", rollin="learned", rollout="mixed", tokens=3, max_len_b=9)
    search = Search(cfg, task.target_dictionary)
    full = search.collect(model, sample, seed=5, keep_hypotheses=True)
    for b in (0, 3):
        one = {k: (v[b:b + 1] if k != "net_input" else {
            n: x[b:b + 1] for n, x in v.items()}) for k, v in sample.items()
            if k in ("id", "target", "net_input")}
        one["ntokens"] = int(one["target"].ne(task.target_dictionary.pad()).sum())
        res = search.collect(model, one, seed=5, keep_hypotheses=True)
        T = res.rollin.size(1)
        assert torch.equal(res.rollin, full.rollin[b:b + 1, :T])
        assert torch.equal(res.candidates, full.candidates[b:b + 1, :T])
        assert torch.equal(res.mask, full.mask[b:b + 1, :T])
        assert torch.equal(res.costs[res.mask], full.costs[b:b + 1, :T][res.mask])


def test_sampled_sets_draw_a_top_ranked_unk(models):
    """Sampled losses renormalise over the candidates, so a symbol that could never be drawn
    would get no gradient and could become the model's top prediction unchecked: sampled sets
    draw from every symbol the decoder can emit, <unk> and <s> included (never pad)."""
    task, model, sample = models["lstm"]
    d = task.target_dictionary
    search = Search(SearchConfig(tokens=2, token_sampling="topk"), d)
    batch = search.roll_in(model, sample, seed=1)
    B, T = batch.rollin.shape
    lprobs = torch.full((B, T, len(d)), -20.0)
    lprobs[:, :, d.unk()], lprobs[:, :, d.bos()], lprobs[:, :, d.pad()] = -0.1, -2.0, 0.0
    res = search.finish(batch, lprobs)
    drawn = res.candidates[:, :, 2:][res.mask[:, :, 2:]]
    assert drawn.numel() > 0 and set(drawn.tolist()) == {d.unk(), d.bos()}
