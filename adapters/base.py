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
from lossconf.reference.dtypes import DTYPES


class Unsupported(Exception):
    """Raised by ``Impl.restrict`` users: the call is outside what the implementation declares."""


@dataclass(frozen=True)
class Impl:
    """One public API of a framework, implementing one catalog loss.

    ``fn(first, second, **params) -> tensor``; ``params`` holds every catalog parameter the case
    sets (``reduction`` always), with arrays already converted to tensors of the dtype under test.
    ``restrict(params, shape, second_shape)`` may return a reason string when a particular combination
    (an axis, a rank, broadcast targets) is outside the API; that check is then ``unsupported`` with
    that reason.
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
    restrict: Callable[[dict, tuple, tuple | None], str | None] | None = None
    note: str = ""

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
    ) -> str | None:
        """Why this implementation does not cover (dtype, params, shapes), or None when it does."""
        if dtype not in self.dtypes:
            return f"{self.api} is declared without {dtype}"
        reduction = params.get("reduction", "none")
        if reduction not in self.reductions:
            return f"{self.api} is declared without reduction={reduction!r}"
        loss = get_loss(self.loss)
        for name, value in params.items():
            if name == "reduction" or name in self.params:
                continue
            if _is_default(value, loss.param(name).default):
                continue
            return f"{self.api} is declared without parameter {name}"
        if self.restrict is not None:
            return self.restrict(params, shape, second_shape)
        return None

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
        """None when the framework can be imported here, else a reason (shown as `skipped`)."""
        import importlib.util

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
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Call ``impl.fn`` on tensors of ``dtype`` in ``mode``; return the value and d(sum value)/d(first).

        ``params`` arrays (weights, pos_weight) arrive as NumPy and must be passed as tensors; use
        ``self.arguments(impl, params, dtype)``. The gradient is None when ``impl.grad`` is False.
        ``mode`` is one of ``modes`` ("" means the default, ``modes[0]``; see ``mode_of``).
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
    def arguments(self, impl: Impl, params: dict, dtype: str) -> dict:
        """Keyword arguments for ``impl.fn``: the declared params (any other is at its default, which
        ``unsupported_reason`` made sure of), float arrays as tensors of ``dtype``."""
        declared = {k: v for k, v in params.items() if k == "reduction" or k in impl.params}
        return self.convert_params(declared, dtype)

    def convert_params(self, params: dict, dtype: str) -> dict:
        """Params with float arrays turned into framework tensors of ``dtype``."""
        return {k: self.tensor(v, dtype) if isinstance(v, np.ndarray) else v for k, v in params.items()}

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

