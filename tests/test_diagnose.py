"""fairseq-searnn-diagnose: every number against an independent per-sentence count.

- the batched statistics against plain Python loops over sentences (random tensors);
- toy models whose outputs are known by construction (copy the reference, repeat one token,
  copy with a slip that then compounds), their numbers recomputed by hand from the data;
- the SeaRNN target report cell by cell, the model's probabilities from single-sentence
  non-incremental passes;
- the command end to end on saved fairseq ``lstm`` / ``transformer`` and ``dss_lstm``
  checkpoints, its beam BLEU against fairseq-generate's sacrebleu score.
"""

import contextlib
import io
import json
import math
import random
from collections import Counter

import pytest
import torch
from fairseq.models import (
    FairseqEncoder,
    FairseqEncoderDecoderModel,
    FairseqIncrementalDecoder,
)

import brute_force
import helpers
from fairseq_searnn.diagnose import Diagnosis, Options, TargetStats, cli, metrics

SKL = ["--rollin", "reference", "--rollout", "mixed", "--searnn-cost", "bleu",
       "--searnn-reference", "best-suffix", "--searnn-reference-cost", "bleu1",
       "--searnn-tokens", "3", "--searnn-token-sampling", "topk-neighbors",
       "--searnn-neighbors", "2", "--searnn-alpha", "5"]
ORDERS = (1, 2, 3, 4)


# ------------------------------------------------------------------ plain-Python recomputation

def brute_positions(pairs):
    """Error counts of (prediction, reference) symbol lists (EOS included), one at a time."""
    err, tok = Counter(), Counter()
    sums = Counter()
    for pred, ref in pairs:
        first = None
        for t in range(len(ref)):
            has = t < len(pred)
            e = (not has) or pred[t] != ref[t]
            err[t] += e
            tok[t] += 1
            if has:
                group = "prefix_ok" if first is None else "after"
                sums[f"{group}_errors"] += e
                sums[f"{group}_tokens"] += 1
                if first is not None and t == first + 1:
                    sums["next_errors"] += e
                    sums["next_tokens"] += 1
            if e and first is None:
                first = t
    width = max(len(r) for _, r in pairs)
    return [err[t] for t in range(width)], [tok[t] for t in range(width)], sums


def brute_outputs(rows, unk, specials):
    """Pathology counts of content symbol lists."""
    out = Counter(sentences=len(rows))
    for row in rows:
        out["symbols"] += len(row)
        out["adjacent_pairs"] += max(len(row) - 1, 0)
        out["adjacent_repeats"] += sum(row[i] == row[i - 1] for i in range(1, len(row)))
        out["unk"] += row.count(unk)
        out["special"] += sum(x in specials for x in row)
        for n in ORDERS:
            seen = set()
            for i in range(len(row) - n + 1):
                gram = tuple(row[i:i + n])
                out[f"repeat_{n}"] += gram in seen
                out[f"ngrams_{n}"] += 1
                seen.add(gram)
    return out


def edits_from_repeats(x, m, ref):
    """Edit distance between ``m`` copies of ``x`` and ``ref``, by hand: an alignment matches
    at most ``min(m, ref.count(x))`` symbols, and with identical hypothesis symbols every other
    symbol of the shorter side can be paired with one of the longer side (a substitution)."""
    return max(m, len(ref)) - min(m, ref.count(x))


def padded(rows, pad, width=None):
    width = max([len(r) for r in rows] + [width or 0])
    return torch.tensor([r + [pad] * (width - len(r)) for r in rows])


# ------------------------------------------------------------------ batched statistics

