"""Shared pieces of the replication drivers (``examples/*/replicate*.py``): running several
(method, seed) jobs at a time, reading fairseq's validation lines, mean ± std tables and
learning-curve plots. Plain Python; matplotlib only for the plots (skipped without it). The
jobs themselves run with :func:`fairseq_searnn.recipes.commands.run_logged`.
"""

import argparse
import json
import logging
import re
import statistics
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class Report:
    """How a task's converged runs are read and shown, by its driver and by
    ``analysis/replication_runs.py``: the ``metric`` of fairseq's validation lines, the test
    error's key in ``result.json`` (``result_key``), the run record's best-validation and test
    keys, the tables' ``error`` header, the curves' y label and title, and their error axis
    (:func:`plot_curves`'s ``logy`` / ``zoom``)."""
    metric: str
    result_key: str
    valid_key: str
    test_key: str
    error: str
    ylabel: str
    title: str
    logy: bool = False
    zoom: Optional[float] = None


REPORTS = {
    "ocr": Report("hamming", "test_hamming_error_percent", "best_valid_hamming", "test_hamming",
                  "Hamming error %", "validation Hamming error (%), fold 1",
                  "OCR (Taskar et al.): validation during training", logy=True),
    "spelling": Report("searnn_edit", "test_edit", "best_valid_edit", "test_edit",
                       "edit error %", "validation edit error (%)",
                       "Spelling: validation during training", zoom=1.6),
}


def valid_curve(log_text, metric, subset="valid"):
    """``[(num_updates, value)]`` of every ``valid on 'SUBSET' subset`` line of a fairseq
    log."""
    pattern = re.compile(r"\| valid on '" + re.escape(subset) + r"' subset \|.*?\| "
                         + re.escape(metric)
                         + r" ([\d.]+) \|.*?\| num_updates (\d+)")
    return [(int(u), float(v)) for v, u in pattern.findall(log_text)]


def train_updates(log_text):
    """The last ``num_updates`` fairseq logged (training or validation line), else 0."""
    found = re.findall(r"num_updates[= ](\d+)", log_text)
    return int(found[-1]) if found else 0


def train_seconds(log_text):
    """Training time of a fairseq-train log: the sum of the ``train_wall`` of its end-of-epoch
    ``train`` lines (fairseq resets that meter every epoch; a stopped run logs its last,
    partial epoch too)."""
    return sum(float(w) for w in re.findall(
        r"\| INFO \| train \| epoch \d+ \|.*?\| train_wall ([\d.]+) ", log_text))


# what fairseq-train logs when --stop-time-hours ends a run
CAP_REACHED = "Stopping training due to cumulative_training_time"


def stop_reason(log_text):
    """Why a fairseq-train run ended: ``patience`` (validation stopped improving), ``cap``
    (``--stop-time-hours``), ``min-lr`` (``--stop-min-lr``), ``max-update`` / ``max-epoch``,
    or ``unknown``."""
    if "early stop since valid performance hasn't improved" in log_text:
        return "patience"
    if "stopping training because current learning rate" in log_text:
        return "min-lr"
    if CAP_REACHED in log_text:
        return "cap"
    if "Stopping training due to num_updates" in log_text:
        return "max-update"
    if "done training" in log_text:
        return "max-epoch"
    return "unknown"


def run_record(log_text, result, report):
    """The driver-independent part of a converged run's record, read off its fairseq log and
    its ``result.json`` (``result``) as the task's :class:`Report` names them: ``updates``,
    ``stop`` (:func:`stop_reason`), ``train_wall_s``, ``s_per_update``, ``valid_curve`` (of
    ``report.metric``), its minimum under ``report.valid_key`` (NaN without a validation) and
    the test error under ``report.test_key``."""
    curve = valid_curve(log_text, report.metric)
    updates = train_updates(log_text)
    wall = result["train_wall_s"]
    return {"updates": updates, "stop": stop_reason(log_text), "train_wall_s": wall,
            "s_per_update": wall / max(updates, 1), "valid_curve": curve,
            report.valid_key: min((v for _, v in curve), default=float("nan")),
            report.test_key: result[report.result_key]}


def previous_runs(spec):
    """``SUMMARY.json[#METHOD[=LABEL]]`` -> the run records of an earlier ``summary.json`` (a
    driver's or ``analysis/replication_runs.py``'s; of ``METHOD`` only, which must be among
    them, renamed ``LABEL``), seeds as strings. Raises ``SystemExit`` when none match."""
    path, _, selected = spec.partition("#")
    method, _, label = selected.partition("=")
    if not Path(path).is_file():
        raise SystemExit(f"--previous {spec!r}: no file {path}")
    runs = json.loads(Path(path).read_text()).get("runs")
    if not isinstance(runs, list):
        raise SystemExit(f"--previous {spec!r}: {path} holds no 'runs' (not a summary.json)")
    if method:
        runs = [r for r in runs if r["method"] == method]
        if not runs:
            raise SystemExit(f"--previous {spec!r}: no run of method {method!r} in {path}")
    return [{**r, "method": label or r["method"], "seed": str(r["seed"])} for r in runs]


