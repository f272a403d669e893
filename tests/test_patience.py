"""The early-stopping state the plugin's tasks save and restore (``tasks/_patience.py``); the
end-to-end resume is in ``test_resume.py``."""

import torch
from fairseq_cli import train
from omegaconf import OmegaConf

from fairseq_searnn.tasks import _patience


def _cfg(save_dir, **overrides):
    cfg = {"save_dir": str(save_dir), "restore_file": "checkpoint_last.pt",
           "checkpoint_suffix": "", "reset_optimizer": False, "reset_meters": False}
    return OmegaConf.create({**cfg, **overrides})


def test_snapshot_and_restore_round_trip():
    _patience.restore(None)
    assert _patience.snapshot() is None and not hasattr(train.should_stop_early, "best")
    _patience.restore({"best": 38.5, "num_runs": 2})
    assert (train.should_stop_early.best, train.should_stop_early.num_runs) == (38.5, 2)
    assert _patience.snapshot() == {"best": 38.5, "num_runs": 2}
    _patience.restore(None)
    assert _patience.snapshot() is None


def test_resumed_checkpoint_follows_fairseqs_restore_rules(tmp_path):
    assert _patience.resumed_checkpoint(_cfg(tmp_path)) is None  # first launch
    last = tmp_path / "checkpoint_last.pt"
    torch.save({"task_state": {_patience.KEY: {"best": 1.0, "num_runs": 3}}}, last)
    assert _patience.resumed_checkpoint(_cfg(tmp_path)) == str(last)
    assert _patience.saved_state(str(last)) == {"best": 1.0, "num_runs": 3}
    # fairseq drops the saved best when it resets the optimizer or the meters
    assert _patience.resumed_checkpoint(_cfg(tmp_path, reset_optimizer=True)) is None
    assert _patience.resumed_checkpoint(_cfg(tmp_path, reset_meters=True)) is None
    other = tmp_path / "other.pt"
    torch.save({"task_state": {}}, other)
    assert _patience.resumed_checkpoint(_cfg(tmp_path, restore_file=str(other))) == str(other)
    assert _patience.saved_state(str(other)) is None  # written without the state
    assert _patience.resumed_checkpoint(_cfg(tmp_path, checkpoint_suffix="-x")) is None
