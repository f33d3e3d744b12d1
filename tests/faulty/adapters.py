"""Fault-injecting adapters: the torch adapter with one deliberate fault each, for the robustness tests.

Each adapter behaves exactly like ``TorchAdapter`` except on the calls its ``triggers(loss, first)``
selects, where it raises, hangs, kills its own process, returns wrong shapes or returns NaN. The
tests run one of them beside the real torch adapter (``tests/faulty/adapters.py:Raises`` etc.) and
compute the affected cases with the same ``triggers`` (importing this module never imports torch).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

import numpy as np

from lossconf.adapters.torch import TorchAdapter


class _Faulty(TorchAdapter):
    """TorchAdapter with a fault on the calls ``triggers`` selects."""

    @staticmethod
    def triggers(loss: str, first: np.ndarray) -> bool:
        """Whether the call of ``loss`` on ``first`` (cast to the dtype under test) is faulted."""
        raise NotImplementedError

    def fault(self, value: np.ndarray, grad: np.ndarray | None) -> tuple:
        """What the faulted call does instead of returning (value, grad)."""
        raise NotImplementedError

    def value_and_grad(self, impl, first, second, params, dtype, mode="eager"):
        """The torch result, or the fault where ``triggers`` selects the call."""
        value, grad = super().value_and_grad(impl, first, second, params, dtype, mode)
        if self.triggers(impl.loss, np.asarray(first)):
            return self.fault(value, grad)
        return value, grad


def _has_nan(first: np.ndarray) -> bool:
    return bool(np.isnan(first.astype(np.float64)).any())


class Raises(_Faulty):
    """Raises on every sigmoid call (a whole implementation broken)."""

    name = "torch_raises"

    @staticmethod
    def triggers(loss: str, first: np.ndarray) -> bool:
        return loss == "sigmoid"

    def fault(self, value, grad):
        raise RuntimeError("injected fault: this adapter raises on sigmoid")


class Hangs(_Faulty):
    """Hangs (far past any test timeout) on the float32 softmax case with a NaN logit (one dtype: each hang
    costs the test a timeout and a worker restart)."""

    name = "torch_hangs"

    @staticmethod
    def triggers(loss: str, first: np.ndarray) -> bool:
        return loss == "softmax" and first.dtype == np.float32 and _has_nan(first)

    def fault(self, value, grad):
        time.sleep(600)
        return value, grad


class Dies(_Faulty):
    """Kills its own process with SIGKILL on the float32 log_softmax case with a NaN logit (one dtype: each
    death costs the test a worker restart)."""

    name = "torch_dies"

    @staticmethod
    def triggers(loss: str, first: np.ndarray) -> bool:
        return loss == "log_softmax" and first.dtype == np.float32 and _has_nan(first)

    def fault(self, value, grad):
        os.write(2, b"----\nFatalError: injected fault, the call kills its process\n  [a C++ stack would follow]\n")
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)  # SIGKILL is asynchronous; never return a result


class DiesIsolated(Dies):
    """Dies like ``Dies``, in implementations declared ``isolate``: only the forked child of the call dies."""

    name = "torch_dies_isolated"

    def implementations(self):
        """Torch's table with every log_softmax row isolated."""
        return [replace(i, isolate=True) if i.loss == "log_softmax" else i for i in super().implementations()]


class WrongShapes(_Faulty):
    """Mean squared error: the sum (0-d) for per-element values, [1, 1] for a scalar; a gradient short of one."""

    name = "torch_wrong_shapes"

    @staticmethod
    def triggers(loss: str, first: np.ndarray) -> bool:
        return loss == "mean_squared_error"

    def fault(self, value, grad):
        value = np.asarray(value)
        return value.sum() if value.ndim else value.reshape(1, 1), np.asarray(grad).reshape(-1)[:-1]


class ReturnsNaN(_Faulty):
    """NaN in every value and gradient of every call."""

    name = "torch_nan"

    @staticmethod
    def triggers(loss: str, first: np.ndarray) -> bool:
        return True

    def fault(self, value, grad):
        nan = np.asarray(np.nan, dtype=np.asarray(value).dtype)
        return np.full_like(value, nan), None if grad is None else np.full_like(grad, nan)
