"""The methods of a Multi30k table at equal training time, seed by seed, from its
``summary.json`` (``examples/nmt/finetune.py`` or ``from_scratch.py``): for each seed, every
method's best validation BLEU within the shortest training time among that seed's runs.

    python analysis/equal_time.py docs/results/finetune/summary.json \\
        --methods control refout risk --baseline control
"""

import argparse
import json
from pathlib import Path

from fairseq_searnn.recipes import nmt_table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("summary", type=Path, help="a table's summary.json")
    p.add_argument("--methods", nargs="+", required=True, help="the rows' `method` values")
    p.add_argument("--baseline", required=True, help="the method the others are compared with")
    args = p.parse_args(argv)
    if args.baseline not in args.methods:
        p.error(f"--baseline {args.baseline} is not among --methods")
    runs = json.loads(args.summary.read_text())["runs"]
    rows = [r for m in args.methods for r in runs if r["method"] == m]
    missing = [m for m in args.methods if not any(r["method"] == m for r in rows)]
    if missing:
        p.error(f"--methods: no run of {', '.join(missing)} in {args.summary}")
    lines = nmt_table.common_time_table(rows, lambda r: r["method"], args.baseline)
    print("\n".join(lines) if lines else "no seed is shared by every method")
    return lines


if __name__ == "__main__":
    main()
