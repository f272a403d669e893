"""examples/nmt/from_scratch.py: every method's fairseq-train options (read back through
fairseq's parser), which runs an invocation trains or continues, the report of finished runs,
and the whole driver on 150 Multi30k pairs at a size of seconds."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

import helpers
from fairseq_searnn.data import nmt_prepare as nmt
from fairseq_searnn.recipes import replication, resumable


@pytest.fixture(autouse=True)
def _one_thread(_two_threads):
    torch.set_num_threads(1)


def _driver():
    return helpers.load_example("nmt", "from_scratch")


def _fake_fairseq(tmp_path, tail=""):
    """A directory holding a ``fairseq-train`` that prints its arguments one a line, then
    ``tail`` (shell), and a ``fairseq-searnn-user-dir`` that does not import fairseq."""
    fake = tmp_path / "fake-bin"
    fake.mkdir(exist_ok=True)
    (fake / "fairseq-train").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n' + tail)
    (fake / "fairseq-searnn-user-dir").write_text(f"#!/bin/sh\necho {helpers.USER_DIR}\n")
    for name in ("fairseq-train", "fairseq-searnn-user-dir"):
        (fake / name).chmod(0o755)
    return fake


def _prep(tmp_path):
    """A prepared directory as far as train.sh reads it (prep.json)."""
    prep = tmp_path / "prep"
    prep.mkdir()
    nmt.write_info(prep, {"src": "de", "tgt": "en", "bpe": "sentencepiece",
                          "splits": ["train", "valid", "test"]})
    return prep


def _train_argv(driver, args, prep, fake, method, dropout=0.3, precision="float32"):
    """The fairseq-train arguments train.sh makes of a run's settings."""
    env, options = driver.train_command(args, method, dropout, precision)
    full = dict(driver.nmt_runs.train_env(prep, prep / "save", 1, **env))
    full["PATH"] = f"{fake}{os.pathsep}{os.environ['PATH']}"
    out = subprocess.run(["bash", str(helpers.REPO / "examples/nmt/train.sh"), *options,
                          "--stop-time-hours", "2.0"], env=full, capture_output=True,
                         text=True, check=True).stdout
    return out.splitlines()


