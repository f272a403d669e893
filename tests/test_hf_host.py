"""HFHost (transformers encoder-decoders): incremental steps and forks equal the model's own
teacher-forced forward; the engine on a tiny Marian and a tiny T5 equals the
one-hypothesis-at-a-time brute force, every roll-in x roll-out x reference x cost."""

import types

import pytest
import torch

pytest.importorskip("transformers")

import hf_models  # noqa: E402

import brute_force as bf  # noqa: E402
from fairseq_searnn.hf import HFDictionary, HFHost, SearnnLoss  # noqa: E402
from fairseq_searnn.search import (  # noqa: E402
    SearchConfig,
    allowed_tokens,
    prev_output_tokens,
)


@pytest.fixture(scope="module")
def models():
    """Tiny Marian and T5 in float64 (greedy ties cannot flip between code paths), briefly
    trained so that greedy decoding ends with EOS at various lengths."""
    out = {}
    for name, build in hf_models.BUILDERS.items():
        model = hf_models.quick_fit(build()).double()
        d = HFDictionary.from_model(model)
        batch = hf_models.toy_batch(model, n=3, seed=7)
        sample = SearnnLoss(model).sample(batch)
        out[name] = (model, d, sample)
    return out


@pytest.mark.parametrize("name", list(hf_models.BUILDERS))
def test_steps_and_forks_equal_the_models_forward(models, name):
    model, d, sample = models[name]
    host = HFHost(model, bos=d.eos())
    prev = prev_output_tokens(sample["target"], d.pad(), d.eos())
    B, T = prev.shape
    with torch.no_grad():
        enc = host.encode(sample["net_input"])
        # the model's own forward from its input ids and shifted labels
        own = model(input_ids=sample["net_input"]["src_tokens"],
                    attention_mask=sample["net_input"]["attention_mask"],
                    labels=sample["target"].masked_fill(sample["target"].eq(d.pad()), -100))
        torch.testing.assert_close(host.score(prev, enc)[prev.ne(d.pad())],
                                   own.logits[prev.ne(d.pad())])
        state, steps = {}, []
        for s in range(T):
            steps.append(host.step(prev[:, : s + 1], state, enc))
        torch.testing.assert_close(torch.stack(steps, 1), host.score(prev, enc))
        # fork at cell 2 over repeated and permuted rows, then continue: as a fresh pass
        state = {}
        for s in range(3):
            host.step(prev[:, : s + 1], state, enc)
        before = [t.clone() for layer in state["layers"] for t in layer]
        index = torch.tensor([2, 0, 0, 1, 2, 1])
        forked = host.fork(state, index, B)
        after = [t for layer in state["layers"] for t in layer]
        assert all(torch.equal(x, y) for x, y in zip(before, after))  # input untouched
        nxt = torch.cat([prev[index, :3], prev[index, 3:4].flip(0)], 1)
        got = host.step(nxt, forked, host.encoder_rows(enc, index))
        want = host.score(nxt, host.encoder_rows(enc, index))[:, -1]
        torch.testing.assert_close(got, want)
        assert [t.size(0) for t in forked["layers"][0]] == [6] * 4
        # an empty state takes the whole prefix at once
        torch.testing.assert_close(host.step(prev[:, :4], {}, enc), host.score(prev, enc)[:, 3])


def test_decoder_inputs_map_the_engines_bos_to_the_models_start(models):
    model, d, _ = models["marian"]
    host = HFHost(model, bos=d.eos())
    prev = torch.tensor([[d.eos(), 5, 6], [d.eos(), 7, d.pad()]])
    got = host.decoder_inputs(prev)
    assert got[:, 0].tolist() == [model.config.decoder_start_token_id] * 2
    assert torch.equal(got[:, 1:], prev[:, 1:]) and prev[0, 0] == d.eos()


CASES = [
    # (rollin, rollout, reference, cost, tokens)
    ("reference", "reference", "copy", "hamming", 0),
    ("reference", "reference", "best-suffix", "edit", 3),
    ("learned", "reference", "best-suffix", "bleu", 3),
    ("reference", "learned", "copy", "bleu1", 3),
    ("learned", "learned", "copy", "edit", 2),
    ("learned", "mixed", "best-suffix", "hamming", 4),
    ("mixed", "focused", "copy", "bleu", 3),
    ("learned", "focused", "copy", "edit", 3),
]


@pytest.mark.parametrize("name", list(hf_models.BUILDERS))
@pytest.mark.parametrize("rollin,rollout,reference,cost,tokens", CASES)
def test_collect_costs_equals_brute_force(models, name, rollin, rollout, reference, cost,
                                          tokens):
    model, d, sample = models[name]
    host = HFHost(model, bos=d.eos())
    cfg = SearchConfig(cost=cost, rollin=rollin, rollin_ref_prob=0.5, rollout=rollout,
                       reference=reference, tokens=tokens, max_len_b=6, rollout_batch_size=5,
                       rollout_focused_steps=2, rollout_mix_granularity="rollout")
    task = types.SimpleNamespace(target_dictionary=d)
    res, kinds = bf.check_against_brute_force(task, host, sample, cfg)
    if rollout == "mixed":
        assert set().union(*kinds.values()) == {False, True}
    assert res.stats["rollouts"] > 0


@pytest.mark.parametrize("name", list(hf_models.BUILDERS))
def test_full_candidate_sets_with_learned_rollouts_equal_brute_force(models, name):
    """Every symbol a candidate (the full criterions), on one sentence."""
    model, d, sample = models[name]
    one = {"net_input": {k: v[:1] for k, v in sample["net_input"].items()},
           "target": sample["target"][:1]}
    cfg = SearchConfig(cost="edit", rollin="learned", rollout="learned", max_len_b=3)
    res, _ = bf.check_against_brute_force(types.SimpleNamespace(target_dictionary=d),
                                          HFHost(model, bos=d.eos()), one, cfg)
    assert int(res.mask[0, 0].sum()) == len(allowed_tokens(d)) == len(d) - 1  # all but pad
