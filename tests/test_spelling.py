"""Spelling-correction data (fairseq_searnn.data.spelling) and its recipe, end to end."""

import json
import random

import pytest
import torch

import helpers
from fairseq_searnn.data import demo_corpus, spelling

ALPHABET = set(spelling.ALPHABET)


@pytest.fixture(autouse=True)
def _one_thread(_two_threads):
    """Tiny models gain nothing from a second thread, and lose much on a busy machine."""
    torch.set_num_threads(1)


def test_alphabet_is_the_papers():
    # a-z, 0-9, ", . ! ? #" and space: 42 symbols; with the end marker, the paper's A = 43
    assert len(spelling.ALPHABET) == len(ALPHABET) == 42
    assert spelling.SPACE_SYMBOL not in ALPHABET


def test_normalize_maps_everything_else_to_hash():
    assert spelling.normalize("  Hello, World!\tÉté's 42?\n") == "hello, world!##t##s 42?"
    assert set(spelling.normalize("".join(map(chr, range(32, 1000))))) <= ALPHABET


@pytest.mark.parametrize("max_len", [10, 30])
def test_clip_counts_the_end_marker(max_len):
    text = "abcdefghij" * 5
    assert spelling.clip(text, max_len) == text[: max_len - 1]
    assert spelling.clip("abc", max_len) == "abc"
    with pytest.raises(ValueError):
        spelling.clip(text, 1)


def test_noise_rate_and_lengths():
    rng = random.Random(0)
    clean = ["".join(rng.choice(spelling.ALPHABET) for _ in range(9)) for _ in range(4000)]
    for p in (0.3, 0.5):
        noisy = [spelling.corrupt(t, p, random.Random(f"{p}-{i}")) for i, t in enumerate(clean)]
        assert [len(t) for t in noisy] == [len(t) for t in clean]
        assert set("".join(noisy)) <= ALPHABET
        diff, total = spelling.changed(noisy, clean)
        # a replaced character draws its own symbol back with probability 1/42
        assert diff / total == pytest.approx(p * 41 / 42, abs=0.012)
        assert diff / total < p
    assert spelling.corrupt("abc", 0.0, rng) == "abc"


def test_symbols_round_trip():
    assert spelling.to_symbols("a b,#") == "a _ b , #"
    assert spelling.from_symbols("a _ b , #") == "a b,#"
    # a decoded <unk> is one wrong character, not five
    assert spelling.from_symbols("a <unk> _ b <s>") == f"a{spelling.FOREIGN} b{spelling.FOREIGN}"
    assert spelling.edit_error([spelling.from_symbols("a <unk>")], ["ab"]) == 50.0


def test_edit_distance_and_corpus_error():
    assert spelling.edit_distance("kitten", "sitting") == 3
    assert spelling.edit_distance("", "abc") == 3
    assert spelling.edit_distance("abc", "abc") == 0
    # total edits (1 + 2) over total reference characters (4 + 2)
    assert spelling.edit_error(["abcd", ""], ["abce", "xy"]) == pytest.approx(50.0)


def test_stdlib_corpus_is_deterministic_english():
    lines = demo_corpus.stdlib_docstring_lines()
    assert len(lines) > 2000
    assert lines == demo_corpus.stdlib_docstring_lines()
    assert set("".join(lines)) <= ALPHABET
    words = " ".join(lines).split()
    assert sum(w in ("the", "a", "of", "to", "is") for w in words) > 0.1 * len(words)


def _read(path):
    return path.read_text().splitlines()