def test_every_method_reaches_fairseq_with_the_protocol(tmp_path):
    driver = _driver()
    prep, fake = _prep(tmp_path), _fake_fairseq(tmp_path)
    args = driver.parse(["--prep", str(prep), "--out", str(tmp_path / "out")])
    cfgs = {}
    for method in driver.METHODS:
        argv = _train_argv(driver, args, prep, fake, method)
        assert "--searnn-autocast" not in argv and "--searnn-decode-dtype" not in argv
        cfg = cfgs[method] = helpers.parse_cfg(argv)
        # the same model, data, step, validation and stopping rule for every method
        assert cfg.model.arch == ("dss_lstm" if method == "dss" else "lstm")
        assert cfg.model.encoder_bidirectional and cfg.model.encoder_layers == 1
        assert cfg.model.encoder_hidden_size == cfg.model.decoder_hidden_size == 256
        assert cfg.model.dropout == 0.3
        assert cfg.dataset.batch_size == 64 and cfg.dataset.required_batch_size_multiple == 1
        assert cfg.dataset.validate_interval == 1 and cfg.dataset.valid_subset == "valid"
        assert cfg.dataset.max_valid_steps is None  # the whole validation split
        assert cfg.optimization.lr == [1e-3] and cfg.optimization.clip_norm == 5
        assert cfg.optimization.max_update == 50000 and cfg.optimization.stop_min_lr == 1e-5
        assert cfg.optimization.stop_time_hours == 2.0
        assert (cfg.lr_scheduler._name, cfg.lr_scheduler.lr_shrink,
                cfg.lr_scheduler.lr_patience) == ("reduce_lr_on_plateau", 0.5, 0)
        assert cfg.checkpoint.patience == 4
        assert cfg.checkpoint.best_checkpoint_metric == "searnn_bleu"
        assert cfg.checkpoint.maximize_best_checkpoint_metric
        assert json.loads(cfg.task.eval_searnn_args)["beam"] == 1
        assert cfg.common.seed == 1 and cfg.task._name == "searnn_translation"
    assert cfgs["mle"].criterion._name == "cross_entropy"
    assert (cfgs["mle_ls"].criterion._name, cfgs["mle_ls"].criterion.label_smoothing) == (
        "label_smoothed_cross_entropy", 0.1)
    for method in driver.SEARNN:
        crit = cfgs[method].criterion
        assert (crit._name, crit.rollin, crit.searnn_alpha) == ("searnn_skl", "reference", 200)
        assert (crit.searnn_cost, crit.searnn_reference, crit.searnn_reference_cost) == (
            "bleu-smooth-all", "best-suffix", "bleu1")  # the authors' smoothed BLEU
        assert (crit.searnn_token_sampling, crit.searnn_tokens, crit.searnn_neighbors,
                crit.searnn_cells) == ("topk-neighbors", 5, 2, 6)  # converged.py's cut
    assert cfgs["searnn"].criterion.rollout == "mixed"
    assert cfgs["searnn_refout"].criterion.rollout == "reference"
    assert cfgs["searnn"].criterion.searnn_mle_weight == 0
    assert cfgs["searnn"].criterion.searnn_sampled_softmax == "restricted"  # the paper's sKL
    assert cfgs["searnn_full"].criterion.searnn_sampled_softmax == "full"
    assert cfgs["searnn_full"].criterion.rollout == "mixed"
    assert (cfgs["searnn_mle"].criterion.searnn_mle_weight,
            cfgs["searnn_mle"].criterion.searnn_mle_label_smoothing) == (0.3, 0.1)
    dss = cfgs["dss"].model
    assert (dss.ss_feed, dss.ss_alpha, dss.ss_alpha_growth, dss.ss_decay_k) == (
        "soft-greedy", 1, 1.001, 600)
    # the diagnoses' target report is (c)'s criterion
    diag = helpers.parse_cfg([*_train_argv(driver, args, prep, fake, "mle"),
                              *driver.searnn_criterion(args)]).criterion
    for key, value in cfgs["searnn"].criterion.items():
        if not key.startswith("searnn_mle"):
            assert diag[key] == value, key

    # the cut, the dropout and a validation interval in updates are the driver's options
    args = driver.parse(["--prep", str(prep), "--out", str(tmp_path / "out"),
                         "--searnn-cells", "20", "--searnn-tokens", "15",
                         "--searnn-neighbors", "5", "--validate-every", "300",
                         "--patience", "6", "--", "--max-tokens", "2000"])
    cfg = helpers.parse_cfg(_train_argv(driver, args, prep, fake, "searnn", dropout=0))
    assert (cfg.criterion.searnn_cells, cfg.criterion.searnn_tokens,
            cfg.criterion.searnn_neighbors) == (20, 15, 5)
    assert cfg.model.dropout == 0 and cfg.checkpoint.patience == 6
    assert cfg.dataset.validate_interval_updates == 300 == cfg.checkpoint.save_interval_updates
    assert cfg.dataset.validate_interval == 1  # epochs still end with one (the step halves)
    assert cfg.dataset.max_tokens == 2000


def test_bfloat16_options_of_each_method(tmp_path):
    driver = _driver()
    prep, fake = _prep(tmp_path), _fake_fairseq(tmp_path)
    args = driver.parse(["--prep", str(prep), "--out", str(tmp_path / "out")])
    import importlib.util

    # where the plugin has bfloat16 training, fairseq's parser reads the options too
    parse = importlib.util.find_spec("fairseq_searnn.search.precision") is not None
    for method in driver.METHODS:
        argv = _train_argv(driver, args, prep, fake, method, precision="bfloat16")
        assert argv[argv.index("--searnn-autocast") + 1] == "bfloat16"
        if method in driver.SEARNN:
            assert argv[argv.index("--searnn-decode-dtype") + 1] == "bfloat16"
        else:
            assert "--searnn-decode-dtype" not in argv
        if parse:
            cfg = helpers.parse_cfg(argv)
            assert cfg.task.searnn_autocast == "bfloat16"
            if method in driver.SEARNN:
                assert cfg.criterion.searnn_decode_dtype == "bfloat16"


