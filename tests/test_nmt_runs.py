"""The Multi30k drivers' shared pieces (fairseq_searnn.recipes.nmt_runs): paired bootstrap
resampling against sacreBLEU's own command line, the training precision and its options, the
environment of ``train.sh``."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from fairseq_searnn.data.nmt_prepare import read_lines, write_lines
from fairseq_searnn.recipes import nmt_runs

REFS = ["a man in a blue shirt is standing on a ladder cleaning windows",
        "two young girls are playing in the sand at the beach",
        "a group of people stand in front of an igloo",
        "a little boy in a red jacket rides a bike down the street",
        "a woman with a large purse is walking by a gate"]


def _noisy(refs, drop, seed):
    """The references with each word dropped with probability ``drop``."""
    rng = random.Random(seed)
    return [" ".join(w for w in line.split() if rng.random() > drop) for line in refs]


def test_paired_bootstrap_is_sacrebleus_paired_bs(tmp_path):
    refs = [f"{line} {i}" for i in range(60) for line in REFS]  # 300 sentences
    base = _noisy(refs, 0.3, 1)
    # near: one sentence of the baseline made right; far: a tenth of the words dropped
    systems = {"base": base, "near": refs[:1] + base[1:], "far": _noisy(refs, 0.1, 3)}
    for name, lines in [("refs", refs), *systems.items()]:
        write_lines(tmp_path / f"{name}.txt", lines)
    cli = Path(sys.executable).parent / "sacrebleu"
    command = [str(cli) if cli.exists() else "sacrebleu", str(tmp_path / "refs.txt"), "-i",
               *(str(tmp_path / f"{n}.txt") for n in systems), "-m", "bleu", "--paired-bs",
               "-f", "json"]
    out = json.loads(subprocess.run(command, capture_output=True, text=True,
                                    check=True).stdout)
    p_cli = {entry["system"]: entry["BLEU"]["p_value"] for entry in out[1:]}
    for name in ("near", "far"):
        ours = nmt_runs.paired_bootstrap(refs, systems["base"], systems[name])
        assert ours["p_value"] == pytest.approx(p_cli[str(tmp_path / f"{name}.txt")])
        assert ours["baseline"] == pytest.approx(out[0]["BLEU"]["score"])
        assert "bs:1000" in ours["signature"] and "tok:13a" in ours["signature"]
    near = nmt_runs.paired_bootstrap(refs, systems["base"], systems["near"])["p_value"]
    far = nmt_runs.paired_bootstrap(refs, systems["base"], systems["far"])["p_value"]
    assert far < 0.01 < 0.05 < near  # a clear gain is significant, a small one is not
    with pytest.raises(ValueError, match="300 references, 299 baseline"):
        nmt_runs.paired_bootstrap(refs, systems["base"][1:], systems["near"])


def test_train_env_puts_the_interpreters_bin_first_once(tmp_path, monkeypatch):
    bin_dir = str(tmp_path / "env" / "bin")
    monkeypatch.setattr(sys, "executable", str(Path(bin_dir) / "python"))
    monkeypatch.setenv("PATH", os.pathsep.join(["/usr/bin", bin_dir + "/", "/bin", bin_dir]))
    env = nmt_runs.train_env("prep", "save", 3, METHOD="mle")
    assert env["PATH"].split(os.pathsep) == [bin_dir, "/usr/bin", "/bin"]
    assert (env["PREP"], env["SAVE"], env["SEED"], env["METHOD"]) == ("prep", "save", "3",
                                                                       "mle")
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    monkeypatch.setenv("PATH", env["PATH"])  # a driver's child building it again
    assert nmt_runs.train_env("prep", "save", 3)["PATH"] == env["PATH"]
    monkeypatch.delenv("PATH")
    assert nmt_runs.train_env("prep", "save", 3)["PATH"] == bin_dir


def test_train_sh_finds_this_environments_commands_unactivated(monkeypatch):
    """``train.sh`` run with :func:`train_env` from a PATH without the environment (the driver
    started as ``venv/bin/python ...``) calls this environment's commands."""
    bin_dir = Path(sys.executable).parent
    names = ("fairseq-train", "fairseq-searnn-user-dir")
    if not all((bin_dir / name).exists() for name in names):
        pytest.skip(f"{' and '.join(names)} are not installed next to {sys.executable}")
    monkeypatch.setenv("PATH", os.pathsep.join(["/usr/bin", "/bin"]))
    found = subprocess.run(["bash", "-c", "command -v " + " ".join(names)], check=True,
                           capture_output=True, text=True,
                           env=nmt_runs.train_env("prep", "save", 1)).stdout.split()
    assert found == [str(bin_dir / name) for name in names]


def test_precision_choice_and_options(monkeypatch):
    assert nmt_runs.resolve_precision("float32") == ("float32", "asked")
    assert nmt_runs.resolve_precision("bfloat16") == ("bfloat16", "asked")
    with pytest.raises(ValueError, match="precision 'half'"):
        nmt_runs.resolve_precision("half")
    from fairseq_searnn.search import precision as module

    for fast, expected in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(module, "fast_bfloat16", lambda fast=fast: fast)
        precision, why = nmt_runs.resolve_precision("auto")
        assert precision == expected and "fast_bfloat16()" in why
    assert nmt_runs.precision_args("float32", searnn=True) == []
    assert nmt_runs.precision_args("bfloat16", searnn=False) == ["--searnn-autocast",
                                                                 "bfloat16"]
    assert nmt_runs.precision_args("bfloat16", searnn=True) == [
        "--searnn-autocast", "bfloat16", "--searnn-decode-dtype", "bfloat16"]
    assert nmt_runs.precision_args("bfloat16", risk=True) == [
        "--searnn-autocast", "bfloat16", "--risk-decode-dtype", "bfloat16"]


def test_score_beams_is_cached_with_its_hypotheses(tmp_path, monkeypatch):
    from fairseq_searnn.data import nmt_eval

    calls = []

    def score(prep, checkpoint, split, beam, **gen):
        calls.append((beam, gen))
        return {"sacrebleu": 10.0 * beam, "signature": "nrefs:1"}, [f"h{beam}"]
    monkeypatch.setattr(nmt_eval, "score_checkpoint", score)
    into = tmp_path / "scores.json"
    first = nmt_runs.score_beams("prep", "ckpt", "test", into, (1, 5), hypotheses_dir=tmp_path)
    assert first == {"beam1": {"sacrebleu": 10.0, "signature": "nrefs:1"},
                     "beam5": {"sacrebleu": 50.0, "signature": "nrefs:1"}}
    assert calls == [(1, nmt_runs.GEN), (5, nmt_runs.GEN)]
    assert read_lines(tmp_path / "test-beam5.txt") == ["h5"]
    assert nmt_runs.score_beams("prep", "ckpt", "test", into, (1, 5)) == first
    assert len(calls) == 2  # scored once
