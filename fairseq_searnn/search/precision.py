"""Precision of decoding and training steps: dtype names, hardware detection, a low-precision
copy of a model's weights for decoding, and autocast regions that name no device.

Decoding (roll-ins, roll-outs, greedy validation) runs without gradients, so it can run on a
copy of the weights cast once per update (:class:`LowPrecisionCopy`) instead of under autocast,
which casts every weight at every call. Training steps keep float32 weights and optimizer state
and run their forward under :func:`autocast`.
"""

import contextlib
import copy
from typing import Optional

import torch

#: the dtypes a user can name
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def dtype_of(name: Optional[str]) -> torch.dtype:
    """The dtype called ``name`` (None: float32); a clear error for another name."""
    if name is None:
        return torch.float32
    if str(name) not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}: one of {', '.join(DTYPES)}")
    return DTYPES[str(name)]


def fast_bfloat16(device: Optional[torch.device] = None) -> bool:
    """Whether ``device`` (default: the CPU) has a fast bfloat16 matrix product: AMX or
    AVX512-BF16 on a CPU, compute capability 8 or more on CUDA."""
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device)[0] >= 8
    if device.type != "cpu":
        return False
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def device_of(model) -> torch.device:
    """The device of ``model``'s first parameter (the CPU for a model without any)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def autocast(device: torch.device, dtype: torch.dtype):
    """An autocast region to ``dtype`` on ``device``'s type; float32 disables autocast (an
    outer region included), so that float32 means float32."""
    if dtype == torch.float32:
        return torch.autocast(device_type=device.type, enabled=False)
    return torch.autocast(device_type=device.type, dtype=dtype)


def unwrap(model):
    """The model inside distributed wrappers (fairseq's ``ModuleProxyWrapper`` around
    ``DistributedDataParallel``, ...), which follow the ``.module`` convention."""
    while isinstance(getattr(model, "module", None), torch.nn.Module):
        model = model.module
    return model


class LowPrecisionCopy:
    """A copy of a model in ``dtype``, for decoding, holding the source's current weights.

    ``copy(model)`` returns ``model`` itself for float32, else an eval-mode copy of the
    (unwrapped) model whose floating parameters and buffers are the source's cast to ``dtype``.
    The module is made once per source model and its values are copied from the source at
    every call (optimizers write ``p.data`` in place, which no version counter records), so a
    copy taken inside a training step holds the weights of that step; the cast costs one pass
    over the weights (docs/performance.md).
    """

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype
        self._source = None
        self._copy = None

    def __call__(self, model):
        if self.dtype == torch.float32:
            return model
        source = unwrap(model)
        if self._source is not source or device_of(self._copy) != device_of(source):
            self._copy, self._source = _copy_without_grads(source, self.dtype), source
        else:
            with torch.no_grad():
                for dst, src in zip(_tensors(self._copy), _tensors(source)):
                    dst.copy_(src)
        return self._copy


def _tensors(module):
    """Parameters then buffers of ``module``, in a fixed order."""
    yield from module.parameters()
    yield from module.buffers()


def _copy_without_grads(module, dtype: torch.dtype):
    grads = {p: p.grad for p in module.parameters()}
    for p in grads:
        p.grad = None
    try:
        out = copy.deepcopy(module)
    finally:
        for p, g in grads.items():
            p.grad = g
    out = out.to(dtype=dtype).eval()
    for p in out.parameters():
        p.requires_grad_(False)
    return out


def decoding(dtype: torch.dtype, device: torch.device):
    """The region of a decoding on a ``dtype`` copy: no gradients, and no outer autocast (the
    copy's dtype decides)."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.no_grad())
    stack.enter_context(torch.autocast(device_type=device.type, enabled=False))
    return stack
