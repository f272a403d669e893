"""SearnnLoss (transformers): LL with reference roll-in / roll-out, copy reference and Hamming
cost equals the model's own cross-entropy (loss and gradients); the token term equals fairseq's
label smoothing; keyed draws make a sentence's loss independent of its batch; costs on
detokenised words; bad options fail naming the option."""

import pytest
import torch

pytest.importorskip("transformers")

import hf_models  # noqa: E402

from fairseq_searnn import costs  # noqa: E402
from fairseq_searnn.hf import SearnnLoss, TextCost, eos_terminated  # noqa: E402
from fairseq_searnn.search import objective  # noqa: E402


@pytest.fixture(scope="module", params=list(hf_models.BUILDERS))
def setup(request):
    model = hf_models.BUILDERS[request.param]()
    return model, hf_models.toy_batch(model, n=4, seed=3)


def _grads(model):
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_ll_reference_copy_hamming_equals_the_models_cross_entropy(setup):
    model, batch = setup
    model.train()
    model.zero_grad()
    own = model(**batch).loss
    own.backward()
    want = _grads(model)
    model.zero_grad()
    loss = SearnnLoss(model, loss="ll", rollin="reference", rollout="reference",
                      reference="copy", cost="hamming")
    got = loss(model, batch)
    got.backward()
    torch.testing.assert_close(got, own)
    for g, w in zip(_grads(model), want):
        torch.testing.assert_close(g, w)
    log = loss.last_log
    assert log["searnn_cells"] == int(batch["labels"].ne(-100).sum()) == log["ntokens"]
    assert log["searnn_min_cost"] == log["searnn_ref_cost"] == 0.0
    assert log["searnn_target_ref_mass"] == log["searnn_cells"]
    assert log["nll_loss"] == pytest.approx(float(own.detach()) * log["ntokens"])


def test_token_term_equals_fairseq_label_smoothing(setup):
    from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss

    model, batch = setup
    model.eval()
    loss = SearnnLoss(model, loss="ll", rollin="reference", rollout="reference",
                      cost="hamming", mle_weight=1.0, label_smoothing=0.1)
    got = loss(model, batch)
    lprobs = torch.log_softmax(model(**batch).logits.float(), -1)
    target = batch["labels"].masked_fill(batch["labels"].eq(-100), model.config.pad_token_id)
    want, _ = label_smoothed_nll_loss(lprobs, target, 0.1, ignore_index=model.config.pad_token_id)
    torch.testing.assert_close(got, want / int(batch["labels"].ne(-100).sum()))


def test_a_sentences_loss_does_not_depend_on_its_batch(setup):
    """Draws are keyed by the sentence's source tokens: a permuted batch gives the same
    per-sentence losses (sampled candidates, mixed roll-in and roll-out)."""
    model, batch = setup
    model.eval()
    loss = SearnnLoss(model, loss="skl", tokens=3, rollin="mixed", rollout="mixed",
                      rollout_mix_granularity="rollout", cost="bleu", sentence_avg=True,
                      cells=2, max_len_b=5)
    perm = torch.tensor([2, 0, 3, 1])
    permuted = {k: v[perm] for k, v in batch.items()}
    with torch.no_grad():
        a = loss(model, batch, seed=9)
        b = loss(model, permuted, seed=9)
        c = loss(model, batch, seed=10)
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c) and bool(torch.isfinite(a))
    ratios = objective.summarize(loss.last_log)
    assert 0 < ratios["learned_share"] < 1 and 0 <= ratios["target_ref_mass"] <= 1


def test_sampled_softmax_keyword_reaches_the_loss(setup):
    """``sampled_softmax="full"``: the candidates' full-softmax log-probabilities, lower than
    the renormalised ones, so the same candidates give a larger sKL loss."""
    model, batch = setup
    model.eval()
    kwargs = dict(loss="skl", tokens=3, rollin="learned", cost="bleu", max_len_b=5)
    with torch.no_grad():
        restricted = SearnnLoss(model, **kwargs)(model, batch, seed=4)
        full = SearnnLoss(model, sampled_softmax="full", **kwargs)(model, batch, seed=4)
    assert float(full) > float(restricted) > 0


def test_labels_become_eos_terminated_targets():
    labels = torch.tensor([[5, 6, 1, -100], [7, -100, -100, -100], [8, 9, 4, 3]])
    got = eos_terminated(labels, pad=0, eos=1)
    assert got.tolist() == [[5, 6, 1, 0, 0], [7, 1, 0, 0, 0], [8, 9, 4, 3, 1]]


class PieceTokenizer:
    """Decodes sentencepiece-style pieces (``_`` starts a word): enough for TextCost."""

    pieces = ["<pad>", "</s>", "_the", "_ca", "t", "_cat", "_sat", "_s", "at"]

    def batch_decode(self, rows, **kwargs):
        return ["".join(self.pieces[i] for i in row).replace("_", " ").strip() for row in rows]


def test_text_cost_scores_words_not_subwords():
    tok = PieceTokenizer()
    hyp = torch.tensor([[2, 3, 4, 6], [2, 5, 7, 8], [2, 5, 0, 0]])  # the ca|t sat / ... s|at
    ref = torch.tensor([[2, 5, 6, 0], [2, 5, 6, 0], [2, 5, 6, 0]])  # the cat sat
    for name in ("hamming", "edit", "bleu"):
        got = TextCost(tok, name)(hyp, ref, 0)
        assert abs(got[0]) < 1e-6 and abs(got[1]) < 1e-6 and got[2] > 0  # same words
        tokens = costs.get_cost(name)(hyp, ref, 0)
        assert tokens[0] > 0 and tokens[1] > 0  # other subwords
        words = torch.tensor([[1, 2, 3], [1, 2, 3], [1, 2, 0]])  # the=1 cat=2 sat=3
        torch.testing.assert_close(got, costs.get_cost(name)(words, words[:1].expand(3, -1), 0))


@pytest.mark.parametrize("kwargs,message", [
    ({"loss": "skl"}, "tokens K > 0"),
    ({"loss": "kl", "tokens": 3}, "tokens applies"),
    ({"loss": "kl", "rollin": "greedy"}, "rollin 'greedy' unknown"),
    ({"loss": "kl", "cost": "chrf"}, "cost 'chrf' unknown"),
    ({"loss": "kl", "alpha": 0}, "alpha must be > 0"),
    ({"loss": "kl", "mle_weight": 2}, "mle_weight must be in"),
    ({"loss": "kl", "rollout_batch": 3}, "unknown SeaRNN option"),
    ({"loss": "xent"}, "loss 'xent' unknown"),
    ({"loss": "skl", "tokens": 100}, "tokens 100 exceeds"),
    ({"loss": "kl", "text_cost": True}, "text_cost needs the tokenizer"),
    ({"loss": "skl", "tokens": 3, "sampled_softmax": "nope"}, "sampled_softmax 'nope'"),
    ({"loss": "kl", "sampled_softmax": "full"}, "sampled_softmax full applies"),
])
def test_bad_options_name_the_option(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SearnnLoss(hf_models.marian(), **kwargs)
