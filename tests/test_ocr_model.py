"""The ``ocr_gru`` model (feature-vector sources): incremental decoding equals the full pass,
padding does not leak, and the SeaRNN engine runs on it unchanged (checked by brute force)."""

import random

import pytest
import torch

import brute_force as bf
import helpers
from fairseq_searnn.data import ocr


@pytest.fixture(scope="module")
def toy_file(tmp_path_factory):
    words = ocr.synthetic_words(60, seed=5, max_len=9)
    return ocr.write_letter_data(tmp_path_factory.mktemp("ocr_model") / "toy.data", words)


def _build(path, criterion="cross_entropy", extra=()):
    from fairseq import tasks

    argv = helpers.ocr_train_argv(path, criterion, ["--ocr-hidden-size", "12",
                                                    "--ocr-embed-dim", "6", *extra])
    cfg = helpers.parse_cfg(argv)
    torch.manual_seed(1)
    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model)
    return task, model.eval(), task.build_criterion(cfg.criterion)


def _one(model, sample, b):
    """Encoder output of sentence ``b`` of ``sample`` encoded alone, without padding."""
    n = int(sample["net_input"]["src_lengths"][b])
    return model.encoder(sample["net_input"]["src_tokens"][b:b + 1, :n],
                         src_lengths=torch.tensor([n]))


@pytest.mark.parametrize("unidirectional,proj", [(False, 0), (True, 7)])
def test_incremental_decoding_equals_the_full_pass(toy_file, unidirectional, proj):
    extra = ["--ocr-input-proj", str(proj)] + (["--ocr-unidirectional"] if unidirectional else [])
    task, model, _ = _build(toy_file, extra=extra)
    model.double()
    sample = helpers.valid_batch(task, 6)
    net = sample["net_input"]
    net = dict(net, src_tokens=net["src_tokens"].double())
    assert len(set(net["src_lengths"].tolist())) > 1  # the batch has source padding
    enc = model.encoder.forward_torchscript(net)
    prev = net["prev_output_tokens"]
    full, attn = model.decoder(prev, encoder_out=enc)
    torch.testing.assert_close(model(**net)[0], full)
    assert full.shape == (6, prev.size(1), len(task.target_dictionary))
    torch.testing.assert_close(attn.sum(-1), torch.ones(attn.shape[:2], dtype=attn.dtype))
    assert not attn.masked_select(enc["padding_mask"].unsqueeze(1)).any()

    state, steps = {}, []
    for t in range(prev.size(1)):
        out, step_attn = model.decoder(prev[:, : t + 1], encoder_out=enc, incremental_state=state)
        assert out.size(1) == 1
        steps.append(out[:, 0])
    torch.testing.assert_close(torch.stack(steps, 1), full)

    # reorder (with duplication) after two steps, as beam search and the SeaRNN forks do
    order = torch.tensor([4, 4, 0, 2])
    state = {}
    for t in range(2):
        model.decoder(prev[:, : t + 1], encoder_out=enc, incremental_state=state)
    model.decoder.reorder_incremental_state_scripting(state, order)
    enc_r = model.encoder.reorder_encoder_out(enc, order)
    for t in range(2, prev.size(1)):
        out, _ = model.decoder(prev[order, : t + 1], encoder_out=enc_r, incremental_state=state)
        torch.testing.assert_close(out[:, 0], full[order, t])


def test_padding_does_not_leak(toy_file):
    task, model, _ = _build(toy_file)
    model.double()
    sample = helpers.valid_batch(task, 6)
    net = dict(sample["net_input"], src_tokens=sample["net_input"]["src_tokens"].double())
    batch = model(**net)[0]
    for b in range(6):
        enc = _one(model, dict(sample, net_input=net), b)
        alone, _ = model.decoder(net["prev_output_tokens"][b:b + 1], encoder_out=enc)
        torch.testing.assert_close(alone[0], batch[b])


@pytest.mark.parametrize("fixed", [True, False])
def test_searnn_costs_on_the_ocr_model_match_brute_force(toy_file, fixed):
    """Learned roll-in and learned roll-outs, Hamming cost: the roll-in is the greedy decoding
    and every cost is the Hamming error of prefix + candidate + greedy continuation, each
    recomputed here with full passes on the sentence alone. Fixed-length outputs (the task's
    default): exactly one letter per image, EOS never chosen, a candidate only at the end;
    ``--ocr-free-length``: at most the word's letters + 2, EOS a candidate everywhere."""
    extra = ["--searnn-cost", "hamming", "--rollin", "learned", "--rollout", "learned",
             "--rollout-max-len-a", "1", "--rollout-max-len-b", "2"]
    task, model, crit = _build(toy_file, "searnn_kl", extra + ([] if fixed else [
        "--ocr-free-length"]))
    assert crit.search.cfg.fixed_length == fixed
    sample = helpers.valid_batch(task, 3)
    res = crit.search.collect(model, sample, seed=1, keep_hypotheses=True)
    d = task.target_dictionary
    pad, eos = d.pad(), d.eos()
    entries, hyps = res.hypotheses
    # a-z, and EOS where it is a candidate
    assert res.stats["learned_rollouts"] > 0 and int(res.mask.sum(2).max()) == 26 + (not fixed)
    rng = random.Random(0)
    picked = rng.sample(range(entries.size(0)), 40)
    with torch.no_grad():
        encs = [_one(model, sample, b) for b in range(3)]
        for b in range(3):
            n = int(sample["net_input"]["src_lengths"][b])
            bound = n if fixed else n + 2
            rollin, _ = bf.greedy(model, encs[b], [], bound, pad, eos, fixed_length=fixed)
            assert bf.strip(res.rollin[b], pad, eos) == rollin
            assert not fixed or len(rollin) == n
        for i in picked:
            b, t, k = entries[i].tolist()
            n = int(sample["net_input"]["src_lengths"][b])
            bound = n if fixed else n + 2
            a = int(res.candidates[b, t, k])
            prefix = bf.strip(res.rollin[b], pad, eos)[:t]
            hyp = prefix if a == eos else bf.greedy(model, encs[b], prefix + [a], bound, pad,
                                                     eos, fixed_length=fixed)[0]
            assert not fixed or len(hyp) == n
            assert bf.strip(hyps[i], pad) == hyp
            ref = bf.strip(sample["target"][b], pad, eos)
            want = ocr.hamming_errors(hyp, ref) / len(ref)
            assert abs(float(res.costs[b, t, k]) - want) < 1e-6


def test_searnn_loss_trains_the_feature_encoder(toy_file):
    extra = ["--searnn-cost", "hamming", "--rollin", "learned", "--rollout", "mixed",
             "--rollout-max-len-a", "1", "--rollout-max-len-b", "2", "--searnn-tokens", "5",
             "--searnn-token-sampling", "biased"]
    task, model, crit = _build(toy_file, "searnn_skl", extra)
    sample = helpers.valid_batch(task, 4)
    model.train()
    loss, size, log = crit(model, sample)
    assert torch.isfinite(loss) and size == log["searnn_cells"] > 0
    loss.backward()
    assert model.encoder.rnn.weight_ih_l0.grad.abs().sum() > 0
    assert model.decoder.embed.weight.grad.abs().sum() > 0
