"""The report of finished Multi30k runs (``examples/nmt/from_scratch.py``, ``finetune.py``):
each run's row (settings, log, test scores), sacreBLEU's paired bootstrap against baseline
methods, the Markdown tables and the learning curves.

A row is a dict with at least ``name``, ``method``, ``seed``, ``precision``, ``commits``,
``updates``, ``stop``, ``train_wall_s``, ``s_per_update``, ``valid_curve`` (``[(updates,
BLEU)]``), ``best_valid``, ``test`` (``{"beamB": BLEU}``), ``signature`` and ``lowercase``
(the test BLEU's casing); drivers add their own settings, ``p`` (:func:`significance`) and
``diagnosis``."""

import json
from functools import partial
from math import inf
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from fairseq_searnn.data import nmt_eval
from fairseq_searnn.recipes import nmt_runs, replication, resumable

Baseline = Tuple[str, str]  # (method, its label in the tables, e.g. "(a) mle")


def add_run_options(parser) -> None:
    """The drivers' shared options: ``--test-raw``, ``--jobs``, ``--report-only`` /
    ``--train-only``, ``--no-diagnose``, ``--diagnose-sentences`` and the fairseq-train
    options after ``--``."""
    parser.add_argument("--test-raw", help="RAW/test2016: the test split's raw files, added "
                        "to --prep when it has none")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at a time (one thread each)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--report-only", action="store_true",
                      help="train nothing: score and tabulate every finished run under OUT")
    mode.add_argument("--train-only", action="store_true",
                      help="train, then stop (no scores, diagnoses or table)")
    parser.add_argument("--no-diagnose", action="store_true", help="skip the diagnoses")
    parser.add_argument("--diagnose-sentences", type=int, default=512,
                        help="sentences of the diagnosis's target report (0: all)")
    parser.add_argument("fairseq", nargs="*", metavar="-- FAIRSEQ_OPTION",
                        help="after --: options added to every new run's fairseq-train")


def run_row(run, data, metric: str, decodes: Sequence[int]) -> Dict:
    """A finished run's row: its record and log read, its best checkpoint scored once on the
    ``test`` split of ``data`` for each beam of ``decodes`` (hypotheses kept in the run as
    ``test-beamB.txt``)."""
    run = Path(run)
    rec = resumable.load(run)
    text = (run / resumable.LOG).read_text()
    curve = resumable.curve(text, metric)
    wall = replication.cached(run / "wall.json", lambda: {
        "training_seconds": resumable.training_seconds(run / "checkpoint_last.pt")})
    updates = replication.train_updates(text)
    scores = nmt_runs.score_beams(data, run / "checkpoint_best.pt", "test",
                                  run / "test-bleu.json", decodes, hypotheses_dir=run)
    return {"name": run.name, "method": rec["method"], "seed": rec["seed"],
            "precision": rec["precision"],
            "commits": list(dict.fromkeys(a.get("commit") for a in rec["attempts"])),
            "updates": updates, "stop": replication.stop_reason(resumable.last_attempt(run)),
            "train_wall_s": wall["training_seconds"],
            "s_per_update": wall["training_seconds"] / max(updates, 1), "valid_curve": curve,
            "best_valid": max((v for _, v in curve), default=float("nan")),
            "test": {f"beam{b}": scores[f"beam{b}"]["sacrebleu"] for b in decodes},
            "signature": scores["beam1"]["signature"], "lowercase": nmt_eval.lowercased(data)}


def significance(rows: List[Dict], baselines: Sequence[Baseline], peer: Callable,
                 hypotheses: Callable, references: Callable,
                 decodes: Sequence[int]) -> List[Dict]:
    """Set ``row["p"][baseline]["beamB"] = {"p", "delta"}``: sacreBLEU's paired bootstrap
    (:func:`~fairseq_searnn.recipes.nmt_runs.paired_bootstrap`) of each row's test output
    against the row of each baseline method with the same ``peer(row)`` (its seed and
    settings but the method). ``hypotheses(row, beam)`` and ``references(row)`` give the
    detokenised lines."""
    by_key = {(r["method"], peer(r)): r for r in rows}
    for row in rows:
        row["p"] = {}
        for base, _ in baselines:
            other = by_key.get((base, peer(row)))
            if other is None or other is row:
                continue
            row["p"][base] = paired(row, references(row), partial(hypotheses, other),
                                    partial(hypotheses, row), decodes)
    return rows


