"""Mean ± std over seeds of the Multi30k table: reads the ``summary.json`` that
``examples/nmt/replicate_multi30k.py --seed N --out DIR`` wrote for each seed.

    python analysis/summarise_multi30k_seeds.py --out docs/results/multi30k-seeds \
        1=docs/results/multi30k 2=runs/multi30k-s2 3=runs/multi30k-s3 \
        [--skip 1:searnn-cheap]

Each positional argument is ``SEED=DIR``; ``--skip SEED:RUN`` leaves one run of one seed out of
the means (e.g. a run made with an older code version; it is still listed per seed). Writes
``OUT/summary.md``, ``OUT/summary.json`` and ``OUT/curves.png`` (validation BLEU of every seed,
for the runs every seed has).
"""

import argparse
import json
from pathlib import Path

from fairseq_searnn.recipes import replication

DECODES = ("beam1_T1", "beam5_T1", "beam5_T0.5")


def seed_dir(spec):
    seed, sep, path = spec.partition("=")
    if not sep or not (Path(path) / "summary.json").exists():
        raise argparse.ArgumentTypeError(f"{spec!r}: expected SEED=DIR with DIR/summary.json")
    return seed, Path(path)


def aggregate(per_seed, skip=()):
    """per_seed: ``{seed: summary.json dict}`` -> ``{run: {decode: {mean, std, seeds: {seed:
    bleu}}, updates: {seed: n}, s_per_update, counted: [seeds]}}`` in first-seen run order;
    ``skip``: ``{(seed, run)}`` left out of the means."""
    table = {}
    for seed, summary in per_seed.items():
        for run, row in summary.items():
            entry = table.setdefault(run, {"updates": {}, "wall": {}, "counted": [],
                                           **{d: {"seeds": {}} for d in DECODES}})
            entry["updates"][seed] = row["updates"]
            entry["wall"][seed] = row["train_wall_s"]
            for d in DECODES:
                entry[d]["seeds"][seed] = row[d]["bleu"]
            if (seed, run) not in skip:
                entry["counted"].append(seed)
    for entry in table.values():
        counted = entry["counted"]
        for d in DECODES:
            values = [entry[d]["seeds"][s] for s in counted]
            entry[d]["mean"], entry[d]["std"] = replication.mean_std(values) if values else (
                None, None)
        updates = sum(entry["updates"][s] for s in counted)
        entry["s_per_update"] = (sum(entry["wall"][s] for s in counted) / updates
                                 if updates else None)
    return table


def markdown(table):
    def cell(entry, d, base=None):
        if entry[d]["mean"] is None:
            return "-"
        text = f"{entry[d]['mean']:.2f}"
        if len(entry["counted"]) > 1:
            text += f" ± {entry[d]['std']:.2f}"
        if base:
            drop = [entry[d]["seeds"][s] - entry[base]["seeds"][s] for s in entry["counted"]]
            text += f" ({replication.mean_std(drop)[0]:+.2f})"
        return text

    lines = ["| run | seeds in the mean | updates per seed | s / update | greedy BLEU | "
             "beam 5 (vs greedy) | beam 5, T = 0.5 (vs greedy) | greedy per seed |",
             "|---|---|---|---|---|---|---|---|"]
    for run, e in table.items():
        updates = ", ".join(f"{s}: {n}" for s, n in e["updates"].items())
        per_seed = ", ".join(f"{s}: {b:.2f}" for s, b in e["beam1_T1"]["seeds"].items())
        lines.append(f"| {run} | {', '.join(e['counted']) or '-'} | {updates} | "
                     f"{'-' if e['s_per_update'] is None else format(e['s_per_update'], '.2f')}"
                     f" | {cell(e, 'beam1_T1')} | "
                     f"{cell(e, 'beam5_T1', 'beam1_T1')} | {cell(e, 'beam5_T0.5', 'beam1_T1')}"
                     f" | {per_seed} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("seeds", nargs="+", type=seed_dir, metavar="SEED=DIR")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--skip", nargs="*", default=[], metavar="SEED:RUN")
    args = p.parse_args(argv)
    per_seed = {s: json.loads((d / "summary.json").read_text()) for s, d in args.seeds}
    skip = {tuple(s.split(":", 1)) for s in args.skip}
    for entry in skip:
        if len(entry) != 2 or entry[1] not in per_seed.get(entry[0], {}):
            p.error(f"--skip {':'.join(entry)}: expected SEED:RUN naming a run of a given seed")
    table = aggregate(per_seed, skip)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(table, indent=1) + "\n")
    (args.out / "summary.md").write_text(markdown(table))
    print(markdown(table))
    series = []  # the runs every seed has
    common = [run for run, e in table.items() if len(e["updates"]) == len(per_seed)]
    for summary in per_seed.values():
        offset = summary["mle-pretrain"]["updates"]
        for run in common:
            row = summary[run]
            if row["valid_curve_256"]:
                shift = 0 if run == "mle-pretrain" else offset
                series.append((run, [shift + u for u, _ in row["valid_curve_256"]],
                               [b for _, b in row["valid_curve_256"]]))
    replication.plot_curves(series, "updates (fine-tunes start at the MLE run's last)",
                            "validation BLEU, first 256 sentences, greedy",
                            f"Multi30k de-en, LSTM 256, seeds {', '.join(per_seed)}",
                            args.out / "curves.png")


if __name__ == "__main__":
    main()
