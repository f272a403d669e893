"""The plateau step fairseq skips on a resume from an end-of-epoch checkpoint, replayed into
the checkpoint (:mod:`fairseq_searnn.recipes.plateau`): the resumed run ends on the weights of
the run that was never stopped."""

import pytest

import helpers
from fairseq_searnn.recipes import plateau


def _argv(data_bin, save_dir, epochs, *extra):
    """``reduce_lr_on_plateau`` (halving) with a relative threshold of 0.99: no epoch after
    the first improves on the best validation loss by 99 %, so every later epoch halves the
    step."""
    return helpers.train_argv(data_bin, "lstm", "cross_entropy", [
        "--dropout", "0.3", "--lr-scheduler", "reduce_lr_on_plateau", "--lr-shrink", "0.5",
        "--lr-threshold", "0.99", "--batch-size", "16", "--max-epoch", str(epochs),
        "--save-dir", str(save_dir), "--no-epoch-checkpoints", *extra], task="searnn_translation")


def _lr(state):
    return state["last_optimizer_state"]["param_groups"][0]["lr"]


@pytest.mark.parametrize("split_after,maximize,steps", [
    (2, False, (0.005, 0.0025)),  # a bad epoch: its halving is replayed
    (1, True, (0.005, 0.005)),  # a new best (maximised): no halving, the scheduler's best set
])
def test_a_replayed_resume_is_the_uninterrupted_run(data_bin, tmp_path, split_after, maximize,
                                                     steps):
    """Three epochs (the step 0.005, halved after epoch 2) against ``split_after`` epochs and
    a resume for the rest. Split after epoch 2, the resumed run without the replay trains
    epoch 3 at 0.005; split after epoch 1, it compares epoch 2 with the scheduler's initial
    best instead of epoch 1's and does not halve. Either way it ends on other weights; with
    the replay, on the same weights bit for bit, with the same step and scheduler state, and
    fairseq's next checkpoint drops the replay's mark."""
    extra = ["--maximize-best-checkpoint-metric"] if maximize else []
    helpers.run_training(_argv(data_bin, tmp_path / "full", 3, *extra))
    full = helpers.last_checkpoint(tmp_path / "full")
    for replayed in (False, True):
        split = tmp_path / f"split-{replayed}"
        helpers.run_training(_argv(data_bin, split, split_after, *extra))
        # written before fairseq's end-of-epoch step
        assert _lr(helpers.last_checkpoint(split)) == 0.005
        if replayed:
            assert plateau.replay(split / "checkpoint_last.pt") == (steps, "")
            assert _lr(helpers.last_checkpoint(split)) == steps[1]
        helpers.run_training(_argv(data_bin, split, 3, *extra))
        resumed = helpers.last_checkpoint(split)
        assert helpers.same_weights(full, resumed) == replayed
    assert (resumed["optimizer_history"][-1]["lr_scheduler_state"]
            == full["optimizer_history"][-1]["lr_scheduler_state"])
    assert _lr(resumed) == _lr(full) == 0.0025  # epoch 3's own step is after its checkpoint
    assert plateau.MARK not in resumed["extra_state"]


def test_replay_once_and_only_at_an_epoch_end(data_bin, tmp_path):
    """A second replay of the same file changes nothing; nor does a replay of a checkpoint
    written during an epoch (fairseq steps the plateau scheduler at epoch ends only), or of
    a run with another scheduler."""
    save = tmp_path / "run"
    helpers.run_training(_argv(data_bin, save, 2))
    assert plateau.replay(save / "checkpoint_last.pt")[0] == (0.005, 0.0025)
    assert plateau.replay(save / "checkpoint_last.pt") == (None, "replayed already")
    assert _lr(helpers.last_checkpoint(save)) == 0.0025

    during = tmp_path / "during"
    helpers.run_training(_argv(data_bin, during, 2, "--max-update", "3"))
    steps, reason = plateau.replay(during / "checkpoint_last.pt")
    assert steps is None and "during an epoch" in reason

    fixed = tmp_path / "fixed"
    helpers.run_training(helpers.train_argv(data_bin, "lstm", "cross_entropy", [
        "--max-epoch", "1", "--save-dir", str(fixed), "--lr-scheduler", "fixed"]))
    before = helpers.last_checkpoint(fixed)
    assert plateau.replay(fixed / "checkpoint_last.pt") == (
        None, f"the scheduler is fixed, not {plateau.SCHEDULER}")
    after = helpers.last_checkpoint(fixed)
    assert helpers.same_weights(before, after) and _lr(before) == _lr(after)


def test_main_prints_what_it_did(data_bin, tmp_path, capsys):
    save = tmp_path / "run"
    helpers.run_training(_argv(data_bin, save, 2))
    plateau.main([str(save / "checkpoint_last.pt")])
    plateau.main([str(save / "checkpoint_last.pt")])
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("plateau step replayed, lr 0.005 -> 0.0025")
    assert out[1].endswith("nothing to replay (replayed already)")
    with pytest.raises(SystemExit):  # a clear error naming the argument, not a traceback
        plateau.main([str(save / "missing.pt")])
    assert "checkpoint: no file" in capsys.readouterr().err


def test_an_attempt_replays_the_step_before_it_resumes(data_bin, tmp_path):
    """:func:`resumable.launch` replays the missing step into the run's
    ``checkpoint_last.pt`` before the attempt, and records it with the attempt; a later
    attempt from the same file replays nothing; a file it cannot read does not stop it."""
    from fairseq_searnn.recipes import resumable

    run = tmp_path / "run"
    helpers.run_training(_argv(data_bin, run, 2))
    command = ["true", "--stop-time-hours", "1"]
    for _ in range(2):
        resumable.launch(run, command, {"PATH": "/usr/bin:/bin"}, 60)
    first, second = resumable.load(run)["attempts"]
    assert first["plateau_step_replayed"] == "lr 0.005 -> 0.0025"
    assert "plateau_step_replayed" not in second
    assert _lr(helpers.last_checkpoint(run)) == 0.0025
    # a file it cannot read (a kill during fairseq's copy): recorded, the attempt runs anyway
    (run / "checkpoint_last.pt").write_bytes(b"not a checkpoint")
    resumable.launch(run, command, {"PATH": "/usr/bin:/bin"}, 60)
    assert "plateau_replay_failed" in resumable.load(run)["attempts"][-1]
    assert not list(run.glob("*.replay"))
