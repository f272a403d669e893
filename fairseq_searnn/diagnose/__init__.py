"""Exposure bias and output pathologies of a checkpoint (``fairseq-searnn-diagnose``).

Teacher-forced against free-running errors, error compounding position by position, output
pathologies (repeats, length, special symbols) and, with a SeaRNN criterion, where its loss
target puts its mass. One module per concern:

- :mod:`.metrics`   batched statistics as sums over batches (no fairseq)
- :mod:`.decoding`  teacher forcing, greedy (the engine's) and beam (fairseq's) decoding
- :mod:`.text`      text as fairseq-generate writes it, corpus BLEU
- :mod:`.targets`   the SeaRNN target report
- :mod:`.evaluate`  one checkpoint over a split (:class:`Diagnosis`)
- :mod:`.report`, :mod:`.plots`, :mod:`.cli`  the table, the PNGs, the command

    from fairseq_searnn.diagnose import Diagnosis, Options
    diag = Diagnosis(model, task, Options(cost="edit", beam=5))
    for sample in batches:
        diag.add(sample)
    diag.result()
"""

from fairseq_searnn.diagnose.evaluate import Diagnosis, Options
from fairseq_searnn.diagnose.targets import TargetStats, build_criterion

__all__ = ["Diagnosis", "Options", "TargetStats", "build_criterion"]
