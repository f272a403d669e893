"""Runs that outlive their process (fairseq_searnn.recipes.resumable): attempts in one log,
the status that decides whether a run trains again, and the cached files of a run that does."""

import pytest

from fairseq_searnn.recipes import replication, resumable

VALID = ("| INFO | valid | epoch 001 | valid on 'valid' subset | loss 5.3 | searnn_bleu {v} "
         "| wps 900 | num_updates {u}\n")
CAP = "Stopping training due to cumulative_training_time: 0.6 > stop_time_hours: 0.5 hour(s)\n"


def _fake(tmp_path, output, code=0):
    """A command that prints its arguments, then ``output``, and exits with ``code``."""
    n = len(list(tmp_path.glob("fake*.sh")))
    (tmp_path / f"fake{n}.txt").write_text(output)
    script = tmp_path / f"fake{n}.sh"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@"\ncat {tmp_path / f"fake{n}.txt"}\n'
                      f"exit {code}\n")
    script.chmod(0o755)
    return [str(script), "--stop-time-hours", "0.5"]


def test_attempts_split_the_log_at_their_headers():
    log = ("stray line\n" + resumable.HEADER + "1 | cap_minutes 30\nx\n"
           + resumable.HEADER + "2 | cap_minutes 60\ny\ndone training\n")
    first, second, third = resumable.attempts(log)
    assert first == "stray line\n" and third.startswith(resumable.HEADER + "2 |")
    assert "x" in second and "done training" in third
    assert resumable.attempts("") == []
    assert len(resumable.attempts(resumable.HEADER + "1 | a\n")) == 1


def test_status_and_attempts(tmp_path):
    run = tmp_path / "run"
    assert resumable.status(run, 30) == "new"
    env = {"PATH": "/usr/bin:/bin"}
    # stopped at its cap: finished for that cap, to be continued for a larger one
    resumable.launch(run, _fake(tmp_path, VALID.format(v=5.0, u=100) + CAP
                                + "done training in 3 seconds\n"),
                     env, 30, commit="abc1234", precision="float32")
    assert resumable.status(run, 30) == "finished"
    assert resumable.status(run, 30, early_stop=False) == "finished"
    assert resumable.status(run, 45) == "capped"
    record = resumable.load(run)
    assert record["attempts"][0]["cap_minutes"] == 30
    assert record["attempts"][0]["commit"] == "abc1234"
    # a failed attempt leaves the run interrupted; its log is kept
    (run / "score.json").write_text("{}")
    (run / "diagnose").mkdir()
    with pytest.raises(RuntimeError, match="failed"):
        resumable.launch(run, _fake(tmp_path, VALID.format(v=7.0, u=200), code=3), env, 45,
                         stale=["score.json", "diagnose"])
    assert resumable.status(run, 45) == "interrupted"
    assert not (run / "score.json").exists() and not (run / "diagnose").exists()
    # a validation repeated by a later attempt counts once (its last value)
    resumable.launch(run, _fake(tmp_path, VALID.format(v=7.5, u=200) + VALID.format(v=8.0, u=300)
                                + "early stop since valid performance hasn't improved for "
                                "last 4 runs\ndone training\n"), env, 45)
    assert resumable.status(run, 45) == resumable.status(run, 600) == "finished"  # patience
    # ... unless no early stopping is asked: then it goes on to the cap
    assert resumable.status(run, 45, early_stop=False) == "early"
    text = (run / resumable.LOG).read_text()
    assert resumable.curve(text, "searnn_bleu") == [(100, 5.0), (200, 7.5), (300, 8.0)]
    assert len(resumable.attempts(text)) == 3
    assert replication.stop_reason(resumable.last_attempt(run)) == "patience"
    assert replication.stop_reason(resumable.attempts(text)[0]) == "cap"
    # patience met on the validation fairseq makes at the cap: the run has reached its cap
    resumable.launch(run, _fake(tmp_path, VALID.format(v=8.0, u=400) + CAP
                                + "early stop since valid performance hasn't improved for "
                                "last 4 runs\ndone training\n"), env, 45)
    assert resumable.status(run, 45, early_stop=False) == "finished"


def test_stop_reason_knows_the_minimum_step():
    text = ("stopping training because current learning rate (7.8125e-06) is smaller than or "
            "equal to minimum learning rate (--stop-min-lr=1e-05)\ndone training in 9 s\n")
    assert replication.stop_reason(text) == "min-lr"


def test_training_seconds_read_from_the_checkpoint(tmp_path):
    import torch

    torch.save({"extra_state": {"previous_training_time": 123.5}}, tmp_path / "c.pt")
    assert resumable.training_seconds(tmp_path / "c.pt") == 123.5
