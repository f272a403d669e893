"""Replication drivers: log parsing and summaries (fairseq_searnn.recipes.replication) and the
weights-only starting checkpoint of the Multi30k fine-tunes (examples/nmt/replicate_multi30k.py)."""

import json
import sys

import pytest
import torch

import helpers
from fairseq_searnn import recipes
from fairseq_searnn.recipes import replication

LOG = """\
2026-11-22 06:11:30 | INFO | train_inner | epoch 001: 200 / 454 loss=6.9, num_updates=200, lr=0.001
2026-11-22 06:11:56 | INFO | valid | epoch 001 | valid on 'valid' subset | loss 5.296 | ppl 39.29 \
| searnn_bleu 5.11144 | wps 1149.7 | wpb 722 | bsz 64 | num_updates 250
2026-11-22 06:12:30 | INFO | train_inner | epoch 001: 300 / 454 loss=6.1, num_updates=300, lr=0.001
2026-11-22 06:13:00 | INFO | valid | epoch 001 | valid on 'valid' subset | loss 4.9 | ppl 30.1 \
| searnn_bleu 13.2925 | wps 1149.7 | wpb 722 | bsz 64 | num_updates 500 | best_searnn_bleu 13.29
2026-11-22 06:13:01 | INFO | train_inner | epoch 001: 350 / 454 loss=6.0, num_updates=510, lr=0.001
"""


def test_valid_curve_and_updates():
    assert replication.valid_curve(LOG, "searnn_bleu") == [(250, 5.11144), (500, 13.2925)]
    assert replication.valid_curve(LOG, "hamming") == []
    assert replication.train_updates(LOG) == 510
    assert replication.train_updates("no training yet") == 0


def test_mean_std_and_cached(tmp_path):
    assert replication.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert replication.mean_std([4.0]) == (4.0, 0.0)
    calls = []
    first = replication.cached(tmp_path / "r.json", lambda: calls.append(1) or {"x": 1})
    again = replication.cached(tmp_path / "r.json", lambda: calls.append(1) or {"x": 2})
    assert first == again == {"x": 1} and calls == [1]


def test_run_logged_reports_the_failure(tmp_path):
    recipes.run_logged([sys.executable, "-c", "print('ok')"], tmp_path / "ok.log")
    assert (tmp_path / "ok.log").read_text() == "ok\n"
    with pytest.raises(RuntimeError, match="boom"):
        recipes.run_logged([sys.executable, "-c", "import sys; sys.exit('boom')"],
                           tmp_path / "bad.log")


def test_fine_tune_starts_from_weights_only(tmp_path, data_bin):
    """The starting checkpoint keeps the weights and drops what would leak into the fine-tune:
    update count (schedules), training time (--stop-time-hours), optimiser state."""
    from fairseq import checkpoint_utils

    pre, ft = tmp_path / "pre", tmp_path / "ft"
    helpers.run_training(helpers.train_argv(data_bin, extra=[
        "--max-update", "3", "--save-dir", str(pre), "--no-epoch-checkpoints"]))
    init = tmp_path / "init.pt"
    replication.weights_only(pre / "checkpoint_last.pt", init)
    source = checkpoint_utils.load_checkpoint_to_cpu(str(pre / "checkpoint_last.pt"))
    state = checkpoint_utils.load_checkpoint_to_cpu(str(init))
    assert source["optimizer_history"][-1]["num_updates"] == 3
    assert source["extra_state"]["previous_training_time"] > 0
    assert state["optimizer_history"][-1]["num_updates"] == 0
    assert state["extra_state"]["previous_training_time"] == 0
    assert state["last_optimizer_state"] is None
    for name, value in source["model"].items():
        assert torch.equal(state["model"][name], value)
    # fairseq fine-tunes from it (--finetune-from-model), counting updates from 0
    helpers.run_training(helpers.train_argv(data_bin, extra=[
        "--max-update", "2", "--save-dir", str(ft), "--no-epoch-checkpoints",
        "--finetune-from-model", str(init)]))
    done = checkpoint_utils.load_checkpoint_to_cpu(str(ft / "checkpoint_last.pt"))
    assert done["optimizer_history"][-1]["num_updates"] == 2


