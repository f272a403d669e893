"""PNG plots of a diagnosis (matplotlib, an ``examples`` / ``test`` extra): the error rate by
output position, and the error after a correct prefix against right after the first error."""

import logging
from pathlib import Path
from typing import List, Sequence

logger = logging.getLogger(__name__)

MODES = (("teacher_forced", "teacher-forced", ":"), ("greedy", "greedy", "-"),
         ("beam", "beam", "--"))


def write(out_dir: Path, names: Sequence[str], reports: Sequence[dict],
          min_share: float = 0.01) -> List[Path]:
    """Write ``error_by_position.png`` and ``compounding.png`` into ``out_dir``; positions held
    by fewer than ``min_share`` of the sentences are not drawn. Returns the files written
    (none, with a warning, when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no plots (pip install matplotlib)")
        return []
    out_dir = Path(out_dir)
    files = [out_dir / "error_by_position.png", out_dir / "compounding.png"]
    fig, ax = plt.subplots(figsize=(7, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, rep) in enumerate(zip(names, reports)):
        for key, label, style in MODES:
            if key not in rep:
                continue
            rates, counts = rep[key]["error_by_position"], rep[key]["tokens_by_position"]
            keep = [t for t, c in enumerate(counts) if c and c >= min_share * rep["sentences"]]
            ax.plot([t + 1 for t in keep], [rates[t] for t in keep], style, marker=".",
                    color=colors[i % len(colors)], label=f"{name}: {label}")
    ax.set_xlabel("output position (EOS included)")
    ax.set_ylabel("error rate against the reference")
    ax.set_title("Errors by position: teacher-forced vs free-running")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(files[0], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    bars = [(f"{name}\n{label}", rep[key]) for name, rep in zip(names, reports)
            for key, label, _ in MODES if key in rep]
    width = 0.38
    for j, (field, label) in enumerate([("error_after_correct_prefix", "after a correct prefix"),
                                        ("error_next_after_first_error",
                                         "right after the first error")]):
        ax.bar([i + (j - 0.5) * width for i in range(len(bars))],
               [b[1][field] or 0.0 for b in bars], width, label=label)
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([b[0] for b in bars], fontsize=7)
    ax.set_ylabel("error rate of the next token")
    ax.set_title("Error compounding")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(files[1], dpi=120)
    plt.close(fig)
    return files