def test_which_runs_train_and_with_what(tmp_path, monkeypatch, capsys):
    driver = _driver()
    prep, fake = _prep(tmp_path), _fake_fairseq(tmp_path, tail=(
        'case "$FAKE_END" in\n'
        "  fail) exit 1 ;;\n"
        "  patience) echo \"early stop since valid performance hasn't improved\" ;;\n"
        '  *) echo "Stopping training due to cumulative_training_time: 9 > '
        'stop_time_hours: 1 hour(s)" ;;\n'
        "esac\necho 'done training in 1.0 seconds'\n"))
    train_env = driver.nmt_runs.train_env  # the fakes first, before this environment's bin
    monkeypatch.setattr(driver.nmt_runs, "train_env", lambda *a, **k: dict(
        train_env(*a, **k), PATH=f"{fake}{os.pathsep}{os.environ['PATH']}"))
    out = tmp_path / "out"

    def invoke(*extra):
        args = driver.parse(["--prep", str(prep), "--out", str(out), *extra])
        return driver.train(args, prep, "float32", "mle", 0.3, 1)

    def attempts(run):
        return resumable.attempts((run / resumable.LOG).read_text())

    run = invoke("--cap-minutes", "30")
    assert run.name == "mle-d0.3-rev-seed1" and len(attempts(run)) == 1
    assert "--stop-time-hours\n0.5000" in attempts(run)[0]
    invoke("--cap-minutes", "30")  # finished at this cap: not trained again
    assert len(attempts(run)) == 1
    (run / "test-bleu.json").write_text("{}")
    invoke("--cap-minutes", "60", "--precision", "bfloat16", "--patience", "9")
    assert len(attempts(run)) == 2  # capped below 60 minutes: continued...
    second = attempts(run)[1]
    assert "--stop-time-hours\n1.0000" in second
    assert "--searnn-autocast" not in second and "--patience\n4\n" in second  # ...as it began
    assert "continues with its own settings" in capsys.readouterr().out
    assert not (run / "test-bleu.json").exists()  # scores of the old best checkpoint go
    assert [a["cap_minutes"] for a in resumable.load(run)["attempts"]] == [30, 60]
    monkeypatch.setenv("FAKE_END", "fail")
    with pytest.raises(RuntimeError, match="failed"):
        invoke("--cap-minutes", "90")
    assert resumable.status(run, 90) == "interrupted"
    monkeypatch.setenv("FAKE_END", "patience")
    invoke("--cap-minutes", "90")  # an interrupted run continues, even at the same cap
    assert len(attempts(run)) == 4 and resumable.status(run, 90) == "finished"
    invoke("--cap-minutes", "600")  # stopped by patience: finished whatever the cap
    assert len(attempts(run)) == 4


@pytest.mark.parametrize("extra, message", [
    (["--cap-minutes", "0"], "--cap-minutes must be > 0"),
    (["--patience", "0"], "--patience and --jobs >= 1"),
    (["--jobs", "0"], "--patience and --jobs >= 1"),
    (["--dropout", "0.3", "1"], "--dropout: values in [0, 1)")])
def test_bad_options_fail_at_start_up(tmp_path, capsys, extra, message):
    driver = _driver()
    with pytest.raises(SystemExit):
        driver.parse(["--prep", str(tmp_path), "--out", str(tmp_path / "out"), *extra])
    assert message in capsys.readouterr().err


