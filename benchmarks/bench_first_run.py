"""A new user's first SeaRNN run on an NMT pipeline: seconds per fairseq-train update.

Prepares (or reuses, in ``--work``) a small Multi30k de-en subset: the first ``--pairs``
training pairs and the first ``--valid`` validation pairs of the Moses-tokenised, lowercased
``tok/`` files, through the project's own pipeline (``prepare_multi30k``: joint sentencepiece
BPE of ``--vocab`` pieces, fairseq binaries with a joined dictionary). Then, one criterion at a
time, runs ``fairseq-train`` (``python -m fairseq_cli.train``) on it with a small Transformer
(2+2 layers, 64 dims, FFN 128, 2 heads), Adam 5e-4, 64 sentences per batch, ``--cpu
--num-workers 0 --disable-validation --no-save``, every other option at its default (so
``searnn_skl`` uses a learned roll-in, mixed roll-outs and the BLEU cost).

Measured: the wall-clock time between consecutive ``train_inner`` log lines (``--log-format
json --log-interval 1``), stamped by this script as they arrive: ``s/update`` is their mean
over updates 2..U; ``first update`` runs from fairseq's "Start iterating over samples" to the
first line and ``start-up`` from the launch of the process to that message. fairseq's own
``train_wall`` is logged in whole seconds only, so it is kept in the JSON as a cross-check.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/bench_first_run.py \\
        [--multi30k ../shared/data/multi30k] [--work /tmp/searnn-first-run] [--pairs 3000] \\
        [--criteria cross_entropy searnn_skl] [--max-update searnn_skl=3 cross_entropy=20] \\
        [--user-dir DIR] [--out first_run.json]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL = ["--arch", "transformer", "--encoder-layers", "2", "--decoder-layers", "2",
         "--encoder-embed-dim", "64", "--decoder-embed-dim", "64",
         "--encoder-ffn-embed-dim", "128", "--decoder-ffn-embed-dim", "128",
         "--encoder-attention-heads", "2", "--decoder-attention-heads", "2"]
CRITERIA = {"cross_entropy": [], "searnn_skl": ["--searnn-tokens", "5"]}
MAX_UPDATE = {"cross_entropy": 20, "searnn_skl": 3}


def prepare(multi30k: Path, work: Path, pairs: int, valid: int, vocab: int) -> Path:
    """The binarised subset ``work/multi30k-p{pairs}-v{valid}-sp{vocab}/bin`` (reused if
    present)."""
    out = work / f"multi30k-p{pairs}-v{valid}-sp{vocab}"
    if (out / "prep.json").exists():
        print(f"reusing {out}", flush=True)
        return out / "bin"
    from fairseq_searnn.data.multi30k import prepare_multi30k
    from fairseq_searnn.data.nmt_prepare import read_lines, write_lines

    text = out / "text"
    for name, n in (("train", pairs), ("val", valid)):
        for lang in ("de", "en"):
            lines = read_lines(multi30k / "tok" / f"{name}.{lang}", n)
            if len(lines) < n:
                raise ValueError(f"{multi30k}/tok/{name}.{lang} has only {len(lines)} lines")
            write_lines(text / f"{name}.{lang}", lines)
    start = time.perf_counter()
    prepare_multi30k(text, out, vocab)
    print(f"prepared {out} in {time.perf_counter() - start:.0f} s", flush=True)
    return out / "bin"


def train(data: Path, criterion: str, updates: int, args, log_path: Path) -> dict:
    """One fairseq-train run; the arrival time of every log line, parsed."""
    cmd = [sys.executable, "-m", "fairseq_cli.train", str(data), "--user-dir", args.user_dir,
           "--task", "translation", "--source-lang", "de", "--target-lang", "en", *MODEL,
           "--optimizer", "adam", "--lr", "5e-4", "--batch-size", str(args.batch_size),
           "--criterion", criterion, *CRITERIA[criterion], "--max-update", str(updates),
           "--disable-validation", "--no-save", "--save-dir", str(args.work / "checkpoints"),
           "--cpu", "--num-workers", "0", "--seed", str(args.seed),
           "--log-format", "json", "--log-interval", "1"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               PYTHONUNBUFFERED="1")
    print(f"\n$ {' '.join(cmd)}", flush=True)
    launch = time.perf_counter()
    begin, stamps, inner = None, [], []
    with open(log_path, "w") as log, subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            cwd=args.work) as proc:
        for line in proc.stdout:
            now = time.perf_counter() - launch
            log.write(f"{now:9.3f} {line}")
            if "Start iterating over samples" in line and begin is None:
                begin = now
            elif "| train_inner |" in line:
                stamps.append(now)
                inner.append(json.loads(line.split("| train_inner | ", 1)[1]))
                print(f"  update {len(stamps)} at {now:7.2f} s: {line.split('| ', 3)[-1]}",
                      end="", flush=True)
    if proc.returncode != 0 or not stamps or begin is None:
        raise RuntimeError(f"{criterion}: fairseq-train failed (exit {proc.returncode}), "
                           f"see {log_path}")
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return {"criterion": criterion, "options": CRITERIA[criterion], "updates": len(stamps),
            "startup_s": round(begin, 2), "first_update_s": round(stamps[0] - begin, 2),
            "s_per_update": round(sum(gaps) / len(gaps), 3) if gaps else None,
            "update_s": [round(stamps[0] - begin, 3)] + [round(g, 3) for g in gaps],
            "process_s": round(time.perf_counter() - launch, 2),
            "train_wall": [x.get("train_wall") for x in inner], "train_inner": inner,
            "log": str(log_path)}


def _git_commit(path: str):
    try:
        return subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def table(rows) -> str:
    base = next((r["s_per_update"] for r in rows if r["criterion"] == "cross_entropy"), None)
    out = ["| criterion | updates | start-up s | first update s | s/update (2..U) "
           "| x cross_entropy |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        s = r["s_per_update"]
        ratio = f"{s / base:.1f}" if s and base else "-"
        name = " ".join([r["criterion"], *r["options"]])
        out.append(f"| {name} | {r['updates']} | {r['startup_s']:.1f} | "
                   f"{r['first_update_s']:.2f} | {s if s is None else f'{s:.3f}'} | {ratio} |")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--multi30k", type=Path, default=REPO.parent / "shared" / "data" / "multi30k",
                   help="directory with tok/{train,val}.{de,en}")
    p.add_argument("--work", type=Path, default=Path("/tmp/searnn-first-run"),
                   help="prepared data (reused), fairseq logs")
    p.add_argument("--pairs", type=int, default=3000, help="first N training pairs")
    p.add_argument("--valid", type=int, default=300, help="first N validation pairs")
    p.add_argument("--vocab", type=int, default=4000, help="joint sentencepiece vocabulary")
    p.add_argument("--criteria", nargs="+", default=list(CRITERIA), choices=list(CRITERIA))
    p.add_argument("--max-update", nargs="+", default=[], metavar="CRITERION=U",
                   help=f"updates per criterion (default {MAX_UPDATE})")
    p.add_argument("--batch-size", type=int, default=64, help="sentences per update")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="OMP / MKL threads of fairseq-train")
    p.add_argument("--user-dir", help="default: the directory of the imported fairseq_searnn")
    p.add_argument("--out", type=Path, help="write the results as JSON")
    args = p.parse_args(argv)
    import fairseq_searnn
    from fairseq_searnn.cli import user_dir

    args.user_dir = os.path.abspath(args.user_dir or user_dir())
    updates = dict(MAX_UPDATE, **{k: int(v) for k, v in (x.split("=") for x in args.max_update)})
    args.work = args.work.resolve()
    (args.work / "logs").mkdir(parents=True, exist_ok=True)
    load_start = [round(x, 2) for x in os.getloadavg()]
    data = prepare(args.multi30k.resolve(), args.work, args.pairs, args.valid, args.vocab)
    rows = [train(data, c, updates[c], args, args.work / "logs" / f"{c}.log")
            for c in args.criteria]
    import fairseq
    import torch

    settings = {"pairs": args.pairs, "valid": args.valid, "vocab": args.vocab, "data": str(data),
                "batch_size": args.batch_size, "seed": args.seed, "threads": args.threads,
                "model": MODEL, "optimizer": "adam, lr 5e-4", "user_dir": args.user_dir,
                "user_dir_commit": _git_commit(args.user_dir),
                "imported_fairseq_searnn": fairseq_searnn.__file__,
                "fairseq": fairseq.__version__, "torch": torch.__version__,
                "python": platform.python_version(), "load_average_start": load_start,
                "load_average_end": [round(x, 2) for x in os.getloadavg()]}
    print(f"\n{args.pairs} pairs, batch {args.batch_size} sentences, {args.threads} thread(s), "
          f"user-dir {args.user_dir} ({settings['user_dir_commit']}), 1-min load average "
          f"{load_start[0]} -> {settings['load_average_end'][0]}\n{table(rows)}")
    if args.out:
        args.out.write_text(json.dumps({"settings": settings, "rows": rows}, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