def test_position_statistics_match_a_per_sentence_count():
    rng = random.Random(3)
    pad, eos = 1, 2
    pairs = []
    for _ in range(200):
        ref = [rng.randint(4, 7) for _ in range(rng.randint(0, 8))] + [eos]
        pred = [x if rng.random() < 0.7 else rng.randint(4, 7) for x in ref[:-1]]
        pred = pred[: rng.randint(0, len(pred))] if rng.random() < 0.3 else pred
        pred += [rng.randint(4, 7) for _ in range(rng.randint(0, 2))] + [eos]
        pairs.append((pred, ref))
    pred_t = padded([p for p, _ in pairs], pad, width=12)
    ref_t = padded([r for _, r in pairs], pad)
    got = metrics.position_errors(pred_t, pred_t.ne(pad).sum(1), ref_t, pad)
    err, tok, sums = brute_positions(pairs)
    assert got["errors_by_position"].tolist() == err
    assert got["tokens_by_position"].tolist() == tok
    for key in ("prefix_ok", "next", "after"):
        for part in ("errors", "tokens"):
            assert int(got[f"{key}_{part}"]) == sums[f"{key}_{part}"] > 0, (key, part)


def test_output_statistics_match_a_per_sentence_count():
    rng = random.Random(4)
    pad, unk, specials = 1, 3, [0, 9]
    rows = [[rng.choice([0, 3, 4, 5, 5, 6, 9]) for _ in range(rng.randint(0, 9))]
            for _ in range(150)]
    got = metrics.output_stats(padded(rows, pad), pad, unk, torch.tensor(specials), ORDERS)
    want = brute_outputs(rows, unk, specials)
    for key, value in got.items():
        assert int(value) == want[key], key


def test_entropy_sums_match_a_per_position_count():
    """Entropy of every full distribution at the non-pad positions, zero-probability symbols
    (log-probability -inf) included."""
    torch.manual_seed(0)
    pad = 1
    lprobs = torch.log_softmax(3 * torch.randn(4, 6, 9, dtype=torch.float64), -1)
    lprobs[0, 0] = torch.log(torch.tensor([0.0, 0.5, 0.5] + [0.0] * 6))
    seq = torch.randint(2, 9, (4, 6))
    seq[1, 3:] = pad
    seq[2, 1:] = pad
    got = metrics.entropy_sums(lprobs, seq, pad)
    want, n = 0.0, 0
    for b in range(4):
        for t in range(6):
            if seq[b, t] != pad:
                want -= sum(math.exp(x) * x for x in lprobs[b, t].tolist() if x > -math.inf)
                n += 1
    assert int(got["entropy_tokens"]) == n == 24 - 3 - 5
    assert float(got["entropy"]) == pytest.approx(want, rel=1e-6)
    assert float(got["entropy"]) > math.log(2)  # the first position alone holds log 2


# ------------------------------------------------------------------ toy models

class OracleEncoder(FairseqEncoder):
    """Passes the source on, right-aligned (content + EOS, pad after): on a copy corpus with a
    joined dictionary that is the reference."""

    def forward(self, src_tokens, src_lengths=None, **kwargs):
        order = torch.sort(src_tokens.eq(self.dictionary.pad()).long(), dim=1, stable=True).indices
        return {"ref": [src_tokens.gather(1, order)]}

    def reorder_encoder_out(self, encoder_out, new_order):
        return {"ref": [encoder_out["ref"][0].index_select(0, new_order)]}

    def max_positions(self):
        return 1024


class OracleDecoder(FairseqIncrementalDecoder):
    """Emits ``rule(ref, prefix, t)`` at step ``t``: logit 0, every other symbol -1e4 and EOS,
    unless chosen, -1e9 (so that beam search never ends a hypothesis the rule does not end:
    every hypothesis then ends at the step the rule fixes, and the rule's own one wins)."""

    def __init__(self, dictionary, rule):
        super().__init__(dictionary)
        self.rule = rule

    def forward(self, prev_output_tokens, encoder_out=None, incremental_state=None, **kwargs):
        ref = encoder_out["ref"][0]
        L = prev_output_tokens.size(1)
        steps = [L - 1] if incremental_state is not None else range(L)
        out = []
        for t in steps:
            tok = self.rule(ref, prev_output_tokens[:, 1:t + 1], t)
            logits = torch.full((ref.size(0), len(self.dictionary)), -1e4)
            logits[:, self.dictionary.eos()] = -1e9
            out.append(logits.scatter(1, tok.unsqueeze(1), 0.0))
        return torch.stack(out, 1), None

    def reorder_incremental_state(self, incremental_state, new_order):
        pass

    def max_positions(self):
        return 1024


