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
