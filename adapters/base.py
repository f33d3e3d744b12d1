"""The adapter contract.

An adapter connects lossconf to one framework. It does four things and nothing else:

1. converts NumPy arrays to framework tensors in a dtype, on a device (``tensor``) and back (``numpy``);
2. takes the value and the gradient of the sum of the values with the framework's own autodiff
   (``value_and_grad``), in one of the execution modes it declares (``modes``: eager, compiled, ...);
3. reports its environment (``environment``): framework version, device, precision flags;
4. lists its implementations (``implementations``): one ``Impl`` per public API and loss id.

An ``Impl.fn`` calls the framework's public loss API and nothing more; it receives framework tensors
(``first`` differentiable, ``second`` the labels/targets or None) and the case's parameters by their
catalog names (``reduction``, ``label_smoothing``, ``weight``, ``ignore_index``, ``pos_weight``,
``axis``, ``log_input``) and maps them to the API's own arguments. It never composes a loss from
primitives; where it must, it says ``composed=True`` and the report shows it.

Everything runs inside the adapter's own worker process, so ``load`` may import the framework and set
global flags freely.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossconf.reference.catalog import get_loss, get_variant
from lossconf.reference.dtypes import DTYPES, numpy_dtype

NOT_APPLICABLE = "not_applicable"  # the API does not offer it (a reduction, parameter, axis, gradient): not a check
UNSUPPORTED = "unsupported"  # the framework should and cannot here (a missing dtype kernel, a broken call)


class Reason(str):
    """Why an implementation does not cover a combination: the text, and its ``kind``.

    ``not_applicable`` combinations are not planned, not counted, and shown in the report's capability
    grid; ``unsupported`` ones are checks with that verdict. A ``restrict`` function returning a plain
    string states an API limit (not applicable); it returns ``Reason(text, UNSUPPORTED)`` for a
    framework shortfall.
    """

    kind: str

    def __new__(cls, text: str, kind: str = NOT_APPLICABLE) -> Reason:
        if kind not in (NOT_APPLICABLE, UNSUPPORTED):
            raise ValueError(f"Reason: kind {kind!r}; expected {NOT_APPLICABLE!r} or {UNSUPPORTED!r}")
        self = super().__new__(cls, text)
        self.kind = kind
        return self

    def __reduce__(self) -> tuple:  # crosses the worker pipe with its kind
        return (Reason, (str(self), self.kind))


class Unsupported(Exception):
    """Raised by ``Impl.restrict`` users: the call is outside what the implementation declares."""


@dataclass(frozen=True)
class Impl:
    """One public API of a framework, implementing one catalog loss.

    ``fn(first, second, **params) -> tensor``; ``params`` holds every catalog parameter the case
    sets (``reduction`` always), with arrays already converted to tensors of the dtype under test.
    ``restrict(params, shape, second_shape)`` may return a reason string when a particular combination
    (an axis, a rank, broadcast targets) is outside the API (not applicable: not a check), or a
    ``Reason(text, UNSUPPORTED)`` when the framework should and cannot (then an ``unsupported`` check).
    """

    loss: str
    api: str
    fn: Callable[..., Any]
    name: str = ""
    dtypes: tuple[str, ...] = DTYPES
    params: tuple[str, ...] = ()
    reductions: tuple[str, ...] = ()  # empty: every reduction the loss declares
    variant: str | None = None
    composed: bool = False
    grad: bool = True
    restrict: Callable[[dict, tuple, tuple | None], str | Reason | None] | None = None
    note: str = ""
    # call in a forked child of the worker: a C-level crash on some inputs (a signal) then costs a fork,
    # not a new worker importing its framework again (Paddle's warpctc: ~40 SIGFPEs per default run)
    isolate: bool = False

    def __post_init__(self) -> None:
        loss = get_loss(self.loss)
        if not self.reductions:
            object.__setattr__(self, "reductions", loss.reductions)
        if not self.name:
            object.__setattr__(self, "name", self.api.rsplit(".", 1)[-1])
        for p in self.params:
            if p not in loss.param_names:
                raise ValueError(f"Impl {self.name}: params: {p!r} is not a parameter of {self.loss}")
        for r in self.reductions:
            if r not in loss.reductions:
                raise ValueError(f"Impl {self.name}: reductions: {r!r} not allowed for {self.loss}")
        for d in self.dtypes:
            if d not in DTYPES:
                raise ValueError(f"Impl {self.name}: dtypes: {d!r}; expected a subset of {DTYPES}")
        if self.variant is not None:
            get_variant(self.variant)
            if self.variant not in loss.variants:
                raise ValueError(f"Impl {self.name}: variant {self.variant!r} not declared for {self.loss}")

    def unsupported_reason(
        self, dtype: str, params: dict, shape: tuple, second_shape: tuple | None = None
    ) -> Reason | None:
        """Why this implementation does not cover (dtype, params, shapes), with its kind; None when it does.

        A dtype left out is ``unsupported`` (a kernel missing here); a reduction or parameter the API
        lacks is ``not_applicable``; ``restrict`` says which for its own reasons.
        """
        if dtype not in self.dtypes:
            return Reason(f"{self.api} is declared without {dtype}", UNSUPPORTED)
        reduction = params.get("reduction", "none")
        if reduction not in self.reductions:
            return Reason(f"{self.api} has no reduction={reduction!r}")
        loss = get_loss(self.loss)
        for name, value in params.items():
            if name == "reduction" or name in self.params:
                continue
            if _is_default(value, loss.param(name).default):
                continue
            return Reason(f"{self.api} has no parameter {name}")
        why = self.restrict(params, shape, second_shape) if self.restrict is not None else None
        return why if why is None or isinstance(why, Reason) else Reason(why)

    def describe(self) -> dict:
        """JSON-ready description used by results.json, `lossconf list` and the report."""
        return {
            "name": self.name,
            "loss": self.loss,
            "api": self.api,
            "dtypes": list(self.dtypes),
            "params": list(self.params),
            "reductions": list(self.reductions),
            "variant": self.variant,
            "composed": self.composed,
            "grad": self.grad,
            "note": self.note,
        }


def _is_default(value: Any, default: Any) -> bool:
    if value is None or default is None:
        return value is None and default is None
    if isinstance(value, np.ndarray):
        return False
    return value == default


class Adapter:
    """Base class of every adapter; subclasses set ``name``/``module`` and override the hooks."""

    name: str = ""
    module: str = ""  # the import name that must be installed, e.g. "torch"
    distributions: tuple[str, ...] = ()  # package names to read the version from (default: module)
    device: str = "cpu"
    # FTZ arithmetic on this device: True (every dtype) or the dtypes it applies to; the catalog variant
    # "flush_subnormals" then allows an absolute error up to the smallest normal number
    flushes_subnormals: bool | tuple[str, ...] = False
    known_deviations: str = ""  # a third-party adapter's known-deviations TOML (relative to its module)
    workers: int = 1  # worker processes for this adapter (more for a compile-bound framework)
    # execution modes (eager, torch.compile, jax.jit, tf.function, XLA), the first the default: a mode
    # is a dimension of the matrix like the dtype; check ids name every mode but the default
    modes: tuple[str, ...] = ("eager",)
    # modes that compile once per shape signature slowly enough (seconds) that the runner bounds the
    # number of distinct shapes per (impl, dtype) they run (``--compile-shapes``)
    bounded_modes: tuple[str, ...] = ()
    target: str = ""  # set by lossconf.adapters.loading.load_adapter: how a worker finds it again

    # -- discovery -------------------------------------------------------------------------------
    def available(self) -> str | None:
        """None when the framework can be imported where the worker runs, else a reason (shown as `skipped`)."""
        import importlib.util
        import os
        import subprocess

        from lossconf.worker import WORKER_PYTHON

        python = os.environ.get(WORKER_PYTHON)
        if python:  # the worker runs in another interpreter (lossconf sweep): ask that one
            probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({self.module!r}) is None)"
            if subprocess.run([python, "-c", probe], capture_output=True).returncode:
                return f"{self.module} is not installed in {python} ({WORKER_PYTHON})"
            return None
        if importlib.util.find_spec(self.module) is None:
            from lossconf.adapters.loading import BUILTIN

            hint = f"pip install 'lossconf[{self.name}]'" if self.name in BUILTIN else f"pip install {self.module}"
            return f"{self.module} is not installed ({hint})"
        return None

    def load(self) -> None:
        """Import the framework and set its precision flags; called once in the worker."""

    def version(self) -> str:
        """The framework's version string (read from package metadata, no import needed)."""
        from importlib.metadata import PackageNotFoundError, version

        for dist in self.distributions or (self.module,):
            try:
                return version(dist)
            except PackageNotFoundError:
                continue
        return "unknown"

    def environment(self) -> dict:
        """Framework version, device and precision flags."""
        return {"framework": self.module, "version": self.version(), "device": self.device}

    # -- the table -------------------------------------------------------------------------------
    def implementations(self) -> Sequence[Impl]:
        """Every public API of this framework that implements a catalog loss."""
        raise NotImplementedError

    # -- conversion and autodiff (framework specific) ---------------------------------------------
    def tensor(self, array: np.ndarray, dtype: str | None) -> Any:
        """A framework tensor holding ``array`` exactly, in ``dtype`` (None: keep integer labels)."""
        raise NotImplementedError

    def numpy(self, tensor: Any) -> np.ndarray:
        """The tensor's values as a NumPy array of the tensor's own dtype (bfloat16 via ml_dtypes)."""
        raise NotImplementedError

    def value_and_grad(
        self, impl: Impl, first: np.ndarray, second: np.ndarray | None, params: dict, dtype: str,
        mode: str = "",
    ) -> tuple[np.ndarray, np.ndarray | tuple | None]:
        """Call ``impl.fn`` on tensors of ``dtype`` in ``mode``; return the value and d(sum value)/d(first).

        ``params`` arrays (weights, pos_weight) arrive as NumPy and must be passed as tensors; use
        ``self.arguments(impl, params, dtype)``. The gradient is None when ``impl.grad`` is False.
        ``mode`` is one of ``modes`` ("" means the default, ``modes[0]``; see ``mode_of``).
        A loss with differentiable params (``self.grad_params(impl)``, e.g. linear_cross_entropy's
        ``linear_weight``) gets one gradient per differentiable input: ``self.pack_grads([d/dfirst,
        d/dparam, ...])``.
        """
        raise NotImplementedError

    def mode_of(self, mode: str) -> str:
        """The declared mode ``mode`` names ("" is the default); ValueError naming the declared ones."""
        if not mode:
            return self.modes[0]
        if mode not in self.modes:
            raise ValueError(f"mode: {mode!r} is not a mode of adapter {self.name!r}; "
                             f"expected one of {list(self.modes)}")
        return mode

    # -- helpers for subclasses -------------------------------------------------------------------
    def grad_params(self, impl: Impl) -> tuple[str, ...]:
        """The float array params differentiated besides ``first`` (the catalog's ``differentiable``)."""
        return get_loss(impl.loss).grad_params

    @staticmethod
    def pack_grads(grads: Sequence[np.ndarray]) -> np.ndarray | tuple:
        """``value_and_grad``'s gradient: one array, or a tuple in the catalog's ``differentiable`` order."""
        return grads[0] if len(grads) == 1 else tuple(grads)

    def arguments(self, impl: Impl, params: dict, dtype: str) -> dict:
        """Keyword arguments for ``impl.fn``: the declared params (any other is at its default, which
        ``unsupported_reason`` made sure of), float arrays as tensors of ``dtype``."""
        declared = {k: v for k, v in params.items() if k == "reduction" or k in impl.params}
        return self.convert_params(declared, dtype)

    def convert_params(self, params: dict, dtype: str) -> dict:
        """Params with float arrays turned into framework tensors of ``dtype``, integer arrays (CTC's lengths)
        into integer tensors."""
        return {k: self.tensor(v, None if np.issubdtype(v.dtype, np.integer) else dtype) if isinstance(v, np.ndarray)
                else v for k, v in params.items()}

    def second_tensor(self, second: np.ndarray | None, dtype: str) -> Any:
        """Integer labels keep their integer dtype; float targets take the dtype under test."""
        if second is None:
            return None
        if np.issubdtype(second.dtype, np.integer):
            return self.tensor(second, None)
        return self.tensor(second, dtype)

    def flush_dtypes(self) -> tuple[str, ...]:
        """The dtypes in which this adapter declares flush-to-zero arithmetic."""
        if self.flushes_subnormals is True:
            return DTYPES
        return tuple(self.flushes_subnormals or ())

    def describe(self) -> dict:
        """JSON-ready description of the adapter and its table."""
        return {
            "name": self.name,
            "module": self.module,
            "version": self.version(),
            "flushes_subnormals": list(self.flush_dtypes()),
            "modes": list(self.modes),
            "implementations": [i.describe() for i in self.implementations()],
        }



class NumpyAdapter(Adapter):
    """Base for value-only libraries that compute on NumPy arrays (SciPy, scikit-learn, ONNX Runtime):
    tensors are NumPy arrays in the dtype under test and there is no autodiff, so every ``Impl`` of
    such an adapter is ``grad=False``."""

    def tensor(self, array: np.ndarray, dtype: str | None) -> np.ndarray:
        """``array`` in ``dtype`` (bfloat16 as ml_dtypes.bfloat16; None keeps integer labels)."""
        array = np.asarray(array)
        return array if dtype is None else array.astype(numpy_dtype(dtype))

    def numpy(self, tensor: Any) -> np.ndarray:
        """Results are NumPy (or Python) numbers already."""
        return np.asarray(tensor)

    def value_and_grad(
        self, impl: Impl, first: np.ndarray, second: np.ndarray | None, params: dict, dtype: str
    ) -> tuple[np.ndarray, None]:
        """The API's value; no gradient (these libraries have no autodiff)."""
        value = impl.fn(self.tensor(first, dtype), self.second_tensor(second, dtype),
                        **self.arguments(impl, params, dtype))
        return self.numpy(value), None
