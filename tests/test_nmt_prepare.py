"""Translation data pipelines (fairseq_searnn.data.nmt_prepare, .multi30k, .iwslt14, .subword,
.nmt_eval; examples/nmt), offline."""

import json
import subprocess
import sys
import tarfile

import pytest
import torch

import helpers
from fairseq_searnn.data import iwslt14, multi30k, nmt_eval, subword
from fairseq_searnn.data import nmt_prepare as nmt


@pytest.fixture(autouse=True)
def _one_thread(_two_threads):
    """Tiny models gain nothing from a second thread, and lose much on a busy machine."""
    torch.set_num_threads(1)


def test_subword_nmt_codes_reproduce_the_standard_fairseq_bpe(shared_data):
    iwslt = shared_data / "iwslt14"
    codes = subword.SubwordNmtCodes(iwslt / "bpe10k" / "code")
    assert codes.version == (0, 2)
    for lang in ("de", "en"):
        tok = nmt.read_lines(iwslt / "tok" / f"valid.{lang}", 1500)
        expected = nmt.read_lines(iwslt / "bpe10k" / f"valid.{lang}", 1500)
        assert [codes.segment(line) for line in tok] == expected


def test_subword_nmt_codes_by_hand(tmp_path):
    path = tmp_path / "code"
    path.write_text("#version: 0.2\nl o\nlo w</w>\ne r</w>\n")
    codes = subword.SubwordNmtCodes(path)
    assert codes.segment("low lower  newer a") == "low lo@@ w@@ er n@@ e@@ w@@ er a"


def test_clean_corpus_like_moses():
    src = ["a b c", "a", "", "a b c d", " ".join("x" * 176)]
    tgt = ["x y", "x y", "x", "x y", "x"]
    # ratio 1.5: 3/2 kept, 2/1 dropped; empty dropped; 4/2 dropped; > 175 tokens dropped
    assert iwslt14.clean_corpus(src, tgt) == [0]
    assert iwslt14.clean_corpus(["a  b"], ["x y z"]) == [0]


def test_iwslt_parsers(tmp_path):
    train = tmp_path / "train.tags.de-en.en"
    train.write_text("<url>http://x</url>\n<keywords>a, b</keywords>\n<talkid>1</talkid>\n"
                     "<title>The title</title>\n<description>Desc.</description>\n"
                     "Plain text line.\n")
    assert iwslt14.iwslt_train_lines(train) == ["The title", "Desc.", "Plain text line."]
    xml = tmp_path / "IWSLT14.TED.dev2010.de-en.en.xml"
    xml.write_text('<doc docid="1">\n<seg id="1"> It\u2019s here. </seg>\n'
                   '<seg id="2">Second &amp; last.</seg>\n</doc>\n')
    assert iwslt14.iwslt_xml_segments(xml) == ["It's here.", "Second &amp; last."]


def _fake_iwslt_archive(shared_data, root, n=460):
    """A de-en.tgz laid out like the official one, from the IWSLT14 valid files."""
    orig, raw = iwslt14.iwslt14_layout_from_tokenised(shared_data / "iwslt14" / "tok", root, n)
    archive = root / "de-en.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(orig, arcname="de-en")
    return archive, raw


