"""The recipes' training criteria as fairseq-train options, defined once for the Python scripts
(``examples/ocr/run.py``, ``examples/beam_rescaling/run.py``, ``fairseq-searnn-demo``). The
shell recipes (``examples/spelling/train.sh``, ``examples/nmt/train.sh``) spell out the same
options."""

from typing import List, Optional, Tuple

LOSSES = ("ll", "kl", "sll", "skl")  # SeaRNN criteria searnn_ll, ...
METHODS = ("mle", *LOSSES)
KL_LOSSES = ("kl", "skl")  # target softmax(-alpha * cost)
SAMPLED_LOSSES = ("sll", "skl")  # sampled tokens per cell


def criterion_args(method: str, cost: str = "edit", rollin: str = "learned",
                   rollout: str = "mixed", *, alpha: Optional[float] = None,
                   tokens: Optional[int] = None, sampling: Optional[str] = None,
                   cells: Optional[int] = None, ref_prob: Optional[float] = None,
                   max_len: Optional[Tuple[float, int]] = None) -> List[str]:
    """fairseq-train options of a recipe's ``method``.

    Args:
        method: ``mle`` (token cross-entropy: every other argument is ignored) or a SeaRNN
            loss: ``ll`` / ``kl`` (every token of every cell), ``sll`` / ``skl`` (sampled
            tokens).
        cost, rollin, rollout: ``--searnn-cost``, ``--rollin``, ``--rollout`` (default: the
            paper's best setting, learned roll-in and mixed roll-out).
        alpha: ``--searnn-alpha`` (kl and skl only).
        tokens, sampling: ``--searnn-tokens``, ``--searnn-token-sampling`` (sll and skl only).
        cells: ``--searnn-cells``; ref_prob: ``--rollout-ref-prob``.
        max_len: ``(a, b)``: ``--rollout-max-len-a a --rollout-max-len-b b``.

    Options left at None are not written (the criterion's defaults apply); values are written
    with ``str``.
    """
    if method == "mle":
        return ["--criterion", "cross_entropy"]
    if method not in LOSSES:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    out = ["--criterion", f"searnn_{method}", "--searnn-cost", cost, "--rollin", rollin,
           "--rollout", rollout]
    options = [("--rollout-ref-prob", ref_prob), ("--searnn-cells", cells)]
    if max_len is not None:
        options += [("--rollout-max-len-a", max_len[0]), ("--rollout-max-len-b", max_len[1])]
    if method in KL_LOSSES:
        options.append(("--searnn-alpha", alpha))
    if method in SAMPLED_LOSSES:
        options += [("--searnn-tokens", tokens), ("--searnn-token-sampling", sampling)]
    for flag, value in options:
        if value is not None:
            out += [flag, str(value)]
    return out
