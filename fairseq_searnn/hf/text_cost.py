"""Costs on detokenised text: :class:`TextCost` scores token-id hypotheses by the words of their
decoded strings (BLEU on words, not subwords), through the tokenizer.

Each distinct row is decoded once (a batch's roll-outs repeat their references and many
hypotheses); the words are mapped to integer ids and scored by the engine's batched cost.
"""

import torch
from torch import Tensor

from fairseq_searnn import costs


class TextCost:
    """A cost ``(hyp, ref, pad) -> [N]`` on the whitespace-separated words of the decoded rows.

    Args:
        tokenizer: a ``transformers`` tokenizer (``batch_decode``).
        cost: the engine's cost on the word ids (:func:`fairseq_searnn.costs.available`).
    """

    def __init__(self, tokenizer, cost: str):
        self.tokenizer = tokenizer
        self.name = cost
        self.fn = costs.get_cost(cost)

    def __call__(self, hyp: Tensor, ref: Tensor, pad: int) -> Tensor:
        """``hyp: [N, L]``, ``ref: [N, Lr]`` content token ids (pad after): ``[N]`` costs."""
        vocab = {}
        h = self.words(hyp, pad, vocab)
        r = self.words(ref, pad, vocab)
        return self.fn(h, r, 0).to(hyp.device)

    def words(self, rows: Tensor, pad: int, vocab: dict) -> Tensor:
        """Word ids ``[N, W]`` of the decoded rows (0 = pad; new words get ids in ``vocab``)."""
        if rows.size(0) == 0:
            return torch.zeros(0, 1, dtype=torch.long)
        distinct, inverse = torch.unique(rows.cpu(), dim=0, return_inverse=True)
        lists = [[x for x in row if x != pad] for row in distinct.tolist()]
        texts = self.tokenizer.batch_decode(lists, skip_special_tokens=False,
                                            clean_up_tokenization_spaces=False)
        ids = [[vocab.setdefault(w, len(vocab) + 1) for w in text.split()] for text in texts]
        out = torch.zeros(len(ids), max(1, max(map(len, ids), default=1)), dtype=torch.long)
        for i, row in enumerate(ids):
            out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return out[inverse]