def test_iwslt14_pipeline_offline(tmp_path, shared_data):
    archive, raw = _fake_iwslt_archive(shared_data, tmp_path / "src")
    out = iwslt14.prepare_iwslt14(str(archive), tmp_path / "iwslt", vocab=200,
                                  workdir=tmp_path / "orig")
    tok = {s: {lang: nmt.read_lines(out / "tok" / f"{s}.{lang}") for lang in ("de", "en")}
           for s in ("train", "valid", "test")}
    kept = len(tok["train"]["en"]) + len(tok["valid"]["en"])
    # 2 title/description lines + 460 text lines, 10 of them <url>: 452 pairs before cleaning
    assert 400 < kept <= 452
    assert len(tok["valid"]["en"]) == kept // 23
    assert len(tok["test"]["de"]) == len(tok["test"]["en"]) == 40
    for split in tok.values():
        for lines in split.values():
            assert all(line == line.lower() and "<" not in line for line in lines)
    # Moses tokenisation as fairseq's: most re-tokenised lines equal the shared tokenised
    # valid files (the rest differ by sentence-internal periods, split only before capitals)
    shared = set(nmt.read_lines(shared_data / "iwslt14" / "tok" / "valid.en", 500))
    agree = sum(line in shared for line in tok["train"]["en"]) / len(tok["train"]["en"])
    assert agree > 0.85
    assert nmt.read_lines(out / "ref" / "test.en") == raw["en"][460:500]
    info = json.loads((out / "prep.json").read_text())
    assert info["bpe"] == "sentencepiece" and info["moses"] and info["lowercase"]
    for split in ("train", "valid", "test"):
        for lang in ("de", "en"):
            assert (out / "bin" / f"{split}.de-en.{lang}.bin").exists()
    # undoing BPE + Moses: the references' own subword units score (almost) 100 BLEU
    units = nmt.read_lines(out / "bpe" / "valid.en")
    score, hyps = nmt_eval.bleu(out, units, "valid")
    assert len(hyps) == len(units) and score.score > 90
    assert nmt_eval.tokenized_bleu(out, units, "valid").score == pytest.approx(100.0)
    # raw text of one's own goes through the same pipeline
    for lang in ("de", "en"):
        assert nmt.encode_lines(out, nmt.read_lines(out / "ref" / f"valid.{lang}"), lang) == \
            nmt.read_lines(out / "bpe" / f"valid.{lang}")
    # the standard fairseq codes instead of sentencepiece
    out2 = iwslt14.prepare_iwslt14(str(tmp_path / "orig" / "de-en"),
                                   tmp_path / "iwslt-bpe10k", bpe="subword-nmt",
                                   codes=shared_data / "iwslt14" / "bpe10k" / "code")
    codes = subword.SubwordNmtCodes(shared_data / "iwslt14" / "bpe10k" / "code")
    assert nmt.read_lines(out2 / "bpe" / "valid.de") == [
        codes.segment(x) for x in tok["valid"]["de"]]
    assert nmt_eval.tokenized_bleu(out2, nmt.read_lines(out2 / "bpe" / "valid.en"),
                              "valid").score == pytest.approx(100.0)


def test_multi30k_pipeline_train_and_score(tmp_path, shared_data):
    prepare = helpers.load_example("nmt", "prepare_multi30k")
    out = prepare.main(["--raw-dir", str(shared_data / "multi30k" / "raw"),
                        "--out", str(tmp_path / "m30k"), "--vocab", "200",
                        "--max-lines", "203"])
    units = nmt.read_lines(out / "bpe" / "valid.en")
    assert len(units) == 203 and all("\u2581" in line for line in units)
    assert nmt_eval.bleu(out, units, "valid")[0].score == pytest.approx(100.0)
    vocab = nmt.read_lines(out / "bin" / "dict.de.txt")
    assert vocab == nmt.read_lines(out / "bin" / "dict.en.txt")  # joined dictionary
    assert 150 <= len(vocab) <= 260

    save = tmp_path / "ckpt"
    helpers.run_training([
        str(out / "bin"), "--user-dir", helpers.USER_DIR, "--task", "translation",
        "-s", "de", "-t", "en", *helpers.ARCH_ARGS["lstm"], "--encoder-bidirectional",
        "--criterion", "searnn_skl", "--searnn-cost", "bleu", "--rollin", "reference",
        "--rollout", "mixed", "--searnn-alpha", "200", "--searnn-tokens", "3",
        "--searnn-token-sampling", "topk-neighbors", "--searnn-neighbors", "1",
        "--searnn-reference", "best-suffix", "--searnn-reference-cost", "bleu1",
        "--searnn-cells", "2", "--rollout-max-len-a", "1.5", "--rollout-max-len-b", "5",
        "--optimizer", "adam", "--lr", "0.005", "--batch-size", "32", "--max-update", "3",
        "--cpu", "--num-workers", "0", "--save-dir", str(save), "--no-epoch-checkpoints",
        "--no-progress-bar", "--seed", "1"])
    script = helpers.REPO / "examples" / "nmt" / "evaluate.py"
    hyp_file = tmp_path / "hyps.txt"
    proc = subprocess.run(
        [sys.executable, str(script), "--prep", str(out), "--checkpoint",
         str(save / "checkpoint_last.pt"), "--split", "valid", "--beam", "2",
         "--max-len-a", "1.2", "--max-len-b", "5", "--out", str(hyp_file)],
        capture_output=True, text=True, env=helpers.env_without_repo(), cwd=tmp_path,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["sentences"] == 203 and result["beam"] == 2
    hyps = nmt.read_lines(hyp_file)
    refs = nmt.read_lines(out / "ref" / "valid.en")
    import sacrebleu

    assert result["sacrebleu"] == pytest.approx(
        round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2))

    # the same sentences as raw files of one's own: the same hypotheses and score
    own = helpers.load_example("nmt", "evaluate").main(
        ["--prep", str(out), "--checkpoint", str(save / "checkpoint_last.pt"),
         "--src-file", str(out / "ref" / "valid.de"), "--ref-file", str(out / "ref" / "valid.en"),
         "--beam", "2", "--max-len-a", "1.2", "--max-len-b", "5",
         "--out", str(tmp_path / "own.txt")])
    assert own["sacrebleu"] == result["sacrebleu"] and own["sentences"] == 203
    assert nmt.read_lines(tmp_path / "own.txt") == hyps
    assert not (out / "bin" / "own.de-en.de.bin").exists()  # the prepared directory is kept


