"""The printed table: one row per number, one column per checkpoint (a Markdown table)."""

from typing import List, Optional, Sequence, Tuple

Row = Tuple[str, Tuple[str, ...]]  # label, path of keys into a checkpoint's report


def rows(cost: str, beam: int, orders: Sequence[int], targets: bool) -> List[Row]:
    """The table's rows for the options of a run."""
    modes = [("teacher-forced", "teacher_forced"), ("greedy", "greedy")]
    decoders = [("greedy", "greedy")]
    if beam > 0:
        modes.append((f"beam {beam}", "beam"))
        decoders.append((f"beam {beam}", "beam"))
    out: List[Row] = [("sentences", ("sentences",)),
                      ("teacher-forced token accuracy", ("teacher_forced", "token_accuracy")),
                      ("teacher-forced NLL (bits / token)", ("teacher_forced", "nll_bits")),
                      ("teacher-forced model entropy (nats / token)", ("teacher_forced",
                                                                       "entropy")),
                      ("greedy: model entropy along the decoding (nats / token)",
                       ("greedy", "entropy"))]
    for label, key in decoders:
        out.append((f"{label}: {cost} cost (mean per sentence)", (key, "cost")))
        if cost in ("edit", "hamming"):
            out.append((f"{label}: corpus {cost} error %", (key, "corpus_error")))
        out.append((f"{label}: BLEU", (key, "bleu")))
    if beam > 0:
        out += [(f"beam - greedy: {cost} cost", ("beam_minus_greedy", "cost")),
                ("beam - greedy: BLEU", ("beam_minus_greedy", "bleu"))]
    for what, key in [("error rate, all positions", "error_rate"),
                      ("error after a correct prefix", "error_after_correct_prefix"),
                      ("error right after the first error", "error_next_after_first_error"),
                      ("compounding (after first error / after correct prefix)",
                       "compounding")]:
        out += [(f"{what}: {label}", (mode, key)) for label, mode in modes]
    sources = [("reference", "reference")] + decoders
    for what, key in [("length ratio to the reference", "length_ratio"),
                      ("share at the maximum length", "at_max_length")]:
        out += [(f"{what}: {label}", (mode, key)) for label, mode in decoders]
    for what, key in [("adjacent repeat rate", "adjacent_repeat_rate"),
                      *[(f"repeated {n}-gram rate", f"repeated_{n}gram_rate") for n in orders],
                      ("<unk> share", "unk_share"), ("other special symbols share",
                                                     "special_share")]:
        out += [(f"{what}: {label}", (mode, key)) for label, mode in sources]
    if targets:
        for key in ["criterion", "alpha", "sentences", "cells",
                    "target_mass_on_reference_action", "target_entropy",
                    "model_prob_of_reference_action", "model_prob_of_the_candidates",
                    "model_share_of_reference_action_among_candidates",
                    "cells_with_a_cheaper_candidate", "target_mass_on_the_repeat",
                    "model_prob_of_the_repeat"]:
            out.append((f"target: {key.replace('_', ' ')}", ("targets", key)))
    return out


def lookup(report: dict, path: Tuple[str, ...]):
    """``report[path[0]][path[1]]...`` or None where a key is missing."""
    for key in path:
        if not isinstance(report, dict) or key not in report:
            return None
        report = report[key]
    return report


def fmt(value) -> str:
    """A table cell: ``-`` for None, 4 decimals below 10, 2 above, integers as they are."""
    if value is None:
        return "-"
    if isinstance(value, (bool, int, str)):
        return str(value)
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def table(names: Sequence[str], reports: Sequence[dict], table_rows: Sequence[Row],
          title: Optional[str] = None) -> str:
    """A Markdown table of ``table_rows`` for the checkpoints ``names``."""
    lines = [f"| {title or ''} | " + " | ".join(names) + " |",
             "|---|" + "---:|" * len(names)]
    for label, path in table_rows:
        cells = [fmt(lookup(r, path)) for r in reports]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
