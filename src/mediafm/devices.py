"""Where torch work runs: device names, and host-to-device copies through pinned memory.

Every stage that can use a GPU (shot detection, the encoders, pretraining, `mediafm embed`) takes
a device name: "auto" (a CUDA device when torch sees one, else the CPU), "cpu", "cuda" or
"cuda:N". Asking for CUDA where there is none is a configuration error, not a silent fallback.
"""

from __future__ import annotations

import numpy as np

from mediafm.errors import ConfigError

DEVICE_HELP = "auto | cpu | cuda | cuda:N (auto: a CUDA device when torch sees one, else the CPU)"


def resolve_device(name: str | None = "auto") -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; 'cpu', 'cuda' and 'cuda:N' are checked.

    Raises:
        ConfigError: an unknown name, or a CUDA device that torch cannot see.
    """
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ConfigError(None, f"device {name!r} was asked for, but torch sees no CUDA device "
                              f"(torch {torch.__version__}); use --device cpu or auto")
        return name
    raise ConfigError(None, f"unknown device {name!r}; expected {DEVICE_HELP}")


def cpu_bf16_native() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX). Elsewhere bfloat16 is
    emulated by float32 instructions plus conversions, slower than float32 itself."""
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # private helpers: absent from other torch builds
        return False


def autocast(device, bf16: bool = True):
    """bfloat16 autocast for a forward pass on `device` where it runs faster than float32: CUDA, and
    CPUs with native bfloat16 products (`cpu_bf16_native`); a no-op context elsewhere or when
    `bf16` is False. Parameters, gradients and what autocast keeps in float32 (norms, softmax,
    the losses' float32 casts) stay float32."""
    import contextlib

    import torch

    kind = torch.device(device).type
    if bf16 and (kind == "cuda" or (kind == "cpu" and cpu_bf16_native())):
        return torch.autocast(kind, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class PinnedStaging:
    """Host-to-device copies of numpy arrays through reusable page-locked (pinned) buffers.

    A copy from pinned memory runs asynchronously (the CPU goes on preparing the next batch while
    the GPU copies and computes); a copy from ordinary memory makes the CPU wait for it. Pinning
    memory is slow, so two buffers are allocated once (grown when a larger array comes) and used in
    turn: before a buffer is refilled, only the copy that last read it is waited for, so a loop of
    copy-then-compute never waits for its own computation. On the CPU, arrays pass through as views.
    """

    def __init__(self, device: str):
        import torch

        self.device = torch.device(device)
        self._buffers: list = [None, None]  # uint8 pinned tensors
        self._copied: list = [None, None]  # CUDA events: the last copy out of each buffer
        self._turn = 0

    def __call__(self, array: np.ndarray):
        """The array as a tensor on the device (the copy may still be in flight: stream-ordered)."""
        import torch

        array = np.ascontiguousarray(array)
        if self.device.type != "cuda":
            return torch.from_numpy(array if array.flags.writeable else array.copy())
        i, self._turn = self._turn, 1 - self._turn
        if self._copied[i] is not None:
            self._copied[i].synchronize()  # that copy has read the buffer: it may be overwritten
        buf = self._buffers[i]
        if buf is None or buf.numel() < array.nbytes:
            buf = self._buffers[i] = torch.empty(max(array.nbytes, 1 << 20), dtype=torch.uint8, pin_memory=True)
        dtype = torch.from_numpy(np.empty(0, array.dtype)).dtype
        staged = buf[:array.nbytes].view(dtype).view(array.shape)
        np.copyto(staged.numpy(), array)
        out = staged.to(self.device, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._copied[i] = event
        return out
