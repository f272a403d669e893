"""Shared plumbing of the scripts under ``examples/`` and ``benchmarks/`` and of the demo, which
import it like any user: ``from fairseq_searnn import recipes``.

- :mod:`~fairseq_searnn.recipes.commands`: fairseq's console scripts located (:func:`tool`) and
  run as logged subprocesses (:func:`run_logged`, :func:`run_output`); fairseq-train's
  configuration (:func:`train_config`) and fairseq-generate (:func:`generate_in_process`) in
  this process.
- :mod:`~fairseq_searnn.recipes.generate_output`: the one reader of fairseq-generate's output.
- :mod:`~fairseq_searnn.recipes.criteria`: the recipes' criterion options
  (:func:`criterion_args`).
- :mod:`~fairseq_searnn.recipes.replication`: the replication drivers' pieces (jobs, fairseq's
  validation lines and stop reasons, mean ± std, learning curves).
- :mod:`~fairseq_searnn.recipes.resumable`: runs made of attempts that continue from their last
  checkpoint (status, attempt logs, cumulative training time).
- :mod:`~fairseq_searnn.recipes.plateau`: the end-of-epoch plateau step a resumed fairseq run
  misses, replayed into its checkpoint (:func:`~fairseq_searnn.recipes.plateau.replay`).
- :mod:`~fairseq_searnn.recipes.nmt_runs`: the Multi30k drivers' pieces (``train.sh``'s
  environment, cached test scores, paired bootstrap resampling, diagnosis, precision).
- :mod:`~fairseq_searnn.recipes.nmt_table`: the report of their finished runs (rows, paired
  bootstrap against baselines, tables, curves).
- :mod:`~fairseq_searnn.recipes.bench`: the benchmarks' models, synthetic batches and timers.
"""

from fairseq_searnn.recipes import bench, nmt_runs, nmt_table, plateau, replication, resumable
from fairseq_searnn.recipes.commands import (
    generate_in_process,
    run_logged,
    run_output,
    tool,
    train_config,
)
from fairseq_searnn.recipes.criteria import LOSSES, METHODS, criterion_args
from fairseq_searnn.recipes.generate_output import (
    generate_hypotheses,
    generate_pairs,
    read_generate,
)

__all__ = [
    "LOSSES", "METHODS", "bench", "criterion_args", "generate_hypotheses",
    "generate_in_process", "generate_pairs", "nmt_runs", "nmt_table", "plateau", "read_generate",
    "replication", "resumable", "run_logged", "run_output", "tool", "train_config",
]
