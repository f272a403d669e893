"""The NMT drivers' report (fairseq_searnn.recipes.nmt_table): paired bootstrap per row
against the baselines of the same seed, with the casing of the row's own BLEU, and
the significance counts of a group."""

import random

import pytest
from sacrebleu.metrics import BLEU

from fairseq_searnn.recipes import nmt_table

WORDS = ["a", "man", "woman", "dog", "in", "on", "the", "red", "blue", "shirt", "street",
         "runs", "sits", "water", "ball"]


def _corpus(n=200, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS).capitalize() if i == 0 else rng.choice(WORDS)
                     for i in range(rng.randint(5, 12))) for _ in range(n)]


def _noisy(lines, drop, seed):
    rng = random.Random(seed)
    return [" ".join(w for w in line.split() if rng.random() > drop) for line in lines]


def test_paired_bootstrap_uses_the_rows_casing():
    refs = _corpus()
    base = [line.lower() for line in _noisy(refs, 0.3, 1)]  # lowercased outputs (IWSLT14)
    system = [line.lower() for line in _noisy(refs, 0.1, 2)]
    for lowercase in (True, False):
        row = {"lowercase": lowercase}
        out = nmt_table.paired(row, refs, lambda beam: base, lambda beam: system, (1,))
        bleu = BLEU(lowercase=lowercase)
        delta = (bleu.corpus_score(system, [refs]).score
                 - bleu.corpus_score(base, [refs]).score)
        assert out["beam1"]["delta"] == pytest.approx(delta)
        assert ("case:lc" in row["bootstrap_signature"]) == lowercase
        assert "bs:1000" in row["bootstrap_signature"]
    # the casing matters here: the first word of every reference is capitalised
    lower = nmt_table.paired({"lowercase": True}, refs, lambda b: base, lambda b: system, (1,))
    mixed = nmt_table.paired({"lowercase": False}, refs, lambda b: base, lambda b: system, (1,))
    assert lower["beam1"]["delta"] != pytest.approx(mixed["beam1"]["delta"])


def test_significance_pairs_each_row_with_its_seeds_baseline_and_counts_verdicts():
    refs = _corpus(300, seed=3)
    outputs = {("mle", 1): _noisy(refs, 0.3, 1), ("mle", 2): _noisy(refs, 0.3, 2),
               ("searnn", 1): _noisy(refs, 0.1, 3),   # far better than seed 1's baseline
               ("searnn", 2): _noisy(refs, 0.5, 4),   # far worse than seed 2's
               ("searnn", 3): _noisy(refs, 0.1, 5)}   # no baseline of seed 3
    rows = [{"name": f"{m}-seed{s}", "method": m, "seed": s, "lowercase": False}
            for m, s in outputs]
    baselines = [("mle", "(a) mle")]
    nmt_table.significance(rows, baselines, peer=lambda r: r["seed"],
                           hypotheses=lambda r, beam: outputs[(r["method"], r["seed"])],
                           references=lambda r: refs, decodes=(1,))
    by_name = {r["name"]: r for r in rows}
    assert by_name["mle-seed1"]["p"] == {} == by_name["searnn-seed3"]["p"]  # self; no peer
    bleu = BLEU()
    for seed in (1, 2):
        test = by_name[f"searnn-seed{seed}"]["p"]["mle"]["beam1"]
        delta = (bleu.corpus_score(outputs[("searnn", seed)], [refs]).score
                 - bleu.corpus_score(outputs[("mle", seed)], [refs]).score)
        assert test["delta"] == pytest.approx(delta) and test["p"] < 0.05
    group = [by_name[f"searnn-seed{s}"] for s in (1, 2, 3)]
    (line,) = nmt_table.verdicts("searnn", group, baselines, (1,))
    assert "better in 1 and worse in 1 of 2 seeds" in line and line.startswith(
        "- searnn against (a) mle")


def _timed(method, seed, minutes, curve):
    """A row trained for ``minutes`` over its last validation's updates."""
    return {"method": method, "seed": seed, "train_wall_s": minutes * 60,
            "s_per_update": minutes * 60 / curve[-1][0], "valid_curve": curve}


