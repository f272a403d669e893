"""The OCR data (letter.data parsing, folds), the ``ocr`` task, and the OCR recipe end to end
(SeaRNN training in-process, fairseq-generate + scoring through ``examples/ocr/run.py``)."""

import gzip
import importlib.util
import json

import pytest
import torch

import helpers
from fairseq_searnn.data import ocr

RUN_PY = helpers.REPO / "examples" / "ocr" / "run.py"


def _recipe():
    spec = importlib.util.spec_from_file_location("ocr_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def toy_words():
    return ocr.synthetic_words(120, seed=3)


@pytest.fixture(scope="module")
def toy_file(tmp_path_factory, toy_words):
    return ocr.write_letter_data(tmp_path_factory.mktemp("ocr") / "letter.data.gz", toy_words)


def _same(words, other):
    assert [(w.letters, w.fold) for w in words] == [(w.letters, w.fold) for w in other]
    for a, b in zip(words, other):
        assert a.pixels.dtype == torch.uint8 and a.pixels.shape == (len(a.letters), 128)
        assert torch.equal(a.pixels, b.pixels)


def test_letter_data_round_trip_gzip_and_plain(tmp_path, toy_words):
    gz = ocr.write_letter_data(tmp_path / "a.data.gz", toy_words)
    plain = ocr.write_letter_data(tmp_path / "a.data", toy_words)
    assert gz.read_bytes()[:2] == b"\x1f\x8b" and plain.read_bytes()[:2] != b"\x1f\x8b"
    assert gzip.decompress(gz.read_bytes()) == plain.read_bytes()
    first = plain.read_text().splitlines()[0].split("\t")
    assert len(first) == 134 and first[1] == toy_words[0].letters[0] and first[2] == "2"
    renamed = tmp_path / "compressed_without_suffix"
    renamed.write_bytes(gz.read_bytes())  # gzip is detected from the content
    for path in (gz, plain, renamed):
        _same(ocr.read_letter_data(path), toy_words)


def _line(letter="a", nxt=-1, word=1, fold=0, pixels="0" * 128):
    return "\t".join(["1", letter, str(nxt), str(word), "1", str(fold), *pixels]) + "\n"


@pytest.mark.parametrize("text,message", [
    (_line()[:-3] + "\n", r":1: expected 134"),
    (_line(pixels="0" * 127 + "2"), r":1: pixels must be 0 or 1"),
    (_line(nxt=2) + _line(pixels="1" * 127 + "x"), r":2: pixels must be 0 or 1"),
    (_line(nxt=2) + _line(fold=3), r":2: fold or word id changes"),
    (_line() + _line(nxt=3), r"last word does not end"),
    (_line(letter="ab"), r":1: expected 134"),
])
def test_malformed_files_are_refused_with_the_line(tmp_path, text, message):
    path = tmp_path / "bad.data"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        ocr.read_letter_data(path)


def test_split_words_and_hamming_errors(toy_words):
    s = ocr.split_words(toy_words, test_fold=0, valid_fold=1)
    assert {w.fold for w in s["test"]} == {0} and {w.fold for w in s["valid"]} == {1}
    assert {w.fold for w in s["train"]} == set(range(2, 10))
    assert sum(map(len, s.values())) == len(toy_words)
    everything = ocr.split_words(toy_words, test_fold=4, valid_fold=-1)
    assert everything["valid"] == [] and len(everything["train"]) == 108
    with pytest.raises(ValueError, match="must differ"):
        ocr.split_words(toy_words, 2, 2)
    assert ocr.hamming_errors("abc", "abc") == 0
    assert ocr.hamming_errors("abd", "abc") == 1
    assert ocr.hamming_errors("ab", "abcd") == 2 and ocr.hamming_errors("abcde", "abc") == 2
    assert ocr.hamming_errors("", "abc") == 3 and ocr.hamming_errors("bca", "abc") == 3


@pytest.fixture(scope="module")
def real_task(shared_data):
    return _task(shared_data / "ocr" / "letter.data.gz")


def test_real_file_folds(real_task):
    splits = real_task.splits()
    words = [w for split in splits.values() for w in split]
    assert len(words) == 6877 and sum(len(w.letters) for w in words) == 52152
    assert len(splits["test"]) == 626 and {w.fold for w in splits["test"]} == {0}
    assert len(splits["train"]) + len(splits["valid"]) == 6251
    assert len(splits["valid"]) == 704 and {w.fold for w in splits["valid"]} == {1}
    lengths = {len(w.letters) for w in words}
    assert min(lengths) == 3 and max(lengths) == 14 and 4 not in lengths  # as in the file
    assert len({w.letters for w in words}) == 55  # distinct words (first letters removed)
    assert set("".join(w.letters for w in words)) == set(ocr.ALPHABET)
    assert {int(w.pixels.max()) for w in words} == {1}
    for split in ("train", "valid", "test"):
        real_task.load_dataset(split)
    assert [len(real_task.dataset(s)) for s in ("train", "valid", "test")] == [5547, 704, 626]


def _task(path, **options):
    """The ``ocr`` task built from its config (the command-line path is tested with the
    recipe's arguments below)."""
    from fairseq_searnn.tasks.ocr import OcrConfig, OcrTask

    return OcrTask.setup_task(OcrConfig(ocr_data=str(path), **options))


def test_task_batches_dictionary_and_splits(toy_file, toy_words):
    task = _task(toy_file, ocr_test_fold=3, ocr_valid_fold=5)
    d = task.target_dictionary
    assert task.source_dictionary is None
    assert d.symbols[4:] == list(ocr.ALPHABET) and len(d) == 30
    assert _task(toy_file).target_dictionary.symbols == d.symbols  # rebuilt identically
    sample = helpers.valid_batch(task, 5, split="test")
    net = sample["net_input"]
    B, L, P = net["src_tokens"].shape
    assert net["src_tokens"].dtype == torch.float32 and B == 5 and P == 128
    test_words = [w for w in toy_words if w.fold == 3]
    for b, i in enumerate(sample["id"].tolist()):
        word = test_words[i]
        n = len(word.letters)
        assert net["src_lengths"][b] == n
        assert torch.equal(net["src_tokens"][b, :n], word.pixels.float())
        assert not net["src_tokens"][b, n:].any()
        target = sample["target"][b]
        assert d.string(target[:n]).replace(" ", "") == word.letters
        assert target[n] == d.eos() and (target[n + 1:] == d.pad()).all()
        prev = net["prev_output_tokens"][b]
        assert prev[0] == d.eos() and torch.equal(prev[1:n + 1], target[:n])
    assert sample["ntokens"] == int(sample["target"].ne(d.pad()).sum())
    task.load_dataset("train")
    train = task.dataset("train")
    assert len(train) == sum(w.fold not in (3, 5) for w in toy_words)
    # every word is batched (fairseq 0.12 drops a last batch of a size not a multiple of 8)
    itr = task.get_batch_iterator(dataset=train, max_sentences=16, seed=1,
                                  required_batch_size_multiple=8)
    assert sorted(i for b in itr.frozen_batches for i in b) == list(range(len(train)))


@pytest.mark.parametrize("valid_fold,message", [
    (0, "must differ"),
    (-1, "no words in split 'valid'"),
])
def test_task_option_errors(toy_file, valid_fold, message):
    with pytest.raises(ValueError, match=message):
        _task(toy_file, ocr_valid_fold=valid_fold).load_dataset("valid")


def test_all_training_folds_without_validation(toy_file, toy_words):
    task = _task(toy_file, ocr_valid_fold=-1)
    task.load_dataset("train")
    assert len(task.dataset("train")) == sum(w.fold != 0 for w in toy_words) == 108
    run = _recipe()
    args, extra = run.parse_args(["skl", "--data", str(toy_file), "--valid-fold", "-1", "--",
                                  "--max-update", "7"])
    argv = run.train_argv(args, extra)
    assert "--disable-validation" in argv and "--ocr-eval-hamming" not in argv
    assert argv[-2:] == ["--max-update", "7"] and run.checkpoint_name(args) == "checkpoint_last.pt"
    assert argv[argv.index("--searnn-tokens") + 1] == "5" and "searnn_skl" in argv
    cfg = helpers.parse_cfg(argv)  # fairseq accepts every option
    assert cfg.criterion.searnn_tokens == 5 and cfg.dataset.disable_validation


def test_task_needs_data_and_known_letters(tmp_path):
    from fairseq_searnn.tasks.ocr import OcrConfig, OcrTask

    with pytest.raises(ValueError, match="--ocr-data"):
        OcrTask.setup_task(OcrConfig())
    bad = [ocr.OcrWord("aB", torch.zeros(2, 128, dtype=torch.uint8), 1)]
    with pytest.raises(ValueError, match="outside a-z"):
        _task(ocr.write_letter_data(tmp_path / "x.data", bad)).load_dataset("valid")


@pytest.mark.parametrize("free", [False, True])
def test_searnn_training_generate_and_score(tmp_path, toy_file, free):
    """searnn_kl (Hamming cost, learned roll-in, mixed roll-out) trains in-process with the
    recipe's own fairseq-train arguments; the recipe's test stage then decodes the test fold
    (fixed length in process, or with ``--free-length`` fairseq-generate) and scores it, which
    must agree with the decoded output and with the task's own greedy Hamming metric (the
    validation metric) on the same checkpoint."""
    from fairseq import checkpoint_utils

    run = _recipe()
    out = tmp_path / "kl"
    recipe = ["kl", "--data", str(toy_file), "--out", str(out), "--hidden-size", "8",
              "--batch-size", "8", "--alpha", "10", "--max-len-b", "2"] + (
        ["--free-length"] if free else [])
    args, _ = run.parse_args(recipe)
    argv = run.train_argv(args, ["--max-update", "3", "--ocr-embed-dim", "4"])
    for option in ("searnn_kl", "hamming", "learned", "mixed", "sgd", "fixed", "ocr_gru"):
        assert option in argv
    helpers.run_training(argv)
    best = out / "checkpoint_best.pt"
    assert 0 <= torch.load(best)["extra_state"]["val_loss"] <= 300  # valid Hamming error %

    result = run.main([*recipe, "--stages", "test"])  # decode, score
    assert result == json.loads((out / "result.json").read_text())
    gen = (out / "test.generate.txt").read_text()
    refs = {line.split("\t")[0][2:]: line.split("\t")[1].split()
            for line in gen.splitlines() if line.startswith("T-")}
    hyps = {line.split("\t")[0][2:]: line.split("\t")[2].split()
            for line in gen.splitlines() if line.startswith("H-")}
    assert len(refs) == len(hyps) == result["test_words"] == 12  # fold 0 of 120 words
    errors = sum(ocr.hamming_errors(hyps[k], refs[k]) for k in refs)
    chars = sum(map(len, refs.values()))
    assert (result["test_errors"], result["test_characters"]) == (errors, chars)
    assert result["test_hamming_error_percent"] == round(100 * errors / chars, 2)

    models, _, task = checkpoint_utils.load_model_ensemble_and_task([str(best)])
    model = models[0].eval()
    task.load_dataset("test")
    itr = task.get_batch_iterator(dataset=task.dataset("test"), max_sentences=64)  # as generate
    batches = list(itr.next_epoch_itr(shuffle=False))
    counts = [task.hamming(model, s) for s in batches]
    assert tuple(map(sum, zip(*counts))) == (errors, chars)
    for s in batches[: 0 if free else None]:  # one letter per image, whatever the model says
        assert task.decode(model, s).ne(task.target_dictionary.pad()).sum(1).tolist() == (
            s["net_input"]["src_lengths"].tolist())


def test_rollin_rollout_grid_options(toy_file):
    """Table 1's roll-in × roll-out grid: ``run.py --rollin/--rollout`` reach fairseq, and the
    replication driver's ``METHOD:ROLLIN:ROLLOUT`` specs name their runs and reject nonsense."""
    import argparse

    run = _recipe()
    args, extra = run.parse_args(["ll", "--data", str(toy_file), "--rollin", "reference",
                                  "--rollout", "learned"])
    cfg = helpers.parse_cfg(run.train_argv(args, extra))
    assert (cfg.criterion.rollin, cfg.criterion.rollout) == ("reference", "learned")
    default = helpers.parse_cfg(run.train_argv(*run.parse_args(["kl", "--data", str(toy_file)])))
    assert (default.criterion.rollin, default.criterion.rollout) == ("learned", "mixed")
    driver = helpers.load_example("ocr", "replicate")
    assert driver.parse_method("kl") == ("kl", [], "kl")
    assert driver.parse_method("kl:learned:learned") == (
        "kl", ["--rollin", "learned", "--rollout", "learned"], "kl-learned-learned")
    for bad in ("mle:learned:mixed", "kl:learned", "kl:greedy:mixed", "crf"):
        with pytest.raises(argparse.ArgumentTypeError, match="ROLLIN:ROLLOUT"):
            driver.parse_method(bad)


def test_replicate_protocol_and_retraining_on_folds_1_to_9(tmp_path, toy_file):
    """examples/ocr/replicate.py at a size of seconds: a run under the protocol (validation on
    fold 1, patience, cap), then ``--retrain``: the same method and seed on every non-test fold,
    without validation, for exactly the updates of the fold-1 run's best checkpoint, scored on
    the test fold; both tables in summary.md."""
    driver = helpers.load_example("ocr", "replicate")
    assert driver.best_update([(2, 5.0), (4, 3.0), (6, 3.0), (8, 4.0)]) == 6  # ties: later
    out = tmp_path / "runs"
    results = driver.main([
        "--data", str(toy_file), "--out", str(out), "--methods", "mle", "--seeds", "1",
        "--validate-every", "2", "--patience-updates", "100", "--cap-minutes", "0.1",
        "--retrain", "--", "--ocr-hidden-size", "8", "--ocr-embed-dim", "4",
        "--batch-size", "8"])
    (record,) = results
    again = record["retrained"]
    chosen = driver.best_update(record["valid_curve"])
    assert again["chosen_updates"] == chosen == again["updates"]
    log = (out / "mle-seed1-folds1-9" / "train.log").read_text()
    assert "'ocr_valid_fold': -1" in log and "'disable_validation': True" in log
    assert f"'max_update': {chosen}" in log
    assert 0 <= again["test_hamming"] <= 100
    table = (out / "summary.md").read_text()
    assert "| mle | 1 |" in table and "retrained on folds 1–9" in table
    assert json.loads((out / "summary.json").read_text())["runs"][0]["retrained"] == again


def test_replicate_retrains_a_run_recorded_in_an_earlier_summary(tmp_path, toy_file):
    """``--previous SUMMARY.json#METHOD=NAME``: a fold-1 run whose folder is gone is not
    trained again; its record (renamed to the driver's run name) stands in, and ``--retrain``
    trains folds 1–9 for the updates of its best validation."""
    driver = helpers.load_example("ocr", "replicate")
    earlier = tmp_path / "earlier.json"
    record = {"method": "MLE, Adam", "seed": "1", "updates": 8, "stop": "patience",
              "train_wall_s": 1.0, "s_per_update": 0.1, "best_valid_hamming": 40.0,
              "test_hamming": 41.0, "valid_curve": [[2, 50.0], [4, 40.0], [6, 45.0]]}
    earlier.write_text(json.dumps({"summary": {}, "runs": [record]}))
    out = tmp_path / "runs"
    (first,) = driver.main([
        "--data", str(toy_file), "--out", str(out), "--methods", "mle", "--seeds", "1",
        "--previous", f"{earlier}#MLE, Adam=mle", "--cap-minutes", "5", "--retrain", "--",
        "--ocr-hidden-size", "8", "--ocr-embed-dim", "4", "--batch-size", "8"])
    assert not (out / "mle-seed1").exists()
    assert (first["method"], first["seed"], first["test_hamming"]) == ("mle", 1, 41.0)
    assert first["retrained"]["chosen_updates"] == 4 == first["retrained"]["updates"]
    assert first["retrained"]["stop"] == "max-update"
    assert "'max_update': 4" in (out / "mle-seed1-folds1-9" / "train.log").read_text()
    with pytest.raises(SystemExit, match="no run of method 'kl'"):
        driver.main(["--data", str(toy_file), "--out", str(out), "--previous",
                     f"{earlier}#kl=kl"])