def oracle(task, rule):
    d = task.target_dictionary
    return FairseqEncoderDecoderModel(OracleEncoder(d), OracleDecoder(d, rule)).eval()


def copy_rule(ref, t, pad, eos):
    """The reference's symbol at ``t`` (EOS past its end)."""
    tok = metrics.pad_to(ref, t + 1, pad)[:, t]
    return tok.masked_fill(tok.eq(pad), eos)


@pytest.fixture(scope="module")
def copy_task(tmp_path_factory):
    """A copy corpus (target = source, joined dictionary) and its task."""
    root = tmp_path_factory.mktemp("copy")
    rng = random.Random(5)
    lines = [" ".join(rng.choice("abcdef") for _ in range(rng.randint(1, 6)))
             for _ in range(30)]
    (root / "text").mkdir()
    for split in ("train", "valid"):
        for side in ("src", "tgt"):
            (root / "text" / f"{split}.{side}").write_text("\n".join(lines) + "\n")
    data = helpers.binarize(root / "text", root / "bin", joined=True)
    _, task, _, _ = helpers.build(data, "lstm")
    return task


def run_diagnosis(task, model, beam=3, **kw):
    diag = Diagnosis(model, task, Options(cost="edit", beam=beam, max_len_b=20, **kw))
    refs = []
    for sample in task.get_batch_iterator(task.dataset("valid"), max_sentences=7,
                                          seed=1).next_epoch_itr(shuffle=False):
        diag.add(sample)
        refs += [brute_force.strip(r, task.target_dictionary.pad()) for r in sample["target"]]
    return diag.result(), refs


def check_positions(section, pairs):
    err, tok, sums = brute_positions(pairs)
    assert section["tokens_by_position"] == tok
    assert section["error_by_position"] == pytest.approx([e / t for e, t in zip(err, tok)])
    for key, den in {"error_after_correct_prefix": "prefix_ok",
                     "error_next_after_first_error": "next",
                     "error_after_first_error": "after"}.items():
        n = sums[f"{den}_tokens"]
        want = sums[f"{den}_errors"] / n if n else None
        assert section[key] == pytest.approx(want), key


def test_copying_model_makes_no_error(copy_task):
    d = copy_task.target_dictionary
    rep, refs = run_diagnosis(copy_task, oracle(
        copy_task, lambda r, p, t: copy_rule(r, t, d.pad(), d.eos())))
    assert rep["sentences"] == 30 and rep["teacher_forced"]["token_accuracy"] == 1.0
    assert rep["teacher_forced"]["nll_bits"] < 1e-6
    for mode in ("teacher_forced", "greedy", "beam"):
        assert rep[mode]["error_rate"] == 0.0 and rep[mode]["compounding"] is None
        assert set(rep[mode]["error_by_position"]) == {0.0}
    for mode in ("greedy", "beam"):
        assert rep[mode]["cost"] == 0.0 and rep[mode]["corpus_error"] == 0.0
        assert rep[mode]["bleu"] == pytest.approx(100.0)
        assert "100.0/100.0/100.0/100.0" in rep[mode]["bleu_detail"]
        assert rep[mode]["length_ratio"] == 1.0 and rep[mode]["at_max_length"] == 0.0
        for key, value in rep["reference"].items():
            assert rep[mode][key] == value, key
    assert rep["beam_minus_greedy"] == {"cost": 0.0, "corpus_error": 0.0, "bleu": 0.0}


