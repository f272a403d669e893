"""What the demo prints and draws: the results table, the verdict, the validation curves."""

from pathlib import Path
from typing import Dict, Sequence

from fairseq_searnn.demo.training import Run


def plot(pre: Run, tunes: Sequence[Run], path: Path, title: str, baseline: float) -> bool:
    """Validation curves to ``path``: pre-training against updates (left), the fine-tunes
    against their training time (right); False (and a message) without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed (pip install matplotlib): no plot written")
        return False

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    xs = sorted(pre.curve)
    left.plot(xs, [pre.curve[x] for x in xs], marker="o", color="C0", label=pre.name)
    left.set_xlabel("updates")
    # the first, untrained points would flatten the rest
    left.set_ylim(0, max(2 * baseline, 1.2 * min(pre.curve.values())))
    for run, marker, color in zip(tunes, "^s", ("C1", "C2")):
        xs = sorted(run.curve)
        right.plot([run.seconds[x] for x in xs], [run.curve[x] for x in xs], marker=marker,
                   color=color, label=f"{run.name} ({run.updates} updates)")
    right.set_xlabel("fine-tuning time (s)")
    for ax in (left, right):
        ax.axhline(baseline, ls="--", color="gray", label="copy the input")
        ax.set_ylabel("validation edit error (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def table(rows: Sequence[Sequence[str]]) -> None:
    """Print a markdown table, first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                for i, (c, w) in enumerate(zip(row, widths))) + " |")
        if k == 0:
            print("|" + "|".join("-" * (w + 1) + (":" if i else "-")
                                 for i, w in enumerate(widths)) + "|")


def verdict(copy: float, start: float, mle: Dict[str, float], searnn: Dict[str, float]) -> str:
    """One honest sentence on the two fine-tunes. ``copy``, ``start``: test edit errors (%) of
    copying the input and of the pre-trained model; ``mle``, ``searnn``: the fine-tunes'
    ``test_edit_error``, ``updates`` and ``seconds`` (training time)."""
    a, b = mle["test_edit_error"], searnn["test_edit_error"]
    best = min(start, a, b)
    head = (f"the pre-trained model makes {start / copy:.2f}x the errors of copying the input; "
            if start < copy else "the pre-trained model is no better than copying the input; ")
    if abs(a - b) < 0.05 * a:
        what = f"SeaRNN and more MLE end level ({b:.2f}% against {a:.2f}%, within 5%)"
    elif b < a:
        what = (f"SeaRNN fine-tuning ends {a - b:.2f} points below more MLE ({b:.2f}% "
                f"against {a:.2f}%)")
    else:
        what = (f"more MLE ends {b - a:.2f} points below SeaRNN fine-tuning ({a:.2f}% "
                f"against {b:.2f}%)")
    return (f"verdict: {head}{what}, with {searnn['updates']} SeaRNN updates in "
            f"{searnn['seconds']:.0f} s against {mle['updates']} MLE updates in "
            f"{mle['seconds']:.0f} s; best model: {best / copy:.2f}x the copy error.")