def test_build_writes_binarised_noisy_copies(tmp_path, shared_data):
    lines = spelling.read_lines(shared_data / "spelling" / "tinyshakespeare.txt")[:900]
    stats = spelling.build(lines, tmp_path, p=0.5, max_len=10, copies=3, seed=3,
                           n_valid=100, n_test=100)
    text = tmp_path / "text"
    train = [spelling.from_symbols(x) for x in _read(text / "train.clean")]
    assert stats.sentences == {"test": 100, "valid": 100, "train": len(train),
                               "train1": len(train), "train2": len(train)}
    assert len(train) + 200 == sum(bool(spelling.clip(t, 10)) for t in lines)
    for name in ("train", "train1", "train2", "valid", "test"):
        noisy, clean = spelling.load_split(text, name)
        assert all(0 < len(c) <= 9 and len(n) == len(c) for n, c in zip(noisy, clean))
        assert set("".join(noisy + clean)) <= ALPHABET
        # one symbol per character, single spaces between them, the space written as "_"
        symbols = {s for x in _read(text / f"{name}.noisy") for s in x.split(" ")}
        assert symbols <= (ALPHABET - {" "}) | {spelling.SPACE_SYMBOL}
        assert stats.changed_rate[name] == pytest.approx(0.5 * 41 / 42, abs=0.05)
    copies = [spelling.load_split(text, n)[0] for n in ("train", "train1", "train2")]
    assert copies[0] != copies[1] != copies[2]
    assert spelling.load_split(text, "train1")[1] == spelling.load_split(text, "train")[1]
    # a fixed seed gives the same data
    again = spelling.build(lines, tmp_path / "again", p=0.5, max_len=10, copies=1, seed=3,
                           n_valid=100, n_test=100, binarise=False)
    assert _read(tmp_path / "again" / "text" / "test.noisy") == _read(text / "test.noisy")
    assert again.changed_rate["test"] == stats.changed_rate["test"]

    # fairseq reads the shards: epoch e trains on noisy copy (e - 1) % 3, EOS never corrupted
    from fairseq import tasks

    cfg = helpers.parse_cfg([
        stats.data, "--task", "translation", "-s", spelling.SRC, "-t", spelling.TGT,
        "--arch", "lstm", "--max-tokens", "100"])
    task = tasks.setup_task(cfg.task)
    src_dict = task.source_dictionary
    assert len(src_dict) == 4 + 42
    seen = []
    for epoch in (1, 2, 3, 4):
        task.load_dataset("train", epoch=epoch)
        ds = task.dataset("train")
        first = [ds[i] for i in range(50)]
        for item in first:
            assert item["source"][-1] == src_dict.eos() == item["target"][-1]
            assert len(item["source"]) == len(item["target"])
        seen.append(torch.cat([item["source"] for item in first]))
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
    assert torch.equal(seen[0], seen[3])
    decoded = [spelling.from_symbols(src_dict.string(item["source"])) for item in first]
    assert decoded == copies[0][:50]


