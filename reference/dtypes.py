"""The dtypes lossconf tests, their NumPy types and unit roundoffs."""

from __future__ import annotations

import ml_dtypes
import numpy as np

DTYPES = ("float16", "bfloat16", "float32", "float64")
UNIT_ROUNDOFF = {"float16": 2.0**-11, "bfloat16": 2.0**-8, "float32": 2.0**-24, "float64": 2.0**-53}


def numpy_dtype(dtype: str) -> np.dtype:
    """The NumPy dtype for a dtype name (bfloat16 through ml_dtypes)."""
    if dtype == "bfloat16":
        return np.dtype(ml_dtypes.bfloat16)
    if dtype not in DTYPES:
        raise ValueError(f"dtype: unknown dtype {dtype!r}; expected one of {DTYPES}")
    return np.dtype(dtype)


def dtype_name(dtype: np.dtype) -> str:
    """The lossconf name of a NumPy floating dtype ('bfloat16' for ml_dtypes.bfloat16)."""
    dtype = np.dtype(dtype)
    if dtype == np.dtype(ml_dtypes.bfloat16):
        return "bfloat16"
    return dtype.name