def test_valid_halves_are_fixed_disjoint_halves_of_valid(tmp_path, shared_data):
    from fairseq.data import data_utils

    out = multi30k.prepare_multi30k(shared_data / "multi30k" / "raw", tmp_path / "m30k",
                                    vocab=200, max_lines=41)
    nmt.split_valid_halves(out)
    info = json.loads((out / "prep.json").read_text())
    assert {"select", "report"} <= set(info["splits"])
    valid = nmt.read_lines(out / "ref" / "valid.en")
    assert nmt.read_lines(out / "ref" / "select.en") == valid[0::2]  # 21 pairs
    assert nmt.read_lines(out / "ref" / "report.en") == valid[1::2]  # 20 pairs
    from fairseq.data import Dictionary

    dictionary = Dictionary.load(str(out / "bin" / "dict.en.txt"))
    whole = data_utils.load_indexed_dataset(str(out / "bin" / "valid.de-en.en"), dictionary)
    half = data_utils.load_indexed_dataset(str(out / "bin" / "report.de-en.en"), dictionary)
    assert len(half) == 20
    for i in range(20):
        assert torch.equal(half[i], whole[2 * i + 1])
    mtime = (out / "bin" / "select.de-en.de.bin").stat().st_mtime
    nmt.split_valid_halves(out)  # kept
    assert (out / "bin" / "select.de-en.de.bin").stat().st_mtime == mtime
    with pytest.raises(ValueError, match="2 source lines for 1 target"):
        nmt.add_split(out, "bad", ["a", "b"], ["c"])


def _raw_slice(shared_data, dest, n, test_names=("test2016",), test_lines=0):
    """``dest`` holding the first ``n`` pairs of Multi30k's train and val, and the shared test
    set under each of ``test_names`` (its first ``test_lines`` pairs; 0: all)."""
    raw = shared_data / "multi30k" / "raw"
    for lang in ("de", "en"):
        for name in ("train", "val"):
            nmt.write_lines(dest / f"{name}.{lang}", nmt.read_lines(raw / f"{name}.{lang}", n))
        for name in test_names:
            nmt.write_lines(dest / f"{name}.{lang}",
                            nmt.read_lines(raw / f"test2016.{lang}", test_lines))
    return dest


def test_multi30k_test_split_is_test2016(tmp_path, shared_data):
    raw = _raw_slice(shared_data, tmp_path / "raw", 150)
    out = helpers.load_example("nmt", "prepare_multi30k").main(
        ["--raw-dir", str(raw), "--out", str(tmp_path / "m30k"), "--vocab", "200"])
    info = nmt.prep_info(out)
    assert info["test_prefix"] == "test2016" and "test" in info["splits"]
    shared = shared_data / "multi30k" / "raw"
    for lang in ("de", "en"):  # the raw, detokenised sentences are the references
        assert nmt.read_lines(out / "ref" / f"test.{lang}") == \
            nmt.read_lines(shared / f"test2016.{lang}")
    from fairseq.data import Dictionary, data_utils

    dictionary = Dictionary.load(str(out / "bin" / "dict.en.txt"))
    test = data_utils.load_indexed_dataset(str(out / "bin" / "test.de-en.en"), dictionary)
    assert len(test) == 1000
    units = nmt.read_lines(out / "bpe" / "test.en")
    assert nmt_eval.bleu(out, units, "test")[0].score == pytest.approx(100.0)
    # the same encoding as a split added later with the directory's pipeline
    later = nmt.read_lines(shared / "test2016.de", 20)
    assert nmt.encode_lines(out, later, "de") == nmt.read_lines(out / "bpe" / "test.de", 20)