def _finished_run(driver, out, data, method, seed, bleu, hyps, dropout=0.3, stop="patience"):
    """A run directory as training, scoring and timing leave it (without checkpoints)."""
    run = out / driver.run_name(method, dropout, True, seed)
    run.mkdir(parents=True)
    resumable.save(run, {"method": method, "dropout": dropout, "seed": seed,
                         "source_reversal": True, "data": str(data), "precision": "float32",
                         "env": {}, "options": [],
                         "attempts": [{"cap_minutes": 60, "commit": "abc1234"}]})
    end = {"patience": "early stop since valid performance hasn't improved for last 4 runs\n",
           "cap": "Stopping training due to cumulative_training_time: 1.1 > stop_time_hours: "
                  "1.0 hour(s)\n"}[stop]
    valid = ("| INFO | valid | epoch 00{e} | valid on 'valid' subset | loss 5 | searnn_bleu {v} "
             "| wps 9 | num_updates {u}\n")
    (run / resumable.LOG).write_text(
        resumable.HEADER + "1 | cap_minutes 60\n" + valid.format(e=1, v=bleu - 5, u=450)
        + valid.format(e=2, v=bleu - 1, u=900) + "epoch 002 | num_updates 905\n" + end
        + "done training in 99 seconds\n")
    (run / "wall.json").write_text(json.dumps({"training_seconds": 1810.0}))
    (run / "test-bleu.json").write_text(json.dumps({
        f"beam{b}": {"sacrebleu": bleu + b / 10, "signature": "nrefs:1|case:mixed"}
        for b in (1, 5)}))
    for b in (1, 5):
        nmt.write_lines(run / f"test-beam{b}.txt", hyps)
    return run


def _test_references(tmp_path):
    """A prepared directory with test references only, the references, and an output much
    shorter than them (clearly worse)."""
    data = tmp_path / "data"
    refs = [f"a dog number {i} runs on the green grass of the park" for i in range(40)]
    nmt.write_lines(data / "ref" / "test.en", refs)
    nmt.write_info(data, {"src": "de", "tgt": "en", "bpe": "sentencepiece", "splits": ["test"]})
    return data, refs, [" ".join(r.split()[:6]) for r in refs]


def test_report_of_finished_runs(tmp_path):
    driver = _driver()
    data, refs, worse = _test_references(tmp_path)
    out = tmp_path / "out"
    for seed in (1, 2):
        _finished_run(driver, out, data, "mle", seed, 30.0 + seed, worse)
        _finished_run(driver, out, data, "searnn", seed, 35.0 + seed, refs)
    _finished_run(driver, out, data, "mle_ls", 1, 33.0, refs[:20] + worse[20:], stop="cap")
    broken = _finished_run(driver, out, data, "dss", 1, 20.0, worse)
    (broken / resumable.LOG).write_text(resumable.HEADER + "1 | x\nkilled\n")  # interrupted
    summary = driver.main(["--prep", str(data), "--out", str(out), "--report-only",
                           "--no-diagnose"])
    names = [r["name"] for r in summary["runs"]]
    assert names == ["mle-d0.3-rev-seed1", "mle-d0.3-rev-seed2", "mle_ls-d0.3-rev-seed1",
                     "searnn-d0.3-rev-seed1", "searnn-d0.3-rev-seed2"]  # table order
    row = summary["runs"][3]
    assert row["test"] == {"beam1": 36.1, "beam5": 36.5} and row["updates"] == 905
    assert row["valid_curve"] == [(450, 31.0), (900, 35.0)]
    assert row["stop"] == "patience" and row["train_wall_s"] == 1810.0
    assert row["commits"] == ["abc1234"] and row["precision"] == "float32"
    # paired bootstrap against the same seed's (a) and (b), both decodes
    import sacrebleu

    assert set(row["p"]) == {"mle", "mle_ls"}
    assert row["p"]["mle"]["beam1"]["p"] < 0.05 and row["p"]["mle"]["beam1"]["delta"] == (
        pytest.approx(sacrebleu.corpus_bleu(refs, [refs]).score
                      - sacrebleu.corpus_bleu(worse, [refs]).score))
    assert set(summary["runs"][4]["p"]) == {"mle"}  # (b) has no seed 2
    assert set(summary["runs"][0]["p"]) == {"mle_ls"}  # (a) against (b) only
    table = (out / "summary.md").read_text()
    assert "| (c) searnn, dropout 0.3, reversed source | 2 | 36.60 ± 0.71 | 36.10, 37.10 |" \
        in table
    assert "| 30, 30 | 2.00, 2.00 | patience, patience | float32 | abc1234 |" in table
    assert "| (b) mle_ls, dropout 0.3, reversed source | 1 |" in table and "| cap |" in table
    assert ("- (c) searnn, dropout 0.3, reversed source against (a) mle (paired bootstrap, "
            "p < 0.05): greedy ") in table and "better in 2 and worse in 0 of 2 seeds" in table
    assert "sacreBLEU: nrefs:1|case:mixed" in table and "paired bootstrap: " in table
    assert "dss" not in table
    assert json.loads((out / "summary.json").read_text())["runs"][0]["name"] == names[0]
    for name in ("curves.png", "curves-updates.png"):
        assert (out / name).exists()


