"""Make fairseq checkpoints loadable under torch's weights-only unpickler (torch >= 2.6).

fairseq 0.12 saves ``argparse.Namespace`` objects in checkpoints (the legacy ``args`` entry and
inside the task / model configs) and calls ``torch.load`` without ``weights_only``, which torch
>= 2.6 treats as ``weights_only=True``. Rather than turning weights-only loading off, this module
adds exactly the classes a fairseq checkpoint contains to torch's allow-list, so an unknown class
in a pickle is still refused. Importing :mod:`fairseq_searnn` calls :func:`register_safe_globals`.
"""

import argparse

import torch

# Classes found in real fairseq 0.12 checkpoints (model, optimizer, lr scheduler, meters,
# iterator state), checked with ``torch.serialization.get_unsafe_globals_in_checkpoint``.
SAFE_GLOBALS = [argparse.Namespace]


def register_safe_globals() -> None:
    """Allow the classes of :data:`SAFE_GLOBALS` in ``torch.load(weights_only=True)``."""
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is not None:  # torch < 2.4 has no allow-list and loads fairseq checkpoints as is
        add(list(SAFE_GLOBALS))


register_safe_globals()
