"""examples/nmt/converged.py end to end on 203 Multi30k pairs, at a size of seconds: the
validation halves, the baseline, equal-time fine-tunes from its weights with the protocol's
options, report-half BLEU and the SeaRNN target reports."""

import json
import re

import pytest
import torch

import helpers
from fairseq_searnn.data.nmt_prepare import read_lines


@pytest.fixture(autouse=True)
def _one_thread(_two_threads):
    torch.set_num_threads(1)


SMALL = ["--encoder-embed-dim", "16", "--encoder-hidden-size", "16", "--decoder-embed-dim",
         "16", "--decoder-hidden-size", "16", "--decoder-out-embed-dim", "16"]


def _config(log, section):
    """The ``'SECTION': {...}`` entry of the configuration fairseq-train logs."""
    return re.search(r"'" + section + r"': \{([^{}]*)\}", log).group(1)


def test_converged_protocol_end_to_end(tmp_path, shared_data):
    prepare = helpers.load_example("nmt", "prepare_multi30k")
    prep = prepare.main(["--raw-dir", str(shared_data / "multi30k" / "raw"),
                         "--out", str(tmp_path / "m30k"), "--vocab", "200",
                         "--max-lines", "203"])
    driver = helpers.load_example("nmt", "converged")
    argv = ["--prep", str(prep), "--out", str(tmp_path / "out"), "--cap-hours", "0.002",
            "--patience", "1", "--methods", "control", "searnn", "--minutes", "0.1",
            "--jobs", "2", "--", *SMALL]
    summary = driver.main(argv)
    assert len(read_lines(prep / "ref" / "select.en")) == 102
    assert len(read_lines(prep / "ref" / "report.en")) == 101
    arch = tmp_path / "out" / "lstm"
    base = (arch / "baseline" / "train.log").read_text()
    assert "'_name': 'label_smoothed_cross_entropy', 'label_smoothing': 0.1" in base
    assert "'_name': 'reduce_lr_on_plateau', 'lr_shrink': 0.5" in base
    assert summary["baseline"]["stop"] in ("cap", "patience")
    assert summary["baseline"]["select_curve"]  # validated on the select half
    assert summary["start_bleu"]["beam5"]["sentences"] == 101  # scored on the report half

    control = (arch / "control-seed1" / "train.log").read_text()
    searnn = (arch / "searnn-seed1" / "train.log").read_text()
    for log in (control, searnn):
        assert str(arch / "start-weights.pt") in log and "'lr': [0.0001]" in log
        assert "'_name': 'fixed'" in _config(log, "lr_scheduler")
        assert "'clip_norm': 5.0" in log
        assert "Stopping training due to" in log  # the wall-time budget
    assert "'label_smoothing': 0.1" in _config(control, "criterion")
    crit = _config(searnn, "criterion")
    for option in ("'_name': 'searnn_skl'", "'rollin': reference", "'rollout': mixed",
                   "'searnn_cost': bleu-smooth-all",
                   "'searnn_mle_weight': 0.3", "'searnn_mle_label_smoothing': 0.1",
                   "'searnn_cells': 6", "'searnn_token_sampling': topk-neighbors",
                   "'searnn_reference': best-suffix"):
        assert option in crit, option
    for method in ("control", "searnn"):
        (row,) = summary["runs"][method]
        assert row["updates"] >= 1 and row["stop"] == "cap"
        assert row["beam1"]["sentences"] == row["beam5"]["sentences"] == 101
    (row,) = summary["runs"]["searnn"]
    assert row["targets_start"]["cells"] > 0 and row["targets_end"]["cells"] > 0
    for name in ("summary.md", "summary.json", "curves.png", "curves-updates.png"):
        assert (arch / name).exists()
    assert json.loads((arch / "summary.json").read_text())["minutes"] == 0.1
    table = (arch / "summary.md").read_text()
    assert "| converged lstm (start) |" in table and "| searnn | 1 |" in table

    stamp = (arch / "control-seed1" / "train.log").stat().st_mtime
    driver.main(argv)  # finished runs are kept
    assert (arch / "control-seed1" / "train.log").stat().st_mtime == stamp

    # --report-only tabulates every finished run (methods and seeds of other invocations) and
    # trains nothing
    (arch / "summary.json").unlink()
    again = driver.main([*argv[:argv.index("--methods")], "--methods", "dss", "--report-only"])
    assert list(again["runs"]) == ["control", "searnn"]
    assert not (arch / "dss-seed1").exists()
    assert json.loads((arch / "summary.json").read_text())["runs"].keys() == {"control",
                                                                             "searnn"}
    with pytest.raises(SystemExit, match="--report-only: no finished baseline"):
        driver.main(["--prep", str(prep), "--out", str(tmp_path / "empty"), "--report-only"])


def test_versus_control_differences_and_standard_error():
    driver = helpers.load_example("nmt", "converged")

    def run(greedy, beam):
        return {"beam1": {"sacrebleu": greedy}, "beam5": {"sacrebleu": beam}}

    summary = {"runs": {"control": [run(38.0, 40.0), run(39.0, 40.0)],
                        "searnn": [run(38.5, 41.0), run(39.5, 39.0)],
                        "dss": [run(37.0, 39.0)]}}
    searnn, dss = driver.versus_control(summary)
    # greedy: 39.0 - 38.5 = +0.50, s.e. sqrt(0.5 / 2 + 0.5 / 2) = 0.71; 39.5 > 39.0 only
    assert searnn == ("- searnn − control, report BLEU: greedy +0.50 ± 0.71 (s.e.), 1 of 2 "
                      "seeds above every control seed; beam 5 +0.00 ± 1.00 (s.e.), 1 of 2 "
                      "seeds above every control seed")
    # a single seed: no standard error
    assert dss.startswith("- dss − control, report BLEU: greedy -1.50, 0 of 1 seeds")
    assert driver.versus_control({"runs": {"searnn": [run(1.0, 1.0)]}}) == []