def test_spelling_grid_specs_reach_fairseq(tmp_path, monkeypatch):
    """Table 1's grid on spelling: ``searnn_kl:reference:learned`` runs train.sh with that
    roll-in × roll-out (read back through fairseq's parser), plain SeaRNN methods keep the
    paper's learned × mixed, and malformed specs are refused."""
    import argparse
    import os
    import subprocess

    driver = helpers.load_example("spelling", "replicate")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "fairseq-train").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (fake / "fairseq-train").chmod(0o755)
    data = tmp_path / "data"
    data.mkdir()
    (data / "data-path.txt").write_text(str(data / "bin"))

    def train_argv(spec, alpha=None):
        (method, policy_env, name), *_ = replication.alpha_variants(
            [driver.parse_method(spec)], [alpha] if alpha else [],
            lambda m: m == "searnn_kl", lambda env, a: {**env, "ALPHA": f"{a:g}"})
        env = driver.train_env(data, method, policy_env, tmp_path / name, 1)
        env["PATH"] = f"{fake}{os.pathsep}{os.environ['PATH']}"
        out = subprocess.run(["bash", str(helpers.REPO / "examples/spelling/train.sh")],
                             env=env, capture_output=True, text=True, check=True).stdout
        return name, helpers.parse_cfg(out.splitlines())

    name, cfg = train_argv("searnn_kl:reference:learned")
    assert name == "searnn_kl-reference-learned"
    assert cfg.criterion.rollout_mix_granularity == "sentence"  # the authors' mixing
    assert cfg.optimization.clip_norm == 5 == train_argv("mle")[1].optimization.clip_norm
    args = argparse.Namespace(validate_every=200, patience_updates=3000, cap_minutes=90,
                              fairseq=[], precision="float32")
    assert driver.train_extra(args, "mle") == driver.train_extra(args, "searnn_kl") == (
        driver.train_extra(args, "searnn_sll"))  # one validation schedule for all methods
    args.precision = "bfloat16"  # autocast for every method, bfloat16 decoding for SeaRNN's
    assert driver.train_extra(args, "mle")[-2:] == ["--searnn-autocast", "bfloat16"]
    assert driver.train_extra(args, "searnn_sll")[-4:] == [
        "--searnn-autocast", "bfloat16", "--searnn-decode-dtype", "bfloat16"]
    args.precision = "float32"
    extra = driver.train_extra(args, "mle")
    assert extra[extra.index("--patience") + 1] == "15"  # 3,000 updates / 200
    assert extra[extra.index("--validate-interval-updates") + 1] == "200"
    args.fairseq = ["--lr", "3e-4"]  # after `--`: overrides the recipe's Adam 1e-3
    env = driver.train_env(data, "mle", {}, tmp_path / "lr", 1)
    env["PATH"] = f"{fake}{os.pathsep}{os.environ['PATH']}"
    out = subprocess.run(["bash", str(helpers.REPO / "examples/spelling/train.sh"),
                          *driver.train_extra(args, "mle")], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert helpers.parse_cfg(out.splitlines()).optimization.lr == [3e-4]
    monkeypatch.setenv("ALPHA", "7")  # a stray export does not reach a run...
    assert train_argv("searnn_kl")[1].criterion.searnn_alpha is None
    swept, swept_cfg = train_argv("searnn_kl", alpha=60.0)  # ...--alpha does
    assert (swept, swept_cfg.criterion.searnn_alpha) == ("searnn_kl-alpha60", 60)
    monkeypatch.delenv("ALPHA")
    assert (cfg.criterion._name, cfg.criterion.rollin, cfg.criterion.rollout) == (
        "searnn_kl", "reference", "learned")
    name, cfg = train_argv("searnn_sll_policy:learned:learned")
    assert (cfg.criterion._name, cfg.criterion.searnn_token_sampling) == ("searnn_sll", "policy")
    assert (cfg.criterion.rollin, cfg.criterion.rollout) == ("learned", "learned")
    monkeypatch.setenv("ROLLIN", "reference")  # a stray export does not reach a plain run
    name, cfg = train_argv("searnn_ll")
    assert name == "searnn_ll"
    assert (cfg.criterion.rollin, cfg.criterion.rollout) == ("learned", "mixed")
    for bad in ("mle:learned:mixed", "searnn_kl:learned", "searnn_kl:greedy:mixed", "crf"):
        with pytest.raises(argparse.ArgumentTypeError, match="ROLLIN:ROLLOUT"):
            driver.parse_method(bad)


def test_multi30k_seed_means_skip_what_they_are_told():
    """Means over seeds per run and decode; a skipped (seed, run) stays listed but out of the
    means; the beam drop is the mean of the per-seed drops."""
    import statistics

    agg = helpers.load_script("analysis/summarise_multi30k_seeds.py")

    def row(greedy, beam, beam_t, updates):
        return {"updates": updates, "train_wall_s": 2.0 * updates, "valid_curve_256": [],
                "beam1_T1": {"bleu": greedy}, "beam5_T1": {"bleu": beam},
                "beam5_T0.5": {"bleu": beam_t}}

    per_seed = {"1": {"mle": row(30.0, 31.0, 30.5, 800), "searnn": row(20.0, 10.0, 20.0, 300)},
                "2": {"mle": row(29.0, 30.5, 29.0, 700), "searnn": row(24.0, 22.0, 24.5, 290)},
                "3": {"mle": row(31.0, 31.5, 31.0, 810), "searnn": row(25.0, 23.0, 25.5, 310)}}
    single = agg.markdown(agg.aggregate({"1": per_seed["1"]}))
    assert "| mle | 1 | 1: 800 | 2.00 | 30.00 | 31.00 (+1.00) | 30.50 (+0.50) | 1: 30.00 |" \
        in single  # one seed: no spread shown
    table = agg.aggregate(per_seed, {("1", "searnn")})
    assert table["mle"]["counted"] == ["1", "2", "3"]
    assert table["mle"]["beam1_T1"]["mean"] == pytest.approx(30.0)
    assert table["mle"]["beam1_T1"]["std"] == pytest.approx(statistics.stdev([30, 29, 31]))
    assert table["searnn"]["counted"] == ["2", "3"]
    assert table["searnn"]["beam5_T1"]["mean"] == pytest.approx(22.5)
    assert table["searnn"]["beam1_T1"]["seeds"]["1"] == 20.0  # listed, not counted
    assert table["searnn"]["s_per_update"] == pytest.approx(2.0)
    text = agg.markdown(table)
    assert "| searnn | 2, 3 | 1: 300, 2: 290, 3: 310 | 2.00 | 24.50 ± 0.71 | 22.50 ± 0.71 (-2.00)" \
        in text


def test_zoomed_ylim_runs_from_the_lowest_value_to_zoom_times_it(tmp_path):
    series = [("a", [1, 2], [70.0, 20.0]), ("b", [1, 2, 3], [60.0, 18.0, 16.0])]
    bottom, top = replication.zoomed_ylim(series, 1.5)
    assert (round(bottom, 6), top) == (15.6, 24.0)
    assert replication.plot_curves(series, "x", "y", "t", tmp_path / "c.png", zoom=1.5)
    assert (tmp_path / "c.png").stat().st_size > 0


def test_alpha_variants_sweep_only_the_methods_that_take_alpha():
    methods = [("mle", [], "mle"), ("kl", ["--rollin", "learned"], "kl-learned"),
               ("ll", [], "ll")]
    swept = replication.alpha_variants(methods, [20, 2.5], lambda m: m == "kl",
                                       lambda options, a: [*options, "--alpha", str(a)])
    assert swept == [("mle", [], "mle"),
                     ("kl", ["--rollin", "learned", "--alpha", "20"], "kl-learned-alpha20"),
                     ("kl", ["--rollin", "learned", "--alpha", "2.5"], "kl-learned-alpha2.5"),
                     ("ll", [], "ll")]
    assert replication.alpha_variants(methods, None, bool, None) == methods  # no sweep


def test_stop_reason_and_the_ocr_protocol():
    """The converged-runs protocol: patience in updates becomes fairseq's --patience in
    validations (the same for every method), and the log tells patience from the cap."""
    import argparse

    driver = helpers.load_example("ocr", "replicate")
    args = argparse.Namespace(validate_every=100, patience_updates=3000, cap_minutes=90)
    argv = driver.schedule_args(args)
    assert argv[argv.index("--patience") + 1] == "30"
    assert "--patience" not in replication.schedule_args(100, 0, 90)  # 0: no patience
    assert argv[argv.index("--validate-interval-updates") + 1] == "100"
    assert float(argv[argv.index("--stop-time-hours") + 1]) == 1.5
    assert replication.stop_reason("x | early stop since valid performance hasn't improved "
                                   "for last 30 runs\ndone training") == "patience"
    assert replication.stop_reason("Stopping training due to cumulative_training_time: 1.6 > "
                                   "stop_time_hours: 1.5 hour(s)\ndone training") == "cap"
    assert replication.stop_reason("done training in 3.0 seconds") == "max-epoch"
    # a run with a cap that ends on --max-update (the config line names stop_time_hours)
    config = "{'optimization': {'max_update': 7400, 'stop_time_hours': 0.3667}}\n"
    assert replication.stop_reason(config + "Stopping training due to num_updates: 7400 >= "
                                   "max_update: 7400\ndone training") == "max-update"


def test_equal_quality_table_times_the_first_validation_at_mle_best():
    def run(method, seed, curve, spu):
        return {"method": method, "seed": seed, "valid_curve": curve, "s_per_update": spu,
                "best_valid": min(v for _, v in curve), "updates": curve[-1][0],
                "train_wall_s": curve[-1][0] * spu, "stop": "patience"}

    results = [run("mle", 1, [(100, 9.0), (200, 4.0), (300, 5.0)], 0.6),
               run("mle", 2, [(100, 8.0), (200, 6.0)], 0.6),  # best mean: (4 + 6) / 2 = 5
               run("kl", 1, [(100, 7.0), (200, 5.0), (300, 2.0)], 3.0),  # 5.0 <= 5: at 200
               run("skl", 1, [(100, 9.0), (200, 5.5)], 1.2)]
    assert replication.first_reaching(results[2]["valid_curve"], 5.0) == 200
    lines = replication.equal_quality_table(results, "best_valid")
    assert "(5.00, the mean of its 2 seed(s))" in lines[0]
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): [
        c.strip() for c in line.split("|")[3:-1]] for line in lines[4:]}
    assert rows[("kl", "1")] == ["200", "10.0", "300", "15.0", "patience"]
    assert rows[("mle", "1")] == ["200", "2.0", "300", "3.0", "patience"]
    assert rows[("mle", "2")][:2] == ["not reached", "-"]  # its best, 6, is above the mean
    assert rows[("skl", "1")][:2] == ["not reached", "-"]
    assert replication.equal_quality_table(results[2:], "best_valid") == []  # no MLE run


