"""search.teacher_forcing: several decoder inputs in one call, against one call per input."""

import pytest
import torch

from fairseq_searnn.search import interleaved

PAD, V = 1, 7


class Toy(torch.nn.Module):
    """A causal scorer: position t of a row reads its source and its decoder input up to t
    (so padding after ``T_i`` cannot change the first ``T_i`` positions)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.src = torch.nn.Embedding(V, V)
        self.tgt = torch.nn.Embedding(V, V)

    def forward(self, src, prev, scale=1.0):
        """``src: [R, S]``, ``prev: [R, T]`` -> log-probabilities ``[R, T, V]``."""
        h = self.src(src).mean(1, keepdim=True) + self.tgt(prev).cumsum(1)
        return torch.log_softmax(scale * h, dim=-1)


def test_interleaved_equals_one_call_per_input():
    model, calls = Toy(), []
    B, src = 3, torch.randint(2, V, (3, 5))
    prevs = [torch.randint(2, V, (B, T)) for T in (4, 6, 2)]

    def score(repeat, stacked):
        calls.append(stacked)
        assert repeat(2.0) == 2.0 and repeat(torch.tensor(2.0)).dim() == 0  # scalars as is
        return model(repeat(src), stacked, scale=repeat(2.0))

    out = interleaved(score, prevs, PAD)
    assert len(calls) == 1 and calls[0].shape == (B * 3, 6)
    for b in range(B):  # row b * n + i is input i of sentence b, padded at the end
        for i, p in enumerate(prevs):
            row = calls[0][b * 3 + i]
            assert torch.equal(row[: p.size(1)], p[b]) and row[p.size(1):].eq(PAD).all()
    for p, got in zip(prevs, out):
        assert got.shape == (B, p.size(1), V)
        torch.testing.assert_close(got, model(src, p, scale=2.0))


def test_interleaved_gradients_equal_one_call_per_input():
    model = Toy()
    src = torch.randint(2, V, (2, 4))
    prevs = [torch.randint(2, V, (2, T)) for T in (3, 5)]
    out = interleaved(lambda repeat, stacked: model(repeat(src), stacked), prevs, PAD)
    sum(o.sum() for o in out).backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    sum(model(src, p).sum() for p in prevs).backward()
    for g, want in zip(got, model.parameters()):
        torch.testing.assert_close(g, want.grad)


@pytest.mark.parametrize("T", [1, 4])
def test_one_input_is_scored_as_is(T):
    model, src = Toy(), torch.randint(2, V, (2, 3))
    prev = torch.randint(2, V, (2, T))
    seen = []

    def score(repeat, stacked):
        seen.append(stacked)
        assert repeat(src) is src
        return model(src, stacked)

    (out,) = interleaved(score, [prev], PAD)
    assert seen[0] is prev
    torch.testing.assert_close(out, model(src, prev))
