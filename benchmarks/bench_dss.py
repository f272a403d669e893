"""Training step time of the differentiable scheduled sampling models vs. their base models.

One training step = forward + cross-entropy + backward on the same random batch, in training
mode (dropout on), models built through fairseq's own option parsing with ``--user-dir``.
Every ``dss_*`` row feeds the model's decisions everywhere (ε = 0: the most expensive case; at
ε = 1 the models take fairseq's teacher-forced path, see the ``ε=1`` rows). Timings of all
configurations are interleaved rep by rep, and the median is reported, so that load drifts on a
shared machine hit all rows alike.

    python benchmarks/bench_dss.py [--quick] [--threads N] [--json FILE]
"""

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = {
    "full": {"batch": 64, "src_len": 25, "tgt_len": 25, "vocab": 8000, "reps": 7},
    "quick": {"batch": 16, "src_len": 10, "tgt_len": 10, "vocab": 1000, "reps": 2},
}
LSTM = ["--encoder-embed-dim", "256", "--encoder-hidden-size", "256", "--encoder-bidirectional",
        "--decoder-embed-dim", "256", "--decoder-hidden-size", "256",
        "--decoder-out-embed-dim", "256"]
TRANSFORMER = ["--encoder-layers", "3", "--decoder-layers", "3",
               "--encoder-embed-dim", "256", "--decoder-embed-dim", "256",
               "--encoder-ffn-embed-dim", "1024", "--decoder-ffn-embed-dim", "1024",
               "--encoder-attention-heads", "4", "--decoder-attention-heads", "4"]
NO_GOLD = ["--ss-teacher-forcing-prob", "0"]

# (name, base name, arch, options)
CONFIGS = [
    ("lstm", None, "lstm_wiseman_iwslt_de_en", LSTM),
    ("dss_lstm ε=1", "lstm", "dss_lstm_wiseman_iwslt_de_en",
     LSTM + ["--ss-teacher-forcing-prob", "1"]),
    ("dss_lstm hard-greedy", "lstm", "dss_lstm_wiseman_iwslt_de_en",
     LSTM + NO_GOLD + ["--ss-feed", "hard-greedy"]),
    ("dss_lstm soft-greedy", "lstm", "dss_lstm_wiseman_iwslt_de_en",
     LSTM + NO_GOLD + ["--ss-feed", "soft-greedy"]),
    ("dss_lstm soft-sample", "lstm", "dss_lstm_wiseman_iwslt_de_en",
     LSTM + NO_GOLD + ["--ss-feed", "soft-sample"]),
    ("transformer", None, "transformer_iwslt_de_en", TRANSFORMER),
    ("dss_transformer ε=1", "transformer", "dss_transformer_iwslt_de_en",
     TRANSFORMER + ["--ss-teacher-forcing-prob", "1"]),
    ("dss_transformer step hard-greedy", "transformer", "dss_transformer_iwslt_de_en",
     TRANSFORMER + NO_GOLD + ["--ss-feed", "hard-greedy"]),
    ("dss_transformer step soft-greedy", "transformer", "dss_transformer_iwslt_de_en",
     TRANSFORMER + NO_GOLD + ["--ss-feed", "soft-greedy"]),
    ("dss_transformer step soft-sample", "transformer", "dss_transformer_iwslt_de_en",
     TRANSFORMER + NO_GOLD + ["--ss-feed", "soft-sample"]),
    ("dss_transformer two soft-greedy", "transformer", "dss_transformer_iwslt_de_en",
     TRANSFORMER + NO_GOLD + ["--ss-feed", "soft-greedy", "--ss-passes", "two"]),
    ("dss_transformer two soft-greedy detached", "transformer", "dss_transformer_iwslt_de_en",
     TRANSFORMER + NO_GOLD + ["--ss-feed", "soft-greedy", "--ss-passes", "two",
                              "--ss-detach-first-pass"]),
]


