"""Two local processes (gloo on CPU) log the same loss and gradient norm as one process with
``--update-freq 2`` on the same data: random draws are keyed by the sentence, not the process."""

import json
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import helpers

SEARNN = ["--searnn-cost", "edit", "--rollout-max-len-b", "8"]
CONFIGS = {
    "searnn_ll": ("lstm", "searnn_ll", SEARNN + ["--rollin", "mixed", "--rollout", "mixed"]),
    "searnn_kl": ("transformer", "searnn_kl", SEARNN + ["--searnn-cells", "2"]),
    "searnn_sll": ("lstm", "searnn_sll", SEARNN + ["--searnn-tokens", "3",
                                                   "--searnn-token-sampling", "policy"]),
    "searnn_skl": ("transformer", "searnn_skl", SEARNN + ["--searnn-tokens", "3",
                                                          "--searnn-token-sampling", "uniform",
                                                          "--rollout-mix-granularity",
                                                          "sentence"]),
    # bfloat16: autocast forward, roll-ins and roll-outs on a bfloat16 copy of the weights
    "searnn_skl_bf16": ("lstm", "searnn_skl", SEARNN + [
        "--searnn-tokens", "3", "--rollin", "learned", "--rollout", "mixed", "--task",
        "searnn_translation", "--searnn-autocast", "bfloat16", "--searnn-decode-dtype",
        "bfloat16"]),
    # sequence-level risk: keyed samples + the reference, and fairseq's beam search
    "sequence_risk_sample": ("lstm", "sequence_risk", [
        "--risk-candidates", "sample", "--risk-size", "3", "--risk-add-reference",
        "--risk-max-len-b", "8"]),
    "sequence_risk_beam": ("transformer", "sequence_risk", [
        "--risk-candidates", "beam", "--risk-size", "3", "--risk-max-len-b", "8"]),
    # DSS models under stock criterions: Gumbel noise and the gold/model coin are keyed by
    # the sentence's source tokens, which is all the model sees.
    "dss_lstm": ("dss_lstm", "cross_entropy", ["--ss-feed", "soft-sample", "--ss-alpha", "2",
                                               "--ss-teacher-forcing-prob", "0.5"]),
    "dss_transformer": ("dss_transformer", "label_smoothed_cross_entropy", [
        "--label-smoothing", "0.1", "--ss-feed", "hard-sample", "--ss-decay-k", "2"]),
}
KEYS = ("loss", "nll_loss", "gnorm", "min_cost", "ref_cost", "learned_share", "risk")


def _argv(data_bin, save_dir, arch, criterion, extra):
    return helpers.train_argv(data_bin, arch, criterion, [
        *extra, "--max-update", "3", "--no-save", "--save-dir", str(save_dir),
        "--disable-validation",
        "--max-tokens", "200", "--log-format", "json"])


def _single_process(argv):
    handler = helpers.TrainLogCollector()
    log = logging.getLogger("fairseq.logging.progress_bar")
    log.addHandler(handler)
    try:
        helpers.run_training(argv + ["--update-freq", "2"])
    finally:
        log.removeHandler(handler)
    return handler.rows


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_processes(tmp_path, configs):
    cfg_file = tmp_path / "configs.json"
    cfg_file.write_text(json.dumps(configs))
    out = tmp_path / "rank0.json"
    port = str(_free_port())
    worker = Path(__file__).parent / "dist_worker.py"
    procs = [subprocess.Popen([sys.executable, str(worker), str(r), "2", port, str(out),
                               str(cfg_file)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in range(2)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-4000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def distributed_runs(data_bin, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    configs = {name: _argv(data_bin, tmp / "save", *spec) for name, spec in CONFIGS.items()}
    return configs, _two_processes(tmp, configs)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_two_processes_equal_update_freq_two(distributed_runs, name):
    configs, two = distributed_runs
    one = _single_process(configs[name])
    assert len(one) == len(two[name]) == 3
    keys = [k for k in KEYS if k in one[0]]
    assert {"loss", "gnorm"} <= set(keys)
    for a, b in zip(one, two[name]):
        for key in keys:
            assert abs(float(a[key]) - float(b[key])) <= 2e-3, (key, a, b)
        assert a["bsz"] == b["bsz"] and a["wpb"] == b["wpb"]