def test_rows_of_runs_that_are_gone_can_be_kept(tmp_path, capsys):
    """--keep-rows: an earlier summary's rows of runs no longer under OUT stay as recorded, in
    the table's order; a run under OUT replaces its row; a kept row is no baseline of a paired
    test and loses its p-values against a baseline run that is under OUT again."""
    driver = _driver()
    data, refs, worse = _test_references(tmp_path)
    out = tmp_path / "out"
    argv = ["--prep", str(data), "--out", str(out), "--report-only", "--no-diagnose"]
    for seed in (1, 2):
        _finished_run(driver, out, data, "mle", seed, 30.0 + seed, worse)
        _finished_run(driver, out, data, "searnn", seed, 35.0 + seed, refs)
    _finished_run(driver, out, data, "mle_ls", 1, 33.0, refs[:20] + worse[20:])
    _finished_run(driver, out, data, "dss", 2, 34.0, refs)  # (e): after (c) in the table
    first = driver.main(argv)
    earlier = tmp_path / "earlier.json"
    earlier.write_text((out / "summary.json").read_text())
    recorded = {r["name"]: r for r in first["runs"]}
    assert set(recorded["mle_ls-d0.3-rev-seed1"]["p"]) == {"mle"}
    # the machine loses (b) seed 1, (c) and (e) seed 2; (a) seed 1 is trained again, otherwise
    for name in ("mle_ls-d0.3-rev-seed1", "searnn-d0.3-rev-seed2", "dss-d0.3-rev-seed2",
                 "mle-d0.3-rev-seed1"):
        shutil.rmtree(out / name)
    _finished_run(driver, out, data, "mle", 1, 29.0, worse)
    summary = driver.main([*argv, "--keep-rows", str(earlier)])
    rows = {r["name"]: r for r in summary["runs"]}
    assert [r["name"] for r in summary["runs"]] == [r["name"] for r in first["runs"]] == [
        "mle-d0.3-rev-seed1", "mle-d0.3-rev-seed2", "mle_ls-d0.3-rev-seed1",
        "searnn-d0.3-rev-seed1", "searnn-d0.3-rev-seed2", "dss-d0.3-rev-seed2"]
    for name in ("searnn-d0.3-rev-seed2", "dss-d0.3-rev-seed2"):
        assert rows[name] == json.loads(json.dumps(recorded[name]))  # as recorded
    assert set(rows["dss-d0.3-rev-seed2"]["p"]) == {"mle"}  # its (a) was not trained again
    # (b) seed 1 kept, but its test against (a) seed 1 was of the earlier (a) run: dropped
    kept = {k: v for k, v in rows["mle_ls-d0.3-rev-seed1"].items() if k != "p"}
    assert kept == {k: v for k, v in json.loads(json.dumps(recorded["mle_ls-d0.3-rev-seed1"]))
                    .items() if k != "p"}
    assert rows["mle_ls-d0.3-rev-seed1"]["p"] == {}
    assert rows["mle-d0.3-rev-seed1"]["test"]["beam1"] == 29.1  # the run under OUT wins
    assert rows["mle-d0.3-rev-seed1"]["p"] == {}  # (b) seed 1's outputs are gone
    assert set(rows["searnn-d0.3-rev-seed1"]["p"]) == {"mle"}
    assert set(recorded["searnn-d0.3-rev-seed1"]["p"]) == {"mle", "mle_ls"}
    table = (out / "summary.md").read_text()
    assert "| (b) mle_ls, dropout 0.3, reversed source | 1 | 33.10 ± 0.00 |" in table
    assert "| (c) searnn, dropout 0.3, reversed source | 2 | 36.60 ± 0.71 |" in table
    # bad files fail at start-up, naming the option
    odd = tmp_path / "odd.json"
    other = dict(recorded["dss-d0.3-rev-seed2"], method="searnn_old", name="x-seed1")
    for bad in (tmp_path / "missing.json", data / "ref" / "test.en", {"runs": [{"x": 1}]},
                {"runs": {"a": 1}}, {"runs": [{"name": "y", "seed": 1}]}, {"runs": [other]}):
        if isinstance(bad, dict):
            odd.write_text(json.dumps(bad))
            bad = odd
        with pytest.raises(SystemExit):
            driver.main([*argv, "--keep-rows", str(bad)])
        assert "--keep-rows: " in capsys.readouterr().err
    with pytest.raises(SystemExit):
        driver.main(["--prep", str(data), "--out", str(out), "--train-only", "--keep-rows",
                     str(earlier)])
    assert "not of --train-only" in capsys.readouterr().err


