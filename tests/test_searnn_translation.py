"""The ``searnn_translation`` task: validation metrics from summed statistics, schedules handed
to the criterion and the model, warm start, start-up checks, and the CLI keeping the best
checkpoint by the structured metric."""

import copy
import itertools
import logging
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu
import torch
from fairseq.logging import metrics

import helpers
from fairseq_searnn import validation

BIN = Path(sys.executable).parent
GEN = '{"max_len_b": 12}'  # keeps decoding short while the model is still poor
SKL = ["--searnn-tokens", "3", "--rollout-max-len-b", "10", "--searnn-cost", "edit"]
FAST_SKL = [*SKL, "--rollout", "reference"]  # no network roll-outs


def _task(data_bin, criterion="cross_entropy", extra=(), arch="transformer"):
    return helpers.build(data_bin, arch, criterion, list(extra), task="searnn_translation")


@pytest.fixture(scope="module")
def trained(data_bin):
    """(cfg, model) of a transformer trained 25 updates with cross-entropy: partly right."""
    from fairseq.trainer import Trainer

    cfg, task, model, crit = _task(data_bin, extra=["--lr", "0.02", "--eval-searnn-args", GEN])
    task.load_dataset("train")
    trainer = Trainer(cfg, task, model, crit)
    batches = task.get_batch_iterator(task.dataset("train"), max_tokens=400, seed=1)
    for _, batch in zip(range(25), itertools.chain.from_iterable(
            batches.next_epoch_itr(shuffle=True) for _ in range(20))):
        trainer.train_step([batch])
    return cfg, model.eval()


def _task_with(cfg, **options):
    """A fresh task of ``cfg.task`` with some options changed (no model or parser needed)."""
    from fairseq import tasks

    task_cfg = copy.deepcopy(cfg.task)
    for name, value in options.items():
        setattr(task_cfg, name, value)
    task = tasks.setup_task(task_cfg)
    task.load_dataset("valid")
    return task


# ------------------------------------------------------------------------------- validation


def _levenshtein(a, b):
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def _hamming(a, b):
    return sum(i >= len(a) or i >= len(b) or a[i] != b[i] for i in range(max(len(a), len(b))))


def _two_shards(logs):
    """What fairseq does with 2 processes: at each step, the two workers' logging outputs are
    summed key by key (a worker without a batch contributes zeros, like a dummy batch)."""
    steps = itertools.zip_longest(logs[0::2], logs[1::2])
    return [{k: a[k] + (b[k] if b is not None else 0) for k in a} for a, b in steps]


def test_statistics_by_hand():
    hyps, refs = ["a b c", "x", ""], ["a c", "x y z", "q"]
    # hamming: a=a, b!=c, c past the end -> 2; x=x, then 2 missing -> 2; 1 missing -> 1
    assert validation.sentence_stats("hamming", hyps, refs) == {
        "_searnn_errors": 5, "_searnn_ref_len": 6}
    assert validation.sentence_stats("edit", hyps, refs) == {
        "_searnn_errors": 4, "_searnn_ref_len": 6}
    assert validation.corpus_score("edit", {"_searnn_errors": 4, "_searnn_ref_len": 6}) == \
        pytest.approx(400 / 6)
    stats = validation.sentence_stats("bleu", ["the cat sat on the mat ."], ["the cat sat ."])
    ref = sacrebleu.corpus_bleu(["the cat sat on the mat ."], [["the cat sat ."]])
    assert stats["_searnn_bleu_sys_len"] == ref.sys_len == 7
    assert validation.corpus_score("bleu", stats) == pytest.approx(ref.score, rel=1e-12)
    assert validation.sentence_stats("edit", [], []) == {"_searnn_errors": 0,
                                                          "_searnn_ref_len": 0}


@pytest.fixture(scope="module")
def independent(trained):
    """Validation batches, and their greedy hypotheses and references decoded independently
    of the task (fairseq's SequenceGenerator, Dictionary.string)."""
    from fairseq.sequence_generator import SequenceGenerator

    cfg, model = trained
    task = _task_with(cfg)
    batches = list(task.get_batch_iterator(task.dataset("valid"), max_sentences=5, seed=1)
                   .next_epoch_itr(shuffle=False))
    d = task.target_dictionary
    gen = SequenceGenerator([model], d, beam_size=1, max_len_b=12)
    hyps, refs = [], []
    for b in batches:
        for out, ref in zip(gen.generate([model], b), b["target"]):
            hyps.append(d.string(out[0]["tokens"]))
            refs.append(d.string(ref[ref.ne(d.pad())]))
    return batches, hyps, refs


