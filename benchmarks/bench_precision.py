"""Precision and the leaner decoding step: learned roll-outs and training steps in float32 and
bfloat16, each change on its own, in one run (ratios within the run).

Roll-outs (``--searnn-tokens 5``, learned roll-out, reference roll-in, every cell): content
tokens generated per second by the engine as it was (fairseq's own decoder step, finished rows
dropped at every step), with the lean ``lstm`` step, with finished rows dropped only once they
are a quarter of the batch, with decoding in bfloat16 (``--searnn-decode-dtype``), against
fairseq's ``SequenceGenerator`` (float32, greedy, ``prefix_tokens``) on the same prefixes.
Steps (forward + backward + Adam): cross-entropy in float32, under autocast to bfloat16 (the
task's ``--searnn-autocast``), and on a bfloat16 model with float32 master weights (what
fairseq's ``--bf16`` does); the SeaRNN fine-tune step of ``examples/nmt/converged.py`` in the
same variants as the roll-outs, then with the forward under autocast too.

Untrained models by default (NMT shapes: vocabulary 8,000, 64 sentences, targets of 10-30
tokens; learned roll-outs then run to their length limit); ``--prep DIR --checkpoint CKPT``
times a trained translation model on its own training batches instead.

    OMP_NUM_THREADS=1 python benchmarks/bench_precision.py [--archs lstm transformer] \\
        [--repeats 3] [--json FILE] [--prep DIR --checkpoint CKPT]
"""

import argparse
import contextlib
import copy
import functools
import json
import logging
import platform
import time
from pathlib import Path

import bench_engine  # beside this script
import bench_nmt_converged
import torch

from fairseq_searnn.recipes import bench
from fairseq_searnn.search import decoding, host, precision

VOCAB, SENTENCES = 8000, 64
ROLLOUT_ARGS = ["--rollin", "reference", "--rollout", "learned", "--searnn-tokens", "5",
                "--searnn-cost", "bleu", "--rollout-max-len-a", "1.5", "--rollout-max-len-b",
                "10"]
PARTS = ("rollouts", "agreement", "steps")
LAZY_SHARE = 0.25  # finished rows dropped once they are a quarter of the batch
#: the decoding variants: (name, lean lstm step, compaction share, dtype); the last two use
#: the defaults (lean step, decoding.COMPACT_SHARE)
VARIANTS = [("float32, as before", False, 0.0, "float32"),
            ("float32, lean lstm step", True, 0.0, "float32"),
            ("float32, lean + lazy compaction", True, LAZY_SHARE, "float32"),
            ("bfloat16 decoding", True, decoding.COMPACT_SHARE, "bfloat16")]


@contextlib.contextmanager
def variant(lean: bool, share: float):
    saved = host.LEAN_STEPS, decoding.COMPACT_SHARE
    host.LEAN_STEPS, decoding.COMPACT_SHARE = lean, share
    try:
        yield
    finally:
        host.LEAN_STEPS, decoding.COMPACT_SHARE = saved


def setup(args, arch):
    """(task, model, cfg-argv builder, training samples)."""
    if args.checkpoint:
        model, cfg, task = bench_nmt_converged.load(args.prep, args.checkpoint)
        samples = bench_nmt_converged.batches(task, args.batches, SENTENCES)

        def crit(name, extra):
            return bench_nmt_converged.criterion(task, cfg, ["--criterion", name, *extra])
        return task, model, crit, samples
    task, model, _ = bench.build(arch, VOCAB)

    def crit(name, extra):
        return bench.build(arch, VOCAB, name, extra)[2]
    samples = [bench.batch(task, SENTENCES, seed=i) for i in range(args.batches)]
    return task, model, crit, samples


