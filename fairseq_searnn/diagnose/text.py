"""Text of hypotheses and references as fairseq-generate writes it, and corpus BLEU.

fairseq-generate turns tokens into text with the target dictionary's ``string`` and its
``--post-process`` (``sentencepiece``, ``subword_nmt``, ...), escaping ``<unk>`` in the
references only (so an emitted ``<unk>`` never matches), and scores with sacrebleu's corpus
BLEU on the result (``--scoring sacrebleu``: its default ``13a`` tokenisation). This module does
the same. Turning ids into strings is the one step that goes sentence by sentence.
"""

from typing import List, Optional, Tuple

from torch import Tensor


def check_post_process(symbol: Optional[str]) -> None:
    """Raise ValueError when fairseq does not know the ``--post-process`` ``symbol``."""
    from fairseq.data import data_utils

    try:
        data_utils.post_process("", symbol)
    except NotImplementedError:
        raise ValueError(f"unknown --post-process {symbol!r} (fairseq's choices: "
                         f"sentencepiece, wordpiece, letter, silence, _EOW, subword_nmt, "
                         f"@@ , @@, none)") from None


def strings(tokens: Tensor, tgt_dict, post_process: Optional[str], reference: bool,
            strip=()) -> List[str]:
    """Text of the rows of ``tokens: [B, L]`` (pad, EOS and ``strip`` ids dropped), after
    ``post_process``; ``reference``: ``<unk>`` written ``<<unk>>`` as fairseq-generate does for
    targets."""
    ignore = set(int(s) for s in strip) | {tgt_dict.eos(), tgt_dict.pad()}
    return [tgt_dict.string(row, post_process, escape_unk=reference,
                            extra_symbols_to_ignore=ignore) for row in tokens.cpu()]


def corpus_bleu(hyps: List[str], refs: List[str]) -> Tuple[Optional[float], Optional[str]]:
    """sacrebleu's corpus BLEU (default ``13a`` tokenisation and smoothing) and its summary
    line (n-gram precisions, brevity penalty, lengths); None, None when empty."""
    import sacrebleu

    if not hyps:
        return None, None
    score = sacrebleu.corpus_bleu(hyps, [refs])
    return float(score.score), score.format()
