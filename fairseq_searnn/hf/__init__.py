"""SeaRNN for Hugging Face ``transformers`` encoder-decoder models (``pip install -e ".[hf]"``).

    from fairseq_searnn.hf import SearnnLoss, SearnnTrainer
    loss = SearnnLoss(model, tokenizer, "skl", tokens=5, cost="bleu")
    trainer = SearnnTrainer(model=model, args=args, train_dataset=..., data_collator=...,
                            searnn_loss=loss)

:class:`HFHost` is the engine's host of such a model, :class:`HFDictionary` its target
vocabulary, :class:`TextCost` a cost on detokenised words. Nothing of the fairseq path imports
this package.
"""

from fairseq_searnn.hf.dictionary import HFDictionary
from fairseq_searnn.hf.host import HFEncoding, HFHost
from fairseq_searnn.hf.loss import LOSSES, SearnnLoss, eos_terminated
from fairseq_searnn.hf.text_cost import TextCost

__all__ = ["HFDictionary", "HFEncoding", "HFHost", "LOSSES", "SearnnLoss", "SearnnTrainer",
           "TextCost", "eos_terminated"]


def __getattr__(name):
    if name == "SearnnTrainer":  # imports transformers' Trainer (slow): on first use
        from fairseq_searnn.hf.trainer import SearnnTrainer

        return SearnnTrainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