def test_from_scratch_end_to_end(tmp_path, shared_data):
    """Two methods at a tiny size: trained to a cap, continued to a larger one from their last
    checkpoints, scored on test2016 and diagnosed once, the table written."""
    driver = _driver()
    prep = helpers.tiny_multi30k(tmp_path / "m30k", shared_data)
    small = helpers.TINY_LSTM
    out = tmp_path / "out"
    argv = ["--prep", str(prep), "--out", str(out), "--methods", "mle", "searnn",
            "--precision", "float32", "--jobs", "2", "--diagnose-sentences", "16",
            "--searnn-cells", "1", "--searnn-tokens", "2", "--searnn-neighbors", "1",
            "--patience", "50", "--lr-patience", "50"]  # only the cap stops these runs
    first = driver.main([*argv, "--cap-minutes", "0.04", "--train-only", "--", *small])
    runs = {Path(r).name.split("-")[0]: Path(r) for r in first["trained"]}
    assert sorted(runs) == ["mle", "searnn"] and not (out / "summary.md").exists()
    assert nmt.prep_info(out / "data-reversed")["reverse_source"]
    assert resumable.load(runs["mle"])["data"] == "data-reversed"  # OUT can move
    updates = {m: replication.train_updates((run / resumable.LOG).read_text())
               for m, run in runs.items()}
    assert all(resumable.status(run, 0.04) == "finished" for run in runs.values())
    summary = driver.main([*argv, "--cap-minutes", "0.08", "--", *small])
    for run in runs.values():
        first_part, second = resumable.attempts((run / resumable.LOG).read_text())
        assert "Stopping training due to cumulative_training_time" in first_part
        assert "Loaded checkpoint" in second and str(run / "checkpoint_last.pt") in second
        assert "'stop_time_hours': 0.0013" in second
    for row in summary["runs"]:
        assert row["stop"] == "cap" and row["updates"] > updates[row["method"]]  # went on
        assert row["train_wall_s"] > 0.04 * 60
        assert row["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
        assert row["diagnosis"]["sentences"] == 120  # on valid
    scores = json.loads((runs["searnn"] / "test-bleu.json").read_text())
    assert scores["beam1"]["sentences"] == scores["beam5"]["sentences"] == 120  # test2016
    assert scores["beam5"]["split"] == "test"
    assert len(nmt.read_lines(runs["mle"] / "test-beam5.txt")) == 120
    assert set(summary["runs"][1]["p"]["mle"]) == {"beam1", "beam5"}
    (report,) = json.loads((runs["mle"] / "diagnose" / "diagnose.json").read_text())[
        "checkpoints"]
    # (c)'s target report on (a); (c) itself reports its own criterion's
    assert report["targets"]["criterion"].startswith("--criterion searnn_skl --searnn-cost "
                                                     "bleu-smooth-all --rollin reference")
    assert summary["runs"][1]["diagnosis"]["targets"]["cells"] > 0
    table = (out / "summary.md").read_text()
    assert "| (a) mle, dropout 0.3, reversed source | " in table.split("Diagnosis of")[1]
    # a third invocation at the same cap neither trains nor scores nor diagnoses again
    files = [run / name for run in runs.values()
             for name in (resumable.LOG, "test-bleu.json", "diagnose/diagnose.json")]
    stamps = [f.stat().st_mtime for f in files]
    driver.main([*argv, "--cap-minutes", "0.08", "--", *small])
    assert stamps == [f.stat().st_mtime for f in files]
