"""analysis/equal_time.py: a table's methods at equal training time from its summary.json."""

import json

import pytest

import helpers


def _row(method, seed, minutes, curve):
    return {"name": f"{method}-seed{seed}", "method": method, "seed": seed,
            "train_wall_s": minutes * 60, "s_per_update": minutes * 60 / curve[-1][0],
            "valid_curve": curve}


def test_equal_time_from_a_summary(tmp_path, capsys):
    script = helpers.load_script("analysis/equal_time.py")
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"runs": [
        _row("control", 1, 30, [[100, 36.0], [200, 38.0]]),
        _row("refout", 1, 60, [[100, 38.5], [200, 39.0]]),
        _row("searnn", 1, 10, [[10, 30.0]])]}))   # not asked for
    lines = script.main([str(summary), "--methods", "control", "refout",
                         "--baseline", "control"])
    assert "| 1 | 30 | 38.00 (200) | 38.50 (100) |" in lines
    assert "| 1 | 30 | 38.00 (200) | 38.50 (100) |" in capsys.readouterr().out
    summary.write_text(json.dumps({"runs": [
        {**_row("control", 1, 30, [[100, 36.0], [200, 38.0]]), "updates": 200},
        {**_row("refout", 1, 60, [[100, 38.5], [150, 39.0]]), "updates": 150}]}))
    lines = script.main([str(summary), "--methods", "control", "refout",
                         "--baseline", "control", "--at", "updates"])
    assert "| 1 | 150 | 36.00 (100) | 39.00 (150) |" in lines
    assert "- refout against control at equal updates: +3.00 on average (+3.00)" \
        in "\n".join(lines)
    with pytest.raises(SystemExit):
        script.main([str(summary), "--methods", "control", "risk", "--baseline", "control"])
    assert "no run of risk" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main([str(summary), "--methods", "refout", "searnn", "--baseline", "control"])
    assert "--baseline control is not among --methods" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main([str(summary), "--methods", "control", "control", "--baseline", "control"])
    assert "give two settings or more" in capsys.readouterr().err


def test_settings_are_run_names_without_their_seed(tmp_path, capsys):
    """from_scratch.py's table has two runs of method mle at seed 1 (both source orders)."""
    script = helpers.load_script("analysis/equal_time.py")
    summary = tmp_path / "summary.json"
    runs = [_row("mle", 1, 30, [[100, 36.0], [200, 38.0]]),
            _row("mle", 1, 30, [[100, 35.0], [200, 37.0]]),
            _row("searnn", 1, 60, [[100, 38.5], [200, 39.0]])]
    for run, name in zip(runs, ("mle-d0.3-fwd-seed1", "mle-d0.3-rev-seed1",
                                "searnn-d0.3-fwd-seed1")):
        run["name"] = name
    summary.write_text(json.dumps({"runs": runs}))
    lines = script.main([str(summary), "--methods", "mle-d0.3-fwd", "searnn-d0.3-fwd",
                         "--baseline", "mle-d0.3-fwd"])
    assert "| 1 | 30 | 38.00 (200) | 38.50 (100) |" in lines
    assert "- searnn-d0.3-fwd against mle-d0.3-fwd at equal time: +0.50 on average (+0.50)" \
        in "\n".join(lines)
