"""Stopping mid-epoch and resuming from checkpoint_last logs the same losses as an
uninterrupted run (random draws, schedules and data order all derive from saved counters); a
run stopped at an epoch end and resumed ends on the same weights (the tasks keep its batches);
both stop on ``--patience`` at the same validation."""

import logging

import pytest

import helpers

RUNS = {
    "searnn_kl": ("lstm", "searnn_kl", ["--searnn-cost", "edit", "--rollout-max-len-b", "8",
                                        "--rollin", "mixed", "--rollout", "mixed"]),
    "searnn_skl": ("transformer", "searnn_skl", ["--searnn-cost", "bleu", "--searnn-tokens",
                                                 "3", "--searnn-token-sampling", "biased",
                                                 "--rollout-max-len-b", "8"]),
    # task-driven schedules: roll-in probability and alpha follow the update counter
    "searnn_translation": ("lstm", "searnn_kl", [
        "--task", "searnn_translation", "--searnn-cost", "edit", "--rollout-max-len-b", "8",
        "--rollin", "mixed",
        "--searnn-rollin-schedule", "linear", "--searnn-rollin-ref-prob-start", "1",
        "--searnn-rollin-schedule-length", "8", "--searnn-alpha-growth", "1.5"]),
    # bfloat16: training forward under autocast, roll-ins and roll-outs on a bfloat16 copy
    "bfloat16": ("lstm", "searnn_skl", [
        "--task", "searnn_translation", "--searnn-autocast", "bfloat16",
        "--searnn-decode-dtype", "bfloat16", "--searnn-cost", "bleu", "--searnn-tokens", "3",
        "--rollin", "learned", "--rollout", "mixed", "--rollout-max-len-b", "8"]),
    # sequence-level risk: keyed samples (the seed of the update) and beam candidates
    "sequence_risk_sample": ("transformer", "sequence_risk", [
        "--risk-candidates", "sample", "--risk-size", "3", "--risk-max-len-b", "8"]),
    "sequence_risk_beam": ("lstm", "sequence_risk", [
        "--risk-candidates", "beam", "--risk-size", "2", "--risk-add-reference",
        "--risk-max-len-b", "8"]),
    # model-side schedules and keyed noise: epsilon decay and annealed alpha
    "dss_transformer": ("dss_transformer", "cross_entropy", [
        "--ss-feed", "soft-sample", "--ss-decay-k", "2", "--ss-alpha-growth", "1.5"]),
    "dss_lstm": ("dss_lstm", "label_smoothed_cross_entropy", [
        "--label-smoothing", "0.1", "--ss-feed", "hard-sample", "--ss-decay-k", "3"]),
}
KEYS = ("loss", "nll_loss", "gnorm", "min_cost", "learned_share", "risk")


def _train(argv):
    handler = helpers.TrainLogCollector()
    log = logging.getLogger("fairseq.logging.progress_bar")
    log.addHandler(handler)
    try:
        helpers.run_training(argv)
    finally:
        log.removeHandler(handler)
    return {row["num_updates"]: row for row in handler.rows}


@pytest.mark.parametrize("name", list(RUNS))
def test_resume_mid_epoch_equals_uninterrupted(data_bin, tmp_path, name):
    arch, criterion, extra = RUNS[name]

    def argv(save_dir, updates):
        return helpers.train_argv(data_bin, arch, criterion, [
            *extra, "--max-tokens", "150", "--max-update", str(updates), "--save-dir",
            str(save_dir), "--log-format", "json", "--disable-validation",
            "--no-epoch-checkpoints"])

    full = _train(argv(tmp_path / "full", 6))
    _train(argv(tmp_path / "split", 3))
    resumed = _train(argv(tmp_path / "split", 6))
    assert sorted(resumed) == ["4", "5", "6"] or sorted(resumed) == [4, 5, 6], resumed.keys()
    for update, row in resumed.items():
        assert float(row["epoch"]) == 1  # resumed inside the first epoch
        for key in [k for k in KEYS if k in full[update]]:
            assert row[key] == full[update][key], (update, key, row, full[update])


def _last_update(save_dir):
    return helpers.last_checkpoint(save_dir)["optimizer_history"][-1]["num_updates"]


def _patience_argv(data_bin, save_dir, updates, task, patience=3):
    """A constant validation loss (learning rate 0) under ``--maximize-best-checkpoint-metric``
    that never improves after the first validation; a validation every update."""
    return helpers.train_argv(data_bin, "lstm", "cross_entropy", [
        "--lr", "0", "--max-tokens", "150", "--max-update", str(updates),
        "--save-dir", str(save_dir), "--validate-interval-updates", "1",
        "--save-interval-updates", "1", "--no-epoch-checkpoints", "--patience", str(patience),
        "--best-checkpoint-metric", "loss", "--maximize-best-checkpoint-metric"], task=task)


@pytest.mark.parametrize("task", ["searnn_translation", "translation"])
def test_patience_survives_a_resume(data_bin, tmp_path, task):
    """A constant validation loss (learning rate 0) under ``--maximize-best-checkpoint-metric``
    never improves after the first validation, so a run with patience 3 validating every update
    stops at update 4. Stopped at update 2 (one validation since the best) and resumed in a new
    process, the plugin's task stops at update 4 as well; fairseq's own task, which does not
    save the early-stopping state, counts afresh from the first validation after the resume and
    stops at update 6."""

    def argv(save_dir, updates):
        return _patience_argv(data_bin, save_dir, updates, task)

    helpers.run_training(argv(tmp_path / "full", 20))
    helpers.run_training(argv(tmp_path / "split", 2))
    helpers.run_training(argv(tmp_path / "split", 20))  # a new process: helpers clears state
    assert _last_update(tmp_path / "full") == 4
    assert _last_update(tmp_path / "split") == (4 if task == "searnn_translation" else 6)


def test_a_run_stopped_on_patience_goes_on_without_it(data_bin, tmp_path):
    """The early-stopping state restored from the checkpoint does not stop a run resumed
    with ``--patience -1`` (fairseq's default: what a run without the option gets): it trains
    on to its limit."""
    save = tmp_path / "run"
    helpers.run_training(_patience_argv(data_bin, save, 20, "searnn_translation"))
    assert _last_update(save) == 4
    helpers.run_training(_patience_argv(data_bin, save, 9, "searnn_translation", patience=-1))
    assert _last_update(save) == 9


@pytest.mark.parametrize("task", ["searnn_translation", "translation"])
def test_resume_at_an_epoch_end_trains_on_the_same_batches(data_bin, tmp_path, task):
    """Three epochs (dropout, validation every epoch, a fixed step) against two epochs and a
    resume for the third. fairseq 0.12 builds a resumed run's batches from a permutation seeded
    by the epoch it resumes at, so its third epoch groups other sentences; the plugin's tasks
    build them as the uninterrupted run did and end on the same weights, bit for bit."""

    def argv(save_dir, epochs):
        return helpers.train_argv(data_bin, "lstm", "cross_entropy", [
            "--dropout", "0.3", "--lr-scheduler", "fixed", "--batch-size", "16",
            "--max-epoch", str(epochs), "--save-dir", str(save_dir), "--no-epoch-checkpoints"],
            task=task)

    helpers.run_training(argv(tmp_path / "full", 3))
    helpers.run_training(argv(tmp_path / "split", 2))
    helpers.run_training(argv(tmp_path / "split", 3))
    same = helpers.same_weights(helpers.last_checkpoint(tmp_path / "full"),
                                helpers.last_checkpoint(tmp_path / "split"))
    assert same == (task == "searnn_translation")