@pytest.mark.parametrize("metric", ["hamming", "edit", "bleu"])
def test_metric_equals_independent_computation_over_two_shards(trained, independent, metric):
    cfg, model = trained
    batches, hyps, refs = independent
    task = _task_with(cfg, eval_searnn_cost=metric)
    crit = task.build_criterion(cfg.criterion)
    logs = [task.valid_step(b, model, crit)[2] for b in batches]
    with metrics.aggregate(new_root=True) as agg:
        for log in _two_shards(logs):
            task.reduce_metrics([log], crit)
        value = agg.get_smoothed_values()[f"searnn_{metric}"]

    n_ref = sum(len(r.split()) for r in refs)
    if metric == "bleu":
        want = sacrebleu.corpus_bleu(hyps, [refs]).score
        assert 1 < value < 95 and value == pytest.approx(want, rel=1e-12)
    else:
        fn = _levenshtein if metric == "edit" else _hamming
        errors = sum(fn(h.split(), r.split()) for h, r in zip(hyps, refs))
        worst = sum(max(len(h.split()), len(r.split())) for h, r in zip(hyps, refs))
        assert 0 < errors < worst and value == pytest.approx(100 * errors / n_ref, rel=1e-12)
    assert len(hyps) == 24 and len(logs) == 5  # uneven shards: 3 + 2 batches
    assert task.searnn_generator.beam_size == 1  # greedy by default


def test_generation_args_and_bpe_removal(data_bin):
    _, task, _, _ = _task(data_bin, extra=["--eval-searnn-cost", "edit",
                                           "--eval-searnn-remove-bpe", "--eval-searnn-args",
                                           '{"beam": 5, "temperature": 0.5}'])
    assert task.searnn_generator.beam_size == 5 and task.searnn_generator.temperature == 0.5
    d = task.target_dictionary
    piece, a, b = d.add_symbol("X@@"), d.index("A"), d.index("B")
    assert task._text(torch.tensor([piece, a, b, d.eos()]), "U") == "XA B"
    assert validation.sentence_stats("edit", ["XA B"], ["X A B"]) == {
        "_searnn_errors": 2, "_searnn_ref_len": 3}


# -------------------------------------------------------------------------------- schedules


def test_schedule_values_at_epochs_and_updates(data_bin):
    mixed = ["--rollin", "mixed", "--rollin-ref-prob", "0.8", "--searnn-alpha", "2", *FAST_SKL]
    _, task, model, crit = _task(data_bin, "searnn_skl", mixed + [
        "--searnn-rollin-schedule", "linear", "--searnn-rollin-schedule-unit", "update",
        "--searnn-rollin-schedule-length", "10", "--searnn-rollin-ref-prob-end", "0.3",
        "--searnn-alpha-growth", "1.5", "--searnn-warmup-updates", "4"], arch="lstm")
    assert task.schedule(crit, 0) == {"rollin_ref_prob": 0.8, "alpha": 2.0, "mle_only": True}
    task.begin_epoch(3, model)
    s = task.schedule(crit, 4)
    assert s["rollin_ref_prob"] == pytest.approx(0.8 - 0.5 * 0.4) and not s["mle_only"]
    assert s["alpha"] == pytest.approx(2 * 1.5**2)
    assert task.schedule(crit, 3)["mle_only"] and task.schedule(crit, 50)["rollin_ref_prob"] == 0.3

    cfg, task, model, crit = _task(data_bin, "searnn_skl", mixed + [
        "--searnn-rollin-schedule", "inverse-sigmoid", "--searnn-rollin-schedule-unit", "epoch",
        "--searnn-rollin-schedule-k", "5", "--searnn-rollin-ref-prob-start", "1"], arch="lstm")
    for epoch in (1, 4, 30):
        task.begin_epoch(epoch, model)
        want = 5 / (5 + math.exp((epoch - 1) / 5))  # Bengio et al.'s decay, start 1 -> end 0
        assert task.schedule(crit, 1000)["rollin_ref_prob"] == pytest.approx(want, rel=1e-12)
        assert task.schedule(crit, 1000)["alpha"] == 2.0  # no growth by default
    restored = _task_with(cfg)
    restored.load_state_dict(task.state_dict())  # the checkpoint's "task_state"
    assert restored.epoch == 30 and restored.schedule(crit, 7) == task.schedule(crit, 7)


