"""One case: the exact inputs of one loss, its params and provenance (``Case``, ``make_case``), and the
validated list of losses a run draws cases for. The catalogs that make cases (documents, edges, random,
invalid) import this module; ``lossconf.cases`` gathers them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lossconf.reference.catalog import CATALOG, get_loss


@dataclass
class Case:
    """One input to one loss: arrays, parameters (incl. reduction) and where it came from."""

    id: str  # unique and stable, e.g. "doc001_rel1", "edge_gap_1e4_f32", "rand_softmax_cross_entropy_017"
    loss: str  # catalog loss id
    first: np.ndarray  # float64 as generated
    second: np.ndarray | None = None  # float64 targets or int64 labels
    params: dict = field(default_factory=dict)  # catalog params; "reduction" always present
    kind: str = "random"  # "document" | "edge" | "random" | "invalid"
    provenance: dict = field(default_factory=dict)  # document, location, quote, printed values...
    dtypes: tuple[str, ...] | None = None  # restrict to these dtypes (None: all)
    note: str = ""
    nonfinite: bool = False  # the truth may be NaN/inf (otherwise value and gradient must be finite)

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
            "finite_input": bool(np.isfinite(self.first).all() and (
                self.second is None or np.isfinite(self.second).all())),
        }


MAX_PARAM_ELEMENTS = 4096  # larger array params (linear_cross_entropy's projection) are described, not listed


def _jsonable(v: object) -> object:
    if isinstance(v, np.ndarray):
        if v.size > MAX_PARAM_ELEMENTS:  # results.json would grow by tens of MB per case
            return f"{v.dtype} array of shape {list(v.shape)} (seeded; replay the case by its id)"
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


_INTEGER_PARAMS = ("input_lengths", "target_lengths")  # per-sample counts (CTC); other list params are floats


def make_case(case_id: str, loss: str, first, second=None, *, kind: str, **fields) -> Case:
    """A Case with inputs converted: float64 ``first``, int64 labels or float64 targets, array params."""
    spec = get_loss(loss)
    params = {"reduction": "none", **fields.pop("params", {})}
    params = {k: np.asarray(v, dtype=np.int64 if k in _INTEGER_PARAMS else np.float64) if isinstance(v, list) else v
              for k, v in params.items()}
    if second is not None:
        labels = spec.has_second and spec.inputs[1].role in ("labels", "label_sequences")
        second = np.asarray(second, dtype=np.int64 if labels else np.float64)
    return Case(case_id, loss, np.asarray(first, dtype=np.float64), second, params, kind, **fields)


def check_losses(losses) -> list[str]:
    """The chosen loss ids (all of the catalog for None), each validated."""
    if losses is None:
        return list(CATALOG)
    if isinstance(losses, str):
        raise TypeError("losses: expected a list of loss ids, got a string")
    for loss in losses:
        get_loss(loss)
    return list(losses)