def test_repeating_model_rates_by_hand(copy_task):
    d = copy_task.target_dictionary
    x, eos = d.index("c"), d.eos()
    model = oracle(copy_task, lambda r, p, t: torch.full_like(r[:, 0], x if t < 3 else eos))
    rep, refs = run_diagnosis(copy_task, model)
    n = len(refs)
    g = rep["greedy"]  # every hypothesis is "c c c"
    assert rep["beam"] == {k: v for k, v in g.items() if k != "entropy"}
    assert g["entropy"] < 1e-3 and rep["teacher_forced"]["entropy"] < 1e-3  # one-hot rules
    assert g["adjacent_repeat_rate"] == 1.0 and g["repeated_1gram_rate"] == pytest.approx(2 / 3)
    assert g["repeated_2gram_rate"] == 0.5 and g["repeated_3gram_rate"] == 0.0
    assert g["repeated_4gram_rate"] is None  # no 4-gram in 3 tokens
    assert g["length_ratio"] == pytest.approx(3 * n / sum(len(r) - 1 for r in refs))
    assert g["cost"] == pytest.approx(
        sum(edits_from_repeats(x, 3, r[:-1]) / len(r[:-1]) for r in refs) / n, abs=1e-6)
    errors = sum(edits_from_repeats(x, 3, r[:-1]) for r in refs)
    assert g["corpus_error"] == pytest.approx(100 * errors / sum(len(r) - 1 for r in refs))
    check_positions(g, [([x] * 3 + [eos], r) for r in refs])
    tf = [([x if t < 3 else eos for t in range(len(r))], r) for r in refs]
    check_positions(rep["teacher_forced"], tf)
    correct = sum(p == y for pred, ref in tf for p, y in zip(pred, ref))
    assert rep["teacher_forced"]["token_accuracy"] == pytest.approx(
        correct / sum(len(r) for r in refs))


def test_emitted_special_symbols_are_counted(copy_task):
    """A model emitting ``<unk>``, a ``madeupword`` filler and a letter, then EOS."""
    d = copy_task.target_dictionary
    filler = next(i for i, s in enumerate(d.symbols) if s.startswith("madeupword"))
    emitted = [d.unk(), filler, d.index("a"), d.eos()]
    model = oracle(copy_task, lambda r, p, t: torch.full_like(r[:, 0], emitted[min(t, 3)]))
    rep, _ = run_diagnosis(copy_task, model)
    for mode in ("greedy", "beam"):
        assert rep[mode]["unk_share"] == pytest.approx(1 / 3)
        assert rep[mode]["special_share"] == pytest.approx(1 / 3)
    assert rep["reference"]["unk_share"] == rep["reference"]["special_share"] == 0.0


def test_a_slip_that_compounds_only_when_free_running(copy_task):
    """Copies, but emits W at position 1 and, once its own prefix is wrong, W until the
    reference's length: under teacher forcing the error stays alone, free-running it spreads."""
    d = copy_task.target_dictionary
    w, eos, pad = d.index("f"), d.eos(), d.pad()

    def rule(ref, prefix, t):
        length = ref.ne(pad).sum(1) - 1  # content symbols
        ok = prefix.eq(metrics.pad_to(ref, t, pad)).all(1) & (t != 1)
        tok = torch.where(ok, copy_rule(ref, t, pad, eos), torch.full_like(length, w))
        return torch.where(length.le(t), eos, tok)

    def by_hand(r, fed_gold):
        out = []
        for t in range(len(r)):
            ok = (fed_gold or out == r[:t]) and t != 1
            out.append(eos if t >= len(r) - 1 else r[t] if ok else w)
        return out

    rep, refs = run_diagnosis(copy_task, oracle(copy_task, rule))
    tf = [(by_hand(r, True), r) for r in refs]
    free = [(by_hand(r, False), r) for r in refs]
    check_positions(rep["teacher_forced"], tf)
    check_positions(rep["greedy"], free)
    check_positions(rep["beam"], free)
    assert rep["teacher_forced"]["error_next_after_first_error"] == 0.0
    assert rep["greedy"]["error_next_after_first_error"] > 0.5


