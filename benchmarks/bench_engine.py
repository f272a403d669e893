"""Benchmark of the SeaRNN engine: roll-outs against fairseq's SequenceGenerator, training steps
against MLE, sub-sampling speed-up, memory and scaling (CPU, ``torch.set_num_threads(2)``).

Shapes. NMT: the paper's NMT-size LSTM (bidirectional encoder, 256 units) and a 3-layer
Transformer (256/1024/4 heads), vocabulary 10,000, 64 sentences, target lengths 10-30, BLEU
cost, reference roll-in unless stated. Spelling: the paper's model (100 units), 43 symbols,
128 sentences of 10 characters, edit cost, learned roll-in and mixed roll-out.

Usage: ``python benchmarks/bench_engine.py [--quick] [--json FILE]``; ``run(quick)`` returns the
same dict for ``benchmarks/run.py``; ``--steps`` runs only the training-step comparisons and
``--long`` only the long-target memory measurement. Models are untrained: learned roll-outs
run to the length limit (a pessimistic case for the engine and the baseline alike).
"""

import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from fairseq_searnn.recipes import bench
from fairseq_searnn.search import SearchConfig

NMT_VOCAB, SPELL_VOCAB = 10000, 39  # + 4 special symbols = 43 for spelling
MAX_LEN = 40
DEFAULT_CHUNK = SearchConfig.rollout_batch_size  # --rollout-batch-size's default
SPELL_MAX_LEN = ["--rollout-max-len-a", "1", "--rollout-max-len-b", "2"]


def _searnn_args(name, rollout, tokens=0, cells=0, cost="bleu", rollin="reference",
                 extra=()):
    args = ["--searnn-cost", cost, "--rollin", rollin, "--rollout", rollout,
            "--rollout-max-len-b", str(MAX_LEN), "--searnn-cells", str(cells)]
    if tokens:
        args += ["--searnn-tokens", str(tokens)]
    return args + list(extra)


def rollouts_vs_sequence_generator(arch, n_sent, cells, tokens, repeats):
    """Learned roll-outs of the same (prefix, candidate) pairs: engine vs SequenceGenerator
    (beam 1, ``prefix_tokens``), content tokens generated per second (prefixes not counted)."""
    from fairseq.sequence_generator import SequenceGenerator

    crit_args = _searnn_args("searnn_skl", "learned", tokens, cells)
    task, model, crit = bench.build(arch, NMT_VOCAB, "searnn_skl", crit_args)
    model.eval()
    sample = bench.batch(task, n_sent)
    d = task.target_dictionary
    pad, eos = d.pad(), d.eos()
    # engine: best of `repeats`, roll-out phase only (it includes the roll-in pass it forks)
    engine_time = float("inf")
    for _ in range(repeats):
        res = crit.search.collect(model, sample, seed=1, keep_hypotheses=True)
        engine_time = min(engine_time, res.stats["time_rollouts"])
    entries, hyps = res.hypotheses
    b, t, k = entries.unbind(1)
    a = res.candidates[b, t, k]
    learned = a.ne(eos)
    gen_tokens = int((hyps[learned].ne(pad).sum(1) - (t[learned] + 1)).sum())
    gen = SequenceGenerator([model], d, beam_size=1, max_len_a=0, max_len_b=MAX_LEN,
                            min_len=1)
    src = sample["net_input"]["src_tokens"]

    def run_generator():
        outputs = []
        for cell in range(int(t.max()) + 1):
            rows = (learned & t.eq(cell)).nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            # the LSTM encoder wants sources sorted by length, left-padded to the longest
            lengths = src[b[rows]].ne(pad).sum(1)
            order = lengths.argsort(descending=True, stable=True)
            rows, lengths = rows[order], lengths[order]
            prefix = torch.cat([res.rollin[b[rows], :cell], a[rows].unsqueeze(1)], 1)
            s = src[b[rows]][:, src.size(1) - int(lengths.max()):]
            net = {"src_tokens": s, "src_lengths": lengths}
            out = gen.generate([model], {"net_input": net}, prefix_tokens=prefix)
            outputs.append((rows, out))
        return outputs

    gen_time, outputs = bench.best_of(run_generator, repeats)
    same, sg_tokens = 0, 0
    for rows, out in outputs:
        for r, hypos in zip(rows.tolist(), out):
            toks = hypos[0]["tokens"]
            toks = toks[: -1] if toks[-1] == eos else toks
            sg_tokens += toks.numel() - (int(t[r]) + 1)
            same += int(toks.tolist() == [x for x in hyps[r].tolist() if x != pad])
    n = int(learned.sum())
    return {"rollouts": n, "engine_tokens": gen_tokens, "generator_tokens": sg_tokens,
            "engine_s": engine_time, "generator_s": gen_time,
            "engine_tokens_per_s": gen_tokens / engine_time,
            "generator_tokens_per_s": sg_tokens / gen_time,
            "ratio": (gen_tokens / engine_time) / (sg_tokens / gen_time),
            "identical_hypotheses": same / max(n, 1)}


