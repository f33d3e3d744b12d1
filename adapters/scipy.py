"""SciPy adapter: the ``scipy.special`` functions people use as their own reference. Values only (SciPy
has no autodiff), so every implementation is ``grad=False``.

How each maps onto the catalog, and what is not offered:
- ``softmax``, ``log_softmax`` (any axis) and ``expit`` (sigmoid) are the catalog's building blocks;
- ``xlogy(t, p)`` and ``rel_entr(p, q)`` are *elementwise*; the catalog's per-sample losses are their
  sums over the class axis, so ``-sum(xlogy(t, p))`` is categorical_cross_entropy and
  ``sum(rel_entr(p, q))`` is kl_divergence with probability inputs (log_input=False), both marked
  composed, reduction "none" only (a mean or sum over samples would be NumPy's, not SciPy's);
- ``kl_div(p, q) = p log(p / q) - p + q`` sums to the KL divergence only when p and q both sum to 1,
  so it is not listed as kl_divergence;
- ``expit``, ``xlogy`` and ``rel_entr`` have float32 and float64 loops only (a float16 input comes back
  as float32 or float64); ``softmax`` and ``log_softmax`` are NumPy code and keep every dtype.
"""

from __future__ import annotations

import numpy as np

from lossconf.adapters.base import Impl, NumpyAdapter

_DOCS = "https://docs.scipy.org/doc/scipy/reference/generated/scipy.special."
UFUNC_DTYPES = ("float32", "float64")  # the loops scipy.special's ufuncs have
NONE = ("none",)


def _probabilities_input(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """rel_entr takes probabilities q, not log q."""
    if params.get("log_input", True):
        return "rel_entr takes probabilities (log_input=False), not log-probabilities"
    return None


class ScipyAdapter(NumpyAdapter):
    """scipy.special: softmax, log_softmax, expit, xlogy, rel_entr."""

    name = "scipy"
    module = "scipy"

    def load(self) -> None:
        """Import scipy.special."""
        import scipy.special  # noqa: F401

    def implementations(self) -> list[Impl]:
        """scipy.special functions mapped onto catalog losses (see the module docstring)."""
        import scipy.special as sp

        def categorical(p, t, reduction, axis=-1):
            return -np.sum(sp.xlogy(t, p), axis=axis)

        def kl(q, p, reduction, log_input=False, axis=-1):
            return np.sum(sp.rel_entr(p, q), axis=axis)

        return [
            Impl("softmax", "scipy.special.softmax", lambda x, _, reduction, axis=-1: sp.softmax(x, axis=axis),
                 params=("axis",), reductions=NONE, grad=False),
            Impl("log_softmax", "scipy.special.log_softmax",
                 lambda x, _, reduction, axis=-1: sp.log_softmax(x, axis=axis),
                 params=("axis",), reductions=NONE, grad=False),
            Impl("sigmoid", "scipy.special.expit", lambda x, _, reduction: sp.expit(x), reductions=NONE,
                 dtypes=UFUNC_DTYPES, grad=False),
            Impl("categorical_cross_entropy", "scipy.special.xlogy", categorical, name="-sum(xlogy(t, p))",
                 params=("axis",), reductions=NONE, dtypes=UFUNC_DTYPES, composed=True, grad=False,
                 note="xlogy(0, 0) = 0: a zero target contributes 0 (" + _DOCS + "xlogy.html)"),
            Impl("kl_divergence", "scipy.special.rel_entr", kl, name="sum(rel_entr(p, q))",
                 params=("log_input", "axis"), reductions=NONE, dtypes=UFUNC_DTYPES, composed=True, grad=False,
                 restrict=_probabilities_input,
                 note="rel_entr(p, q) = p log(p / q), 0 at p = 0, inf where q = 0 < p (" + _DOCS + "rel_entr.html)"),
        ]