def _dictionary(vocab):
    from fairseq.data import Dictionary

    d = Dictionary()
    while len(d) < vocab:
        d.add_symbol(f"w{len(d)}")
    return d


def _build(arch, options, dictionary, seed=1):
    """A model built the way fairseq-train builds it (parser -> config -> task.build_model)."""
    from fairseq.tasks.translation import TranslationTask

    from fairseq_searnn.cli import user_dir
    from fairseq_searnn.recipes import train_config

    cfg = train_config(["unused-data-dir", "--user-dir", user_dir(), "--task", "translation",
                        "--source-lang", "src", "--target-lang", "tgt", "--arch", arch,
                        "--dropout", "0.1", *options])
    task = TranslationTask(cfg.task, dictionary, dictionary)
    torch.manual_seed(seed)
    return task.build_model(cfg.model).train()


def _batch(shape, dictionary, seed=0):
    g = torch.Generator().manual_seed(seed)
    low, high = dictionary.nspecial, len(dictionary)
    src = torch.randint(low, high, (shape["batch"], shape["src_len"]), generator=g)
    target = torch.randint(low, high, (shape["batch"], shape["tgt_len"]), generator=g)
    target[:, -1] = dictionary.eos()
    prev = torch.cat([target.new_full((shape["batch"], 1), dictionary.eos()), target[:, :-1]], 1)
    lengths = torch.full((shape["batch"],), shape["src_len"], dtype=torch.long)
    return {"src_tokens": src, "src_lengths": lengths, "prev_output_tokens": prev}, target


def _step(model, net_input, target):
    """One training step's forward + backward; returns seconds."""
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    logits = model(**net_input)[0]
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1),
                           reduction="sum")
    loss.backward()
    return time.perf_counter() - start


def run(quick: bool = False, threads: int = 2) -> dict:
    """Measure every configuration; returns ``{"settings": ..., "rows": [...]}``."""
    import fairseq_searnn  # noqa: F401  (registers the dss_* models)

    torch.set_num_threads(threads)
    load_start = [round(x, 2) for x in os.getloadavg()]
    shape = SHAPES["quick" if quick else "full"]
    dictionary = _dictionary(shape["vocab"])
    net_input, target = _batch(shape, dictionary)
    models = {name: _build(arch, opts, dictionary) for name, _, arch, opts in CONFIGS}
    for model in models.values():  # warm-up
        _step(model, net_input, target)
    times = {name: [] for name in models}
    for _ in range(shape["reps"]):
        for name, model in models.items():
            times[name].append(_step(model, net_input, target))
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    rows = []
    for name, base, arch, _ in CONFIGS:
        rows.append({
            "config": name, "arch": arch, "step_ms": round(1000 * medians[name], 1),
            "ratio_to_base": round(medians[name] / medians[base], 2) if base else 1.0,
        })
    settings = dict(shape, threads=torch.get_num_threads(), torch=torch.__version__,
                    measure="median forward+backward seconds, training mode, dropout 0.1",
                    load_average_start=load_start,
                    load_average_end=[round(x, 2) for x in os.getloadavg()])
    return {"settings": settings, "rows": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes (a smoke run)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    result = run(quick=args.quick, threads=args.threads)
    s = result["settings"]
    print(f"batch {s['batch']}, src/tgt length {s['src_len']}/{s['tgt_len']}, vocab {s['vocab']}, "
          f"{s['threads']} threads, median of {s['reps']} steps, "
          f"1-min load average {s['load_average_start'][0]} -> {s['load_average_end'][0]}")
    print(f"| {'configuration':<42} | {'step ms':>8} | {'x base':>6} |")
    print(f"|{'-' * 44}|{'-' * 9}:|{'-' * 7}:|")
    for row in result["rows"]:
        print(f"| {row['config']:<42} | {row['step_ms']:>8.1f} | {row['ratio_to_base']:>6.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