def test_common_time_table_compares_each_seed_at_its_shortest_run():
    rows = [_timed("control", 1, 30, [(100, 36.0), (200, 38.0), (300, 37.0)]),   # 6 s / update
            _timed("control", 2, 60, [(300, 37.0), (600, 39.0)]),                # 6 s
            _timed("risk", 1, 60, [(50, 37.5), (100, 38.5), (150, 40.0)]),       # 24 s
            _timed("risk", 2, 40, [(40, 36.0), (80, 39.5), (100, 41.0)]),        # 24 s
            _timed("risk", 3, 40, [(100, 45.0)]),                                # no control
            _timed("refout", 1, 30, [(300, 36.0)]),                              # 6 s
            _timed("refout", 2, 90, [(600, 38.0), (900, 38.5)])]                 # 6 s
    label = lambda r: r["method"]  # noqa: E731
    lines = nmt_table.common_time_table(rows, label, "control")
    table = "\n".join(lines)
    assert "| seed | common time (min) | control | risk | refout |" in table
    # seed 1: 30 minutes; risk's 150th update came at 60, its 100th at 40: only the 50th
    assert "| 1 | 30 | 38.00 (200) | 37.50 (50) | 36.00 (300) |" in table
    # seed 2: 40 minutes (risk's); the control's 600th update came at 60, refout's first at 60
    assert "| 2 | 40 | 37.00 (300) | 41.00 (100) | - |" in table
    assert "| 3 |" not in table  # a seed the control lacks
    # refout had not validated by seed 2's common time: the means are over seed 1 only
    assert "| mean | | 38.00 | 37.50 | 36.00 |" in table
    assert "- risk against control at equal time: -0.50 on average (-0.50), higher in 0 and " \
           "lower in 1 of 1 seeds" in table
    assert "- refout against control at equal time: -2.00 on average" in table
    # with refout out, both seeds count
    two = "\n".join(nmt_table.common_time_table(
        [r for r in rows if r["method"] != "refout"], label, "control"))
    assert "| mean | | 37.50 | 39.25 |" in two
    assert "risk against control at equal time: +1.75 on average (-0.50, +4.00), higher in 1 " \
           "and lower in 1 of 2 seeds" in two
    assert nmt_table.best_within(rows[0], 19.9 * 60) == (36.0, 100)
    assert nmt_table.best_within(rows[0], 5 * 60) is None
    assert nmt_table.common_time_table(rows, label, "mle") == []  # no such baseline
    with pytest.raises(ValueError, match="two runs of one seed"):
        nmt_table.common_time_table(rows + [_timed("risk", 1, 10, [(10, 1.0)])], label,
                                    "control")


def test_a_runs_own_last_validation_is_within_its_training_time():
    """s / update = wall / updates, and updates × that can exceed wall by a rounding step (a
    fine-tune's real numbers): the shortest run must keep its last validation."""
    wall = 2045.1248769760132
    row = {"valid_curve": [(450, 37.0), (3600, 38.0)], "s_per_update": wall / 3600,
           "train_wall_s": wall}
    assert 3600 * row["s_per_update"] > wall
    assert nmt_table.best_within(row, wall) == (38.0, 3600)
    assert nmt_table.best_within({**row, "valid_curve": [(3600, 38.0)]}, wall) == (38.0, 3600)


def test_best_within_takes_the_first_of_equal_bests():
    row = {"valid_curve": [(100, 38.0), (200, 37.0), (300, 38.0)], "s_per_update": 1.0}
    assert nmt_table.best_within(row, 300) == (38.0, 100)


def test_common_updates_table_compares_each_seed_at_its_fewest_updates():
    """by="updates": a slow run is read at the updates of the seed's shortest run in
    updates, whatever their times (here the control is 4 x faster a step)."""
    rows = [{**_timed("control", 1, 30, [(100, 36.0), (200, 38.0), (300, 37.5)]),
             "updates": 320},
            {**_timed("searnn", 1, 120, [(100, 37.0), (200, 36.5), (250, 39.0)]),
             "updates": 250},
            {**_timed("control", 2, 30, [(100, 35.0)]), "updates": 100},
            {**_timed("searnn", 2, 60, [(50, 30.0), (150, 36.0)]), "updates": 150}]
    label = lambda r: r["method"]  # noqa: E731
    table = "\n".join(nmt_table.common_time_table(rows, label, "control", by="updates"))
    assert "| seed | common updates | control | searnn |" in table
    assert "| 1 | 250 | 38.00 (200) | 39.00 (250) |" in table   # control's 300th is out
    assert "| 2 | 100 | 35.00 (100) | 30.00 (50) |" in table    # searnn's 150th is out
    assert "- searnn against control at equal updates: -2.00 on average (+1.00, -5.00), " \
           "higher in 1 and lower in 1 of 2 seeds" in table
    # by time (the default) seed 1 is read at the control's 30 minutes: searnn, 28.8 s an
    # update, had not validated yet
    timed = "\n".join(nmt_table.common_time_table(rows, label, "control"))
    assert "| 1 | 30 | 38.00 (200) | - |" in timed
    assert nmt_table.best_by_updates(rows[0], 99) is None
    assert nmt_table.best_by_updates(rows[0], 300) == (38.0, 200)
    with pytest.raises(ValueError, match="'time' or 'updates'"):
        nmt_table.common_time_table(rows, label, "control", by="epochs")