def test_multi30k_test_prefix_choice(tmp_path, shared_data):
    # no test files: no test split, as before
    bare = _raw_slice(shared_data, tmp_path / "bare", 60, test_names=())
    assert multi30k.find_test_prefix(bare) is None
    out = multi30k.prepare_multi30k(bare, tmp_path / "m-bare", vocab=150)
    assert nmt.prep_info(out)["splits"] == ["train", "valid"]
    # test.* first (the former behaviour), then test2016, then test_2016_flickr
    both = _raw_slice(shared_data, tmp_path / "both", 60,
                      test_names=("test", "test2016", "test_2016_flickr"), test_lines=5)
    assert multi30k.find_test_prefix(both) == "test"
    for name in ("test", "test2016"):
        for lang in ("de", "en"):
            (both / f"{name}.{lang}").unlink()
    assert multi30k.find_test_prefix(both) == "test_2016_flickr"
    assert multi30k.find_test_prefix(both, prefix="test_2016_flickr") == "test_2016_flickr"
    with pytest.raises(FileNotFoundError, match="no test2016.de / test2016.en"):
        multi30k.find_test_prefix(both, prefix="test2016")


def test_reversed_source_copy(tmp_path, shared_data):
    from fairseq.data import Dictionary, data_utils

    out = multi30k.prepare_multi30k(shared_data / "multi30k" / "raw", tmp_path / "m30k",
                                    vocab=200, max_lines=40)
    rev = nmt.reversed_source(out, tmp_path / "m30k-rev")
    info = nmt.prep_info(rev)
    assert info["reverse_source"] and info["splits"] == ["test", "train", "valid"]
    dictionary = Dictionary.load(str(out / "bin" / "dict.de.txt"))
    assert nmt.read_lines(rev / "bin" / "dict.de.txt") == nmt.read_lines(out / "bin" /
                                                                          "dict.de.txt")
    eos = dictionary.eos()
    for split in ("train", "valid", "test"):
        def load(folder, lang, split=split):
            return data_utils.load_indexed_dataset(
                str(folder / "bin" / f"{split}.de-en.{lang}"), dictionary)
        forward, backward = load(out, "de"), load(rev, "de")
        assert len(forward) == len(backward) == 40
        for i in range(40):
            assert backward[i][-1] == forward[i][-1] == eos  # EOS stays last
            assert torch.equal(backward[i][:-1], forward[i][:-1].flip(0))
            assert torch.equal(load(rev, "en")[i], load(out, "en")[i])
        assert nmt.read_lines(rev / "ref" / f"{split}.de") == \
            nmt.read_lines(out / "ref" / f"{split}.de")
    # text added later is reversed on the source side only
    src, tgt = nmt.read_lines(out / "ref" / "valid.de"), nmt.read_lines(out / "ref" / "valid.en")
    nmt.add_split(rev, "own", src[:5], tgt[:5])
    assert nmt.read_lines(rev / "bpe" / "own.de") == [
        nmt.reverse_units(x) for x in nmt.read_lines(out / "bpe" / "valid.de", 5)]
    assert nmt.read_lines(rev / "bpe" / "own.en") == nmt.read_lines(out / "bpe" / "valid.en", 5)
    # kept when made; splits the original gains later are added
    stamp = (rev / "bin" / "train.de-en.de.bin").stat().st_mtime
    nmt.split_valid_halves(out)
    nmt.reversed_source(out, rev)
    assert (rev / "bin" / "train.de-en.de.bin").stat().st_mtime == stamp
    assert {"select", "report", "own"} <= set(nmt.prep_info(rev)["splits"])
    assert nmt.read_lines(rev / "bpe" / "select.de") == [
        nmt.reverse_units(x) for x in nmt.read_lines(out / "bpe" / "select.de")]
    with pytest.raises(ValueError, match="already reverses"):
        nmt.reversed_source(rev, tmp_path / "twice")
