"""examples/nmt/finetune.py: every method's fairseq-train options (read back through fairseq's
parser), the report of finished fine-tunes (paired bootstrap against the control, starts,
equal-time table), and the whole driver on 120 Multi30k pairs at a size of seconds."""

import json
import os
import subprocess

import pytest
import torch

import helpers
from fairseq_searnn.data import nmt_prepare as nmt
from fairseq_searnn.recipes import resumable


@pytest.fixture(autouse=True)
def _one_thread(_two_threads):
    torch.set_num_threads(1)


def _driver():
    return helpers.load_example("nmt", "finetune")


def _fake_fairseq(tmp_path):
    """A ``fairseq-train`` that prints its arguments one a line, and a
    ``fairseq-searnn-user-dir`` that does not import fairseq."""
    fake = tmp_path / "fake-bin"
    fake.mkdir(exist_ok=True)
    (fake / "fairseq-train").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (fake / "fairseq-searnn-user-dir").write_text(f"#!/bin/sh\necho {helpers.USER_DIR}\n")
    for name in ("fairseq-train", "fairseq-searnn-user-dir"):
        (fake / name).chmod(0o755)
    return fake


def _prep(tmp_path, splits=("train", "valid", "test")):
    prep = tmp_path / "prep"
    prep.mkdir()
    nmt.write_info(prep, {"src": "de", "tgt": "en", "bpe": "sentencepiece",
                          "splits": list(splits)})
    return prep


def _cfg(driver, args, prep, fake, method, precision="float32"):
    env, options = driver.train_command(args, method, precision)
    full = dict(driver.nmt_runs.train_env(prep, prep / "save", 1, **env))
    full["PATH"] = f"{fake}{os.pathsep}{os.environ['PATH']}"
    argv = subprocess.run(["bash", str(helpers.REPO / "examples/nmt/train.sh"), *options,
                           "--stop-time-hours", "1.0"], env=full, capture_output=True,
                          text=True, check=True).stdout.splitlines()
    return argv, helpers.parse_cfg(argv)


def test_every_method_reaches_fairseq_with_the_protocol(tmp_path):
    driver = _driver()
    prep, fake = _prep(tmp_path), _fake_fairseq(tmp_path)
    args = driver.parse(["--prep", str(prep), "--out", str(tmp_path / "out")])
    crit = {}
    for method, (_, _, every) in driver.METHODS.items():
        argv, cfg = _cfg(driver, args, prep, fake, method)
        crit[method] = cfg.criterion
        assert "--searnn-autocast" not in argv
        # the same model, data, step, validation and stopping rule for every method
        assert cfg.model.arch == "lstm" and cfg.model.dropout == 0.3
        assert cfg.dataset.batch_size == 64 and cfg.dataset.valid_subset == "valid"
        assert cfg.dataset.max_valid_steps is None  # the whole validation split
        assert cfg.dataset.validate_interval_updates == every
        assert cfg.checkpoint.save_interval_updates == every
        assert cfg.optimization.lr == [1e-4] and cfg.optimization.clip_norm == 5
        assert cfg.lr_scheduler._name == "fixed"
        assert cfg.checkpoint.patience == 6 and cfg.optimization.stop_time_hours == 1.0
        assert cfg.checkpoint.best_checkpoint_metric == "searnn_bleu"
        assert cfg.checkpoint.maximize_best_checkpoint_metric
    assert (crit["control"]._name, crit["control"].label_smoothing) == (
        "label_smoothed_cross_entropy", 0.1)
    searnn = [m for m in driver.METHODS if m not in ("control", "risk")]
    for method in searnn:
        c = crit[method]
        assert (c._name, c.searnn_alpha, c.searnn_cost) == ("searnn_skl", 200,
                                                            "bleu-smooth-all")
        assert (c.searnn_tokens, c.searnn_neighbors, c.searnn_cells) == (5, 2, 6)
        assert c.searnn_mle_label_smoothing == 0.1
        assert c.searnn_mle_weight == (0.5 if method == "searnn_w05" else 0.3)
        assert c.searnn_sampled_softmax == ("full" if method.endswith("_full")
                                            else "restricted")
        assert c.rollout == ("mixed" if method.startswith("searnn") else "reference")
        assert c.rollin == ("learned" if method == "learned_refout" else "reference")
    risk = crit["risk"]
    assert (risk._name, risk.risk_candidates, risk.risk_size, risk.risk_cost) == (
        "sequence_risk", "beam", 4, "bleu")
    assert (risk.risk_mle_weight, risk.risk_label_smoothing) == (0.3, 0.1)
    # the diagnoses' target report is searnn's criterion
    argv = _cfg(driver, args, prep, fake, "control")[0]
    at = argv.index("--label-smoothing")
    diag = helpers.parse_cfg([*argv[:at], *argv[at + 2:], *driver.searnn_criterion()])
    diag = diag.criterion
    for key, value in crit["searnn"].items():
        if not key.startswith("searnn_mle"):
            assert diag[key] == value, key
    # bfloat16: autocast, and the decoding of the SeaRNN and risk criterions
    for method in ("control", "searnn", "risk"):
        argv, cfg = _cfg(driver, args, prep, fake, method, "bfloat16")
        assert cfg.task.searnn_autocast == "bfloat16"
        assert {"control": "--searnn-autocast", "searnn": "--searnn-decode-dtype",
                "risk": "--risk-decode-dtype"}[method] in argv
    assert cfg.criterion.risk_decode_dtype == "bfloat16"
    args = driver.parse(["--prep", str(prep), "--out", str(tmp_path / "out"), "--lr", "3e-5",
                         "--risk-size", "2", "--patience", "3", "--arch", "transformer"])
    _, cfg = _cfg(driver, args, prep, fake, "risk")
    assert cfg.criterion.risk_size == 2 and cfg.optimization.lr == [3e-5]
    assert cfg.checkpoint.patience == 3 and cfg.model.arch == "transformer"
    # --patience 0: no early stopping (fairseq's default, -1)
    args = driver.parse(["--prep", str(prep), "--out", str(tmp_path / "out"), "--patience", "0"])
    argv, cfg = _cfg(driver, args, prep, fake, "refout")
    assert "--patience" not in argv and cfg.checkpoint.patience == -1


