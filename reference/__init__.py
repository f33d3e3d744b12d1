"""The NumPy reference: value and closed-form gradient of every catalog loss, in high precision."""

from lossconf.reference.catalog import CATALOG, REDUCTIONS, VARIANTS, get_loss, get_variant
from lossconf.reference.dtypes import DTYPES, UNIT_ROUNDOFF, numpy_dtype

__all__ = [
    "CATALOG", "DTYPES", "REDUCTIONS", "UNIT_ROUNDOFF", "VARIANTS", "get_loss", "get_variant", "numpy_dtype",
]
