"""Messy data and precision: empty / 1-token / over-long targets, 1-token sources, equal costs,
only-special dictionaries, bf16 models. Never a crash, never a NaN, never a wrong cost."""

import pytest
import torch
from fairseq.data import Dictionary

import brute_force as bf
import helpers
from fairseq_searnn.criterions.searnn_config import SearnnConfig, check
from fairseq_searnn.search.engine import SearchConfig

SRC = ["a", "b c", "a b c d e f g h i j k l", "c", "d e", "f"]
TGT = ["", "C", " ".join("ABCDEFGHIJKL" * 2), "C C", "", "F"]


@pytest.fixture(scope="module")
def edge_bin(tmp_path_factory):
    root = tmp_path_factory.mktemp("edge")
    helpers.write_parallel_corpus(root / "text")  # train split and its vocabulary
    (root / "text" / "valid.src").write_text("\n".join(SRC) + "\n")
    (root / "text" / "valid.tgt").write_text("\n".join(TGT) + "\n")
    return helpers.binarize(root / "text", root / "bin")


CRITERIA = [
    ("searnn_kl", ["--rollin", "learned", "--rollout", "mixed", "--searnn-cost", "bleu"]),
    ("searnn_ll", ["--rollin", "reference", "--rollout", "learned", "--searnn-cost", "edit"]),
    ("searnn_skl", ["--rollin", "mixed", "--rollout", "focused", "--searnn-tokens", "3",
                    "--searnn-token-sampling", "topk-neighbors", "--searnn-neighbors", "2",
                    "--searnn-reference", "best-suffix", "--searnn-cost", "bleu1"]),
    ("searnn_sll", ["--rollin", "learned", "--rollout", "reference", "--searnn-tokens", "2",
                    "--searnn-token-sampling", "uniform", "--searnn-cost", "hamming"]),
]


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
@pytest.mark.parametrize("name,extra", CRITERIA)
def test_edge_batch_trains_with_finite_loss(edge_bin, arch, name, extra):
    extra = extra + ["--rollout-max-len-b", "5", "--rollout-max-len-a", "0.5"]
    _, task, model, crit = helpers.build(edge_bin, arch, name, extra)
    sample = helpers.valid_batch(task, 8)
    assert sample["target"].ne(1).sum(1).min() == 1  # an empty target (EOS only) is in
    model.train()
    loss, size, log = crit(model, sample)
    assert torch.isfinite(loss) and size > 0
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    loss, _, _ = crit(model, sample)  # cheap validation on the same batch
    assert torch.isfinite(loss)


@pytest.mark.parametrize("rollin,rollout,cost", [("learned", "mixed", "bleu"),
                                                 ("reference", "learned", "edit"),
                                                 ("mixed", "focused", "hamming")])
def test_edge_batch_costs_equal_brute_force(edge_bin, rollin, rollout, cost):
    _, task, model, _ = helpers.build(edge_bin, "transformer")
    model.double()
    sample = helpers.valid_batch(task, 8)
    cfg = SearchConfig(cost=cost, rollin=rollin, rollin_ref_prob=0.5, rollout=rollout,
                       tokens=3, max_len_a=0.5, max_len_b=3, rollout_focused_steps=1)
    res, _ = bf.check_against_brute_force(task, model, sample, cfg)
    # over-long reference (24 tokens) under a 9-token limit: the reference roll-in is kept
    assert res.rollin.size(1) >= 3


def test_equal_costs_everywhere_give_a_finite_loss(edge_bin):
    """Empty references: every non-EOS candidate gets BLEU 0, i.e. equal costs per cell."""
    _, task, model, crit = helpers.build(edge_bin, "lstm", "searnn_kl",
                                         ["--searnn-cost", "bleu", "--searnn-alpha", "200",
                                          "--rollout-max-len-b", "4"])
    sample = helpers.valid_batch(task, 8)
    empty = sample["target"].ne(1).sum(1).eq(1)
    res = crit.collect_costs(model, sample)
    c = res.costs[empty][res.mask[empty]]
    assert c.numel() > 0 and bool((c[c > 0] == 1).all())
    model.train()
    loss, _, _ = crit(model, sample)
    assert torch.isfinite(loss)


def test_bf16_model_keeps_costs_and_loss_in_float32(edge_bin):
    _, task, model, crit = helpers.build(edge_bin, "transformer", "searnn_skl",
                                         ["--searnn-tokens", "3", "--rollout-max-len-b", "4"])
    model.to(torch.bfloat16)
    sample = helpers.valid_batch(task, 8)
    res = crit.collect_costs(model, sample)
    assert res.costs.dtype == torch.float32
    model.train()
    loss, _, _ = crit(model, sample)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_only_special_symbols_is_refused():
    d = Dictionary()
    from fairseq_searnn.search.sampling import allowed_tokens

    with pytest.raises(ValueError, match="only special symbols"):
        check(SearnnConfig(), sampled=False, vocab=len(allowed_tokens(d)))