def test_bad_options_fail_at_start_up(tmp_path):
    driver = _driver()
    prep = _prep(tmp_path, splits=("train", "valid"))
    base = ["--prep", str(prep), "--out", str(tmp_path / "out")]
    for extra in (["--start", str(tmp_path / "missing.pt")], ["--cap-minutes", "0"],
                  ["--risk-size", "0"], ["--methods", "nope"], ["--patience", "-1"],
                  ["--start-patience", "0"], ["--", "--patience", "3"],
                  ["--", "--patience=3"]):
        with pytest.raises(SystemExit):
            driver.parse([*base, *extra])
    with pytest.raises(SystemExit, match="--test-raw"):
        driver.main(base)  # no test split and no raw test files
    nmt.write_info(prep, {**nmt.prep_info(prep), "splits": ["train", "valid", "test"]})
    with pytest.raises(SystemExit, match="--start"):
        driver.main(base)  # the start is needed until it has been trained


def test_the_stopping_rule_is_the_invocations(tmp_path, monkeypatch, capsys):
    """A fine-tune stopped on patience is finished for an invocation with patience; under
    ``--patience 0`` it goes on from where it stopped to the cap, with its own settings but
    without ``--patience`` (also from a record written with ``--patience`` among its
    options), and is then finished for both."""
    driver = _driver()
    prep, fake = _prep(tmp_path), _fake_fairseq(tmp_path)
    (fake / "fairseq-train").write_text(
        '#!/bin/sh\nprintf "%s\\n" "$@"\ncase " $* " in\n'
        '  *" --patience "*) echo "early stop since valid performance hasn\'t improved";;\n'
        '  *) echo "Stopping training due to cumulative_training_time: 2.1 > '
        'stop_time_hours: 2.0 hour(s)";;\nesac\necho "done training in 9 seconds"\n')
    env_of = driver.nmt_runs.train_env
    monkeypatch.setattr(driver.nmt_runs, "train_env", lambda *a, **k: {
        **env_of(*a, **k), "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"})
    out = tmp_path / "out"
    run = out / "lstm" / "refout-seed1"

    def invoke(patience):
        args = driver.parse(["--prep", str(prep), "--out", str(out), "--patience",
                             str(patience), "--cap-minutes", "120"])
        driver.train(args, "bfloat16", run.name, "refout", 1, tmp_path / "w.pt", 120,
                     args.patience)
        attempts = resumable.attempts((run / resumable.LOG).read_text())
        return len(attempts), attempts[-1]

    count, last = invoke(6)
    assert count == 1 and "--patience\n6\n" in last
    assert resumable.status(run, 120) == "finished"
    assert invoke(6)[0] == 1
    # a record as older versions wrote it: --patience among the options
    record = resumable.load(run)
    assert record["options"][-2:] == ["--patience", "6"]
    options = record["options"][:-2]
    resumable.save(run, {**record, "options": ["--patience", "6", *options]})
    capsys.readouterr()
    count, last = invoke(0)
    assert count == 2 and "--patience" not in last and "--rollout\nreference\n" in last
    assert "own settings" not in capsys.readouterr().out
    assert "--finetune-from-model" in last and "--searnn-decode-dtype\nbfloat16\n" in last
    record = resumable.load(run)
    assert record["options"] == options and record["attempts"][-1]["patience"] == 0
    assert resumable.status(run, 120, early_stop=False) == "finished"
    assert invoke(0)[0] == invoke(6)[0] == 2


