"""Learned roll-outs: decoding every cell's roll-outs together (fixed-size decoder states)
gives exactly the cell-by-cell result, for any chunking and for focused roll-outs."""

import pytest
import torch

import helpers
from fairseq_searnn.search.decoding import Decoder, _leaves
from fairseq_searnn.search.rollin import decode_rollin
from fairseq_searnn.search.rollout import (
    greedy_continuations,
    learned_rollouts,
    pad_to,
    prev_output_tokens,
)


@pytest.fixture(scope="module")
def fitted(data_bin):
    out = {}
    for arch in ("lstm", "dss_lstm", "transformer"):
        _, task, model, _ = helpers.build(data_bin, arch)
        helpers.quick_fit(task, model)
        model.double().eval()
        out[arch] = (task, model, helpers.valid_batch(task, max_sentences=6))
    return out


def _entries(sample, pad, n_cand=4, seed=0):
    """Every (sentence, cell) with ``n_cand`` random candidates; ``prefix_a``: the gold prefix
    plus the candidate."""
    g = torch.Generator().manual_seed(seed)
    rollin = sample["target"]
    B, T = rollin.shape
    b, t = (rollin.ne(pad)).nonzero(as_tuple=True)
    b, t = b.repeat_interleave(n_cand), t.repeat_interleave(n_cand)
    a = torch.randint(4, 20, (b.numel(),), generator=g)
    pos = torch.arange(T)
    prefix_a = rollin[b].masked_fill(pos.unsqueeze(0) >= t.unsqueeze(1), pad)
    prefix_a[torch.arange(b.numel()), t] = a
    learned = torch.rand(b.numel(), generator=g) < 0.7
    return rollin, b, t, prefix_a, learned


@pytest.mark.parametrize("arch", ["lstm", "dss_lstm"])
@pytest.mark.parametrize("batch_size,steps", [(4096, None), (7, None), (1, None), (5, 2)])
def test_batched_cells_equal_cell_by_cell(fitted, arch, batch_size, steps):
    task, model, sample = fitted[arch]
    d = task.target_dictionary
    pad, eos = d.pad(), d.eos()
    with torch.no_grad():
        decoder = Decoder(model, model.encoder.forward_torchscript(sample["net_input"]), pad, eos)
        rollin, b, t, prefix_a, learned = _entries(sample, pad)
        max_len = sample["net_input"]["src_lengths"] + 3
        assert decoder.has_fixed_size_state(prev_output_tokens(rollin, pad, eos))
        got = learned_rollouts(decoder, rollin, b, t, prefix_a, learned, max_len, batch_size,
                               steps, batch_cells=True)
        want = learned_rollouts(decoder, rollin, b, t, prefix_a, learned, max_len, 4096, steps,
                                batch_cells=False)
    width = max(got[0].size(1), want[0].size(1))
    pad_to = [torch.nn.functional.pad(x[0], (0, width - x[0].size(1)), value=pad)
              for x in (got, want)]
    assert torch.equal(pad_to[0], pad_to[1])
    assert torch.equal(got[1], want[1])
    assert got[0].ne(pad).any()  # the roll-outs generated tokens