def test_a_correct_prefix_decodes_as_teacher_forcing(data_bin):
    """After a correct prefix greedy decoding is fed the gold prefix: the same counts."""
    _, task, model, _ = helpers.build(data_bin, "lstm")
    helpers.quick_fit(task, model, steps=30)
    model.eval()
    diag = Diagnosis(model, task, Options(cost="hamming", beam=0))
    diag.add(helpers.valid_batch(task, max_sentences=24))
    tf, greedy = diag.sums["teacher_forced"], diag.sums["greedy"]
    assert greedy.get("prefix_ok_tokens") == tf.get("prefix_ok_tokens") > 24
    assert greedy.get("prefix_ok_errors") == tf.get("prefix_ok_errors") > 0


def test_model_entropy_teacher_forced_and_along_greedy_decoding(data_bin):
    """The model's own predictive entropy (nats per symbol, EOS included): after every gold
    prefix, and after every prefix of its greedy hypothesis (EOS forced at the length bound
    included), from single-sentence non-incremental passes."""
    _, task, model, _ = helpers.build(data_bin, "lstm")
    helpers.quick_fit(task, model)
    model.eval()
    d = task.target_dictionary
    pad, eos = d.pad(), d.eos()
    diag = Diagnosis(model, task, Options(cost="edit", beam=0, max_len_b=4))
    sums = {"teacher_forced": [0.0, 0], "greedy": [0.0, 0]}

    @torch.no_grad()
    def entropy(enc, prefix):
        lp = torch.log_softmax(brute_force.last_scores(model, enc, torch.tensor([prefix]))
                               .double(), -1)
        return float(-(lp.exp() * lp).sum())

    for sample in task.get_batch_iterator(task.dataset("valid"), max_sentences=9,
                                          seed=1).next_epoch_itr(shuffle=False):
        diag.add(sample)
        for src, tgt in zip(sample["net_input"]["src_tokens"], sample["target"]):
            enc = brute_force.encode_one(model, src, pad)
            ref = brute_force.strip(tgt, pad)  # EOS included
            hyp, _ = brute_force.greedy(model, enc, [], 4, pad, eos)
            for mode, seq in (("teacher_forced", ref), ("greedy", hyp + [eos])):
                sums[mode][0] += sum(entropy(enc, [eos] + seq[:t]) for t in range(len(seq)))
                sums[mode][1] += len(seq)
    rep = diag.result()
    for mode, (total, n) in sums.items():
        assert diag.sums[mode].get("entropy_tokens") == n
        assert rep[mode]["entropy"] == pytest.approx(total / n, rel=1e-5), mode
    assert 0 < rep["greedy"]["at_max_length"] < 1  # forced and chosen EOS both covered
    assert 0 < rep["teacher_forced"]["entropy"] < math.log(len(d))


# ------------------------------------------------------------------ the SeaRNN target report