SAME_RUN = ("test", "updates", "train_wall_s", "commits")  # a row's run, not trained again


def kept_rows(summary, present: Sequence[Dict], peer: Callable) -> List[Dict]:
    """The rows of an earlier ``summary.json`` whose run is not among the ``present`` rows
    (runs whose directory is gone), as recorded: scores, p-values, diagnosis. Their outputs
    are gone with the run, so they are never a baseline of a new row's paired test. A recorded
    p-value is dropped when its baseline run (the baseline method at the row's ``peer``) is
    present but was trained again (its :data:`SAME_RUN` values differ from the recorded
    ones): it tested the earlier run."""
    def by_run(rows):
        return {(row["method"], peer(row)): row for row in rows}

    try:
        runs = json.loads(Path(summary).read_text())["runs"]
        names = {row["name"] for row in present}
        before, now = by_run(runs), by_run(present)
        kept = [dict(row) for row in runs if row["name"] not in names]
        for row in kept:
            row["p"] = {base: test for base, test in row.get("p", {}).items()
                        if not _trained_again(before.get((base, peer(row))),
                                              now.get((base, peer(row))))}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{summary}: not a summary.json of this table ({error!r})") from None
    return kept


def _trained_again(before: Optional[Dict], now: Optional[Dict]) -> bool:
    return now is not None and (before is None or any(
        json.dumps(before.get(k)) != json.dumps(now.get(k)) for k in SAME_RUN))


def paired(row: Dict, references: Sequence[str], baseline: Callable, system: Callable,
           decodes: Sequence[int]) -> Dict[str, Dict[str, float]]:
    """``{"beamB": {"p", "delta"}}``: sacreBLEU's paired bootstrap of the test output
    ``system(beam)`` against ``baseline(beam)`` for each beam of ``decodes`` (``delta``: the
    BLEU difference), case-insensitive where the row's scores are (``row["lowercase"]``,
    e.g. IWSLT14); the test's signature goes to ``row["bootstrap_signature"]``."""
    out = {}
    for beam in decodes:
        test = nmt_runs.paired_bootstrap(references, baseline(beam), system(beam),
                                         lowercase=row["lowercase"])
        out[f"beam{beam}"] = {"p": test["p_value"], "delta": test["system"] - test["baseline"]}
        row["bootstrap_signature"] = test["signature"]
    return out


def diagnosis_row(report: Dict) -> Dict:
    """The numbers of a checkpoint's diagnosis (``fairseq-searnn-diagnose``'s report) kept in
    a table row: its ``teacher_forced``, ``greedy``, ``reference`` and ``targets`` sections
    without their per-position lists, and ``sentences``."""
    found = {key: {k: v for k, v in report[key].items() if not isinstance(v, list)}
             for key in ("teacher_forced", "greedy", "reference", "targets")}
    return {**found, "sentences": report["sentences"]}


def decode_name(beam: int) -> str:
    return "greedy" if beam == 1 else f"beam {beam}"


def verdicts(label: str, group: List[Dict], baselines: Sequence[Baseline],
             decodes: Sequence[int]) -> List[str]:
    """How many seeds of a group are better / worse than each baseline at p < 0.05, and the
    mean BLEU difference."""
    lines = []
    for base, base_label in baselines:
        paired = [r["p"][base] for r in group if base in r.get("p", {})]
        if not paired:
            continue
        parts = []
        for beam in decodes:
            tests = [t[f"beam{beam}"] for t in paired]
            better = sum(t["p"] < 0.05 and t["delta"] > 0 for t in tests)
            worse = sum(t["p"] < 0.05 and t["delta"] < 0 for t in tests)
            mean = replication.mean_std(t["delta"] for t in tests)[0]
            parts.append(f"{decode_name(beam)} {mean:+.2f} BLEU, better in {better} and "
                         f"worse in {worse} of {len(tests)} seeds")
        lines.append(f"- {label} against {base_label} (paired bootstrap, p < 0.05): "
                     + "; ".join(parts))
    return lines


def groups_of(rows: List[Dict], label: Callable) -> Dict[str, List[Dict]]:
    """Rows grouped by ``label(row)``, in the rows' order."""
    groups: Dict[str, List[Dict]] = {}
    for row in rows:
        groups.setdefault(label(row), []).append(row)
    return groups