def rollouts(task, model, crit, samples, repeats):
    """Roll-out tokens per second of every variant and of SequenceGenerator; the variants are
    interleaved (one pass over all of them per repeat, best of the repeats kept), so that a
    change of the machine's load during the run falls on every variant alike."""
    from fairseq.sequence_generator import SequenceGenerator

    model.eval()
    crits = {name: crit("searnn_skl", [*ROLLOUT_ARGS, "--searnn-decode-dtype", dtype])
             for name, _, _, dtype in VARIANTS}
    d = task.target_dictionary
    gen = SequenceGenerator([model], d, beam_size=1, max_len_a=1.5, max_len_b=10)
    best = {name: [float("inf")] * len(samples) for name in [*crits, "generator"]}
    tokens, hyps, gen_tokens = {}, {}, 0
    for rep in range(repeats):
        for name, lean, share, _ in VARIANTS:
            with variant(lean, share):
                for i, sample in enumerate(samples):
                    res = crits[name].search.collect(model, sample, seed=1,
                                                     keep_hypotheses=True)
                    best[name][i] = min(best[name][i], res.stats["time_rollouts"])
                    tokens.setdefault(name, {})[i] = int(res.stats["decoded_tokens"])
                    hyps.setdefault(name, {})[i] = res.hypotheses[1]
        for i, sample in enumerate(samples):
            start = time.perf_counter()
            with torch.no_grad():
                out = gen.generate([model], sample)
            best["generator"][i] = min(best["generator"][i], time.perf_counter() - start)
            if rep == 0:
                gen_tokens += sum(h[0]["tokens"].numel() for h in out)
    out = {}
    reference = hyps[VARIANTS[0][0]]
    for name in crits:
        same = total = 0
        for i, h in hyps[name].items():
            r = reference[i]
            width = max(h.size(1), r.size(1))
            h, r = (torch.nn.functional.pad(x, (0, width - x.size(1)), value=d.pad())
                    for x in (h, r))
            same += int((h == r).all(1).sum())
            total += h.size(0)
        seconds = sum(best[name])
        out[name] = {"tokens_per_s": sum(tokens[name].values()) / seconds, "seconds": seconds,
                     "tokens": sum(tokens[name].values()),
                     "same_rollouts_as_before": same / max(total, 1)}
    out["SequenceGenerator float32 (free decoding)"] = {
        "tokens_per_s": gen_tokens / sum(best["generator"])}
    return out


class Bf16Master:
    """fairseq's ``--bf16`` on a CPU: the model in bfloat16, float32 master weights stepped by
    Adam, copied back after every step (``FP16Optimizer`` without loss scaling)."""

    def __init__(self, model):
        self.model = model.to(torch.bfloat16)
        self.master = [p.detach().float().requires_grad_() for p in model.parameters()]
        self.opt = torch.optim.Adam(self.master, lr=1e-4)

    def step(self, crit, sample):
        self.model.train()
        self.model.zero_grad()
        loss, size, _ = crit(self.model, sample)
        (loss / size).backward()
        for m, p in zip(self.master, self.model.parameters()):
            m.grad = None if p.grad is None else p.grad.float()
        self.opt.step()
        with torch.no_grad():
            for m, p in zip(self.master, self.model.parameters()):
                p.copy_(m)


def autocast_step(model, crit, sample):
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        model.train()
        opt.zero_grad()
        with precision.autocast(precision.device_of(model), torch.bfloat16):
            loss, size, _ = crit(model, sample)
        (loss / size).backward()
        opt.step()
    return step