def test_begin_epoch_tells_the_model(data_bin):
    _, task, model, _ = _task(data_bin)
    seen = []
    model.set_epoch = seen.append
    task.begin_epoch(2, model)
    task.begin_epoch(3, model)
    assert seen == [2, 3] and task.epoch == 3


def test_schedules_survive_checkpoint_round_trip(data_bin, tmp_path):
    from fairseq.trainer import Trainer

    extra = ["--rollin", "mixed", *FAST_SKL, "--searnn-rollin-schedule", "inverse-sigmoid",
             "--searnn-rollin-schedule-unit", "update", "--searnn-rollin-schedule-k", "2",
             "--searnn-alpha", "1", "--searnn-alpha-growth", "1.3"]
    trainer = Trainer(*_task(data_bin, "searnn_skl", extra, arch="lstm"))
    trainer.begin_epoch(2)
    batch = helpers.mixed_length_batch(trainer.task, split="train")
    for _ in range(2):
        trainer.train_step([batch])
    path = str(tmp_path / "checkpoint.pt")
    trainer.consolidate_optimizer()
    trainer.save_checkpoint(path, {"train_iterator": {"epoch": 2}})

    restored = Trainer(*_task(data_bin, "searnn_skl", extra, arch="lstm"))
    extra_state = restored.load_checkpoint(path)
    restored.begin_epoch(extra_state["train_iterator"]["epoch"])  # as fairseq_cli.train does
    for t in (trainer, restored):
        t.train_step([batch])
    crits = [t.get_criterion() for t in (trainer, restored)]
    want = 0.5 * 2 / (2 + math.exp(2 / 2))  # from --rollin-ref-prob 0.5; 2 updates done
    for c in crits:
        assert c.rollin_ref_prob == pytest.approx(want, rel=1e-12)
        assert c.alpha == pytest.approx(1.3)  # epoch 2: one epoch of growth
    for p, q in zip(trainer.get_model().parameters(), restored.get_model().parameters()):
        assert torch.equal(p, q)


def test_warm_start_switches_after_update_n_and_logs_schedules(data_bin, tmp_path, caplog):
    argv = helpers.train_argv(data_bin, "lstm", "searnn_skl", [
        *FAST_SKL, "--rollin", "mixed", "--searnn-warmup-updates", "2", "--max-update", "4",
        "--searnn-rollin-schedule", "linear", "--searnn-rollin-ref-prob-start", "1",
        "--searnn-rollin-schedule-length", "4", "--disable-validation", "--no-save",
        "--save-dir", str(tmp_path)], task="searnn_translation")
    with caplog.at_level(logging.INFO):
        helpers.run_training(argv)
    per_update = {}
    for rec in caplog.records:
        stats = dict(re.findall(r"(\w+)=([\d.]+)", rec.getMessage()))
        if rec.name == "train_inner" and "num_updates" in stats:
            per_update[int(stats["num_updates"])] = stats
    assert sorted(per_update) == [1, 2, 3, 4]
    assert [float(per_update[u]["mle_active"]) for u in (1, 2, 3, 4)] == [1, 1, 0, 0]
    assert ["min_cost" in per_update[u] for u in (1, 2, 3, 4)] == [False, False, True, True]
    assert [float(per_update[u]["searnn_rollin_ref_prob"]) for u in (1, 2, 3, 4)] == \
        [1.0, 0.75, 0.5, 0.25]


# ---------------------------------------------------------------------------- start-up checks


