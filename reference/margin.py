"""Margin losses: hinge and squared hinge on decision values x and signs y (-1 or 1).

The margin m = 1 - y x is formed once in the working precision; its sign, which picks the branch, is
exact in IEEE arithmetic. At the margin itself (m = 0) the hinge has a kink: the canonical gradient is 0
(the flat side, as relu'(0) = 0), the ``kink`` hidden parameter takes half or all of the active side.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from lossconf.reference.drivers import Reference, over_elements

if TYPE_CHECKING:
    from lossconf.reference.numpy_ref import Call


def _hinge(call: Call, scales: bool) -> Reference:
    kink = call.work.type(call.params["kink"])

    def kernel(x, y):
        m = 1 - y * x
        value = np.maximum(m, 0)
        value[np.isnan(m)] = np.nan
        grad = np.where(m > 0, -y, np.where(m == 0, -kink * y, 0))
        grad[np.isnan(m)] = np.nan
        if not scales:
            return value, grad
        yx = np.nan_to_num(np.abs(y * x).astype(np.float64), posinf=0)  # m = -inf: the value 0 is exact
        return value, grad, 1 + yx, np.abs(y).astype(np.float64)

    return over_elements(call, kernel, scales)


def _squared_hinge(call: Call, scales: bool) -> Reference:
    def kernel(x, y):
        m = 1 - y * x
        active = np.maximum(m, 0)
        active[np.isnan(m)] = np.nan
        value = active * active
        grad = -2 * y * active
        if not scales:
            return value, grad
        a64 = active.astype(np.float64)
        yx = np.nan_to_num(np.abs(y * x).astype(np.float64), posinf=0)  # m = -inf: the value 0 is exact
        sg = np.where(a64 > 0, 2 * np.abs(y).astype(np.float64) * (a64 + 1 + yx), 0.0)
        return value, grad, a64 * a64 + 2 * a64 * (1 + yx), sg

    return over_elements(call, kernel, scales)


LOSSES: dict[str, Callable[[Call, bool], Reference]] = {
    "hinge": _hinge,
    "squared_hinge": _squared_hinge,
}
