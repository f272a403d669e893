"""The settings of a Multi30k table at equal training time, seed by seed, from its
``summary.json`` (``examples/nmt/finetune.py`` or ``from_scratch.py``): for each seed, every
setting's best validation BLEU within the shortest training time among that seed's runs
(``--at updates``: within the fewest updates). A setting is a run's name without its
``-seedN`` (``refout``; ``mle-d0.3-fwd``).

    python analysis/equal_time.py docs/results/finetune/summary.json \\
        --methods control refout risk --baseline control
    python analysis/equal_time.py docs/results/m30k-scratch/summary.json \\
        --methods mle-d0.3-fwd searnn-d0.3-fwd --baseline mle-d0.3-fwd --at updates
"""

import argparse
import json
import re
from pathlib import Path

from fairseq_searnn.recipes import nmt_table


def setting(row):
    """A run's name without its seed: ``refout-seed2`` -> ``refout``."""
    return re.sub(r"-seed\d+$", "", row["name"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("summary", type=Path, help="a table's summary.json")
    p.add_argument("--methods", nargs="+", required=True,
                   help="two or more settings: run names without their -seedN")
    p.add_argument("--baseline", required=True, help="the setting the others are compared with")
    p.add_argument("--at", choices=("time", "updates"), default="time",
                   help="compare at the seed's shortest training time (default) or at its "
                   "fewest updates")
    args = p.parse_args(argv)
    methods = list(dict.fromkeys(args.methods))
    if len(methods) < 2:
        p.error("--methods: give two settings or more")
    if args.baseline not in methods:
        p.error(f"--baseline {args.baseline} is not among --methods")
    runs = json.loads(args.summary.read_text())["runs"]
    rows = [r for m in methods for r in runs if setting(r) == m]
    missing = [m for m in methods if not any(setting(r) == m for r in rows)]
    if missing:
        p.error(f"--methods: no run of {', '.join(missing)} in {args.summary} (settings there: "
                f"{', '.join(dict.fromkeys(setting(r) for r in runs))})")
    lines = nmt_table.common_time_table(rows, setting, args.baseline, by=args.at)
    print("\n".join(lines) if lines else "no seed is shared by every setting")
    return lines


if __name__ == "__main__":
    main()