def test_replication_runs_gathers_runs_of_several_drivers(tmp_path):
    """analysis/replication_runs.py: runs from different driver outputs, grouped by their label
    without the seed, in the drivers' table, with the time-to-quality table of a baseline."""
    gather = helpers.load_script("analysis/replication_runs.py", "analysis_replication_runs")

    def run(name, curve, test, stop_line, wall):
        folder = tmp_path / name
        folder.mkdir()
        log = "".join(f"x | INFO | valid | epoch 001 | valid on 'valid' subset | loss 1.0 "
                      f"| searnn_edit {v} | wps 1.0 | num_updates {u}\n" for u, v in curve)
        (folder / "train.log").write_text(log + stop_line + "\n")
        (folder / "result.json").write_text(json.dumps({"train_wall_s": wall, "test_edit": test}))
        return folder

    patience = "x | early stop since valid performance hasn't improved for last 15 runs"
    cap = "Stopping training due to cumulative_training_time: 1.6 > stop_time_hours: 1.5"
    runs = [f"MLE, seed 1={run('m1', [(200, 30.0), (400, 20.0)], 21.0, patience, 40)}",
            f"MLE, seed 2={run('m2', [(200, 28.0), (400, 24.0)], 25.0, patience, 40)}",
            f"KL, seed 1={run('k1', [(200, 25.0), (400, 18.0)], 19.0, cap, 400)}"]
    gather.main(["--task", "spelling", "--out", str(tmp_path / "out"), "--baseline", "MLE",
                 *runs])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["summary"]["MLE"]["test"] == [21.0, 25.0]
    assert summary["summary"]["MLE"]["mean"] == 23.0
    assert summary["summary"]["KL"]["stop"] == ["cap"]
    kl = summary["runs"][2]
    assert (kl["best_valid_edit"], kl["updates"], kl["s_per_update"]) == (18.0, 400, 1.0)
    table = (tmp_path / "out" / "summary.md").read_text()
    # MLE's mean best validation: (20 + 24) / 2 = 22; KL first reaches it at 400 updates
    assert "(22.00, the mean of its 2 seed(s))" in table
    assert "| KL | 1 | 400 | 6.7 | 400 | 6.7 | cap |" in table
    with pytest.raises(SystemExit, match="none of the runs"):
        gather.main(["--task", "spelling", "--out", str(tmp_path / "o2"), "--baseline", "mle",
                     *runs])