def _finished(run, method, seed, bleu, hyps, stop="patience", minutes=30.0):
    """A run directory as training, scoring and timing leave it (without checkpoints)."""
    run.mkdir(parents=True)
    resumable.save(run, {"method": method, "seed": seed, "init": "w.pt",
                         "precision": "bfloat16", "env": {}, "options": [],
                         "attempts": [{"cap_minutes": 60, "commit": "abc1234"}]})
    end = {"patience": "early stop since valid performance hasn't improved for last 6 runs\n",
           "cap": "Stopping training due to cumulative_training_time: 1.1 > stop_time_hours: "
                  "1.0 hour(s)\n"}[stop]
    valid = ("| INFO | valid | epoch 001 | valid on 'valid' subset | loss 5 | searnn_bleu {v} "
             "| wps 9 | num_updates {u}\n")
    (run / resumable.LOG).write_text(
        resumable.HEADER + "1 | cap_minutes 60\n" + valid.format(v=bleu - 2, u=100)
        + valid.format(v=bleu - 1, u=200) + "epoch 001 | num_updates 300\n" + end
        + "done training in 99 seconds\n")
    (run / "wall.json").write_text(json.dumps({"training_seconds": minutes * 60}))
    (run / "test-bleu.json").write_text(json.dumps({
        f"beam{b}": {"sacrebleu": bleu + b / 10, "signature": "nrefs:1|case:mixed"}
        for b in (1, 5)}))
    for b in (1, 5):
        nmt.write_lines(run / f"test-beam{b}.txt", hyps)


def test_report_of_finished_fine_tunes(tmp_path):
    driver = _driver()
    refs = [f"a dog number {i} runs on the green grass of the park" for i in range(40)]
    data = _prep(tmp_path)
    nmt.write_lines(data / "ref" / "test.en", refs)
    out = tmp_path / "out"
    folder = out / "lstm"
    worse = [" ".join(r.split()[:6]) for r in refs]
    _finished(folder / "start", "control", 1, 38.0, worse, stop="cap", minutes=120)
    (folder / "start-weights.pt").write_text("")
    (folder / "converged-test-bleu.json").write_text(json.dumps({
        f"beam{b}": {"sacrebleu": 37.0 + b / 10} for b in (1, 5)}))
    (folder / "converged-valid-bleu.json").write_text(json.dumps({
        "beam1": {"sacrebleu": 36.5}}))
    for seed in (1, 2):
        _finished(folder / f"control-seed{seed}", "control", seed, 38.0, worse)
        _finished(folder / f"risk-seed{seed}", "risk", seed, 39.0, refs, minutes=60)
    _finished(folder / "searnn-seed1", "searnn", 1, 37.0, worse, stop="cap")
    summary = driver.main(["--prep", str(data), "--out", str(out), "--report-only",
                           "--no-diagnose"])
    names = [r["name"] for r in summary["runs"]]
    assert names == ["control-seed1", "control-seed2", "searnn-seed1", "risk-seed1",
                     "risk-seed2"]
    risk = summary["runs"][3]
    assert risk["test"] == {"beam1": 39.1, "beam5": 39.5} and risk["updates"] == 300
    assert risk["p"]["control"]["beam1"]["p"] < 0.05
    assert risk["p"]["control"]["beam1"]["delta"] > 0
    assert summary["runs"][2]["p"]["control"]["beam5"]["delta"] == 0  # same output
    assert "control" not in summary["runs"][0]["p"]
    table = (folder / "summary.md").read_text()
    assert "| risk | 2 | 39.10 ± 0.00 | 39.10, 39.10 |" in table
    assert "- risk against the control (paired bootstrap, p < 0.05): greedy " in table
    assert "better in 2 and worse in 0 of 2 seeds" in table
    assert "| converged (--start) | 37.10 | 37.50 | 36.50 | - |" in table
    # against the start's output (the short one): risk gains in both seeds, the control none
    assert "- risk against the start (paired bootstrap, p < 0.05): greedy " in table
    assert risk["p"]["start"]["beam5"]["delta"] > 0 and risk["p"]["start"]["beam5"]["p"] < 0.05
    assert summary["runs"][0]["p"]["start"]["beam1"]["delta"] == 0
    assert "| start (control until patience) | 38.10 | 38.50 | 37.00 | 300 | 120 | cap |" \
        in table
    # equal time: risk at 12 s an update validates at 20 and 40 minutes, the control at 10
    # and 20
    assert "| risk | 12.00 | - | 37.00 | 38.00 | 38.00 |" in table
    assert "| control | 6.00 | 36.00 | 37.00 | 37.00 | 37.00 |" in table
    # seed by seed at the shorter run's 30 minutes (searnn, one seed, stays out)
    assert "| seed | common time (min) | control | risk |" in table
    assert "| 1 | 30 | 37.00 (200) | 37.00 (100) |" in table
    assert "- risk against control at equal time: +0.00 on average (+0.00, +0.00), higher in 0 " \
           "and lower in 0 of 2 seeds" in table
    for name in ("curves.png", "curves-updates.png", "summary.json"):
        assert (folder / name).exists()