def schedule_args(validate_every, patience_updates, cap_minutes):
    """fairseq-train options of the converged-runs protocol, the same for every method:
    validation (and the best checkpoint) every ``validate_every`` updates, a run stopped when
    validation has not improved for ``patience_updates`` updates (fairseq's ``--patience``,
    counted in validations; 0: no patience) or after ``cap_minutes`` of wall time."""
    every = str(validate_every)
    argv = ["--validate-interval-updates", every, "--validate-interval", "100000",
            "--save-interval-updates", every, "--keep-interval-updates", "1",
            "--stop-time-hours", f"{cap_minutes / 60:.4f}"]
    if patience_updates > 0:
        argv += ["--patience", str(max(1, -(-patience_updates // validate_every)))]
    return argv


def converged_table(results, test_key, valid_key, error):
    """Markdown rows and the per-method summary of converged runs (one dict per run with
    ``method``, ``seed``, ``updates``, ``train_wall_s``, ``s_per_update``, ``stop`` and the
    ``test_key`` / ``valid_key`` errors): ``(lines, {method: {mean, std, test, updates, stop,
    s_per_update}})``; ``error`` names the metric in the header (e.g. "Hamming error %")."""
    lines = [f"| method | seeds | test {error} (mean ± std) | per seed | best valid | updates "
             "| wall (min) | stop | s / update |", "|---|---|---|---|---|---|---|---|---|"]
    summary = {}
    for method in dict.fromkeys(r["method"] for r in results):
        rows = [r for r in results if r["method"] == method]
        mean, std = mean_std(r[test_key] for r in rows)
        spu = mean_std(r["s_per_update"] for r in rows)[0]
        summary[method] = {"mean": mean, "std": std, "test": [r[test_key] for r in rows],
                           "updates": [r["updates"] for r in rows],
                           "stop": [r.get("stop") for r in rows], "s_per_update": spu}
        lines.append(f"| {method} | {len(rows)} | {mean:.2f} ± {std:.2f} | "
                     + ", ".join(f"{r[test_key]:.2f}" for r in rows) + " | "
                     + ", ".join(f"{r[valid_key]:.2f}" for r in rows) + " | "
                     + ", ".join(str(r["updates"]) for r in rows) + " | "
                     + ", ".join(f"{r['train_wall_s'] / 60:.0f}" for r in rows) + " | "
                     + ", ".join(r.get("stop", "?") for r in rows) + f" | {spu:.2f} |")
    return lines, summary


def first_reaching(curve, target):
    """The first ``num_updates`` of ``curve`` (``[(updates, error)]``) whose error is at or
    below ``target``; None when no validation reaches it."""
    return next((u for u, v in curve if v <= target), None)


def equal_quality_table(results, valid_key, baseline="mle"):
    """Markdown rows of the subsampling comparison (Table 3's question): for every run, the
    updates and training minutes until its validation error first reaches the ``baseline``
    method's best (the mean over the baseline's seeds of ``valid_key``), and its updates,
    minutes and stop reason at the end. Minutes are updates × the run's ``s_per_update``.
    Empty without a baseline run."""
    best = [r[valid_key] for r in results if r["method"] == baseline]
    if not best:
        return []
    target = mean_std(best)[0]
    lines = [f"Time to reach {baseline}'s best validation error ({target:.2f}, the mean of its "
             f"{len(best)} seed(s)) and to the end of the run:", "",
             "| method | seed | updates to reach | minutes to reach | updates at end "
             "| minutes at end | stop |", "|---|---|---|---|---|---|---|"]
    for r in results:
        reached = first_reaching(r["valid_curve"], target)
        at = ("not reached", "-") if reached is None else (
            str(reached), f"{reached * r['s_per_update'] / 60:.1f}")
        lines.append(f"| {r['method']} | {r['seed']} | {at[0]} | {at[1]} | {r['updates']} "
                     f"| {r['train_wall_s'] / 60:.1f} | {r.get('stop', '?')} |")
    return lines


def write_converged(results, folder, report, title=None, extra=(), baseline="mle"):
    """``folder/summary.md`` (the :func:`converged_table`, the ``extra`` lines, then the
    :func:`equal_quality_table` when a ``baseline`` run is among them), ``summary.json``
    (``{"summary", "runs"}``) and the :func:`plot_converged` curves of converged runs, as the
    task's :class:`Report` says (``title`` instead of its title); prints the tables."""
    lines, summary = converged_table(results, report.test_key, report.valid_key, report.error)
    lines += list(extra)
    quality = equal_quality_table(results, report.valid_key, baseline)
    lines += ["", *quality] if quality else []
    folder = Path(folder)
    (folder / "summary.md").write_text("\n".join(lines) + "\n")
    (folder / "summary.json").write_text(json.dumps({"summary": summary, "runs": results},
                                                    indent=1) + "\n")
    print("\n".join(lines))
    plot_converged(results, report.ylabel, title or report.title, folder, report.logy,
                   report.zoom)


def plot_converged(results, ylabel, title, folder, logy=False, zoom=None):
    """Validation curves of converged runs (``valid_curve``: ``[(updates, error)]``) against
    training wall time (``curves.png``, from each run's ``s_per_update``) and against updates
    (``curves-updates.png``); ``logy``, ``zoom``: the error axis as :func:`plot_curves`'s."""
    for suffix, xlabel, scale in (("", "training wall time (min, 1 thread)",
                                   lambda r: r["s_per_update"] / 60),
                                  ("-updates", "updates", lambda r: 1.0)):
        plot_curves([(r["method"], [u * scale(r) for u, _ in r["valid_curve"]],
                      [v for _, v in r["valid_curve"]]) for r in results],
                    xlabel, ylabel, title, Path(folder) / f"curves{suffix}.png", logy, zoom)


def parse_method(spec, methods, plain=("mle",)):
    """``METHOD`` or ``METHOD:ROLLIN:ROLLOUT`` -> ``(method, (rollin, rollout) or (), run
    name)``, e.g. ``kl:reference:learned`` -> ``("kl", ("reference", "learned"),
    "kl-reference-learned")``; the ``plain`` methods take no policies. For argparse ``type=``
    (raises ``argparse.ArgumentTypeError``)."""
    method, *policies = spec.split(":")
    if method in methods and not policies:
        return method, (), method
    from fairseq_searnn.search import ROLLINS, ROLLOUTS  # torch: only for policy specs

    if method not in methods or policies and (
            method in plain or len(policies) != 2 or policies[0] not in ROLLINS
            or policies[1] not in ROLLOUTS):
        raise argparse.ArgumentTypeError(
            f"{spec!r}: expected one of {', '.join(methods)}, optionally followed (SeaRNN "
            f"methods) by :ROLLIN:ROLLOUT, ROLLIN one of {', '.join(ROLLINS)}, ROLLOUT one "
            f"of {', '.join(ROLLOUTS)}")
    return method, tuple(policies), "-".join([method, *policies])


def alpha_variants(parsed_methods, alphas, takes_alpha, with_alpha):
    """α sweep of parsed methods ``(method, options, name)``: each method ``takes_alpha``
    accepts once per α of ``alphas``, its options ``with_alpha(options, α)`` and its name
    suffixed ``-alphaA``; the other methods (and all when ``alphas`` is empty) once, as
    given."""
    out = []
    for method, options, name in parsed_methods:
        if alphas and takes_alpha(method):
            out += [(method, with_alpha(options, a), f"{name}-alpha{a:g}") for a in alphas]
        else:
            out.append((method, options, name))
    return out


def run_all(fn, items, jobs):
    """``[fn(*item) for item in items]``, ``jobs`` at a time (each job is a subprocess)."""
    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(lambda item: fn(*item), items))


def cached(path, compute):
    """The JSON in ``path`` if it exists, else ``compute()`` written there."""
    path = Path(path)
    if path.exists():
        return json.loads(path.read_text())
    result = compute()
    path.write_text(json.dumps(result, indent=1) + "\n")
    return result


def weights_only(checkpoint, dest):
    """Copy of a fairseq checkpoint without optimiser state, update count, training time,
    best score or meters: the start of a fine-tune (``--finetune-from-model``) whose
    schedules and ``--stop-time-hours`` budget count from zero."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state["last_optimizer_state"] = None
    state["optimizer_history"] = [dict(state["optimizer_history"][-1], num_updates=0)]
    state["extra_state"] = {"train_iterator": {"epoch": 1, "iterations_in_epoch": 0,
                                               "version": 2},
                            "previous_training_time": 0.0}
    torch.save(state, dest)


def mean_std(values):
    """``(mean, sample std)``; std 0 for a single value."""
    values = list(values)
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def zoomed_ylim(series, zoom):
    """``(bottom, top)`` of a y axis showing ``(label, xs, ys)`` series from their lowest
    value ``low`` (with a margin of 5 % of the range) to ``zoom`` × ``low``."""
    low = min(y for _, _, ys in series for y in ys)
    return low - 0.05 * (zoom - 1) * low, zoom * low


def plot_curves(series, xlabel, ylabel, title, path, logy=False, zoom=None):
    """One line per ``(label, xs, ys)``; lines sharing a label share a colour and one legend
    entry (``logy``: logarithmic y axis; ``zoom``: the y axis from the lowest value to
    ``zoom`` × it, so that the ends of the curves are told apart and the first points leave
    the top). Writes a PNG to ``path``; returns False when matplotlib is missing."""
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # fairseq leaves DEBUG on
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6.5, 4))
    colors = {}
    for label, xs, ys in series:
        new = label not in colors
        color = colors.setdefault(label, f"C{len(colors)}")
        ax.plot(xs, ys, color=color, alpha=0.8, marker=".", label=label if new else None)
    if logy:
        ax.set_yscale("log")
    if zoom:
        ax.set_ylim(*zoomed_ylim(series, zoom))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