@pytest.mark.parametrize("rollin", ["reference", "learned"])
def test_target_statistics_match_a_cell_by_cell_count(data_bin, rollin):
    extra = ["--rollin", rollin, *SKL[2:]]
    _, task, model, crit = helpers.build(data_bin, "lstm", "searnn_skl", extra)
    helpers.quick_fit(task, model, steps=15)
    model.eval()
    sample = helpers.valid_batch(task, max_sentences=6)
    stats = TargetStats(crit)
    stats.add(model, sample)
    got = stats.result()

    res = crit.collect_costs(model, sample)  # the same draws: keyed by seed and sentence
    pad, eos = task.target_dictionary.pad(), task.target_dictionary.eos()
    tot = Counter()
    B, T, K = res.candidates.shape
    for b in range(B):
        enc = brute_force.encode_one(model, sample["net_input"]["src_tokens"][b], pad)
        for t in range(T):
            valid = [k for k in range(K) if res.mask[b, t, k]]
            if 0 not in valid:
                continue
            prefix = [eos] + res.rollin[b, :t].tolist()
            with torch.no_grad():  # one sentence, the whole prefix, no incremental state
                out, _ = model.decoder(torch.tensor([prefix]), encoder_out=enc)
            p = torch.softmax(out[0, -1].double(), -1)
            c = {k: res.costs[b, t, k].item() for k in valid}
            z = sum(math.exp(-crit.alpha * c[k]) for k in valid)
            q = {k: math.exp(-crit.alpha * c[k]) / z for k in valid}
            tok = {k: res.candidates[b, t, k].item() for k in valid}
            tot["cells"] += 1
            tot["candidates"] += len(valid)
            tot["ref_mass"] += q[0]
            tot["entropy"] -= sum(v * math.log(v) for v in q.values() if v > 0)
            tot["ref_cost"] += c[0]
            tot["min_cost"] += min(c.values())
            tot["cheaper"] += any(c[k] < c[0] for k in valid if k)
            tot["tied"] += any(c[k] == c[0] for k in valid if k)
            tot["p_ref"] += p[tok[0]].item()
            tot["p_cands"] += sum(p[tok[k]].item() for k in valid)
            tot["share"] += p[tok[0]].item() / sum(p[tok[k]].item() for k in valid)
            last = res.rollin[b, t - 1].item() if t else None
            rep = [k for k in valid if k and tok[k] == last]
            if rep and tok[0] != last:
                gap = min(c[k] for k in rep) - c[0]
                tot.update(r=1, r_mass=sum(q[k] for k in rep), r_prob=p[last].item(),
                           r_gap=gap, r_not_costlier=gap <= 0)
    n, r = tot["cells"], tot["r"]
    assert n == got["cells"] > 0 and r == got["cells_with_a_repeat_candidate"]
    if rollin == "reference":
        assert r > 0
    for key, value in [("candidates_per_cell", tot["candidates"] / n),
                       ("target_mass_on_reference_action", tot["ref_mass"] / n),
                       ("target_entropy", tot["entropy"] / n),
                       ("reference_action_cost", tot["ref_cost"] / n),
                       ("min_cost", tot["min_cost"] / n),
                       ("model_prob_of_reference_action", tot["p_ref"] / n),
                       ("model_prob_of_the_candidates", tot["p_cands"] / n),
                       ("model_share_of_reference_action_among_candidates", tot["share"] / n),
                       ("cells_with_a_cheaper_candidate", tot["cheaper"] / n),
                       ("cells_with_a_candidate_tied_with_the_reference", tot["tied"] / n)]:
        assert got[key] == pytest.approx(value, abs=1e-5), key
    if r:
        for key, value in [("target_mass_on_the_repeat", tot["r_mass"] / r),
                           ("model_prob_of_the_repeat", tot["r_prob"] / r),
                           ("repeat_cost_minus_reference_cost", tot["r_gap"] / r),
                           ("repeat_not_costlier_than_reference", tot["r_not_costlier"] / r)]:
            assert got[key] == pytest.approx(value, abs=1e-5), key


# ------------------------------------------------------------------ the command

def test_criterion_options_need_a_criterion(capsys):
    with pytest.raises(SystemExit):
        cli.parse(["data", "--path", "ck.pt", "--searnn-tokens", "5"])
    assert "need --criterion" in capsys.readouterr().err
    _, crit_argv = cli.parse(["data", "--path", "ck.pt", "--criterion", "searnn_skl",
                              "--searnn-tokens", "5"])
    assert crit_argv == ["--criterion", "searnn_skl", "--searnn-tokens", "5"]
    with pytest.raises(SystemExit):
        cli.parse(["data", "--path", "ck.pt", "--post-process", "bpe?"])


