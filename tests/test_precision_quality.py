"""analysis/precision_quality.py: a bfloat16 run's validations against the float32 seeds' range
at the same updates."""

import json

import helpers


def _log(points, subset="valid", metric="searnn_edit"):
    return "".join(f"2026 | INFO | valid | epoch 001 | valid on '{subset}' subset | loss 1.0 | "
                   f"{metric} {v} | wps 1 | num_updates {u} | best_{metric} {v}\n"
                   for u, v in points)


def test_compare_against_float32_seeds(tmp_path):
    quality = helpers.load_script("analysis/precision_quality.py")
    log = tmp_path / "train.log"
    log.write_text(_log([(200, 30.0), (400, 21.0), (600, 19.0)]))
    ref = tmp_path / "summary.json"
    ref.write_text(json.dumps({"runs": [
        {"method": "m", "valid_curve": [[200, 29.0], [400, 20.0], [600, 19.5]]},
        {"method": "m", "valid_curve": [[200, 31.0], [400, 20.2]]},
        {"method": "other", "valid_curve": [[200, 0.0]]}]}))
    summary, series = quality.compare("x", f"{log}:{ref}#m:searnn_edit:valid:min", margin=0.5)
    rows = {r["updates"]: r for r in summary["rows"]}
    assert rows[200]["float32_min"] == 29.0 and rows[200]["float32_max"] == 31.0
    assert rows[200]["inside"] and not rows[400]["inside"] and rows[600]["inside"]
    assert summary["share_inside"] == 2 / 3
    assert summary["bfloat16_best_so_far"] == 19.0
    assert summary["float32_best_by_then"] == [19.5, 20.2]
    assert [label for label, _, _ in series] == ["float32", "float32", "bfloat16"]


def test_compare_against_a_converged_baseline_by_epoch(tmp_path):
    quality = helpers.load_script("analysis/precision_quality.py")
    log = tmp_path / "train.log"
    log.write_text(_log([(454, 8.7), (908, 20.0)], subset="select", metric="searnn_bleu"))
    ref = tmp_path / "baseline.json"
    ref.write_text(json.dumps({"select_bleu_by_epoch": [8.72, 20.32]}))
    summary, _ = quality.compare(
        "b", f"{log}:{ref}#select_bleu_by_epoch:searnn_bleu:select:max", margin=0.5)
    assert [(r["updates"], r["float32_min"]) for r in summary["rows"]] == [(454, 8.72),
                                                                           (908, 20.32)]
    assert summary["bfloat16_best_so_far"] == 20.0 and summary["share_inside"] == 1.0
