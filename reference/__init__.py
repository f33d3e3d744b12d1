"""The NumPy reference: value and closed-form gradient of every catalog loss, in high precision."""

from lossconf.reference.catalog import CATALOG, REDUCTIONS, VARIANTS, get_loss, get_variant
from lossconf.reference.dtypes import DTYPES, UNIT_ROUNDOFF, numpy_dtype
from lossconf.reference.numpy_ref import Reference, evaluate, kappa, magnitudes, value_and_grad, working_dtype

__all__ = [
    "CATALOG", "DTYPES", "REDUCTIONS", "UNIT_ROUNDOFF", "VARIANTS", "Reference", "evaluate", "get_loss",
    "get_variant", "kappa", "magnitudes", "numpy_dtype", "value_and_grad", "working_dtype",
]
