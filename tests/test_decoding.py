"""Forking and reordering fairseq's incremental state, and greedy continuation."""

import pytest
import torch

import brute_force as bf
import helpers
from fairseq_searnn.search.decoding import Decoder


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_reorder_same_size_permutation_and_fork_isolation(data_bin, arch):
    """A permutation keeping the row count must reorder every cache (fairseq's attention
    skips cross-attention caches then), and the original state must stay usable."""
    _, task, model, _ = helpers.build(data_bin, arch)
    model.double()
    sample = helpers.valid_batch(task, max_sentences=5)
    d = task.target_dictionary
    enc = model.encoder.forward_torchscript(sample["net_input"])
    dec = Decoder(model, enc, d.pad(), d.eos())
    B = sample["target"].size(0)
    rows = torch.arange(B)
    prev = sample["net_input"]["prev_output_tokens"][:, :3]
    state = {}
    for s in range(1, 3):
        dec.step(prev[:, :s], state, dec.encoder_rows(rows))
    perm = torch.tensor([3, 0, 4, 1, 2])
    forked = dec.reorder(state, perm, B)
    got = dec.step(prev[perm, :3], forked, dec.encoder_rows(perm))
    original = dec.step(prev[:, :3], state, dec.encoder_rows(rows))  # untouched by the fork
    fresh = {}
    for s in range(1, 4):
        want = dec.step(prev[perm, :s], fresh, dec.encoder_rows(perm))
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(original[perm], want)


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_greedy_matches_full_passes_and_respects_limits(data_bin, arch):
    _, task, model, _ = helpers.build(data_bin, arch)
    model.double()
    sample = helpers.valid_batch(task, max_sentences=4)
    d = task.target_dictionary
    pad, eos = d.pad(), d.eos()
    enc = model.encoder.forward_torchscript(sample["net_input"])
    dec = Decoder(model, enc, pad, eos)
    B = sample["target"].size(0)
    rows = torch.arange(B).repeat_interleave(2)  # two rows per sentence, different tokens
    first = torch.tensor([d.index("A"), d.index("B")] * B)
    prefix = torch.stack([torch.full_like(first, eos), first], 1)
    state = {}
    dec.step(prefix[::2, :1], state, dec.encoder_rows(torch.arange(B)))
    forked = dec.reorder(state, rows, B)
    max_len = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8])
    tokens, finished = dec.greedy(prefix, forked, rows, torch.ones(2 * B, dtype=torch.long),
                                  max_len)
    assert finished.all()
    src = sample["net_input"]["src_tokens"]
    for r in range(2 * B):
        one = bf.encode_one(model, src[rows[r]], pad)
        want, _ = bf.greedy(model, one, [int(first[r])], int(max_len[r]), pad, eos)
        assert [int(first[r])] + bf.strip(tokens[r], pad) == want
        assert len(want) <= max(int(max_len[r]), 1)