def test_command_line_t30_and_recipe_end_to_end(tmp_path, shared_data, capsys):
    """The generator's CLI (T = 30, p = 0.3), a few SeaRNN updates through fairseq's own
    training loop on the noisy shards, then the recipe's exact edit-error evaluation."""
    out = tmp_path / "sp"
    stats = spelling.main([
        "--text", str(shared_data / "spelling" / "iwslt14_en_valid.txt"), "--out", str(out),
        "--p", "0.3", "--max-len", "30", "--copies", "2", "--valid", "43", "--test", "45",
        "--max-lines", "400"])
    assert "changed rate" in capsys.readouterr().out
    noisy, clean = spelling.load_split(out / "text", "test")
    assert max(map(len, clean)) == 29
    assert stats.changed_rate["test"] == pytest.approx(0.3 * 41 / 42, abs=0.06)
    assert (out / "data-path.txt").read_text().strip() == stats.data

    save = tmp_path / "ckpt"
    helpers.run_training([
        stats.data, "--user-dir", helpers.USER_DIR, "--task", "translation",
        "-s", spelling.SRC, "-t", spelling.TGT, *helpers.ARCH_ARGS["lstm"],
        "--encoder-bidirectional", "--criterion", "searnn_skl", "--searnn-cost", "edit",
        "--rollin", "learned", "--rollout", "mixed", "--searnn-tokens", "3",
        "--searnn-token-sampling", "biased", "--rollout-max-len-a", "1",
        "--rollout-max-len-b", "2", "--searnn-cells", "2", "--optimizer", "adam",
        "--lr", "0.005", "--batch-size", "128", "--max-epoch", "2", "--cpu", "--num-workers", "0",
        "--save-dir", str(save), "--no-epoch-checkpoints", "--no-progress-bar", "--seed", "1"])
    evaluate = helpers.load_example("spelling", "evaluate")
    err = evaluate.main(["--data", stats.data.split(":")[0], "--checkpoint",
                         str(save / "checkpoint_last.pt"), "--split", "test"])
    assert f"edit error {err:.2f}%" in capsys.readouterr().out
    assert 0.0 <= err < 1000
    hyps, refs = evaluate.generate(stats.data.split(":")[0], save / "checkpoint_last.pt",
                                   "test", 1, tmp_path / "gen")
    assert refs == clean and len(hyps) == len(refs)
    assert spelling.edit_error(hyps, refs) == pytest.approx(err)
    # a user's own text: the same sentences, clipped and noised as the test split was (the
    # split's noise seed differs, so only the references and the sizes must agree)
    own = tmp_path / "own.txt"
    own.write_text("".join(t + "\n" for t in clean))
    data, n = evaluate.binarize_text(own, tmp_path / "own", 0.3, 30, seed=1)
    hyps2, refs2 = evaluate.generate(data, save / "checkpoint_last.pt", "test", 1,
                                     tmp_path / "gen2")
    want = [t for t in (spelling.clip(line, 30) for line in spelling.read_lines(own)) if t]
    assert n == len(want) == len(hyps2) and refs2 == want and n >= len(clean) - 2
    err2 = evaluate.main(["--text", str(own), "--checkpoint", str(save / "checkpoint_last.pt"),
                          "--max-len", "30"])
    assert err2 == pytest.approx(spelling.edit_error(hyps2, refs2))
    assert f"{own}: {n} sentences" in capsys.readouterr().out


def test_replicate_converged_protocol_end_to_end(tmp_path, shared_data):
    """examples/spelling/replicate.py at a size of seconds: MLE and sKL under one schedule
    (validation interval, patience in updates, wall-time cap), each run's stop reason, best
    validation and test error read back into the table, summary json and both curve plots;
    finished runs are not run again."""
    out = tmp_path / "sp"
    spelling.main(["--text", str(shared_data / "spelling" / "iwslt14_en_valid.txt"),
                   "--out", str(out), "--p", "0.3", "--max-len", "10", "--copies", "1",
                   "--valid", "40", "--test", "40", "--max-lines", "300"])
    driver = helpers.load_example("spelling", "replicate")
    runs = tmp_path / "runs"
    argv = ["--data", str(out), "--out", str(runs), "--methods", "mle", "searnn_skl",
            "--seeds", "1", "--cap-minutes", "0.05", "--patience-updates", "2",
            "--validate-every", "1", "--alpha", "30", "--jobs", "2"]
    driver.main(argv)
    summary = json.loads((runs / "summary.json").read_text())
    assert list(summary["summary"]) == ["mle", "searnn_skl-alpha30"]  # MLE takes no alpha
    for run in summary["runs"]:
        log = (runs / f"{run['method']}-seed1" / "train.log").read_text()
        assert run["stop"] in ("cap", "patience") and run["updates"] >= 1
        assert "'validate_interval_updates': 1" in log and "'patience': 2" in log
        assert run["valid_curve"] and run["best_valid_edit"] == min(
            v for _, v in run["valid_curve"])
        assert run["test_edit"] >= 0  # an untrained model's long outputs exceed 100 %
    assert "'searnn_alpha': 30.0" in (runs / "searnn_skl-alpha30-seed1" / "train.log").read_text()
    table = (runs / "summary.md").read_text()
    assert "| method | seeds | test edit error % (mean ± std) |" in table
    assert "| searnn_skl-alpha30 | 1 |" in table
    assert (runs / "curves.png").exists() and (runs / "curves-updates.png").exists()
    stamp = (runs / "mle-seed1" / "train.log").stat().st_mtime
    driver.main(argv)
    assert (runs / "mle-seed1" / "train.log").stat().st_mtime == stamp
    with pytest.raises(SystemExit):
        driver.main([*argv, "--patience-updates", "-1"])