@pytest.mark.parametrize("criterion,extra,message", [
    ("cross_entropy", ["--searnn-rollin-ref-prob-start", "1.5"],
     r"--searnn-rollin-ref-prob-start must be in \[0, 1\]"),
    ("cross_entropy", ["--searnn-rollin-ref-prob-end", "-0.1"],
     r"--searnn-rollin-ref-prob-end must be in \[0, 1\]"),
    ("cross_entropy", ["--searnn-rollin-schedule", "inverse-sigmoid",
                       "--searnn-rollin-schedule-k", "0"], "--searnn-rollin-schedule-k > 0"),
    ("cross_entropy", ["--searnn-rollin-schedule", "linear"],
     "--searnn-rollin-schedule-length > 0"),
    ("cross_entropy", ["--searnn-alpha-growth", "0"], "--searnn-alpha-growth must be > 0"),
    ("cross_entropy", ["--searnn-warmup-updates", "-1"], "--searnn-warmup-updates must be >= 0"),
    ("cross_entropy", ["--eval-searnn-args", "[1]"], "--eval-searnn-args must be a JSON"),
    ("cross_entropy", ["--eval-searnn-cost", "edit", "--best-checkpoint-metric", "searnn_edit",
                       "--maximize-best-checkpoint-metric"], "lower-is-better"),
    ("cross_entropy", ["--eval-searnn-cost", "bleu", "--best-checkpoint-metric",
                       "searnn_bleu"], "higher-is-better"),
    ("cross_entropy", ["--eval-searnn-cost", "edit", "--best-checkpoint-metric",
                       "searnn_hamming"], "needs --eval-searnn-cost hamming"),
    ("cross_entropy", ["--searnn-alpha-growth", "2"], "CrossEntropyCriterion has no schedule"),
    ("searnn_skl", [*SKL, "--searnn-rollin-schedule", "linear",
                    "--searnn-rollin-schedule-length", "3"], "need --rollin mixed"),
    ("searnn_sll", [*SKL, "--searnn-alpha-growth", "2"], "LL loss has no alpha"),
])
def test_bad_values_fail_at_start_up(data_bin, criterion, extra, message):
    from fairseq import tasks

    cfg = helpers.parse_cfg(helpers.train_argv(data_bin, "lstm", criterion, extra,
                                               task="searnn_translation"))
    with pytest.raises(ValueError, match=message):
        tasks.setup_task(cfg.task).build_criterion(cfg.criterion)  # as fairseq-train does


def test_stock_criterion_trains_and_skips_the_warm_up(data_bin, caplog):
    from fairseq.trainer import Trainer

    with caplog.at_level(logging.WARNING):
        cfg, task, model, crit = _task(data_bin, "cross_entropy",
                                       ["--searnn-warmup-updates", "3"], arch="lstm")
    assert "--searnn-warmup-updates ignored" in caplog.text
    out = Trainer(cfg, task, model, crit).train_step([helpers.valid_batch(task)])
    assert out["loss"] > 0


# ------------------------------------------------------------------------------------- CLI


def test_cli_keeps_the_best_checkpoint_by_searnn_edit(data_bin, tmp_path):
    save = tmp_path / "ck"
    argv = helpers.train_argv(data_bin, "lstm", "searnn_skl", [
        *FAST_SKL, "--eval-searnn-cost", "edit", "--eval-searnn-args", GEN,
        "--best-checkpoint-metric", "searnn_edit", "--keep-best-checkpoints", "1",
        "--max-epoch", "3", "--lr", "0.02", "--no-epoch-checkpoints", "--save-dir", save],
        task="searnn_translation")
    proc = subprocess.run([str(BIN / "fairseq-train"), *map(str, argv)], cwd=tmp_path,
                          env=helpers.env_without_repo(), capture_output=True, text=True,
                          timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    valid = {}  # num_updates -> searnn_edit of each validation
    for line in re.findall(r"valid on 'valid' subset \|(.*)", log):
        stats = dict(field.split() for field in line.split("|"))
        valid[int(stats["num_updates"])] = float(stats["searnn_edit"])
    assert len(valid) == 3 and len(set(valid.values())) > 1, log[-3000:]
    best = torch.load(save / "checkpoint_best.pt")
    assert best["extra_state"]["best"] == pytest.approx(min(valid.values()), abs=1e-3)
    assert valid[best["optimizer_history"][-1]["num_updates"]] == min(valid.values())
    kept = list(save.glob("checkpoint.best_searnn_edit_*.pt"))
    assert len(kept) == 1, kept  # named checkpoint.best_searnn_edit_<value>.pt
    assert float(kept[0].stem.rsplit("_", 1)[1]) == pytest.approx(min(valid.values()), abs=1e-3)