def test_state_shapes_and_batch_dims(fitted):
    task, model, sample = fitted["lstm"]
    d = task.target_dictionary
    pad, eos = d.pad(), d.eos()
    prev = prev_output_tokens(sample["target"], pad, eos)
    with torch.no_grad():
        enc = model.encoder.forward_torchscript(sample["net_input"])
        decoder = Decoder(model, enc, pad, eos)
        state = {}
        decoder.step(prev[:, :2], state, decoder.encoder_rows(torch.arange(prev.size(0))))
        dims = decoder.batch_dims(state, prev.size(0))
        assert sorted(dims) == [0, 1, 1]  # input_feed [B, H]; hiddens and cells [layers, B, H]
        both = Decoder.cat_states([state, state], dims)
        B = prev.size(0)
        for x, y, dim in zip(_leaves(state), _leaves(both), dims):
            assert y.size(dim) == 2 * B and torch.equal(y.narrow(dim, B, B), x)
        _, tmodel, tsample = fitted["transformer"]
        tdec = Decoder(tmodel, tmodel.encoder.forward_torchscript(tsample["net_input"]), pad, eos)
        assert not tdec.has_fixed_size_state(prev_output_tokens(tsample["target"], pad, eos))
        assert not decoder.has_fixed_size_state(prev[:, :1])  # one cell: nothing to batch


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_rollin_snapshots_replace_the_second_pass(fitted, arch):
    """A learned roll-in keeps its decoder state at every cell for fixed-size states (none for
    a Transformer); forking those gives the roll-outs of a pass over the roll-in, without it."""
    task, model, sample = fitted[arch]
    d = task.target_dictionary
    pad, eos = d.pad(), d.eos()
    max_len = sample["net_input"]["src_lengths"] + 3
    with torch.no_grad():
        decoder = Decoder(model, model.encoder.forward_torchscript(sample["net_input"]), pad, eos)
        states = []
        rollin = decode_rollin(decoder, max_len, None, 0.0, None, states)
        assert rollin.equal(decode_rollin(decoder, max_len, None, 0.0, None))
        if arch == "transformer":
            assert states == []
            return
        assert len(states) == rollin.size(1)
        b, t = rollin.ne(pad).nonzero(as_tuple=True)
        b, t = b.repeat_interleave(3), t.repeat_interleave(3)
        prefix_a = rollin[b].masked_fill(torch.arange(rollin.size(1)) >= t.unsqueeze(1), pad)
        prefix_a[torch.arange(b.numel()), t] = torch.arange(b.numel()) % 12 + 4
        learned = torch.ones_like(b, dtype=torch.bool)
        calls = []
        step = decoder.step
        decoder.step = lambda prefix, *a: calls.append(prefix.size(0)) or step(prefix, *a)
        got = learned_rollouts(decoder, rollin, b, t, prefix_a, learned, max_len, 7,
                               rollin_states=states)
        n_kept = len(calls)
        want = learned_rollouts(decoder, rollin, b, t, prefix_a, learned, max_len, 7)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert got[0].ne(pad).any()
    # the pass over the roll-in (B rows per cell) and the two-step state probe are gone
    assert len(calls) - n_kept == n_kept + int(t.max()) + 1 + 2
    assert rollin.size(0) not in calls[:n_kept]


@pytest.mark.parametrize("trained", [True, False])
def test_greedy_continuations_match_decoding(fitted, data_bin, trained):
    """The roll-out of the roll-in's own token, read off the roll-in, is what decoding it
    gives, with focused cuts (``finished`` False where ``max_steps`` end first). The fitted
    model's roll-ins choose EOS early; an untrained model's run to the length limit."""
    task, model, sample = fitted["lstm"]
    if not trained:
        model = helpers.build(data_bin, "lstm")[2].double().eval()
    d = task.target_dictionary
    pad, eos = d.pad(), d.eos()
    max_len = sample["net_input"]["src_lengths"] + 3
    with torch.no_grad():
        decoder = Decoder(model, model.encoder.forward_torchscript(sample["net_input"]), pad, eos)
        rollin = decode_rollin(decoder, max_len, None, 0.0, None)
        b, t = (rollin.ne(pad) & rollin.ne(eos)).nonzero(as_tuple=True)
        prefix_a = rollin[b].masked_fill(torch.arange(rollin.size(1)) >= t.unsqueeze(1) + 1, pad)
        learned = torch.ones_like(b, dtype=torch.bool)
        for steps in (None, 1, 2):
            want = learned_rollouts(decoder, rollin, b, t, prefix_a, learned, max_len, 64, steps)
            got = greedy_continuations(rollin[b], t, max_len[b], pad, eos, steps)
            width = max(got[0].size(1), want[0].size(1))
            assert torch.equal(pad_to(got[0], width, pad), pad_to(want[0], width, pad))
            assert torch.equal(got[1], ~want[1])  # finished vs unfinished
    ends = rollin.eq(eos).nonzero()[:, 1]
    forced = ends.eq(max_len)  # EOS forced at the length limit
    assert forced.all() if not trained else not forced.any()
    if not trained:
        assert got[1].any() and not got[1].all()  # 2 steps end some roll-outs, not all
