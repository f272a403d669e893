"""The ``fairseq-searnn-demo`` console script (fairseq_searnn.demo), at its quick size."""

import pytest
import torch

from fairseq_searnn import demo


@pytest.fixture(autouse=True)
def _one_thread(_two_threads):
    """Tiny models gain nothing from a second thread, and lose much on a busy machine."""
    torch.set_num_threads(1)


def test_demo_quick_run(tmp_path, capsys):
    results = demo.run(["--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert set(results) == {"copy", "MLE pre-trained", "MLE fine-tuned", "SeaRNN fine-tuned"}
    assert results["MLE pre-trained"]["updates"] == 40
    # the fine-tunes' budgets (--quick: 8 MLE, 4 SeaRNN updates), from the pre-trained weights
    assert results["MLE fine-tuned"]["updates"] == 8
    assert results["SeaRNN fine-tuned"]["updates"] == 4
    for name, r in results.items():
        assert 0.0 <= r["test_edit_error"] < 1000.0
        assert name == "copy" or r["ms_per_update"] > 0
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(table) == 5  # header, copy baseline, pre-trained, two fine-tunes
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert "error" in header[2]
    assert table[1].startswith("| copy the input")
    for name, row in zip(("MLE pre-trained", "MLE fine-tuned", "SeaRNN fine-tuned"), table[2:]):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == name
        assert float(cells[2]) == pytest.approx(results[name]["test_edit_error"], abs=0.006)
    assert "40 + 8" in table[3] and "40 + 4" in table[4]
    png = tmp_path / "spelling_demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plot: {png}" in out
    assert "verdict: " in out and "standard-library documentation" in out


def test_fine_tunes_start_from_the_pre_trained_weights(tmp_path):
    """Both fine-tunes begin where pre-training ended: their first validation point (update
    0) is the pre-trained model's last one."""
    args = demo.parse(["--quick", "--out", str(tmp_path)])
    from fairseq_searnn.data import demo_corpus, spelling

    stats = spelling.build(demo_corpus.stdlib_docstring_lines()[:500], tmp_path / "data",
                           p=0.3, max_len=10, copies=1, seed=1, n_valid=50, n_test=50)
    pre = demo.Run("MLE pre-trained", stats.data, demo.criterion_args("mle"), args, 1e-3)
    demo.train_to(pre, [3])
    state = pre.trainer.model.state_dict()
    tuned = demo.Run("SeaRNN fine-tuned", stats.data, demo.searnn_args(args), args, 1e-4,
                     state)
    for name, value in tuned.trainer.model.state_dict().items():
        assert torch.equal(value, state[name])
    assert tuned.evaluate() == pytest.approx(pre.curve[3])


@pytest.mark.parametrize("errors,expect", [
    ((28.0, 20.0, 19.0, 17.0), "SeaRNN fine-tuning ends 2.00 points below more MLE"),
    ((28.0, 20.0, 17.0, 19.0), "more MLE ends 2.00 points below SeaRNN fine-tuning"),
    ((28.0, 20.0, 19.0, 18.8), "end level"),
    ((28.0, 30.0, 31.0, 29.0), "no better than copying the input"),
])
def test_verdict_says_which_way_it_went(errors, expect):
    copy, start, mle, searnn = errors
    line = demo.verdict(copy, start, {"test_edit_error": mle, "updates": 1500, "seconds": 120},
                        {"test_edit_error": searnn, "updates": 300, "seconds": 110.4})
    assert expect in line
    assert "300 SeaRNN updates in 110 s against 1500 MLE updates in 120 s" in line


def test_demo_quick_sizes_and_options(tmp_path):
    args = demo.parse(["--quick", "--corpus", "x.txt"])
    assert args.pretrain_updates == 40 and args.copies == 2 and args.corpus == "x.txt"
    defaults = demo.parse([])
    assert defaults.pretrain_updates > defaults.mle_finetune_updates > defaults.finetune_updates
    for bad in ("--finetune-updates", "--mle-finetune-updates", "--pretrain-updates"):
        with pytest.raises(SystemExit):
            demo.parse([bad, "0"])


def test_console_script_is_declared_and_installed():
    from importlib.metadata import entry_points

    found = [e for e in entry_points(group="console_scripts") if e.name == "fairseq-searnn-demo"]
    assert found, "reinstall the package (pip install -e .) to get fairseq-searnn-demo"
    assert found[0].load() is demo.main
