"""dss_lstm: teacher forcing is the stock lstm, relaxed decisions are the model's own decisions,
gradients reach earlier steps, schedules follow the counters, and fairseq's CLI runs it."""

import dataclasses
import logging
import math
import sys
from pathlib import Path

import pytest
import torch

import helpers
from fairseq_searnn.models._lstm_steps import relaxed_decode
from fairseq_searnn.models.relaxed_feeding import RelaxedFeed

BIN = Path(sys.executable).parent


def _build(data_bin, *extra):
    return helpers.build(data_bin, "dss_lstm", extra=list(extra))


def _decode(model, batch, feed):
    net = batch["net_input"]
    encoder_out = model.encoder(net["src_tokens"], src_lengths=net["src_lengths"])
    return relaxed_decode(model.decoder, net["prev_output_tokens"], encoder_out, feed)[0]


def _own_decision_inputs(logits, prev, pad):
    """``prev`` with each non-pad input j > 0 replaced by the argmax (pad excluded) of step j-1."""
    scores = logits.detach().clone()
    scores[..., pad] = -math.inf
    decisions = scores.argmax(-1)
    own = prev.clone()
    own[:, 1:] = torch.where(prev[:, 1:].ne(pad), decisions[:, :-1], prev[:, 1:])
    return own


def test_teacher_forcing_is_the_stock_lstm(data_bin):
    _, task, model, _ = _build(data_bin, "--ss-teacher-forcing-prob", "1")
    base = helpers.same_weights_model(data_bin, model, "lstm")
    batch = helpers.mixed_length_batch(task)
    with torch.no_grad():
        model.train()
        train_logits = model(**batch["net_input"])[0]
        model.eval()
        eval_logits = model(**batch["net_input"])[0]
        base_logits = base(**batch["net_input"])[0]
        # the step-by-step loop itself, fed only gold tokens, is the stock decoder too
        feed = RelaxedFeed(model.decoder.embed_tokens, "soft-greedy", 1.0, 1.0,
                           torch.zeros(len(batch["id"]), dtype=torch.long), 0,
                           task.target_dictionary.pad())
        model.train()
        loop_logits = _decode(model, batch, feed)
    assert torch.equal(train_logits, eval_logits) and torch.equal(eval_logits, base_logits)
    assert torch.allclose(loop_logits, base_logits, atol=1e-6)


@pytest.mark.parametrize("feed,alpha", [("hard-greedy", "1"), ("soft-greedy", "1e4")])
def test_without_gold_the_model_reads_its_own_greedy_decisions(data_bin, feed, alpha):
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
    assert own[real].ne(net["prev_output_tokens"][real]).any()  # decisions differ from gold
    top2 = logits.masked_fill(torch.arange(logits.size(-1)) == pad, -math.inf).topk(2).values
    assert (top2[..., 0] - top2[..., 1])[real].min() * float(alpha) > 20 or feed == "hard-greedy"
    assert torch.allclose(logits[real], replay[real], atol=1e-5)


def _loss_at(logits, target, t, pad):
    rows = target[:, t].ne(pad)
    lprobs = torch.log_softmax(logits[rows, t], dim=-1)
    return -lprobs.gather(1, target[rows, t:t + 1]).sum()


