"""The one reader of fairseq-generate's output: ``H-<id>\\t<score>\\t<text>`` (hypothesis) and
``T-<id>\\t<text>`` (reference) lines; every other line (sources, positional scores, logging)
is skipped."""

from typing import Dict, List, Tuple


def read_generate(text: str) -> Tuple[Dict[int, str], Dict[int, str]]:
    """``(hypotheses, references)``: ``{sentence id: text}`` of the ``H-`` and ``T-`` lines of
    fairseq-generate output ``text`` (a sentence's last ``H-`` line if there are several)."""
    hyps: Dict[int, str] = {}
    refs: Dict[int, str] = {}
    for line in text.splitlines():
        kind, _, rest = line.partition("-")
        sid, _, rest = rest.partition("\t")
        if kind not in ("H", "T") or not sid.isdecimal():
            continue
        if kind == "H":
            hyps[int(sid)] = rest.partition("\t")[2]  # after the score
        else:
            refs[int(sid)] = rest
    return hyps, refs


def generate_hypotheses(text: str) -> List[str]:
    """The hypotheses of fairseq-generate output ``text``, in sentence-id order."""
    hyps, _ = read_generate(text)
    return [hyps[i] for i in sorted(hyps)]


def generate_pairs(text: str) -> Tuple[List[str], List[str]]:
    """``(hypotheses, references)`` of fairseq-generate output ``text``, in sentence-id order;
    ValueError unless every sentence has both."""
    hyps, refs = read_generate(text)
    if set(hyps) != set(refs):
        raise ValueError(f"generate output: {len(refs)} references, {len(hyps)} hypotheses")
    ids = sorted(refs)
    return [hyps[i] for i in ids], [refs[i] for i in ids]
