"""The plugin loads under --user-dir, and fairseq's CLI trains, resumes and decodes with it
under torch's weights-only checkpoint loading."""

import importlib
import pickle
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest
import torch

import helpers

BIN = Path(sys.executable).parent
_run = helpers.run_command


def test_import_twice_and_import_user_module():
    from fairseq import utils

    import fairseq_searnn

    importlib.reload(importlib.import_module("fairseq_searnn.criterions"))  # no re-registration
    utils.import_user_module(Namespace(user_dir=helpers.USER_DIR))
    utils.import_user_module(Namespace(user_dir=helpers.USER_DIR))
    assert fairseq_searnn.__file__.startswith(helpers.USER_DIR)


def test_user_dir_helper_outside_repository(tmp_path):
    out = _run([BIN / "fairseq-searnn-user-dir"], cwd=tmp_path).stdout.strip()
    assert out == helpers.USER_DIR
    one_liner = "import fairseq_searnn, os; print(os.path.dirname(fairseq_searnn.__file__))"
    assert _run([sys.executable, "-c", one_liner], cwd=tmp_path).stdout.strip() == out


def test_unknown_classes_are_still_refused(tmp_path):
    import fairseq_searnn  # noqa: F401  (registers the allow-list)

    path = tmp_path / "evil.pt"
    torch.save({"x": Path("/")}, path)  # a class no fairseq checkpoint contains
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    torch.save({"args": Namespace(a=1)}, path)
    assert torch.load(path)["args"].a == 1


def _assert_only_allowed_globals(path, cwd):
    """The classes a checkpoint pickles (seen by a process without the plugin) are exactly
    within the plugin's allow-list."""
    from fairseq_searnn.checkpoint import SAFE_GLOBALS

    code = ("import sys, torch; print(' '.join("
            "torch.serialization.get_unsafe_globals_in_checkpoint(sys.argv[1])))")
    found = set(_run([sys.executable, "-c", code, path], cwd=cwd).stdout.split())
    allowed = {f"{c.__module__}.{c.__qualname__}" for c in SAFE_GLOBALS}
    assert found and found <= allowed, (found, allowed)


def test_cli_train_generate_interactive_validate_resume(tmp_path, data_bin):
    """fairseq-train -> generate / interactive / validate -> --restore-file resume, all with
    torch's default weights-only loading (torch >= 2.6) and the plugin given by --user-dir."""
    save = tmp_path / "ck"
    argv = helpers.train_argv(data_bin, "transformer", "cross_entropy",
                              ["--max-update", "3", "--save-dir", save])
    _run([BIN / "fairseq-train", *argv], cwd=tmp_path)
    last = save / "checkpoint_last.pt"
    _assert_only_allowed_globals(last, tmp_path)

    common = ["--user-dir", helpers.USER_DIR, "--path", last, "--cpu",
              "--source-lang", "src", "--target-lang", "tgt"]
    gen = _run([BIN / "fairseq-generate", data_bin, *common, "--beam", "2",
                "--max-len-b", "10", "--gen-subset", "valid"], cwd=tmp_path)
    assert gen.stdout.count("\nH-") == 24, gen.stdout[-2000:]

    inter = subprocess.run(
        [str(BIN / "fairseq-interactive"), str(data_bin), *map(str, common), "--beam", "1",
         "--max-len-b", "10"],
        input="a b c\n", cwd=tmp_path, env=helpers.env_without_repo(),
        capture_output=True, text=True, timeout=300,
    )
    assert inter.returncode == 0 and "\nH-0" in "\n" + inter.stdout, inter.stderr[-2000:]

    val = _run([BIN / "fairseq-validate", data_bin, *common, "--task", "translation",
                "--valid-subset", "valid", "--max-tokens", "400"], cwd=tmp_path)
    assert "valid on 'valid' subset" in val.stdout + val.stderr

    resume = _run([BIN / "fairseq-train", *argv[:-2], "--save-dir", save, "--max-update", "5"],
                  cwd=tmp_path)
    log = resume.stdout + resume.stderr
    assert "Loaded checkpoint" in log and "@ 3 updates" in log, log[-3000:]
    state = torch.load(last)  # weights-only, with the plugin's allow-list
    assert state["optimizer_history"][-1]["num_updates"] == 5