def steps(task, model, crit, samples, repeats):
    """Mean over samples of the best step time of each variant, every step from the same
    weights; the variants are interleaved (one pass over all per repeat, after a warm-up
    pass), so that a change of the machine's load falls on every variant alike."""
    init = copy.deepcopy(model.state_dict())
    searnn = bench_nmt_converged.SETTINGS["used"]
    plans = [("cross-entropy, float32", "cross_entropy", [], None, "plain"),
             ("cross-entropy, autocast bfloat16", "cross_entropy", [], None, "autocast"),
             ("cross-entropy, bfloat16 model + float32 master (--bf16)", "cross_entropy", [],
              None, "bf16")]
    for name, lean, share, dtype in VARIANTS:
        plans.append((f"SeaRNN fine-tune, {name}", searnn[1], searnn[2:] + [
            "--searnn-decode-dtype", dtype], (lean, share), "plain"))
    plans.append(("SeaRNN fine-tune, bfloat16 decoding + autocast", searnn[1], searnn[2:] + [
        "--searnn-decode-dtype", "bfloat16"], (True, decoding.COMPACT_SHARE), "autocast"))
    crits = {name: crit(criterion, extra) for name, criterion, extra, _, _ in plans}
    best = {name: [float("inf")] * len(samples) for name in crits}
    for rep in range(repeats + 1):  # the first pass warms up
        for name, _, _, toggles, mode in plans:
            with variant(*(toggles or (True, decoding.COMPACT_SHARE))):
                for i, sample in enumerate(samples):
                    model.load_state_dict(init)
                    if mode == "plain":
                        step = bench_engine.train_step(model, crits[name], sample)
                    elif mode == "autocast":
                        step = autocast_step(model, crits[name], sample)
                    else:
                        step = functools.partial(Bf16Master(copy.deepcopy(model)).step,
                                                 crits[name], sample)
                    t = bench.timed(step)
                    if rep > 0:
                        best[name][i] = min(best[name][i], t)
    out = {name: sum(ts) / len(ts) for name, ts in best.items()}
    for name, t in out.items():
        print(f"  {name}: {t:.3f} s", flush=True)
    return out


def agreement(task, model, crit, samples):
    """bfloat16 decoding against float32 on the same cells and candidates (reference roll-in;
    candidates drawn from the float32 teacher-forced scores): the share of learned roll-outs
    with the same tokens, the mean absolute change of the cost vectors, and the share of cells
    whose LL target (the minimum-cost candidate, ties broken by the same keyed draws)
    changes. The SeaRNN fine-tune settings with every roll-out learned."""
    from fairseq_searnn.search import losses

    searnn = bench_nmt_converged.SETTINGS["used"]
    extra = [*searnn[2:], "--rollout", "learned"]
    crits = {d: crit(searnn[1], extra + ["--searnn-decode-dtype", d])
             for d in ("float32", "bfloat16")}
    model.eval()
    same = rows = cells = changed = 0
    abs_change, entries = 0.0, 0
    for sample in samples:
        with torch.no_grad():
            lprobs = model.get_normalized_probs(model(**sample["net_input"]), log_probs=True)
        res = {}
        for d, c in crits.items():
            batch = c.search.roll_in(model, sample, seed=1)
            res[d] = c.search.finish(batch, lprobs.float(), keep_hypotheses=True)
        a, b = res["float32"], res["bfloat16"]
        assert torch.equal(a.candidates, b.candidates) and torch.equal(a.mask, b.mask)
        ha, hb = a.hypotheses[1], b.hypotheses[1]
        width = max(ha.size(1), hb.size(1))
        pad = task.target_dictionary.pad()
        ha, hb = (torch.nn.functional.pad(h, (0, width - h.size(1)), value=pad)
                  for h in (ha, hb))
        learned = a.candidates[tuple(a.hypotheses[0].unbind(1))].ne(task.target_dictionary.eos())
        same += int((ha == hb).all(1)[learned].sum())
        rows += int(learned.sum())
        abs_change += float((a.costs - b.costs).abs()[a.mask].sum())
        entries += int(a.mask.sum())
        best_a = losses.best_candidate(a.costs, a.mask, a.tiebreak)
        best_b = losses.best_candidate(b.costs, b.mask, b.tiebreak)
        cell = a.cells
        changed += int((best_a != best_b)[cell].sum())
        cells += int(cell.sum())
    return {"learned_rollouts": rows, "same_rollouts": same / max(rows, 1),
            "mean_abs_cost_change": abs_change / max(entries, 1),
            "ll_target_changed": changed / max(cells, 1), "cells": cells}


def copy_cost(model, repeats=5):
    """Seconds to refresh a bfloat16 copy of ``model``'s weights."""
    cp = precision.LowPrecisionCopy(torch.bfloat16)
    cp(model)
    return bench.best_of(lambda: cp(model), repeats)[0]


