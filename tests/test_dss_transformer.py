"""dss_transformer: teacher forcing is the stock transformer (also through the re-traced
embedding path), step-by-step decoding reads the model's own decisions, the two-pass mode reads
the teacher-forced pass's decisions, gradients reach earlier steps, and the CLI runs it."""

import logging
import math
import sys
from pathlib import Path

import pytest
import torch

import helpers
from fairseq_searnn.models import _transformer_steps as steps
from fairseq_searnn.models.relaxed_feeding import RelaxedFeed

BIN = Path(sys.executable).parent


def _build(data_bin, *extra):
    return helpers.build(data_bin, "dss_transformer", extra=list(extra))


def _encode(model, batch):
    net = batch["net_input"]
    return model.encoder(net["src_tokens"], src_lengths=net["src_lengths"])


def _own_decision_inputs(logits, prev, pad):
    """``prev`` with each non-pad input j > 0 replaced by the argmax (pad excluded) of step j-1."""
    scores = logits.detach().clone()
    scores[..., pad] = -math.inf
    own = prev.clone()
    own[:, 1:] = torch.where(prev[:, 1:].ne(pad), scores.argmax(-1)[:, :-1], prev[:, 1:])
    return own


@pytest.mark.parametrize("extra", [[], ["--decoder-learned-pos", "--layernorm-embedding",
                                        "--decoder-normalize-before"]])
def test_teacher_forcing_is_the_stock_transformer(data_bin, extra):
    _, task, model, _ = _build(data_bin, "--ss-teacher-forcing-prob", "1", *extra)
    base = helpers.same_weights_model(data_bin, model, "transformer", extra)
    batch = helpers.mixed_length_batch(task)
    net, pad = batch["net_input"], task.target_dictionary.pad()
    prev = net["prev_output_tokens"]
    assert prev.eq(pad).any()
    gold = RelaxedFeed(model.decoder.embed_tokens, "soft-greedy", 1.0, 1.0,
                       torch.zeros(len(batch["id"]), dtype=torch.long), 0, pad)
    with torch.no_grad():
        base_logits, base_extra = base(**net)
        model.train()
        train_logits = model(**net)[0]
        enc = _encode(model, batch)
        _, step_logits, step_extra = steps.step_by_step(model.decoder, prev, enc, gold)
        _, two_logits, _ = steps.two_pass(model.decoder, prev, enc, gold)
        model.eval()
        eval_logits = model(**net)[0]
    assert torch.equal(train_logits, eval_logits) and torch.equal(eval_logits, base_logits)
    assert torch.allclose(step_logits, base_logits, atol=1e-5)
    assert torch.allclose(two_logits, base_logits, atol=1e-5)
    assert torch.allclose(step_extra["attn"][0], base_extra["attn"][0], atol=1e-5)
    for a, b in zip(step_extra["inner_states"], base_extra["inner_states"]):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("feed,alpha", [("hard-greedy", "1"), ("soft-greedy", "1e4")])
def test_step_by_step_reads_its_own_greedy_decisions(data_bin, feed, alpha):
    _, task, model, _ = _build(data_bin, "--ss-teacher-forcing-prob", "0", "--ss-feed", feed,
                               "--ss-alpha", alpha)
    batch = helpers.mixed_length_batch(task)
    net, pad = batch["net_input"], task.target_dictionary.pad()
    with torch.no_grad():
        model.train()
        logits = model(**net)[0]
        own = _own_decision_inputs(logits, net["prev_output_tokens"], pad)
        model.eval()
        replay = model(net["src_tokens"], net["src_lengths"], own)[0]
    real = net["prev_output_tokens"].ne(pad)
    assert own[real].ne(net["prev_output_tokens"][real]).any()
    top2 = logits.masked_fill(torch.arange(logits.size(-1)) == pad, -math.inf).topk(2).values
    assert (top2[..., 0] - top2[..., 1])[real].min() * float(alpha) > 20 or feed == "hard-greedy"
    assert torch.allclose(logits[real], replay[real], atol=1e-5)


def test_two_pass_reads_the_teacher_forced_decisions(data_bin):
    _, task, model, _ = _build(data_bin, "--ss-teacher-forcing-prob", "0", "--ss-feed",
                               "hard-greedy", "--ss-passes", "two")
    batch = helpers.mixed_length_batch(task)
    net, pad = batch["net_input"], task.target_dictionary.pad()
    with torch.no_grad():
        model.eval()
        teacher_forced = model(**net)[0]
        own = _own_decision_inputs(teacher_forced, net["prev_output_tokens"], pad)
        replay = model(net["src_tokens"], net["src_lengths"], own)[0]
        model.train()
        logits = model(**net)[0]
    real = net["prev_output_tokens"].ne(pad)
    assert torch.allclose(logits[real], replay[real], atol=1e-5)
    assert not torch.allclose(logits[real], teacher_forced[real], atol=1e-3)


