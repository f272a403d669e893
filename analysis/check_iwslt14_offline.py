"""Run the IWSLT14 recipes end to end offline, on an archive rebuilt from the IWSLT14 valid
files, and measure their cost per update on this machine.

    python analysis/check_iwslt14_offline.py --shared ../shared/data/iwslt14 \
        --out runs/iwslt14-check [--updates 3] [--recipes mle mle-d0.3 searnn]

1. ``de-en/`` laid out like the official archive from ``SHARED/tok/valid.{de,en}``
   (:func:`~fairseq_searnn.data.iwslt14.iwslt14_layout_from_tokenised`: 7,243 pairs as
   training talks, 2 x 20 as test sets);
2. ``prepare_iwslt14.py --bpe subword-nmt --bpe-codes SHARED/bpe10k/code`` (fairseq's
   pipeline and its standard 10k joint BPE);
3. ``train.sh`` for ``--updates`` updates per recipe (paper settings: ``mle`` without dropout,
   ``mle-d0.3`` with dropout 0.3, ``searnn`` = sKL, reference roll-in, mixed roll-out,
   alpha 200, top-15 + neighbours within 5, sentence-BLEU cost, every cell), each ending with
   fairseq's validation (``searnn_bleu``, greedy);
4. ``evaluate.py`` on the test sets, greedy and beam 5

(the scripts of ``examples/nmt/``).

The BLEU of models trained for a few updates means nothing; the point is that every command
runs and how long an update takes. Writes ``OUT/result.json`` and prints a table.
"""

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from fairseq_searnn import recipes
from fairseq_searnn.recipes import replication

NMT = Path(__file__).resolve().parent.parent / "examples" / "nmt"  # the recipes it runs

RECIPES = {"mle": {"METHOD": "mle", "DROPOUT": "0"},
           "mle-d0.3": {"METHOD": "mle", "DROPOUT": "0.3"},
           "searnn": {"METHOD": "searnn", "DROPOUT": "0"}}


def main(argv=None):
    from fairseq_searnn.data import iwslt14, nmt_prepare

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--shared", required=True, type=Path,
                   help="directory with tok/valid.{de,en} and bpe10k/code")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--updates", type=int, default=3)
    p.add_argument("--pairs", type=int, default=0,
                   help="use the first N valid pairs only (0 = all; for a quick try)")
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"updates": args.updates}
    start = time.time()
    n_pairs = args.pairs or len(nmt_prepare.read_lines(args.shared / "tok" / "valid.de"))
    source, _ = iwslt14.iwslt14_layout_from_tokenised(args.shared / "tok",
                                                          args.out / "orig", n_pairs - 40)
    prep = args.out / "prep"
    recipes.run_logged([sys.executable, NMT / "prepare_iwslt14.py", "--source", source,
                        "--out", prep, "--bpe", "subword-nmt", "--bpe-codes",
                        args.shared / "bpe10k" / "code"], args.out / "prepare.log")
    result["prepare_s"] = round(time.time() - start)
    for name in args.recipes:
        save = args.out / name
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PREP=str(prep),
                   ARCH="lstm", SAVE=str(save), MAX_UPDATE=str(args.updates), **RECIPES[name])
        start = time.time()
        recipes.run_logged(["bash", NMT / "train.sh", "--log-interval", "1"],
                           args.out / f"{name}.train.log", env)
        text = (args.out / f"{name}.train.log").read_text()
        # one train_inner line per update: ups (2 decimals) for fast updates, train_wall
        # (whole seconds) for slow ones
        # (the first update, which logs ups=0, is left out)
        per_update = [float(w) if float(w) >= 5 else 1 / float(u) for u, w in re.findall(
            r"ups=([\d.]+),.*?train_wall=([\d.]+)", text)[1:]]
        row = {"train_s": round(time.time() - start),
               "s_per_update": round(sum(per_update) / max(len(per_update), 1), 2),
               "valid_searnn_bleu": replication.valid_curve(text, "searnn_bleu")}
        for beam in (1, 5):
            log = args.out / f"{name}.beam{beam}.json"
            recipes.run_logged(
                [sys.executable, NMT / "evaluate.py", "--prep", prep, "--checkpoint",
                 save / "checkpoint_last.pt", "--split", "test", "--beam", str(beam),
                 "--max-len-a", "1.2", "--max-len-b", "10"], log,
                dict(os.environ, OMP_NUM_THREADS="1"))
            row[f"test_beam{beam}"] = json.loads(log.read_text().strip().splitlines()[-1])
        result[name] = row
    (args.out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    print("| recipe | s / update (1 thread, updates 2+) | test BLEU greedy / beam 5 |")
    print("|---|---|---|")
    for name in args.recipes:
        r = result[name]
        print(f"| {name} | {r['s_per_update']} | {r['test_beam1']['sacrebleu']} / "
              f"{r['test_beam5']['sacrebleu']} |")
    return result


if __name__ == "__main__":
    main()