def test_command_on_lstm_transformer_and_dss_checkpoints(data_bin, tmp_path):
    from fairseq import options
    from fairseq_cli import generate

    paths = []
    for arch, updates in (("lstm", "8"), ("transformer", "8"), ("dss_lstm", "8")):
        save = tmp_path / arch
        helpers.run_training(helpers.train_argv(data_bin, arch, extra=[
            "--max-update", updates, "--save-dir", str(save), "--no-epoch-checkpoints",
            "--lr", "0.02"]))
        paths += ["--path", str(save / "checkpoint_last.pt")]
    out = tmp_path / "out"
    argv = [str(data_bin), *paths, "--beam", "2", "--max-len-b", "12", "--cost", "edit",
            "--out", str(out), "--criterion", "searnn_skl", "--searnn-tokens", "2",
            "--searnn-cost", "edit", "--rollin", "learned", "--rollout-max-len-b", "10"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli.main(argv) is None  # a console script's exit status 0
    saved = json.loads((out / "diagnose.json").read_text())
    assert [c["arch"] for c in saved["checkpoints"]] == ["lstm", "transformer", "dss_lstm"]
    for rep in saved["checkpoints"]:
        assert rep["sentences"] == 24 and rep["targets"]["cells"] > 0
        assert 0 <= rep["greedy"]["error_rate"] <= 1 and rep["beam"]["bleu"] is not None
    for png in ("error_by_position.png", "compounding.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    table = printed.getvalue()
    assert "| valid | lstm/checkpoint_last.pt | transformer/checkpoint_last.pt |" in table
    assert "target: target mass on reference action" in table
    assert "| teacher-forced model entropy (nats / token) | " in table

    # beam BLEU as fairseq-generate scores it with sacrebleu
    gen_args = options.parse_args_and_arch(options.get_generation_parser(), [
        str(data_bin), "--path", paths[3], "--user-dir", helpers.USER_DIR, "--task",
        "translation", "--source-lang", "src", "--target-lang", "tgt", "--beam", "2",
        "--max-len-b", "12", "--batch-size", "64", "--required-batch-size-multiple", "1",
        "--gen-subset", "valid", "--cpu", "--scoring", "sacrebleu", "--quiet"])
    with contextlib.redirect_stdout(io.StringIO()):
        scorer = generate.main(gen_args)
    assert saved["checkpoints"][1]["beam"]["bleu"] == scorer.score()
    # n-gram precisions and lengths, which a BLEU of 0 (no 4-gram matched) would not show
    assert saved["checkpoints"][1]["beam"]["bleu_detail"] == scorer.result_string()
    assert " 0.0/0.0/0.0/0.0 " not in scorer.result_string()


def test_criterion_from_a_checkpoint_equals_its_options(data_bin, tmp_path):
    """``--criterion-from`` rebuilds the criterion a checkpoint was trained with: the same
    target report as spelling its options out; a checkpoint trained otherwise is refused."""
    options = ["--criterion", "searnn_skl", "--searnn-tokens", "2", "--searnn-cost", "edit",
               "--rollin", "learned", "--rollout-max-len-b", "10", "--searnn-alpha", "7"]
    save = tmp_path / "skl"
    helpers.run_training(helpers.train_argv(data_bin, "lstm", "searnn_skl", extra=[
        "--max-update", "2", "--save-dir", str(save), "--no-epoch-checkpoints", *options[2:]]))
    ckpt = str(save / "checkpoint_last.pt")
    common = [str(data_bin), "--path", ckpt, "--beam", "0", "--cost", "edit",
              "--max-len-b", "12"]
    with contextlib.redirect_stdout(io.StringIO()):
        spelled = cli.run(common + options)
        saved = cli.run(common + ["--criterion-from", ckpt])
    got, want = saved["checkpoints"][0]["targets"], spelled["checkpoints"][0]["targets"]
    assert got.pop("criterion") == f"the options saved in {ckpt}"
    assert want.pop("criterion") == " ".join(options)
    assert got == want
    assert spelled["checkpoints"][0]["targets"]["cells"] > 0
    plain = tmp_path / "ce"
    helpers.run_training(helpers.train_argv(data_bin, "lstm", extra=[
        "--max-update", "1", "--save-dir", str(plain), "--no-epoch-checkpoints"]))
    with pytest.raises(ValueError, match="trained with 'cross_entropy'"):
        cli.run(common + ["--criterion-from", str(plain / "checkpoint_last.pt")])
    with pytest.raises(SystemExit):
        cli.parse(common + options + ["--criterion-from", ckpt])