@pytest.mark.parametrize("feed", ["soft-greedy", "soft-sample", "hard-greedy", "hard-sample"])
def test_gradient_reaches_previous_scores_only_through_soft_feeds(data_bin, feed):
    """d loss_t / d s_{t-1} via autograd == central finite differences (float64)."""
    _, task, model, _ = _build(data_bin, "--ss-teacher-forcing-prob", "0", "--ss-feed", feed,
                               "--ss-alpha", "2")
    model.double().train()
    batch = helpers.mixed_length_batch(task, n=3)
    pad, t = task.target_dictionary.pad(), 3
    vocab = len(task.target_dictionary)

    def loss_with(delta):
        feed_obj = model.dss_feed(batch["net_input"]["src_tokens"])
        step = feed_obj.step

        def perturbed(scores, gold_emb, gold_mask, position):
            return step(scores + delta if position == t else scores, gold_emb, gold_mask,
                        position)

        feed_obj.step = perturbed
        return _loss_at(_decode(model, batch, feed_obj), batch["target"], t, pad)

    delta = torch.zeros(len(batch["id"]), vocab, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(loss_with(delta), delta, allow_unused=True)
    if feed.startswith("hard"):
        assert grad is None or not grad.any()
        return
    assert grad.abs().max() > 1e-6
    h = 1e-4  # fairseq's LSTM attention masks its scores in float32: not a tighter check
    for b, y in [(0, 4), (1, 9), (2, int(grad[2].abs().argmax())), (0, int(grad[0].argmin()))]:
        bump = torch.zeros_like(delta)
        bump[b, y] = h
        with torch.no_grad():
            fd = (loss_with(bump) - loss_with(-bump)) / (2 * h)
        assert fd.item() == pytest.approx(grad[b, y].item(), rel=1e-4, abs=1e-10)


def test_gumbel_alpha_changes_the_training_forward(data_bin):
    _, task, model, _ = _build(data_bin, "--ss-teacher-forcing-prob", "0", "--ss-feed",
                               "soft-sample")
    batch = helpers.mixed_length_batch(task)
    outs = []
    for alpha in (0.5, 5.0):
        model.dss_cfg = dataclasses.replace(model.dss_cfg, ss_alpha=alpha)
        torch.manual_seed(3)  # same keyed noise for both
        with torch.no_grad():
            outs.append(model.train()(**batch["net_input"])[0])
    assert not torch.allclose(outs[0], outs[1], atol=1e-4)


def test_schedules_follow_updates_and_epochs(data_bin):
    _, _, model, _ = _build(data_bin, "--ss-decay-k", "10", "--ss-alpha", "2",
                            "--ss-alpha-growth", "1.5", "--ss-warmup-updates", "2")
    assert model.dss_schedule() == (1.0, 2.0)
    model.set_num_updates(5)
    eps, alpha = model.dss_schedule()
    assert eps == pytest.approx(10 / (10 + math.exp(0.5))) and alpha == pytest.approx(2 * 1.5**5)

    _, _, model, _ = _build(data_bin, "--ss-decay-unit", "epoch", "--ss-decay-k", "10",
                            "--ss-warmup-epochs", "1", "--ss-alpha-growth", "2")
    with pytest.raises(RuntimeError, match="set_epoch"):
        model.dss_schedule()  # the stock translation task never calls model.set_epoch
    model.set_num_updates(1000)
    model.set_epoch(1)
    assert model.dss_schedule() == (1.0, 1.0)
    model.set_epoch(3)
    eps, alpha = model.dss_schedule()
    assert eps == pytest.approx(10 / (10 + math.exp(0.2))) and alpha == pytest.approx(4.0)

    model.dss_cfg = dataclasses.replace(model.dss_cfg, ss_decay_unit="update",
                                        ss_teacher_forcing_prob=0.25, ss_warmup_updates=3)
    model.set_num_updates(2)
    assert model.dss_schedule()[0] == 1.0
    model.set_num_updates(3)
    assert model.dss_schedule()[0] == 0.25


@pytest.mark.parametrize("unit", ["update", "epoch"])
def test_schedule_survives_checkpoint_round_trip(data_bin, tmp_path, unit):
    from fairseq.trainer import Trainer

    extra = ["--ss-decay-unit", unit, "--ss-decay-k", "2", "--ss-alpha-growth", "1.3",
             "--ss-feed", "soft-sample"]

    def trainer_of(cfg, task, model, crit):
        task.begin_epoch = lambda epoch, m: m.set_epoch(epoch)  # what searnn_translation does
        return Trainer(cfg, task, model, crit)

    trainer = trainer_of(*_build(data_bin, *extra))
    trainer.begin_epoch(2)
    batch = helpers.mixed_length_batch(trainer.task, split="train")
    for _ in range(3):
        trainer.train_step([batch])
    path = str(tmp_path / "checkpoint.pt")
    trainer.consolidate_optimizer()  # as checkpoint_utils.save_checkpoint does
    trainer.save_checkpoint(path, {"train_iterator": {"epoch": 2}})

    restored = trainer_of(*_build(data_bin, *extra))
    extra_state = restored.load_checkpoint(path)
    restored.begin_epoch(extra_state["train_iterator"]["epoch"])  # as fairseq_cli.train does
    # the next update sees the same schedule and the same keyed noise: the same new weights
    for t in (trainer, restored):
        t.train_step([batch])
    after = [t.get_model().dss_schedule() for t in (trainer, restored)]
    assert after[0] == after[1] and after[0][0] < 1.0 and after[0][1] > 1.0
    for p, q in zip(trainer.get_model().parameters(), restored.get_model().parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("option,value,message", [
    ("--ss-alpha", "0", "--ss-alpha must be > 0"),
    ("--ss-alpha-growth", "0", "--ss-alpha-growth must be > 0"),
    ("--ss-teacher-forcing-prob", "1.5", r"--ss-teacher-forcing-prob must be in \[0, 1\]"),
    ("--ss-decay-k", "0", "--ss-decay-k must be > 0"),
    ("--ss-warmup-updates", "-1", "--ss-warmup-updates must be >= 0"),
])
def test_bad_values_fail_at_start_up(data_bin, option, value, message):
    with pytest.raises(ValueError, match=message):
        _build(data_bin, option, value)


def test_unknown_feed_and_adaptive_softmax_are_refused(data_bin, capsys):
    with pytest.raises(SystemExit):
        helpers.parse_cfg(helpers.train_argv(data_bin, "dss_lstm", extra=["--ss-feed", "argmax"]))
    assert "invalid choice: 'argmax'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="adaptive softmax"):
        helpers.build(data_bin, "dss_lstm", "adaptive_loss",
                      ["--adaptive-softmax-cutoff", "10"])


def test_cli_train_then_generate(data_bin, tmp_path, caplog):
    """fairseq-train's main in-process (its log shows ε, α); fairseq-generate in a subprocess."""
    save = tmp_path / "ck"
    argv = helpers.train_argv(
        data_bin, "dss_lstm", "label_smoothed_cross_entropy",
        ["--label-smoothing", "0.1", "--ss-feed", "soft-sample", "--ss-alpha", "3",
         "--ss-teacher-forcing-prob", "0.5", "--max-update", "3", "--save-dir", str(save)])
    caplog.set_level(logging.INFO)
    helpers.run_training(argv)
    log = caplog.text
    assert "ss_epsilon 0.5" in log and "ss_alpha 3" in log, log[-3000:]
    gen = _output([BIN / "fairseq-generate", data_bin, "--user-dir", helpers.USER_DIR,
                "--path", save / "checkpoint_last.pt", "--cpu", "--source-lang", "src",
                "--target-lang", "tgt", "--beam", "2", "--max-len-b", "10",
                "--gen-subset", "valid"], tmp_path)
    assert gen.count("\nH-") == 24, gen[-2000:]


def _output(cmd, cwd):
    proc = helpers.run_command(cmd, cwd)
    return proc.stdout + proc.stderr