def table(res) -> str:
    lines = []
    for arch, r in res["archs"].items():
        lines += [f"## {arch}", "", f"bfloat16 copy of the weights: {1000 * r['copy_s']:.1f} ms"]
        if "rollouts" in r:
            ro = r["rollouts"]
            base = ro[VARIANTS[0][0]]["tokens_per_s"]
            sg = ro["SequenceGenerator float32 (free decoding)"]["tokens_per_s"]
            lines += ["", "| roll-outs | tokens / s | x as before | x SequenceGenerator | same "
                      "roll-outs as before |", "|---|---|---|---|---|"]
            for name, row in ro.items():
                same = row.get("same_rollouts_as_before")
                lines.append(f"| {name} | {row['tokens_per_s']:.0f} | "
                             f"{row['tokens_per_s'] / base:.2f} | "
                             f"{row['tokens_per_s'] / sg:.2f} | "
                             f"{'' if same is None else f'{100 * same:.1f} %'} |")
        if "agreement" in r:
            a = r["agreement"]
            lines += ["", f"bfloat16 against float32 decoding ({a['learned_rollouts']} learned "
                      f"roll-outs, {a['cells']} cells): same roll-outs "
                      f"{100 * a['same_rollouts']:.1f} %, mean |cost change| "
                      f"{a['mean_abs_cost_change']:.4f}, LL target changed in "
                      f"{100 * a['ll_target_changed']:.1f} % of cells"]
        if "steps" in r:
            lines += ["", "| step | s | x its float32 |", "|---|---|---|"]
            st = r["steps"]
            ce, se = st["cross-entropy, float32"], st[f"SeaRNN fine-tune, {VARIANTS[0][0]}"]
            for name, s in st.items():
                lines.append(f"| {name} | {s:.3f} | {(ce if 'cross' in name else se) / s:.2f} |")
        lines.append("")
    return "\n".join(lines)


def measure(args) -> dict:
    res = {"machine": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                       "processor": platform.processor(),
                       "fast_bfloat16": precision.fast_bfloat16()}, "archs": {}}
    archs = ["checkpoint"] if args.checkpoint else args.archs
    for arch in archs:
        torch.manual_seed(1)
        task, model, crit, samples = setup(args, arch)
        r = {"copy_s": copy_cost(model)}
        if "rollouts" in args.parts:
            print(f"{arch}: roll-outs", flush=True)
            r["rollouts"] = rollouts(task, model, crit, samples, args.repeats)
        if args.checkpoint and "agreement" in args.parts:
            print(f"{arch}: agreement", flush=True)
            r["agreement"] = agreement(task, model, crit, samples)
        if "steps" in args.parts:
            r["steps"] = steps(task, model, crit, samples, args.repeats)
        res["archs"][arch] = r
    before, bf16 = VARIANTS[0][0], VARIANTS[-1][0]
    res["bfloat16_rollouts_vs_float32"] = {
        a: r["rollouts"][bf16]["tokens_per_s"] / r["rollouts"][before]["tokens_per_s"]
        for a, r in res["archs"].items() if "rollouts" in r}
    res["bfloat16_searnn_step_vs_float32"] = {
        a: r["steps"][f"SeaRNN fine-tune, {before}"]
        / r["steps"]["SeaRNN fine-tune, bfloat16 decoding + autocast"]
        for a, r in res["archs"].items() if "steps" in r}
    return res


def run(quick: bool = False) -> dict:
    """For ``benchmarks/run.py``: untrained LSTM (and Transformer unless ``quick``: its
    roll-outs to the length limit take about 15 minutes on one thread)."""
    args = argparse.Namespace(archs=["lstm"] if quick else ["lstm", "transformer"],
                              parts=PARTS, batches=1 if quick else 2,
                              repeats=1 if quick else 2, prep=None, checkpoint=None)
    return measure(args)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", nargs="+", default=["lstm", "transformer"])
    p.add_argument("--batches", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--prep", type=Path)
    p.add_argument("--checkpoint")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                   help="what to measure (agreement needs --checkpoint)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    torch.set_num_threads(1)
    res = measure(args)
    print(table(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return res


if __name__ == "__main__":
    main()