def train_step(model, crit, sample):
    """A closure doing forward + backward + Adam step of ``crit`` on ``sample``."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        model.train()
        opt.zero_grad()
        loss, size, log = crit(model, sample)
        (loss / size).backward()
        opt.step()
        return log

    return step


def step_time(task, model, crit, sample, repeats):
    """Best time of forward + backward + Adam step, and the search breakdown of that step."""
    stats = {}
    search = getattr(crit, "search", None)
    if search is not None:  # record the phases of the search inside the timed steps
        finish = search.finish

        def recording_finish(*args, **kwargs):
            res = finish(*args, **kwargs)
            stats.setdefault("all", []).append(res.stats)
            return res

        search.finish = recording_finish
    step = train_step(model, crit, sample)
    try:
        times = [bench.timed(step) for _ in range(repeats + 1)][1:]  # first run: warm-up
    finally:
        if search is not None:
            search.finish = finish
    i = min(range(repeats), key=times.__getitem__)
    best, breakdown = times[i], {}
    if stats:
        phases = stats["all"][i + 1]
        breakdown = {k: v for k, v in phases.items()
                     if k.startswith("time_") or k == "decoded_tokens"}
        breakdown["time_loss_backward"] = max(best - phases["search_time"], 0.0)
        breakdown["costs_share"] = phases["time_costs"] / best
    return best, breakdown


def steps_vs_mle(arch, vocab, configs, n_sent, tgt_len, repeats):
    task, model, mle = bench.build(arch, vocab)
    sample = bench.batch(task, n_sent, tgt_len)
    init = copy.deepcopy(model.state_dict())  # every method starts from the same weights
    base, _ = step_time(task, model, mle, sample, repeats)
    rows = {"mle_s": base}
    for label, name, args in configs:
        _, _, crit = bench.build(arch, vocab, name, args)
        model.load_state_dict(init)
        t, breakdown = step_time(task, model, crit, sample, repeats)
        rows[label] = {"step_s": t, "vs_mle": t / base, **breakdown}
    return rows


def peak_rss_mb(arch, vocab, name, args, n_sent, tgt_len):
    """Peak resident memory (MB) of a fresh process over a training step (after a warm-up
    step; the kernel's high-water mark is reset before it with ``/proc/self/clear_refs``),
    and the resident memory before them (libraries, model, optimizer state): ``(peak, base)``."""
    code = (  # run beside this file, which it imports
        "import torch, bench_engine as be; from fairseq_searnn.recipes import bench;"
        f"torch.set_num_threads(2); task, model, crit = bench.build({arch!r}, {vocab:d}, "
        f"{name!r}, {list(args)!r}); s = bench.batch(task, {n_sent:d}, {tuple(tgt_len)!r});"
        "step = be.train_step(model, crit, s); step();"
        "open('/proc/self/clear_refs', 'w').write('5'); before = bench.peak_rss_mb();"
        "step(); print(before, bench.peak_rss_mb())")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent,
                         capture_output=True, text=True, check=True)
    before, peak = map(float, out.stdout.strip().splitlines()[-1].split())
    return peak, before


def step_comparisons(quick: bool, reps: int) -> dict:
    """Training steps against MLE: the NMT shapes (reference roll-in) and the spelling shape
    (learned roll-in, mixed roll-out), with the sKL(5) / full-KL speed-up."""
    res = {}
    # NMT step time vs MLE (reference roll-in; searnn_skl / sll, K = 5 and 25)
    nmt_cfgs = []
    for k in ((25,) if quick else (5, 25)):
        for name in (("searnn_skl",) if quick else ("searnn_skl", "searnn_sll")):
            nmt_cfgs.append((f"{name}_k{k}_reference", name, _searnn_args(name, "reference", k)))
    if not quick:
        nmt_cfgs.append(("searnn_skl_k5_mixed_c5", "searnn_skl",
                         _searnn_args("searnn_skl", "mixed", 5, cells=5)))
    res["nmt_steps"] = {a: steps_vs_mle(a, NMT_VOCAB, nmt_cfgs, 64, (10, 30), reps)
                        for a in ("lstm", "transformer")}
    res["reference_rollout_step_vs_mle"] = {
        a: r["searnn_skl_k25_reference"]["vs_mle"] for a, r in res["nmt_steps"].items()}
    # spelling: full LL / KL and sKL with 5 tokens, learned roll-in, mixed roll-out
    # roll-outs end at the source length + 2 tokens, as in examples/spelling/train.sh
    spell = [(name, name, _searnn_args(name, "mixed", 5 if name[7] == "s" else 0, cost="edit",
                                       rollin="learned", extra=SPELL_MAX_LEN))
             for name in ("searnn_kl", "searnn_skl", "searnn_ll", "searnn_sll")]
    sp = steps_vs_mle("spelling", SPELL_VOCAB, spell, 128, (10, 10), reps)
    res["spelling_steps"] = sp
    res["skl5_speedup_vs_kl_full"] = sp["searnn_kl"]["step_s"] / sp["searnn_skl"]["step_s"]
    return res


def run(quick: bool = False) -> dict:
    torch.set_num_threads(2)
    reps = 1 if quick else 3
    res = {"torch_threads": torch.get_num_threads(), "quick": quick}
    # 1. roll-outs vs SequenceGenerator (64 sentences, 5 cells, K = 5 top-k + ref + EOS)
    cells = 3 if quick else 5
    res["rollouts"] = {a: rollouts_vs_sequence_generator(a, 64, cells, 5, reps)
                       for a in ("lstm", "transformer")}
    res["rollout_tokens_per_s_vs_sequence_generator"] = {
        a: r["ratio"] for a, r in res["rollouts"].items()}
    # 2. training steps against MLE (NMT and spelling shapes)
    res.update(step_comparisons(quick, reps))
    # 3. memory: peak RSS of a SeaRNN step vs an MLE step (NMT LSTM, mixed roll-out)
    mem_args = _searnn_args("searnn_skl", "mixed", 25, cells=5)
    mle_mb, base_mb = peak_rss_mb("lstm", NMT_VOCAB, "cross_entropy", [], 64, (10, 30))
    mem = {"mle_mb": mle_mb, "mle_base_mb": base_mb}
    for chunk in ((DEFAULT_CHUNK,) if quick else (256, 1024, 4096, 16384)):
        mb, base = peak_rss_mb("lstm", NMT_VOCAB, "searnn_skl",
                               mem_args + ["--rollout-batch-size", str(chunk)], 64, (10, 30))
        mem[f"searnn_chunk{chunk}_mb"] = mb
        mem[f"searnn_chunk{chunk}_base_mb"] = base
    res["memory"] = mem
    res["peak_memory_vs_mle"] = mem[f"searnn_chunk{DEFAULT_CHUNK}_mb"] / mle_mb
    # the same, counting only what the step adds to the resident memory before it
    res["step_memory_vs_mle"] = ((mem[f"searnn_chunk{DEFAULT_CHUNK}_mb"]
                                  - mem[f"searnn_chunk{DEFAULT_CHUNK}_base_mb"])
                                 / max(mle_mb - base_mb, 1e-9))
    # long sequences: learned roll-outs of 50 / 100 / 200-token targets
    if not quick:
        res["long_sequences"] = long_sequences()
    # 4. scaling: step time against the number of roll-outs (NMT LSTM, 16 sentences)
    if not quick:
        task, model, _ = bench.build("lstm", NMT_VOCAB)
        sample = bench.batch(task, 16)
        init = copy.deepcopy(model.state_dict())
        sweep = []
        for c, k in ((5, 5), (10, 5), (20, 5), (30, 5), (10, 10), (10, 25), (10, 50)):
            _, _, crit = bench.build("lstm", NMT_VOCAB, "searnn_skl",
                                      _searnn_args("searnn_skl", "learned", k, cells=c))
            model.load_state_dict(init)
            t, _ = step_time(task, model, crit, sample, 1)
            model.load_state_dict(init)
            n = crit.collect_costs(model, sample).stats["learned_rollouts"]
            sweep.append({"cells": c, "tokens": k, "learned_rollouts": n, "step_s": t,
                          "ms_per_rollout": 1000 * t / max(n, 1)})
        res["scaling"] = sweep
    return res


def long_sequences(lengths=(50, 100, 200), chunks=(64, 1024)):
    """Peak memory (MB) of a SeaRNN step with learned roll-outs of long targets (NMT LSTM,
    8 sentences, 16 cells x (5 top-k + reference + EOS) candidates: up to 896 roll-outs of up
    to 250 tokens) against the target length and ``--rollout-batch-size``; an MLE step on the
    same batch for scale. Each roll-out row holds its own copy of the encoder output."""
    rows = []
    for length in lengths:
        mle, base = peak_rss_mb("lstm", NMT_VOCAB, "cross_entropy", [], 8, (length, length))
        row = {"target_len": length, "mle_mb": mle, "base_mb": base}
        for chunk in chunks:
            args = _searnn_args("searnn_skl", "learned", 5, cells=16) + [
                "--rollout-max-len-b", "250", "--rollout-batch-size", str(chunk)]
            row[f"searnn_chunk{chunk}_mb"] = peak_rss_mb("lstm", NMT_VOCAB, "searnn_skl", args,
                                                         8, (length, length))[0]
        rows.append(row)
    return rows


def table(res: dict) -> str:
    lines = [f"torch threads: {res['torch_threads']}", "",
             "roll-outs vs SequenceGenerator (tokens/s, identical hypotheses)"]
    for a, r in res["rollouts"].items():
        lines.append(f"  {a:12s} engine {r['engine_tokens_per_s']:9.0f}  generator "
                     f"{r['generator_tokens_per_s']:9.0f}  ratio {r['ratio']:.2f}  "
                     f"identical {r['identical_hypotheses']:.3f}  ({r['rollouts']} roll-outs)")
    for key in ("nmt_steps", "spelling_steps"):
        groups = res[key] if key == "nmt_steps" else {"spelling": res[key]}
        for a, rows in groups.items():
            lines.append(f"\n{key} {a}: MLE step {rows['mle_s'] * 1000:.0f} ms")
            for label, r in rows.items():
                if label == "mle_s":
                    continue
                parts = " ".join(f"{k[5:]}={v * 1000:.0f}ms" for k, v in r.items()
                                 if k.startswith("time_"))
                lines.append(f"  {label:28s} {r['step_s'] * 1000:8.0f} ms  x{r['vs_mle']:.2f}"
                             f"  costs {100 * r.get('costs_share', 0):.1f}%  {parts}")
    lines.append(f"\nsKL(5) speed-up vs full KL (spelling): {res['skl5_speedup_vs_kl_full']:.2f}")
    lines.append(f"memory (MB): {json.dumps(res['memory'])}; SeaRNN/MLE peak "
                 f"{res['peak_memory_vs_mle']:.2f}, added by the step "
                 f"{res['step_memory_vs_mle']:.2f}")
    for row in res.get("long_sequences", []):
        lines.append("  long targets " + json.dumps(row))
    for row in res.get("scaling", []):
        lines.append(f"  scaling C={row['cells']:2d} K={row['tokens']:2d} roll-outs "
                     f"{row['learned_rollouts']:6.0f} step {row['step_s']:.2f}s "
                     f"{row['ms_per_rollout']:.2f} ms/roll-out")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json")
    p.add_argument("--long", action="store_true",
                   help="only the long-target memory measurement (part of the full run)")
    p.add_argument("--steps", action="store_true",
                   help="only the training-step comparisons (NMT and spelling shapes), with "
                        "the full run's repetitions unless --quick")
    args = p.parse_args(argv)
    start = time.perf_counter()
    if args.steps or args.long:  # one part alone: the results as JSON
        torch.set_num_threads(2)
        if args.steps:
            res = {"torch_threads": torch.get_num_threads(), "quick": args.quick,
                   **step_comparisons(args.quick, 1 if args.quick else 3)}
        else:
            res = {"long_sequences": long_sequences()}
        res["wall_s"] = time.perf_counter() - start
        print(json.dumps(res, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=2))
        return
    res = run(args.quick)
    res["wall_s"] = time.perf_counter() - start
    print(table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
