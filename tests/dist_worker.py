"""One rank of a local multi-process fairseq-train run over several configurations.

Usage: python dist_worker.py RANK WORLD PORT OUT.json CONFIGS.json
CONFIGS.json holds ``{"name": [train argv...]}``; each is trained in turn with fairseq's own
distributed entry point (gloo on CPU, ``--distributed-no-spawn``) and the master rank writes
the ``train_inner`` statistics it logged for each name into OUT.json.
"""

import json
import logging
import sys

from helpers import TrainLogCollector


def main():
    rank, world, port, out, configs = sys.argv[1:6]
    from fairseq import distributed_utils, options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq_cli import train

    results = {}
    with open(configs) as f:
        runs = json.load(f)
    for name, argv in runs.items():
        argv = argv + [
            "--distributed-world-size", world, "--distributed-rank", rank,
            "--distributed-init-method", f"tcp://127.0.0.1:{port}", "--distributed-no-spawn",
            "--distributed-backend", "gloo", "--ddp-backend", "legacy_ddp",
            "--log-format", "json",
        ]
        args = options.parse_args_and_arch(options.get_training_parser(), argv)
        cfg = convert_namespace_to_omegaconf(args)
        handler = TrainLogCollector()
        logging.getLogger("fairseq.logging.progress_bar").addHandler(handler)
        distributed_utils.call_main(cfg, train.main)
        logging.getLogger("fairseq.logging.progress_bar").removeHandler(handler)
        results[name] = handler.rows
    if rank == "0":
        with open(out, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main()
