"""A lossconf adapter for MyFramework: copy this file, fill in every TODO, then run

    lossconf check-adapter path/to/this_file.py:MyAdapter --losses <a loss you added> --budget 4

until it exits 0. docs/writing-an-adapter.md walks through each step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossconf.adapters.base import Adapter, Impl
from lossconf.reference.dtypes import numpy_dtype

DTYPES = ("float16", "bfloat16", "float32", "float64")  # TODO: only the dtypes the framework computes in


class MyAdapter(Adapter):
    """TODO: one line saying which framework and which of its APIs."""

    name = "myframework"  # TODO: short name; it starts every check id (myframework:impl-dtype-case)
    module = "myframework"  # TODO: the import name; when it is missing the adapter is reported as skipped
    known_deviations = ""  # optional: "known/myframework.toml", relative to this file (step 6 of the guide)

    def load(self) -> None:
        """Import the framework; runs once, in the adapter's own worker process."""
        import myframework  # noqa: F401  TODO

    # -- conversion ---------------------------------------------------------------------------
    def tensor(self, array: np.ndarray, dtype: str | None) -> Any:
        """A framework tensor holding ``array`` exactly in ``dtype`` (None: integer labels, keep them)."""
        values = np.asarray(array) if dtype is None else np.asarray(array).astype(numpy_dtype(dtype))
        raise NotImplementedError(values)  # TODO: return myframework.tensor(values)

    def numpy(self, tensor: Any) -> np.ndarray:
        """The tensor's values as NumPy, in the tensor's own dtype (never upcast here)."""
        raise NotImplementedError  # TODO

    def value_and_grad(self, impl: Impl, first: np.ndarray, second: np.ndarray | None, params: dict,
                       dtype: str) -> tuple[np.ndarray, np.ndarray | None]:
        """The value of ``impl.fn`` and d(sum of the value)/d(first), by the framework's autodiff."""
        x = self.tensor(first, dtype)
        kwargs = {k: v for k, v in self.convert_params(params, dtype).items() if k == "reduction" or k in impl.params}
        value = impl.fn(x, self.second_tensor(second, dtype), **kwargs)
        if not impl.grad:
            return self.numpy(value), None
        raise NotImplementedError  # TODO: gradient of value.sum() with respect to x, as NumPy in dtype

    # -- the table ----------------------------------------------------------------------------
    def implementations(self) -> list[Impl]:
        """One Impl per public loss API; ``lossconf list`` shows the catalog's loss ids and params."""
        import myframework  # noqa: F401  TODO

        return [
            # TODO, e.g.:
            # Impl("sparse_softmax_cross_entropy", "myframework.losses.cross_entropy",
            #      lambda x, y, reduction: myframework.losses.cross_entropy(x, y, reduction=reduction),
            #      name="cross_entropy", dtypes=DTYPES),
        ]
