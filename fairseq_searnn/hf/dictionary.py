"""The target vocabulary of a ``transformers`` model as the engine reads a dictionary:
:class:`HFDictionary` (``pad()``, ``eos()``, ``bos()``, ``unk()``, ``nspecial``, ``symbols``,
``len``).

Its size is the model's output size (``config.vocab_size``), which may exceed the tokenizer's
(T5 pads its embedding matrix to a multiple of 128): ids without a token are named like
fairseq's fillers (``madeupword0000``, ...), so full candidate sets leave them out
(:func:`fairseq_searnn.search.allowed_tokens`) while sampled sets can still draw them.
"""

from typing import List, Optional


class HFDictionary:
    """Special ids and symbols of a target vocabulary of ``size`` ids.

    Args:
        size: the model's output size ``V``.
        pad, eos: the padding and end-of-sentence ids.
        unk, bos: the unknown-token and begin-of-sentence ids, or None where the vocabulary
            has none (``unk()`` / ``bos()`` then return the pad id, excluded anyway).
        symbols: the token of each id (shorter than ``size``: fillers after it).
        special: ids of every special token (``nspecial`` counts them).
    """

    def __init__(self, size: int, pad: int, eos: int, unk: Optional[int] = None,
                 bos: Optional[int] = None, symbols: Optional[List[str]] = None,
                 special: Optional[List[int]] = None):
        if pad is None or eos is None:
            raise ValueError("a target vocabulary needs a pad and an EOS id "
                             f"(got pad={pad}, eos={eos})")
        if pad == eos:
            raise ValueError(f"pad and EOS must differ (both {pad})")
        symbols = list(symbols or [str(i) for i in range(size)])[:size]
        self.symbols = symbols + [f"madeupword{i:04d}" for i in range(size - len(symbols))]
        self._pad, self._eos = int(pad), int(eos)
        self._unk = self._pad if unk is None else int(unk)
        self._bos = self._pad if bos is None else int(bos)
        special = set(special or []) | {self._pad, self._eos, self._unk, self._bos}
        self.nspecial = len(special)

    @classmethod
    def from_model(cls, model_or_config, tokenizer=None) -> "HFDictionary":
        """The target vocabulary of a model (or its config), with the tokenizer's symbols and
        special ids when given (else the config's ids, symbols ``"0"``, ``"1"``, ...)."""
        config = getattr(model_or_config, "config", model_or_config)
        config = config.get_text_config(decoder=True) if hasattr(
            config, "get_text_config") else config
        size = int(config.vocab_size)
        if tokenizer is None:
            return cls(size, pad=config.pad_token_id, eos=config.eos_token_id,
                       bos=getattr(config, "bos_token_id", None))
        n = min(len(tokenizer), size)
        symbols = tokenizer.convert_ids_to_tokens(list(range(n)))
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else (
            config.eos_token_id)
        return cls(size, pad=tokenizer.pad_token_id, eos=eos, unk=tokenizer.unk_token_id,
                   bos=tokenizer.bos_token_id, symbols=[str(s) for s in symbols],
                   special=list(tokenizer.all_special_ids))

    def pad(self) -> int:
        return self._pad

    def eos(self) -> int:
        return self._eos

    def bos(self) -> int:
        return self._bos

    def unk(self) -> int:
        return self._unk

    def __len__(self) -> int:
        return len(self.symbols)