def test_replication_runs_takes_again_the_runs_of_an_earlier_summary(tmp_path):
    """analysis/replication_runs.py --previous: an earlier summary's runs (one method, renamed)
    join new run folders, and a new run replaces the earlier one of the same label and seed."""
    gather = helpers.load_script("analysis/replication_runs.py", "analysis_replication_runs")

    def record(method, seed, test):
        return {"method": method, "seed": seed, "updates": 400, "stop": "patience",
                "train_wall_s": 40.0, "s_per_update": 0.1, "valid_curve": [[200, 30.0]],
                "best_valid_edit": 30.0, "test_edit": test}

    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"summary": {}, "runs": [
        record("mle", 1, 21.0), record("mle", 2, 25.0), record("searnn_sll", 1, 19.0)]}))
    folder = tmp_path / "k2"
    folder.mkdir()
    (folder / "train.log").write_text(
        "x | INFO | valid | epoch 001 | valid on 'valid' subset | loss 1.0 | searnn_edit 20.0 "
        "| wps 1.0 | num_updates 200\n"
        "x | early stop since valid performance hasn't improved for last 15 runs\n")
    (folder / "result.json").write_text(json.dumps({"train_wall_s": 20, "test_edit": 17.0}))
    out = tmp_path / "out"
    gather.main(["--task", "spelling", "--out", str(out), "--baseline", "MLE",
                 "--previous", f"{earlier}#mle=MLE", "--previous", f"{earlier}#searnn_sll=sLL",
                 f"sLL, seed 1={folder}", f"MLE, seed 1={folder}"])
    summary = json.loads((out / "summary.json").read_text())
    # the new folders, not the earlier runs; each method's runs in the order of their seeds
    assert summary["summary"]["MLE"]["test"] == [17.0, 25.0]
    assert summary["summary"]["sLL"]["test"] == [17.0]
    assert [(r["method"], r["seed"]) for r in summary["runs"]] == [
        ("MLE", "1"), ("MLE", "2"), ("sLL", "1")]
    with pytest.raises(SystemExit, match="no run of method 'kl'"):
        gather.main(["--task", "spelling", "--out", str(out), "--previous", f"{earlier}#kl"])
    with pytest.raises(SystemExit, match="no file"):
        gather.main(["--task", "spelling", "--out", str(out), "--previous", f"{folder}/x.json"])
    with pytest.raises(SystemExit, match="holds no 'runs'"):
        gather.main(["--task", "spelling", "--out", str(out), "--previous",
                     str(folder / "result.json")])
