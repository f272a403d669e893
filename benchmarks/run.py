"""Run every benchmark and write one JSON: ``python benchmarks/run.py [--quick] [--json FILE]``.

``--quick`` (about 5 minutes on 2 cores) keeps the shapes of the headline ratios and cuts
repetitions and the sweeps. Headline keys: ``rollout_tokens_per_s_vs_sequence_generator``
{lstm, transformer}, ``bleu_speedup_vs_sacrebleu``, ``edit_speedup_vs_rapidfuzz``,
``reference_rollout_step_vs_mle`` {lstm, transformer}, ``skl5_speedup_vs_kl_full``,
``peak_memory_vs_mle``, the time breakdown of SeaRNN steps (``engine.nmt_steps``), and
bfloat16 against float32 (``bfloat16_rollouts_vs_float32``, ``bfloat16_searnn_step_vs_float32``:
``benchmarks/bench_precision.py``).
"""

import argparse
import json
import logging
import platform
import time
import warnings
from pathlib import Path

# the bench_* modules stand beside this script, whose folder Python puts first on sys.path
import bench_costs
import bench_dss
import bench_engine
import bench_precision
import torch

HEADLINE = {
    "engine": ["rollout_tokens_per_s_vs_sequence_generator", "reference_rollout_step_vs_mle",
               "skl5_speedup_vs_kl_full", "peak_memory_vs_mle", "step_memory_vs_mle"],
    "costs": ["bleu_speedup_vs_sacrebleu", "edit_speedup_vs_rapidfuzz"],
    "precision": ["bfloat16_rollouts_vs_float32", "bfloat16_searnn_step_vs_float32"],
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", default="benchmark-results.json")
    args = p.parse_args(argv)
    logging.disable(logging.INFO)  # fairseq's and hydra's start-up chatter
    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    out = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                       "threads": torch.get_num_threads(), "processor": platform.processor()}}
    modules = (("costs", bench_costs), ("engine", bench_engine), ("dss", bench_dss),
               ("precision", bench_precision))
    for name, module in modules:
        start = time.perf_counter()
        out[name] = module.run(args.quick)
        out[name]["wall_s"] = time.perf_counter() - start
        table = getattr(module, "table", lambda res: json.dumps(res, indent=1))
        print(f"\n== {name} ({out[name]['wall_s']:.0f} s)\n{table(out[name])}", flush=True)
    for group, keys in HEADLINE.items():
        for key in keys:
            out[key] = out[group][key]
    Path(args.json).write_text(json.dumps(out, indent=2))
    print(f"\nheadline: {json.dumps({k: out[k] for ks in HEADLINE.values() for k in ks})}")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
