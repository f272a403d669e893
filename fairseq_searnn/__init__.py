"""fairseq-searnn: SeaRNN and differentiable scheduled sampling as a fairseq plugin.

Load it in any fairseq command with ``--user-dir`` (see README); importing this package
registers its criterions, tasks and models, and makes fairseq checkpoints loadable under
torch's weights-only unpickler (:mod:`fairseq_searnn.checkpoint`).
"""

from fairseq_searnn import (  # noqa: F401
    checkpoint,  # noqa: F401  (registers safe globals first)
    criterions,
    models,
    tasks,
)

__version__ = "0.1.0"