def test_finetune_end_to_end(tmp_path, shared_data):
    """A tiny converged model; the start continued from it to a cap, then the control and
    risk fine-tuned from the start to a cap, scored, tested and diagnosed; a second
    invocation trains, scores and diagnoses nothing again."""
    driver = _driver()
    prep = helpers.tiny_multi30k(tmp_path / "m30k", shared_data)
    small = helpers.TINY_LSTM
    converged = tmp_path / "converged"
    env = driver.nmt_runs.train_env(prep, converged, 1, METHOD="mle", MAX_UPDATE="8")
    subprocess.run(["bash", str(helpers.REPO / "examples/nmt/train.sh"), *small],
                   env=env, check=True, capture_output=True)
    out = tmp_path / "out"
    argv = ["--prep", str(prep), "--out", str(out), "--start",
            str(converged / "checkpoint_last.pt"), "--precision", "float32",
            "--patience", "50", "--risk-size", "2", "--diagnose-sentences", "8",
            "--start-cap-minutes", "0.03", "--methods", "control", "risk", "--jobs", "2",
            "--cap-minutes", "0.03", "--", *small]
    summary = driver.main(argv)
    start = out / "lstm" / "start"
    assert resumable.status(start, 0.03) == "finished"
    # the start stops on --start-patience (6), the fine-tunes on --patience
    assert resumable.load(start)["options"][-2:] == ["--patience", "6"]
    for name in ("control-seed1", "risk-seed1"):
        assert resumable.load(out / "lstm" / name)["options"][-2:] == ["--patience", "50"]
    assert "Loaded checkpoint" in (start / resumable.LOG).read_text()
    assert [r["name"] for r in summary["runs"]] == ["control-seed1", "risk-seed1"]
    for row in summary["runs"]:
        run = out / "lstm" / row["name"]
        assert resumable.load(run)["init"] == str(out / "lstm" / "start-weights.pt")
        assert row["stop"] == "cap" and row["updates"] > 0
        assert row["diagnosis"]["targets"]["cells"] > 0
        assert row["diagnosis"]["teacher_forced"]["entropy"] > 0
    assert set(summary["runs"][1]["p"]["control"]) == {"beam1", "beam5"}
    for name in ("converged-test-bleu.json", "converged-valid-bleu.json"):
        assert (out / "lstm" / name).exists()
    table = (out / "lstm" / "summary.md").read_text()
    assert "| start (control until patience) |" in table and "| risk | " in table
    files = [out / "lstm" / r["name"] / name for r in summary["runs"]
             for name in (resumable.LOG, "test-bleu.json", "diagnose/diagnose.json")]
    stamps = [f.stat().st_mtime for f in files]
    driver.main(argv)
    assert stamps == [f.stat().st_mtime for f in files]
