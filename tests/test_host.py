"""Hosts: the lean step of fairseq's ``lstm`` equals fairseq's own decoder, step by step and
forked; ``as_host`` picks it only where it is exact."""

import pytest
import torch

import helpers
from fairseq_searnn.search import host as host_mod
from fairseq_searnn.search.decoding import Decoder
from fairseq_searnn.search.host import FairseqHost, as_host
from fairseq_searnn.search.lstm_host import LstmHost

#: fairseq lstm variants: bidirectional encoder (its hidden state projected for the decoder),
#: two layers, an output projection (additional_fc), no attention
VARIANTS = {
    "plain": [],
    "bidirectional": ["--encoder-bidirectional"],
    "two-layers": ["--decoder-layers", "2", "--encoder-layers", "2"],
    "out-projection": ["--decoder-out-embed-dim", "12"],
    "no-attention": ["--decoder-attention", "0"],
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_lean_lstm_step_equals_fairseq_step_and_fork(data_bin, variant):
    _, task, model, _ = helpers.build(data_bin, "lstm", extra=VARIANTS[variant])
    model.double().eval()
    lean, stock = as_host(model), as_host(model, lean=False)
    assert isinstance(lean, LstmHost) and type(stock) is FairseqHost
    sample = helpers.mixed_length_batch(task, n=6)  # left-padded sources of several lengths
    prev = sample["net_input"]["prev_output_tokens"]
    B = prev.size(0)
    rows = torch.arange(B)
    with torch.no_grad():
        a, b = Decoder(lean, lean.encode(sample["net_input"]), 1, 2), Decoder(
            stock, stock.encode(sample["net_input"]), 1, 2)
        sa, sb = {}, {}
        for s in range(1, prev.size(1) + 1):
            torch.testing.assert_close(a.step(prev[:, :s], sa, a.encoder_rows(rows)),
                                       b.step(prev[:, :s], sb, b.encoder_rows(rows)))
        perm = torch.tensor([3, 0, 5, 1, 1, 2])
        fa, fb = a.reorder(sa, perm, B), b.reorder(sb, perm, B)
        nxt = torch.cat([prev[perm], prev[perm, -1:]], 1)
        torch.testing.assert_close(a.step(nxt, fa, a.encoder_rows(perm)),
                                   b.step(nxt, fb, b.encoder_rows(perm)))
        # teacher-forced scores: fairseq's forward
        full, _ = model(**sample["net_input"])
        torch.testing.assert_close(lean.score(prev, a.encoder_out), full)


def test_as_host_keeps_fairseq_where_the_lean_step_is_not_exact(data_bin):
    _, _, model, _ = helpers.build(data_bin, "lstm")
    model.train()  # dropout: fairseq's own step
    assert type(as_host(model)) is FairseqHost
    model.eval()
    assert isinstance(as_host(model), LstmHost)
    host_mod.LEAN_STEPS = False
    try:
        assert type(as_host(model)) is FairseqHost
    finally:
        host_mod.LEAN_STEPS = True
    _, _, transformer, _ = helpers.build(data_bin, "transformer")
    assert type(as_host(transformer.eval())) is FairseqHost
    _, _, dss, _ = helpers.build(data_bin, "dss_lstm")  # fairseq's own decoder inside
    assert isinstance(as_host(dss.eval()), LstmHost) and type(as_host(dss.train())) is FairseqHost
    lean = as_host(model)
    assert as_host(lean) is lean  # a host passes through


def test_greedy_decoding_equal_with_and_without_the_lean_step(data_bin):
    """Same tokens whether decoded by the lean step or fairseq's (lazy compaction included)."""
    from fairseq_searnn.search import greedy_decode

    _, task, model, _ = helpers.build(data_bin, "lstm")
    helpers.quick_fit(task, model)
    model.double().eval()
    sample = helpers.valid_batch(task, 16)
    max_len = sample["net_input"]["src_lengths"] + 4
    d = task.target_dictionary
    with torch.no_grad():
        got = greedy_decode(model, sample["net_input"], max_len, d.pad(), d.eos())
        want = greedy_decode(as_host(model, lean=False), sample["net_input"], max_len,
                             d.pad(), d.eos())
    assert torch.equal(got, want)
    assert got.ne(d.pad()).sum(1).float().std() > 0  # various lengths: rows finish apart
