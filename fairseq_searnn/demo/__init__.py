"""``fairseq-searnn-demo``: fine-tuning one pre-trained spelling corrector two ways, MLE and
SeaRNN, on CPU, in a few minutes.

1. Builds the spelling task (:mod:`fairseq_searnn.data.spelling`) from the documentation that
   ships with Python's standard library (``pydoc_data`` topics and module docstrings; offline,
   deterministic for a Python version) or from ``--corpus FILE``.
2. Pre-trains an attention LSTM with MLE (``cross_entropy``) from scratch for
   ``--pretrain-updates`` updates: a model clearly better than copying the input.
3. Fine-tunes that model, from the same weights and with a fresh optimiser at
   ``--finetune-lr``: with more MLE for ``--mle-finetune-updates`` updates, and with SeaRNN
   (``searnn_skl``: learned roll-in, mixed roll-out, edit cost, 5 tokens per cell drawn with
   the biased policy) for ``--finetune-updates``. A SeaRNN update costs about five MLE
   updates, so the defaults (1,500 against 300) give both about the same time: the comparison
   that matters, what SeaRNN adds to a trained model for the same compute.
4. Every model decodes the held-out validation set greedily during training (the curves) and
   the test set at the end; the edit error is exact: total Levenshtein distance / total
   reference characters x 100. Prints a table and a verdict, writes ``spelling_demo.png``
   into ``--out``. Budgets are update counts, so the numbers do not depend on the machine's
   speed or load (only the times do).

One module per concern:

- :mod:`.options`   the command line and the SeaRNN fine-tune's criterion
- :mod:`.training`  one training run (:class:`Run`) and its evaluation schedule
- :mod:`.report`    the table, the verdict, the plot
- :mod:`.cli`       the demo itself (:func:`run`) and the console entry point (:func:`main`)
"""

from fairseq_searnn.demo.cli import main, run
from fairseq_searnn.demo.options import parse, searnn_args
from fairseq_searnn.demo.report import plot, table, verdict
from fairseq_searnn.demo.training import MODEL, Run, quiet, schedule, train_to
from fairseq_searnn.recipes import criterion_args

__all__ = ["MODEL", "Run", "criterion_args", "main", "parse", "plot", "quiet", "run",
           "schedule", "searnn_args", "table", "train_to", "verdict"]
