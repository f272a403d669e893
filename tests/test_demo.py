"""The ``fairseq-searnn-demo`` console script (fairseq_searnn.demo), at its quick size."""

import pytest
import torch

from fairseq_searnn import demo


@pytest.fixture(autouse=True)
def _one_thread(_two_threads):
    """Tiny models gain nothing from a second thread, and lose much on a busy machine."""
    torch.set_num_threads(1)


def test_demo_quick_run(tmp_path, capsys):
    results = demo.run(["--quick", "--budget", "4", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert set(results) == {"MLE", "SeaRNN"}
    # equal number of updates, decided by the SeaRNN budget
    assert results["MLE"]["updates"] == results["SeaRNN"]["updates"] >= 1
    for r in results.values():
        assert 0.0 <= r["test_edit_error"] < 1000.0 and r["ms_per_update"] > 0
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(table) == 4  # header, copy baseline, MLE, SeaRNN
    for name, row in (("MLE", table[2]), ("SeaRNN", table[3])):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0].startswith(name)
        assert int(cells[1]) == results[name]["updates"]
        assert float(cells[2]) == pytest.approx(results[name]["test_edit_error"], abs=0.006)
    png = tmp_path / "spelling_demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "equal number of updates" in out and "standard-library documentation" in out


def test_demo_quick_sizes_and_corpus_option(tmp_path):
    args = demo.parse(["--quick", "--corpus", "x.txt"])
    assert args.budget <= 10 and args.copies == 2 and args.corpus == "x.txt"
    assert demo.parse([]).budget == 300.0


def test_console_script_is_declared_and_installed():
    from importlib.metadata import entry_points

    found = [e for e in entry_points(group="console_scripts") if e.name == "fairseq-searnn-demo"]
    assert found, "reinstall the package (pip install -e .) to get fairseq-searnn-demo"
    assert found[0].load() is demo.main
