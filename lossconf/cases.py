"""Cases: the exact inputs lossconf tries, with their provenance.

Three kinds, all returned as ``Case`` records:

- ``document``: every worked example of the five tutorial documents, from ``documents/*.toml``;
- ``edge``: the named edge catalog (``EDGE_CASES`` below);
- ``random``: seeded, reproducible inputs from one integer seed.

Inputs are stored in float64 (or int64 labels) as *generated*; the runner casts ``first``, a float
``second`` and float array parameters to the dtype under test, and the truth is computed from the
cast values, so input rounding is never counted as error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Case:
    """One input to one loss: arrays, parameters (incl. reduction) and where it came from."""

    id: str  # unique and stable, e.g. "doc001_rel1", "edge_gap_1e4_f32", "rand_softmax_cross_entropy_017"
    loss: str  # catalog loss id
    first: np.ndarray  # float64 as generated
    second: np.ndarray | None = None  # float64 targets or int64 labels
    params: dict = field(default_factory=dict)  # catalog params; "reduction" always present
    kind: str = "random"  # "document" | "edge" | "random"
    provenance: dict = field(default_factory=dict)  # document, location, quote, printed values...
    dtypes: tuple[str, ...] | None = None  # restrict to these dtypes (None: all)
    note: str = ""

    def describe(self) -> dict:
        """JSON-ready description (arrays summarised by shape) for results.json."""
        return {
            "id": self.id,
            "loss": self.loss,
            "kind": self.kind,
            "shape": list(self.first.shape),
            "second_shape": None if self.second is None else list(self.second.shape),
            "params": {k: _jsonable(v) for k, v in self.params.items()},
            "dtypes": None if self.dtypes is None else list(self.dtypes),
            "provenance": self.provenance,
            "note": self.note,
        }


def _jsonable(v: object) -> object:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v