def results_table(rows: List[Dict], label: Callable, baselines: Sequence[Baseline],
                  decodes: Sequence[int]) -> List[str]:
    """Markdown: one line per group of ``label(row)`` (its seeds side by side): test BLEU per
    decode (mean ± std, then per seed), p-values against each baseline per seed, best
    validation BLEU, updates, training minutes, seconds per update, stop reasons, precision
    and commits; then each group's :func:`verdicts`."""
    def cells(values, fmt="{:.2f}"):
        return ", ".join(fmt.format(v) for v in values)

    def pvalues(group, base):
        return ", ".join(" / ".join(f"{r['p'][base][f'beam{b}']['p']:.3f}" for b in decodes)
                         if base in r.get("p", {}) else "-" for r in group)

    decoding = " / ".join(decode_name(b) for b in decodes)
    header = (["run", "seeds"] + [h for b in decodes for h in (f"test {decode_name(b)}",
                                                                "per seed")]
              + [f"p vs {base_label} {decoding}" for _, base_label in baselines]
              + ["best valid BLEU", "updates", "wall (min)", "s / update", "stop", "precision",
                 "commit"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes = []
    for name, group in groups_of(rows, label).items():
        scores = []
        for beam in decodes:
            values = [r["test"][f"beam{beam}"] for r in group]
            mean, std = replication.mean_std(values)
            scores += [f"{mean:.2f} ± {std:.2f}", cells(values)]
        commits = dict.fromkeys(c for r in group for c in r["commits"] if c)
        lines.append(
            f"| {name} | {len(group)} | {' | '.join(scores)} | "
            + "".join(f"{pvalues(group, base)} | " for base, _ in baselines)
            + f"{cells(r['best_valid'] for r in group)} "
            f"| {', '.join(str(r['updates']) for r in group)} "
            f"| {cells((r['train_wall_s'] / 60 for r in group), '{:.0f}')} "
            f"| {cells(r['s_per_update'] for r in group)} "
            f"| {', '.join(r['stop'] for r in group)} "
            f"| {', '.join(sorted({r['precision'] for r in group}))} | {', '.join(commits)} |")
        notes += verdicts(name, group, baselines, decodes)
    return lines + [""] + notes


def best_within(row: Dict, seconds: float) -> Optional[Tuple[float, int]]:
    """``(BLEU, updates)`` of the best validation of ``row`` reached within ``seconds`` of
    training (the first of equal bests), or None. A validation's time is its updates × the
    run's mean seconds per update (the curve keeps updates only); a run's own training time
    includes its last validation, whatever the rounding of that product."""
    per_update = row["s_per_update"]
    return best_by_updates(row, seconds * (1 + 1e-9) / per_update if per_update > 0 else inf)


def best_by_updates(row: Dict, updates: float) -> Optional[Tuple[float, int]]:
    """``(BLEU, updates)`` of the best validation of ``row`` within its first ``updates``
    updates (the first of equal bests), or None."""
    found = [(v, u) for u, v in row["valid_curve"] if u <= updates]
    return max(found, key=lambda pair: pair[0]) if found else None


class _Axis(NamedTuple):
    """What :func:`common_time_table` holds equal across a seed's runs."""
    what: str                      # "at equal {what}"
    common_is: str                 # how the common extent is chosen
    heading: str                   # its column
    extent: Callable               # a run's own extent
    best: Callable                 # best_within / best_by_updates
    cell: Callable                 # the common extent as the column shows it


_AXES = {
    "time": _Axis("training time", "the common time: the shortest run of the seed",
                  "common time (min)", lambda r: r["train_wall_s"], best_within,
                  lambda x: f"{x / 60:.0f}"),
    "updates": _Axis("updates", "the common updates: the fewest of the seed's runs",
                     "common updates", lambda r: r["updates"], best_by_updates, str),
}


def common_time_table(rows: List[Dict], label: Callable, baseline: str,
                      by: str = "time") -> List[str]:
    """Markdown: the groups of ``label(row)`` at equal training time (``by="time"``) or equal
    updates (``by="updates"``), seed by seed. For each seed that every group has, the common
    extent is the shortest training time (the fewest updates) among that seed's runs; each
    run's cell is its best validation BLEU within it (:func:`best_within` /
    :func:`best_by_updates`, with its updates). Then each group's mean over those seeds (those
    where every run had validated by then), its difference from the group ``baseline``, and in
    how many seeds it is above or below the baseline. One run per seed in a group."""
    if by not in _AXES:
        raise ValueError(f"by: 'time' or 'updates', not {by!r}")
    axis = _AXES[by]
    groups = groups_of(rows, label)
    if baseline not in groups or len(groups) < 2:
        return []
    by_seed = {name: {r["seed"]: r for r in group} for name, group in groups.items()}
    for name, group in groups.items():
        if len(by_seed[name]) < len(group):
            raise ValueError(f"{name}: two runs of one seed; give each setting its own label")
    seeds = [s for s in by_seed[baseline] if all(s in runs for runs in by_seed.values())]
    if not seeds:
        return []
    lines = ["", f"Best validation BLEU at equal {axis.what}, seed by seed ({axis.common_is}; "
             "in brackets the updates of that validation):", "",
             f"| seed | {axis.heading} | " + " | ".join(groups) + " |",
             "|" + "---|" * (len(groups) + 2)]
    best: Dict[str, List[float]] = {name: [] for name in groups}
    for seed in seeds:
        common = min(axis.extent(runs[seed]) for runs in by_seed.values())
        found = {name: axis.best(runs[seed], common) for name, runs in by_seed.items()}
        lines.append(f"| {seed} | {axis.cell(common)} | " + " | ".join(
            f"{f[0]:.2f} ({f[1]})" if f else "-" for f in found.values()) + " |")
        if all(found.values()):  # a seed where a run had not validated yet stays out
            for name, f in found.items():
                best[name].append(f[0])
    if not best[baseline]:
        return lines
    means = [f"{replication.mean_std(v)[0]:.2f}" for v in best.values()]
    lines += ["| mean | | " + " | ".join(means) + " |", ""]
    base = best[baseline]
    for name, values in best.items():
        if name == baseline:
            continue
        diffs = [v - b for v, b in zip(values, base)]
        lines.append(f"- {name} against {baseline} at equal {by}: "
                     f"{replication.mean_std(diffs)[0]:+.2f} on average "
                     f"({', '.join(f'{d:+.2f}' for d in diffs)}), higher in "
                     f"{sum(d > 0 for d in diffs)} and lower in {sum(d < 0 for d in diffs)} "
                     f"of {len(diffs)} seeds")
    return lines


def diagnosis_table(rows: List[Dict], label: Callable, items: Sequence[Tuple[str, str, str]],
                    title: str) -> List[str]:
    """Markdown: each group's mean over its seeds of the diagnosis numbers ``items``
    (``(column, section of diagnose.json, key)``), under ``title``."""
    groups = groups_of([r for r in rows if "diagnosis" in r], label)
    if not groups:
        return []
    lines = ["", title, "", "| run | " + " | ".join(c for c, _, _ in items) + " |",
             "|" + "---|" * (len(items) + 1)]
    for name, group in groups.items():
        values = []
        for _, section, key in items:
            found = [r["diagnosis"][section].get(key) for r in group]
            found = [v for v in found if v is not None]
            values.append(f"{replication.mean_std(found)[0]:.3f}" if found else "-")
        lines.append(f"| {name} | " + " | ".join(values) + " |")
    return lines


def write_summary(out, rows: List[Dict], lines: List[str], label: Callable,
                  title: str) -> Dict:
    """Write ``OUT/summary.md`` (``lines``, then the sacreBLEU and bootstrap signatures),
    ``summary.json`` and the validation curves against training minutes (``curves.png``) and
    updates (``curves-updates.png``); print the Markdown. Returns the summary."""
    out = Path(out)
    signatures = sorted({r["signature"] for r in rows})
    lines = [*lines, "", f"sacreBLEU: {', '.join(signatures)}"]
    boot = sorted({r["bootstrap_signature"] for r in rows if "bootstrap_signature" in r})
    if boot:
        lines.append(f"paired bootstrap: {', '.join(boot)}")
    summary = {"runs": rows, "signature": signatures, "bootstrap_signature": boot}
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("\n".join(lines))
    for suffix, xlabel, scale in (("", "training wall time (min, 1 thread)",
                                   lambda r: r["s_per_update"] / 60),
                                  ("-updates", "updates", lambda r: 1.0)):
        replication.plot_curves(
            [(label(r), [u * scale(r) for u, _ in r["valid_curve"]],
              [v for _, v in r["valid_curve"]]) for r in rows], xlabel,
            "validation BLEU (greedy, whole split)", title, out / f"curves{suffix}.png")
    return summary