@pytest.mark.parametrize("detach", [False, True])
def test_two_pass_first_pass_gradient_option(data_bin, detach):
    extra = ["--ss-detach-first-pass"] if detach else []
    _, task, model, _ = _build(data_bin, "--ss-teacher-forcing-prob", "0", "--ss-passes", "two",
                               *extra)
    batch = helpers.mixed_length_batch(task)
    model.train()
    feed = model.dss_feed(batch["net_input"]["src_tokens"])
    seen = []
    mix = feed.mix

    def spy(gold_emb, scores, gold_mask, positions):
        seen.append(scores.requires_grad)
        return mix(gold_emb, scores, gold_mask, positions)

    feed.mix = spy
    net = batch["net_input"]
    _, logits, _ = steps.two_pass(model.decoder, net["prev_output_tokens"], _encode(model, batch),
                                  feed, detach_first_pass=model.dss_cfg.ss_detach_first_pass)
    assert seen == [not detach] and logits.requires_grad


def _loss_at(logits, target, t, pad):
    rows = target[:, t].ne(pad)
    lprobs = torch.log_softmax(logits[rows, t], dim=-1)
    return -lprobs.gather(1, target[rows, t:t + 1]).sum()


@pytest.mark.parametrize("feed", ["soft-greedy", "hard-greedy"])
def test_gradient_reaches_previous_scores_only_through_soft_feeds(data_bin, feed, monkeypatch):
    """d loss_t / d s_{t-1} via autograd == central finite differences (float64)."""
    import fairseq.utils

    # fairseq's attention softmax runs in float32 even in a float64 model; keep it float64 so
    # that finite differences are accurate
    monkeypatch.setattr(fairseq.utils, "softmax",
                        lambda x, dim, onnx_trace=False: torch.softmax(x, dim=dim))
    _, task, model, _ = _build(data_bin, "--ss-teacher-forcing-prob", "0", "--ss-feed", feed)
    model.double().train()
    batch = helpers.mixed_length_batch(task, n=3)
    pad, t = task.target_dictionary.pad(), 3
    net = batch["net_input"]

    def loss_with(delta):
        feed_obj = model.dss_feed(net["src_tokens"])
        step = feed_obj.step

        def perturbed(scores, gold_emb, gold_mask, position):
            return step(scores + delta if position == t else scores, gold_emb, gold_mask,
                        position)

        feed_obj.step = perturbed
        _, logits, _ = steps.step_by_step(model.decoder, net["prev_output_tokens"],
                                          _encode(model, batch), feed_obj)
        return _loss_at(logits, batch["target"], t, pad)

    delta = torch.zeros(len(batch["id"]), len(task.target_dictionary), dtype=torch.float64,
                        requires_grad=True)
    (grad,) = torch.autograd.grad(loss_with(delta), delta, allow_unused=True)
    if feed.startswith("hard"):
        assert grad is None or not grad.any()
        return
    assert grad.abs().max() > 1e-6
    h = 1e-5
    for b, y in [(0, 4), (1, 9), (2, int(grad[2].abs().argmax())), (0, int(grad[0].argmin()))]:
        bump = torch.zeros_like(delta)
        bump[b, y] = h
        with torch.no_grad():
            fd = (loss_with(bump) - loss_with(-bump)) / (2 * h)
        assert fd.item() == pytest.approx(grad[b, y].item(), rel=1e-6, abs=1e-10)


def test_step_mode_refuses_activation_checkpointing(data_bin):
    with pytest.raises(ValueError, match="checkpoint-activations"):
        _build(data_bin, "--checkpoint-activations")


def test_cli_train_then_generate(data_bin, tmp_path, caplog):
    """fairseq-train's main in-process (its log shows ε, α); fairseq-generate in a subprocess."""
    save = tmp_path / "ck"
    argv = helpers.train_argv(
        data_bin, "dss_transformer", "label_smoothed_cross_entropy",
        ["--label-smoothing", "0.1", "--ss-feed", "soft-greedy", "--ss-decay-k", "2",
         "--ss-alpha-growth", "2", "--max-update", "3", "--save-dir", str(save)])
    caplog.set_level(logging.INFO)
    helpers.run_training(argv)
    log = caplog.text
    # update 3 (i = 2 updates done): epsilon = 2 / (2 + e), alpha = 2 ** 2
    assert f"ss_epsilon {2 / (2 + math.e):.4f}" in log and "ss_alpha 4 " in log, log[-3000:]
    gen = _output([BIN / "fairseq-generate", data_bin, "--user-dir", helpers.USER_DIR,
                "--path", save / "checkpoint_last.pt", "--cpu", "--source-lang", "src",
                "--target-lang", "tgt", "--beam", "2", "--max-len-b", "10",
                "--gen-subset", "valid"], tmp_path)
    assert gen.count("\nH-") == 24, gen[-2000:]


def _output(cmd, cwd):
    proc = helpers.run_command(cmd, cwd)
    return proc.stdout + proc.stderr
