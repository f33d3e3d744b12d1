"""Cases: the exact inputs lossconf tries, with their provenance.

Three kinds, all returned as ``Case`` records:

- ``document``: every worked example of the five tutorial documents, from ``documents/*.toml``;
- ``edge``: the named edge catalog (``EDGE_CASES`` below);
- ``random``: seeded, reproducible inputs from one integer seed.

Inputs are stored in float64 (or int64 labels) as *generated*; the runner casts ``first``, a float
``second`` and float array parameters to the dtype under test, and the truth is computed from the
cast values, so input rounding is never counted as error.

Document files (one per source document, ``documents/<document stem>.toml``) hold a top-level
``document`` (the file name), ``[[case]]`` entries and ``[[context]]`` entries (numbers that cannot be
turned into a case, with the reason). A case entry has ``id``, ``loss``, ``first``, ``second``,
``params``, ``variant`` (the convention the printing code followed, if not canonical) and the
provenance: ``where``, ``quote``, ``printed`` (every printed result in output order, shaped like the
value), ``printed_precision`` (``{decimals = n}``, ``{significant = n}`` — a number or one per printed
number — or ``{exact = true}`` for a repr that round-trips), ``printed_by``, ``printed_dtype``,
optional ``quantity`` (the intermediate the numbers are, itself a catalog id), ``printed_sign`` (-1
where the document prints minus the loss, e.g. log p) and an erratum: ``erratum`` (one line),
``erratum_kind`` (``printed``: a printed number is wrong; ``inputs``: the numbers come from other
inputs than the ones shown, which are kept in ``as_written``; ``formula``: a formula or text is wrong;
``output``: the code and its shown output disagree) with ``as_written`` and/or ``corrected`` (the
right values, computed with mpmath) so that the test suite can verify every erratum.
"""

from __future__ import annotations

import math
import re
import tomllib
import zlib
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import numpy as np

from lossconf.reference.catalog import CATALOG, get_loss

DOCUMENTS_DIR = Path(__file__).with_name("documents")
KINDS = ("document", "edge", "random")

# Tolerance of a printed number: half a unit in its last printed digit (the printing's rounding)
# plus DOC_ULPS units in the last place of the printed dtype at the number's magnitude (the rounding
# errors of the code that computed it in that dtype).
DOC_ULPS = 4


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
        }


def _jsonable(v: object) -> object:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def make_case(case_id: str, loss: str, first, second=None, *, kind: str, **fields) -> Case:
    """A Case with inputs converted: float64 ``first``, int64 labels or float64 targets, array params."""
    spec = get_loss(loss)
    params = {"reduction": "none", **fields.pop("params", {})}
    params = {k: np.asarray(v, dtype=np.float64) if isinstance(v, list) else v for k, v in params.items()}
    if second is not None:
        labels = spec.has_second and spec.inputs[1].role == "labels"
        second = np.asarray(second, dtype=np.int64 if labels else np.float64)
    return Case(case_id, loss, np.asarray(first, dtype=np.float64), second, params, kind, **fields)


# ---------------------------------------------------------------------------------------------
# Document cases
# ---------------------------------------------------------------------------------------------

_CASE_KEYS = {"id", "loss", "first", "second", "params", "variant", "note"}
_PROVENANCE_KEYS = {
    "where", "quote", "printed", "printed_precision", "printed_by", "printed_dtype", "quantity",
    "printed_sign", "erratum", "erratum_kind", "as_written", "corrected",
}
_REQUIRED = {"id", "loss", "first", "where", "quote", "printed", "printed_by", "printed_dtype"}
ERRATUM_KINDS = ("printed", "inputs", "formula", "output")


@cache
def _document_files() -> tuple[tuple[str, dict], ...]:
    files = sorted(DOCUMENTS_DIR.glob("*.toml"))
    if not files:
        raise FileNotFoundError(f"no document files in {DOCUMENTS_DIR}")
    return tuple((p.name, tomllib.loads(p.read_text(encoding="utf-8"))) for p in files)


def _document_case(file: str, document: str, entry: dict) -> Case:
    where = f"{file} [[case]] {entry.get('id', '?')}"
    unknown = set(entry) - _CASE_KEYS - _PROVENANCE_KEYS
    missing = _REQUIRED - set(entry)
    if unknown or missing:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
    if entry["printed"] != [] and "printed_precision" not in entry:
        raise ValueError(f"{where}: printed numbers need printed_precision")
    if ("erratum" in entry) != ("erratum_kind" in entry) or entry.get("erratum_kind", "printed") not in ERRATUM_KINDS:
        raise ValueError(f"{where}: an erratum needs erratum_kind, one of {ERRATUM_KINDS}")
    provenance = {"document": document, **{k: entry[k] for k in _PROVENANCE_KEYS if k in entry}}
    provenance["variant"] = entry.get("variant")
    return make_case(entry["id"], entry["loss"], entry["first"], entry.get("second"), kind="document",
                     params=dict(entry.get("params", {})), provenance=provenance, note=entry.get("note", ""))


def document_cases() -> list[Case]:
    """Every worked example of the documents, in file order, as ``kind="document"`` cases."""
    return [_document_case(file, data["document"], entry)
            for file, data in _document_files() for entry in data.get("case", [])]


def document_context() -> list[dict]:
    """Printed numbers that are not cases (no inputs given, not a loss), with the reason and any erratum."""
    return [{"document": data["document"], **entry}
            for _, data in _document_files() for entry in data.get("context", [])]


def printed_tolerance(printed: np.ndarray, precision: dict, dtype: str) -> np.ndarray:
    """Per printed number: 0.5 * 10^-(decimals shown) + DOC_ULPS * ulp_dtype(|printed|)."""
    printed = np.asarray(printed, dtype=np.float64)
    if precision.get("exact"):
        half_unit = np.zeros_like(printed)
    elif "decimals" in precision:
        half_unit = 0.5 * 10.0 ** -np.asarray(precision["decimals"], dtype=np.float64)
    elif "significant" in precision:
        mag = np.where(np.isfinite(printed) & (printed != 0), np.abs(printed), 1.0)
        exponent = np.floor(np.log10(mag)) + 1 - np.asarray(precision["significant"], dtype=np.float64)
        half_unit = 0.5 * 10.0 ** exponent
    else:
        raise ValueError(f"printed_precision: expected decimals, significant or exact, got {precision!r}")
    finite = np.where(np.isfinite(printed), np.abs(printed), 0.0)
    from lossconf.errormodel import ulp

    return np.broadcast_to(half_unit, printed.shape) + DOC_ULPS * ulp(finite, dtype)


def reproduces(reference, printed, precision: dict, dtype: str) -> np.ndarray:
    """Per printed number: does the reference's value round to it (non-finite values must be equal)?"""
    printed = np.asarray(printed, dtype=np.float64)
    ref = np.broadcast_to(np.asarray(reference, dtype=np.float64), printed.shape)
    both_nan = np.isnan(ref) & np.isnan(printed)
    with np.errstate(invalid="ignore"):
        close = np.abs(ref - printed) <= printed_tolerance(printed, precision, dtype)
    return both_nan | (ref == printed) | close


def reference_value(case: Case, first=None, second=None) -> np.ndarray:
    """The reference's value of a document case (optionally on other inputs), times ``printed_sign``."""
    from lossconf.reference.numpy_ref import value_and_grad

    prov = case.provenance
    first = case.first if first is None else np.asarray(first, dtype=np.float64)
    if second is None:
        second = case.second
    elif case.second is not None:
        second = np.asarray(second, dtype=case.second.dtype)
    value, _ = value_and_grad(case.loss, first, second, variant=prov.get("variant"), **case.params)
    return prov.get("printed_sign", 1) * np.asarray(value, dtype=np.float64)


def document_checks() -> list[dict]:
    """One record per printed number (results.json "documents"): reference value, reproduced, erratum.

    ``reproduced`` means |reference - printed| <= ``printed_tolerance``: half a unit in the last printed
    digit plus ``DOC_ULPS`` ulps of the printed dtype at the printed magnitude (non-finite numbers must
    be equal). ``quantity`` names the printed quantity and, for arrays, the element (``value[1, 0]``).
    A case whose shown output is missing (``printed = []`` with an erratum) gives one record with
    ``printed = "not printed"`` and the reference's whole value.
    """
    records = []
    for case in document_cases():
        prov = case.provenance
        base = {"case": case.id, "document": prov["document"], "where": prov["where"], "quote": prov["quote"],
                "printed_by": prov["printed_by"], "erratum": prov.get("erratum")}
        quantity = prov.get("quantity", "value")
        value = reference_value(case)
        if prov["printed"] == []:
            if prov.get("erratum_kind") == "output":
                records.append({**base, "quantity": quantity, "printed": "not printed",
                                "reference": value.tolist(), "reproduced": False})
            continue
        printed = np.asarray(prov["printed"], dtype=np.float64)
        if printed.shape != value.shape:
            raise ValueError(f"{case.id}: printed has shape {printed.shape}, the value {value.shape}")
        ok = reproduces(value, printed, prov["printed_precision"], prov["printed_dtype"])
        for index in np.ndindex(printed.shape):
            where = f"[{', '.join(map(str, index))}]" if index else ""
            records.append({**base, "quantity": quantity + where, "printed": float(printed[index]),
                            "reference": float(value[index]), "reproduced": bool(ok[index])})
    return records


# ---------------------------------------------------------------------------------------------
# Edge catalog
# ---------------------------------------------------------------------------------------------

_F16 = ("float16",)
_F32 = ("float32",)
_WIDE = ("float32", "float64", "bfloat16")  # exponent range of float32 or wider
_INF, _NAN = math.inf, math.nan


def _onehot(labels: list[int], c: int) -> list[list[float]]:
    return [[1.0 if j == k else 0.0 for j in range(c)] for k in labels]


def _edge(case_id: str, loss: str, first, second=None, note: str = "", **fields) -> Case:
    return make_case(case_id, loss, first, second, kind="edge", note=note, **fields)


def _softmax_family_edges() -> list[Case]:
    """Logit gaps, non-finite logits and class counts, for every loss with a softmax inside."""
    gaps = [  # (suffix, row, dtypes, nonfinite, note)
        ("gap_1e4", [0.0, 1e4, -1e4], None, False, "logit gap of 1e4: exp overflows in every dtype unless shifted"),
        ("gap_88_7", [88.7, 0.0, -1.0], _WIDE, False, "max logit 88.7: exp(88.7) is near the float32 maximum"),
        ("gap_89", [89.0, 0.0, 1.0], _WIDE, False, "max logit 89: exp(89) overflows float32 (> 3.4e38)"),
        ("gap_104", [0.0, -104.0, 1.0], _WIDE, False, "a logit 104 below the max: exp(-104) underflows float32"),
        ("gap_m88_7_all", [-88.7, -88.7, -90.0], _WIDE, False,
         "all logits near -88.7: unshifted exp is subnormal in float32, the sum loses digits"),
        ("gap_11_f16", [11.0, 0.0, -11.0], _F16, False, "gap of 11: exp(11) = 59874 is just below the float16 max"),
        ("gap_12_f16", [12.0, 0.0, 1.0], _F16, False, "max logit 12: exp(12) overflows float16 (> 65504)"),
        ("gap_20_f16", [0.0, -20.0, 20.0], _F16, False, "gap of 20: exp(-20) underflows float16, exp(20) overflows"),
        ("neg_inf", [-_INF, 0.0, 1.0], None, False, "a -inf logit (masked class) with zero target weight"),
        ("pos_inf", [_INF, 0.0, 1.0], None, True, "a +inf logit: the softmax limit puts all mass on it"),
        ("nan", [_NAN, 0.0, 1.0], None, True, "a NaN logit makes its sample NaN"),
    ]
    out: list[Case] = []
    for suffix, row, dtypes, nonfinite, note in gaps:
        first = [row, [0.5, -0.25, 2.0]]  # a well-behaved second row: the problem must stay in its row
        target_class = [2, 0]
        out += [
            _edge(f"edge_sce_{suffix}", "softmax_cross_entropy", first, _onehot(target_class, 3), note,
                  dtypes=dtypes, nonfinite=nonfinite),
            _edge(f"edge_sparse_{suffix}", "sparse_softmax_cross_entropy", first, target_class, note,
                  dtypes=dtypes, nonfinite=nonfinite),
            _edge(f"edge_softmax_{suffix}", "softmax", first, note=note, dtypes=dtypes, nonfinite=nonfinite),
            _edge(f"edge_log_softmax_{suffix}", "log_softmax", first, note=note, dtypes=dtypes,
                  nonfinite=nonfinite or suffix == "neg_inf"),  # log softmax of a -inf logit is -inf
        ]
    out += [
        _edge("edge_sce_pos_inf_target", "softmax_cross_entropy", [[_INF, 0.0, 1.0]], [[1.0, 0.0, 0.0]],
              "+inf logit on the target class: the limit is loss 0 (naive inf - inf gives NaN)"),
        _edge("edge_sce_neg_inf_target", "softmax_cross_entropy", [[-_INF, 0.0, 1.0]], [[1.0, 0.0, 0.0]],
              "-inf logit on the target class: loss +inf", nonfinite=True),
        _edge("edge_softmax_all_neg_inf", "softmax", [[-_INF, -_INF, -_INF]],
              note="every logit -inf: softmax is 0/0 = NaN", nonfinite=True),
    ]
    c1000 = [[0.0] * 1000, [1e4] * 1000]
    for loss in ("softmax_cross_entropy", "sparse_softmax_cross_entropy", "softmax", "log_softmax"):
        short = {"softmax_cross_entropy": "sce", "sparse_softmax_cross_entropy": "sparse"}.get(loss, loss)
        labels = {"softmax_cross_entropy": _onehot([0, 999], 1000), "sparse_softmax_cross_entropy": [0, 999]}
        out.append(_edge(f"edge_{short}_equal_c1000", loss, c1000, labels.get(loss),
                         "all-equal logits (0 and 1e4) over C = 1000: uniform softmax, loss log 1000"))
        labels1 = {"softmax_cross_entropy": [[1.0], [1.0]], "sparse_softmax_cross_entropy": [0, 0]}
        out.append(_edge(f"edge_{short}_c1", loss, [[3.0], [-1e4]], labels1.get(loss),
                         "C = 1: softmax is 1, the loss and its gradient are 0"))
        labels2 = {"softmax_cross_entropy": _onehot([1, 0], 2), "sparse_softmax_cross_entropy": [1, 0]}
        out.append(_edge(f"edge_{short}_c2", loss, [[1.5, -0.5], [30.0, -30.0]], labels2.get(loss),
                         "C = 2: equals the sigmoid of the logit difference"))
        labels0 = {"softmax_cross_entropy": np.zeros((0, 4)), "sparse_softmax_cross_entropy": np.zeros(0, int)}
        for reduction in ("none", "sum") if loss.endswith("entropy") else ("none",):
            out.append(_edge(f"edge_{short}_n0_{reduction}", loss, np.zeros((0, 4)), labels0.get(loss),
                             "N = 0: an empty batch", params={"reduction": reduction}))
        x3 = np.arange(24.0).reshape(2, 3, 4) / 4 - 2
        labels3 = {"softmax_cross_entropy": np.moveaxis(np.eye(3)[[[0, 1, 2, 0], [2, 2, 1, 0]]], -1, 1),
                   "sparse_softmax_cross_entropy": [[0, 1, 2, 0], [2, 2, 1, 0]]}
        out.append(_edge(f"edge_{short}_axis1", loss, x3, labels3.get(loss),
                         "class axis 1 on [N, C, d] inputs (the PyTorch layout)", params={"axis": 1}))
    out += [
        _edge("edge_sce_n0_mean", "softmax_cross_entropy", np.zeros((0, 3)), np.zeros((0, 3)),
              "N = 0 with reduction mean: 0/0 = NaN", params={"reduction": "mean"}, nonfinite=True),
        _edge("edge_sce_gap_1e4_sum", "softmax_cross_entropy", [[0.0, 1e4, -1e4]], [[0.0, 0.0, 1.0]],
              "gap of 1e4 with reduction sum", params={"reduction": "sum"}),
    ]
    return out


def _softmax_cross_entropy_edges() -> list[Case]:
    x = [[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]]
    out = [
        _edge("edge_sce_soft_sum_gt1", "softmax_cross_entropy", x, [[0.8, 0.5, 0.4], [0.0, 1.0, 1.0]],
              "soft labels summing to more than 1 (the gradient is sum(t) softmax - t)"),
        _edge("edge_sce_soft_sum_lt1", "softmax_cross_entropy", x, [[0.1, 0.1, 0.2], [0.0, 0.0, 0.0]],
              "soft labels summing to less than 1, and an all-zero target row (loss 0)"),
        _edge("edge_sce_negative_target", "softmax_cross_entropy", x, [[-0.5, 0.5, 1.0], [0.3, 0.6, 0.1]],
              "a negative soft label (any real weights are allowed)"),
    ]
    for eps in (0.0, 0.1, 1.0):
        name = str(eps).replace(".", "_")
        out.append(_edge(f"edge_sce_eps_{name}", "softmax_cross_entropy", x, _onehot([2, 1], 3),
                         f"label smoothing eps = {eps} (1 means uniform targets)",
                         params={"label_smoothing": eps, "reduction": "mean"}))
        out.append(_edge(f"edge_sparse_eps_{name}", "sparse_softmax_cross_entropy", x, [2, 1],
                         f"label smoothing eps = {eps} on sparse labels", params={"label_smoothing": eps}))
    out += [
        _edge("edge_sce_weight_eps", "softmax_cross_entropy", x, [[0.4, 0.1, 0.5], [0.0, 1.0, 0.0]],
              "class weights with soft labels and label smoothing, mean over N",
              params={"weight": [0.2, 1.0, 3.0], "label_smoothing": 0.1, "reduction": "mean"}),
        _edge("edge_sce_weight_sum", "softmax_cross_entropy", x, _onehot([2, 1], 3),
              "class weights with reduction sum", params={"weight": [0.2, 1.0, 3.0], "reduction": "sum"}),
    ]
    return out


def _sparse_edges() -> list[Case]:
    x = [[2.0, 0.5, 6.0], [0.1, 0.0, 3.0], [1.0, -1.0, 0.0], [-3.0, 4.0, 0.5]]
    w = [0.2, 1.0, 3.0]
    return [
        _edge("edge_sparse_all_ignored_mean", "sparse_softmax_cross_entropy", x[:2], [-100, -100],
              "every target ignored, reduction mean: 0/0 = NaN (0 in the all_ignored_zero variant)",
              params={"ignore_index": -100, "reduction": "mean"}, nonfinite=True),
        _edge("edge_sparse_all_ignored_sum", "sparse_softmax_cross_entropy", x[:2], [-100, -100],
              "every target ignored, reduction sum: 0", params={"ignore_index": -100, "reduction": "sum"}),
        _edge("edge_sparse_weight_ignore_mean", "sparse_softmax_cross_entropy", x, [2, -100, 0, 1],
              "class weights with ignore_index: mean divides by the weights of the kept targets",
              params={"weight": w, "ignore_index": -100, "reduction": "mean"}),
        _edge("edge_sparse_weight_ignore_eps_mean", "sparse_softmax_cross_entropy", x, [2, -100, 0, 1],
              "class weights, ignore_index and label smoothing together",
              params={"weight": w, "ignore_index": -100, "label_smoothing": 0.1, "reduction": "mean"}),
        _edge("edge_sparse_ignore_class0_none", "sparse_softmax_cross_entropy", x, [2, 0, 0, 1],
              "ignore_index equal to a real class (0): those samples give 0",
              params={"ignore_index": 0}),
        _edge("edge_sparse_ignored_nan_logit", "sparse_softmax_cross_entropy", [[_NAN, 0.0, 1.0], x[1]], [-100, 1],
              "an ignored sample with a NaN logit stays 0 (per sample)", params={"ignore_index": -100},
              nonfinite=True),
        _edge("edge_sparse_weight_zero_mean", "sparse_softmax_cross_entropy", x[:2], [0, 0],
              "every kept target has weight 0, reduction mean: 0/0 = NaN",
              params={"weight": [0.0, 1.0, 1.0], "reduction": "mean"}, nonfinite=True),
        _edge("edge_sparse_labels_above_256", "sparse_softmax_cross_entropy",
              np.linspace(-2.0, 2.0, 2 * 1000).reshape(2, 1000), [257, 999],
              "labels above 256 (not exactly representable in bfloat16 nor, above 2048, in float16): "
              "an API that casts labels to the logits' dtype picks the wrong class"),
    ]


def _sigmoid_family_edges() -> list[Case]:
    out: list[Case] = []
    rows = [  # (suffix, logits, dtypes, nonfinite, note)
        ("gap_1e4", [1e4, -1e4, 0.0], None, False, "logits of +-1e4: exp(|x|) overflows unless stable"),
        ("88_7", [88.7, -88.7, 89.0], _WIDE, False, "logits near +-88.7: exp overflows float32 at 88.73"),
        ("104", [104.0, -104.0, -103.0], _WIDE, False, "logits of +-104: exp(-104) underflows float32"),
        ("11_f16", [11.0, -11.0, 10.0], _F16, False, "logits of +-11: exp(11) = 59874 is just below the float16 max"),
        ("20_f16", [20.0, -20.0, 12.0], _F16, False, "logits of +-20: exp overflows/underflows float16"),
        ("inf", [_INF, -_INF, 0.0], None, True, "+-inf logits"),
        ("nan", [_NAN, 1.0, -1.0], None, True, "a NaN logit"),
    ]
    for suffix, x, dtypes, nonfinite, note in rows:
        z = [1.0, 0.0, 0.5]
        out += [
            _edge(f"edge_sigce_{suffix}", "sigmoid_cross_entropy", x, z, note, dtypes=dtypes,
                  nonfinite=nonfinite or suffix == "inf"),
            _edge(f"edge_sigmoid_{suffix}", "sigmoid", x, note=note, dtypes=dtypes, nonfinite=nonfinite),
        ]
    out += [
        _edge("edge_sigce_inf_limit", "sigmoid_cross_entropy", [_INF, -_INF], [1.0, 0.0],
              "+inf with target 1 and -inf with target 0: the limit is loss 0"),
        _edge("edge_sigce_subnormal_f32", "sigmoid_cross_entropy", [-100.0, 100.0], [0.0, 1.0],
              "loss softplus(-100) = 3.7e-44 is subnormal in float32", dtypes=_F32),
        _edge("edge_sigce_subnormal_f16", "sigmoid_cross_entropy", [-12.0, 12.0], [0.0, 1.0],
              "loss softplus(-12) = 6.1e-6 is subnormal in float16", dtypes=_F16),
        _edge("edge_sigmoid_subnormal_f32", "sigmoid", [-100.0, -95.0],
              note="sigmoid(-100) = 3.7e-44 is subnormal in float32", dtypes=_F32),
        _edge("edge_sigmoid_subnormal_f16", "sigmoid", [-12.0, -10.0],
              note="sigmoid(-12) = 6.1e-6 is subnormal in float16", dtypes=_F16),
        _edge("edge_sigce_pos_weight", "sigmoid_cross_entropy", [[0.7, 1.2, -0.3], [-2.0, 0.2, 0.9]],
              [[0.0, 1.0, 0.5], [1.0, 0.0, 1.0]], "pos_weight per class (class axis last)",
              params={"pos_weight": [0.5, 2.0, 10.0], "reduction": "mean"}),
        _edge("edge_sigce_pos_weight_big_logit", "sigmoid_cross_entropy", [-1e4, 1e4], [1.0, 1.0],
              "pos_weight with logits of +-1e4", params={"pos_weight": [3.0], "reduction": "sum"}),
        _edge("edge_sigce_n0", "sigmoid_cross_entropy", np.zeros((0, 3)), np.zeros((0, 3)), "N = 0",
              params={"reduction": "sum"}),
        _edge("edge_sigce_n0_mean", "sigmoid_cross_entropy", np.zeros((0, 3)), np.zeros((0, 3)),
              "N = 0 with reduction mean: 0/0 = NaN", params={"reduction": "mean"}, nonfinite=True),
        _edge("edge_sigmoid_n0", "sigmoid", np.zeros((0, 3)), note="N = 0"),
    ]
    for eps in (0.0, 0.1, 1.0):
        out.append(_edge(f"edge_sigce_eps_{str(eps).replace('.', '_')}", "sigmoid_cross_entropy",
                         [0.7, -1.2, 30.0], [1.0, 0.0, 1.0], f"binary label smoothing eps = {eps}: z(1-eps) + eps/2",
                         params={"label_smoothing": eps, "reduction": "mean"}))
    return out


def _probability_edges() -> list[Case]:
    p = [[0.7, 0.1, 0.2], [0.1, 0.5, 0.4]]
    return [
        _edge("edge_bce_p0_z0", "binary_cross_entropy", [0.0, 1.0, 0.5], [0.0, 1.0, 0.5],
              "probabilities exactly 0 and 1 with matching targets: 0 log 0 = 0, loss 0 and log 2"),
        _edge("edge_bce_p0_z1", "binary_cross_entropy", [0.0, 1.0], [1.0, 0.0],
              "probability 0 under target 1 (and 1 under 0): loss +inf (100 with the log clamp)", nonfinite=True),
        _edge("edge_bce_tiny", "binary_cross_entropy", [1e-30, 1.0 - 2.0**-53, 1e-300], [1.0, 1.0, 0.0],
              "probabilities 1e-30, 1 - 2^-53 and 1e-300 (0 in float32, float16 and bfloat16)"),
        _edge("edge_bce_subnormal_f32", "binary_cross_entropy", [1e-44, 3e-45], [0.0, 0.0],
              "subnormal float32 probabilities: loss -log1p(-p) is subnormal too", dtypes=_F32),
        _edge("edge_bce_soft", "binary_cross_entropy", [[0.3, 0.9], [0.5, 0.01]], [[0.25, 0.5], [1.0, 0.75]],
              "soft targets in [0, 1], reduction mean", params={"reduction": "mean"}),
        _edge("edge_bce_sum", "binary_cross_entropy", [0.3, 0.9, 0.5], [0.0, 1.0, 1.0], "reduction sum",
              params={"reduction": "sum"}),
        _edge("edge_bce_n0", "binary_cross_entropy", np.zeros(0), np.zeros(0), "N = 0",
              params={"reduction": "sum"}),
        _edge("edge_cce_p0_t0", "categorical_cross_entropy", [[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]],
              [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], "probabilities exactly 0 under target 0 (0 log 0 = 0) and 1"),
        _edge("edge_cce_p0_t1", "categorical_cross_entropy", [[0.0, 1.0, 0.0]], [[1.0, 0.0, 0.0]],
              "probability 0 under target 1: loss +inf (16.1 with the 1e-7 clip)", nonfinite=True),
        _edge("edge_cce_unnormalized", "categorical_cross_entropy", [[0.2, 0.1, 0.1], [0.9, 0.9, 0.9]],
              _onehot([0, 2], 3), "probabilities not summing to 1 (Keras renormalises them first)"),
        _edge("edge_cce_soft_sum_gt1", "categorical_cross_entropy", p, [[0.8, 0.5, 0.4], [0.0, 1.0, 1.0]],
              "soft labels summing to more than 1, reduction mean", params={"reduction": "mean"}),
        _edge("edge_cce_soft_sum_lt1", "categorical_cross_entropy", p, [[0.1, 0.1, 0.2], [0.0, 0.0, 0.0]],
              "soft labels summing to less than 1, reduction sum", params={"reduction": "sum"}),
        _edge("edge_cce_tiny", "categorical_cross_entropy", [[1e-30, 1.0 - 1e-30, 0.0]], [[1.0, 0.0, 0.0]],
              "probability 1e-30 under the target: 0 after the cast to float16 (loss +inf there)"),
        _edge("edge_cce_c1", "categorical_cross_entropy", [[1.0], [0.25]], [[1.0], [1.0]], "C = 1"),
        _edge("edge_cce_n0", "categorical_cross_entropy", np.zeros((0, 3)), np.zeros((0, 3)), "N = 0",
              params={"reduction": "sum"}),
        _edge("edge_cce_axis1", "categorical_cross_entropy", np.full((2, 3, 2), 1 / 3),
              np.moveaxis(np.eye(3)[[[0, 2], [1, 1]]], -1, 1), "class axis 1 on [N, C, d]", params={"axis": 1}),
        _edge("edge_cce_nan", "categorical_cross_entropy", [[_NAN, 0.5, 0.5], [0.2, 0.3, 0.5]], _onehot([1, 2], 3),
              "a NaN probability makes its sample NaN", nonfinite=True),
    ]


def _kl_edges() -> list[Case]:
    logq = [[-1.0, -2.0, -0.6], [-0.1, -3.0, -5.0]]
    return [
        _edge("edge_kl_p0", "kl_divergence", logq, [[0.0, 0.3, 0.7], [1.0, 0.0, 0.0]],
              "target probabilities 0: 0 log 0 = 0"),
        _edge("edge_kl_logq_neg_inf", "kl_divergence", [[-_INF, -0.5, -1.0]], [[0.0, 0.6, 0.4]],
              "log q = -inf where p = 0: contributes 0 (naive 0 * inf = NaN)"),
        _edge("edge_kl_logq_neg_inf_p_pos", "kl_divergence", [[-_INF, -0.5, -1.0]], [[0.2, 0.4, 0.4]],
              "log q = -inf where p > 0: +inf", nonfinite=True),
        _edge("edge_kl_unnormalized", "kl_divergence", logq, [[0.5, 0.5, 0.5], [0.1, 0.1, 0.1]],
              "targets not summing to 1, reduction sum", params={"reduction": "sum"}),
        _edge("edge_kl_prob_input", "kl_divergence", [[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]],
              [[0.1, 0.6, 0.3], [1.0, 0.0, 0.0]], "log_input=False: q given as probabilities, q = 0 where p = 0",
              params={"log_input": False, "reduction": "mean"}),
        _edge("edge_kl_prob_input_q0", "kl_divergence", [[0.0, 0.5, 0.5]], [[0.5, 0.25, 0.25]],
              "log_input=False with q = 0 under p > 0: +inf", params={"log_input": False}, nonfinite=True),
        _edge("edge_kl_axis1", "kl_divergence", np.log(np.full((2, 3, 2), 1 / 3)),
              np.moveaxis(np.eye(3)[[[0, 2], [1, 1]]], -1, 1), "class axis 1 on [N, C, d]", params={"axis": 1}),
        _edge("edge_kl_c1", "kl_divergence", [[0.0], [-2.0]], [[1.0], [1.0]], "C = 1"),
        _edge("edge_kl_n0", "kl_divergence", np.zeros((0, 3)), np.zeros((0, 3)), "N = 0", params={"reduction": "sum"}),
    ]


def _regression_edges() -> list[Case]:
    x = [[1.0, -2.0, 3.5], [0.0, 4.0, -1.0]]
    out: list[Case] = []
    for loss, short in (("mean_squared_error", "mse"), ("mean_absolute_error", "mae"),
                        ("root_mean_squared_error", "rmse")):
        mean_only = {"reduction": "mean"}
        red = mean_only if short == "rmse" else {}
        out += [
            _edge(f"edge_{short}_broadcast_row", loss, x, [0.5, -1.0, 3.5],
                  "targets [C] broadcast against predictions [N, C]", params=dict(red)),
            _edge(f"edge_{short}_broadcast_col", loss, x, [[1.0], [-1.0]],
                  "targets [N, 1] broadcast against predictions [N, C]", params=dict(mean_only)),
            _edge(f"edge_{short}_huge", loss, [1e20, -3e19, 1e5], [0.0, 1e19, -1e5],
                  "differences of 1e20: the square overflows float32 and narrower", params=dict(mean_only)),
            _edge(f"edge_{short}_tiny", loss, [1e-30, 3e-30, 0.0], [0.0, 1e-30, 1e-30],
                  "differences of 1e-30: the square underflows float32 (1e-60)", params=dict(mean_only)),
            _edge(f"edge_{short}_inf", loss, [_INF, 1.0], [_INF, 0.0], "inf - inf = NaN in a prediction",
                  params=dict(mean_only), nonfinite=True),
            _edge(f"edge_{short}_nan", loss, [_NAN, 1.0], [0.0, 0.0], "a NaN prediction", params=dict(red),
                  nonfinite=True),
        ]
    out += [
        _edge("edge_mse_sum", "mean_squared_error", x, [[0.5, -1.0, 3.5], [1.0, 1.0, 1.0]], "reduction sum",
              params={"reduction": "sum"}),
        _edge("edge_mse_n0", "mean_squared_error", np.zeros((0, 3)), np.zeros((0, 3)), "N = 0",
              params={"reduction": "sum"}),
        _edge("edge_mae_equal", "mean_absolute_error", [1.0, -2.0, 0.0], [1.0, -2.0, 0.0],
              "predictions equal to targets: the kink of |x - y| (gradient 0 by convention)"),
        _edge("edge_mae_sum", "mean_absolute_error", x, [[0.5, -1.0, 3.5], [1.0, 1.0, 1.0]], "reduction sum",
              params={"reduction": "sum"}),
        _edge("edge_rmse_equal", "root_mean_squared_error", [1.0, -2.0], [1.0, -2.0],
              "all errors 0: value 0, no gradient (NaN)", params={"reduction": "mean"}, nonfinite=True),
        _edge("edge_rmse_n1", "root_mean_squared_error", [3.0], [-1.0], "one element: |x - y|",
              params={"reduction": "mean"}),
    ]
    return out


def _smooth_labels_edges() -> list[Case]:
    onehot = _onehot([1, 2, 0], 3)
    out = [
        _edge(f"edge_smooth_eps_{str(eps).replace('.', '_')}", "smooth_labels", onehot,
              note=f"eps = {eps} on one-hot labels (1 gives uniform 1/C)", params={"label_smoothing": eps})
        for eps in (0.0, 0.1, 1.0)
    ]
    out += [
        _edge("edge_smooth_soft", "smooth_labels", [[0.4, 0.1, 0.5], [0.3, 0.6, 0.1]],
              note="soft labels", params={"label_smoothing": 0.2}),
        _edge("edge_smooth_c1", "smooth_labels", [[1.0], [1.0]], note="C = 1: always 1",
              params={"label_smoothing": 0.1}),
        _edge("edge_smooth_c1000", "smooth_labels", np.eye(1000)[[3, 999]], note="C = 1000: eps/C = 1e-4",
              params={"label_smoothing": 0.1}),
        _edge("edge_smooth_n0", "smooth_labels", np.zeros((0, 4)), note="N = 0", params={"label_smoothing": 0.1}),
    ]
    return out


def _log_softmax_extra_edges() -> list[Case]:
    return [
        _edge("edge_log_softmax_subnormal_f32", "log_softmax", [[0.0, -100.0]],
              note="softmax exp(-100) = 3.7e-44 subnormal in float32; log_softmax stays -100", dtypes=_F32),
        _edge("edge_softmax_subnormal_f32", "softmax", [[0.0, -100.0, -101.0]],
              note="softmax values 3.7e-44 and 1.4e-44, subnormal in float32", dtypes=_F32),
        _edge("edge_softmax_subnormal_f16", "softmax", [[0.0, -12.0, -16.0]],
              note="softmax values 6.1e-6 and 1.1e-7, subnormal in float16", dtypes=_F16),
    ]


@cache
def _edge_catalog() -> tuple[Case, ...]:
    cases = (_softmax_family_edges() + _softmax_cross_entropy_edges() + _sparse_edges() + _sigmoid_family_edges()
             + _probability_edges() + _kl_edges() + _regression_edges() + _smooth_labels_edges()
             + _log_softmax_extra_edges())
    return tuple(cases)


def edge_cases() -> list[Case]:
    """The named edge catalog (fresh copies: callers may not mutate the shared arrays)."""
    return [replace(c, first=c.first.copy(), second=None if c.second is None else c.second.copy(),
                    params={k: v.copy() if isinstance(v, np.ndarray) else v for k, v in c.params.items()})
            for c in _edge_catalog()]


EDGE_CASES: tuple[Case, ...] = _edge_catalog()  # shared records; edge_cases() returns copies


# ---------------------------------------------------------------------------------------------
# Random cases
# ---------------------------------------------------------------------------------------------

# Shape menus: few distinct shapes, so that the runner batches many "none" cases in one call.
BATCH_SIZES = (1, 4, 16, 64)
CLASS_COUNTS = (2, 3, 10, 100, 1000)
SCALE_RANGE = (-3.0, 3.0)  # log10 of the magnitude of logits and predictions
REDUCTION_WEIGHTS = {"none": 0.6, "mean": 0.2, "sum": 0.2}
IGNORE_INDEX = -100
# Predicted probabilities stay >= ~1e-6 (a float16 subnormal), so the random truths are finite in every
# dtype; exact zeros are edge cases.
PROBABILITY_FLOOR = 1e-6


def stable_hash(text: str) -> int:
    """A hash of ``text`` that is the same in every process and Python version (CRC-32)."""
    return zlib.crc32(text.encode("utf-8"))


class _Draw:
    """The random choices of one case, from one generator."""

    def __init__(self, rng: np.random.Generator, loss: str):
        self.rng = rng
        self.spec = CATALOG[loss]

    def n(self) -> int:
        return int(self.rng.choice(BATCH_SIZES))

    def c(self) -> int:
        return int(self.rng.choice(CLASS_COUNTS))

    def scale(self) -> float:
        return float(10.0 ** self.rng.uniform(*SCALE_RANGE))

    def reduction(self) -> str:
        allowed = [r for r in REDUCTION_WEIGHTS if r in self.spec.reductions]
        weights = np.array([REDUCTION_WEIGHTS[r] for r in allowed])
        return str(self.rng.choice(allowed, p=weights / weights.sum()))

    def logits(self, shape: tuple) -> np.ndarray:
        return self.rng.standard_normal(shape) * self.scale()

    def distribution(self, n: int, c: int, floor: float = 0.0) -> np.ndarray:
        """Probability rows: Dirichlet, concentration from peaked (0.05) to flat (10), entries >= ~floor."""
        alpha = 10.0 ** self.rng.uniform(-1.3, 1.0)
        p = np.maximum(self.rng.dirichlet(np.full(c, alpha), size=n), floor)
        return p / p.sum(axis=1, keepdims=True)

    def labels(self, n: int, c: int) -> np.ndarray:
        return self.rng.integers(0, c, size=n)

    def targets(self, n: int, c: int) -> np.ndarray:
        """Target rows in one of the formats: one-hot or soft."""
        if self.rng.random() < 0.5:
            return np.eye(c)[self.labels(n, c)]
        return self.distribution(n, c)

    def unit(self, shape: tuple) -> np.ndarray:
        """Values in (0, 1): uniform, or pushed towards 0 or 1 (log-uniform distance down to 1e-3,
        which float16 still separates from 1; exact 0 and 1 are edge cases)."""
        u = self.rng.uniform(1e-3, 1 - 1e-3, size=shape)
        if self.rng.random() < 0.3:
            tiny = 10.0 ** self.rng.uniform(-3, -1, size=shape)
            u = np.where(u < 0.5, tiny, 1 - tiny)
        return u


def _random_inputs(d: _Draw, loss: str, optional: bool) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """(first, second, params) of one random case; ``optional`` adds the loss's optional params."""
    n, c, rng = d.n(), d.c(), d.rng
    params: dict = {"reduction": d.reduction()}
    axis1 = optional and d.spec.classes_axis and "axis" in d.spec.param_names and rng.random() < 0.3
    if loss in ("softmax_cross_entropy", "sparse_softmax_cross_entropy", "softmax", "log_softmax"):
        first = d.logits((n, c))
        second = {"softmax_cross_entropy": lambda: d.targets(n, c),
                  "sparse_softmax_cross_entropy": lambda: d.labels(n, c)}.get(loss, lambda: None)()
        if optional and loss.endswith("cross_entropy"):
            if rng.random() < 0.6:
                params["label_smoothing"] = float(rng.choice([0.05, 0.1, 0.2, 0.5]))
            if rng.random() < 0.6:
                params["weight"] = rng.uniform(0.1, 2.0, size=c)
            if loss.startswith("sparse") and rng.random() < 0.6:
                params["ignore_index"] = IGNORE_INDEX
                second = np.where(rng.random(n) < 0.25, IGNORE_INDEX, second)
    elif loss in ("sigmoid_cross_entropy", "sigmoid"):
        first = d.logits((n, c))
        second = d.unit((n, c)) if rng.random() < 0.5 else rng.integers(0, 2, (n, c)).astype(np.float64)
        second = second if loss == "sigmoid_cross_entropy" else None
        if optional and loss == "sigmoid_cross_entropy":
            if rng.random() < 0.6:
                params["pos_weight"] = rng.uniform(0.1, 5.0, size=c)
            if rng.random() < 0.6:
                params["label_smoothing"] = float(rng.choice([0.05, 0.1, 0.2]))
    elif loss == "binary_cross_entropy":
        first = d.unit((n, c))
        second = d.unit((n, c)) if rng.random() < 0.5 else rng.integers(0, 2, (n, c)).astype(np.float64)
    elif loss == "categorical_cross_entropy":
        first, second = d.distribution(n, c, PROBABILITY_FLOOR), d.targets(n, c)
    elif loss == "kl_divergence":
        q, second = d.distribution(n, c, PROBABILITY_FLOOR), d.distribution(n, c)
        params["log_input"] = not (optional and rng.random() < 0.6)
        first = np.log(q) if params["log_input"] else q
    elif loss in ("mean_squared_error", "mean_absolute_error", "root_mean_squared_error"):
        first = d.logits((n, c))
        second = first + d.logits((n, c)) if rng.random() < 0.5 else d.logits((n, c))
    elif loss == "smooth_labels":
        first = d.targets(n, c)
        second = None
        params["label_smoothing"] = float(rng.uniform(0.0, 1.0))
    else:
        raise ValueError(f"losses: no random generator for {loss!r}; add one to lossconf.cases._random_inputs")
    if axis1:  # the class axis in position 1 of [N, C, d], d = 2
        first = np.stack([first, first[::-1]], axis=-1)
        if second is not None:
            second = np.stack([second, second[::-1]], axis=-1)
        params["axis"] = 1
    return first, second, params


def _optional_count(budget: int) -> int:
    return max(2, budget // 4) if budget else 0


def _random_for_loss(seed: int, budget: int, loss: str) -> list[Case]:
    rng = np.random.default_rng([seed, stable_hash(loss)])
    d = _Draw(rng, loss)
    has_optional = loss not in ("binary_cross_entropy", "mean_squared_error", "mean_absolute_error",
                                "root_mean_squared_error", "smooth_labels", "sigmoid")
    optional_flags = [False] * budget + [True] * (_optional_count(budget) if has_optional else 0)
    cases = []
    for i, optional in enumerate(optional_flags):
        first, second, params = _random_inputs(d, loss, optional)
        note = "with optional params" if optional else "no optional params"
        cases.append(make_case(f"rand_{loss}_{i:03d}", loss, first, second, kind="random", params=params,
                               note=f"{note}; shape {list(first.shape)}", provenance={"seed": seed}))
    return cases


def _check_losses(losses) -> list[str]:
    if losses is None:
        return list(CATALOG)
    if isinstance(losses, str):
        raise TypeError("losses: expected a list of loss ids, got a string")
    for loss in losses:
        get_loss(loss)
    return list(losses)


def random_cases(seed: int, budget: int = 64, losses=None) -> list[Case]:
    """Per loss, ``budget`` seeded cases without optional params plus ``budget // 4`` with them."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise ValueError(f"budget: expected a non-negative integer, got {budget!r}")
    return [c for loss in _check_losses(losses) for c in _random_for_loss(int(seed), int(budget), loss)]


# ---------------------------------------------------------------------------------------------
# All cases, replay
# ---------------------------------------------------------------------------------------------


def all_cases(seed: int, budget: int = 64, losses=None, kinds=KINDS) -> list[Case]:
    """Document, edge and random cases (as selected by ``kinds``) of the chosen losses."""
    kinds = tuple(kinds)
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"kinds: unknown kinds {sorted(unknown)}; expected some of {KINDS}")
    chosen = set(_check_losses(losses))
    out: list[Case] = []
    if "document" in kinds:
        out += [c for c in document_cases() if c.loss in chosen]
    if "edge" in kinds:
        out += [c for c in edge_cases() if c.loss in chosen]
    if "random" in kinds:
        out += random_cases(seed, budget, [loss for loss in CATALOG if loss in chosen])
    return out


_RANDOM_ID = re.compile(r"rand_(?P<loss>[a-z_]+)_(?P<index>\d{3,})")


def case_by_id(case_id: str, seed: int, budget: int = 64) -> Case:
    """The case ``case_id`` exactly as ``all_cases(seed, budget)`` makes it."""
    match = _RANDOM_ID.fullmatch(case_id)
    if match and match["loss"] in CATALOG:
        pool = random_cases(seed, budget, [match["loss"]])
    elif case_id.startswith("doc"):
        pool = document_cases()
    else:
        pool = edge_cases()
    for case in pool:
        if case.id == case_id:
            return case
    raise ValueError(f"case_id: no case {case_id!r} (seed {seed}, budget {budget})")


# ---------------------------------------------------------------------------------------------
# Large-vocabulary cases (``lossconf report --scale large``)
# ---------------------------------------------------------------------------------------------

LARGE_ROWS, LARGE_CLASSES = 1024, 131072  # a language-model batch over a 128k-token vocabulary
LARGE_DTYPES = ("float32", "bfloat16")  # the dtypes such models train in; each truth holds ~2 GiB


def large_cases(seed: int) -> list[Case]:
    """Seeded large-vocabulary cases: sparse softmax CE, mean, on 1024 x 131072 logits (1 GiB in float64)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    rng = np.random.default_rng([int(seed), stable_hash("large")])
    logits = rng.standard_normal((LARGE_ROWS, LARGE_CLASSES))
    logits *= 3.0  # the spread of a trained model's logits: a few units
    labels = rng.integers(0, LARGE_CLASSES, LARGE_ROWS)
    return [make_case(
        "large_sparse_softmax_cross_entropy_vocab131072", "sparse_softmax_cross_entropy", logits, labels,
        kind="random", params={"reduction": "mean"}, provenance={"seed": int(seed), "scale": "large"},
        dtypes=LARGE_DTYPES, note=f"large vocabulary: {LARGE_ROWS} x {LARGE_CLASSES} logits, sparse labels, mean",
    )]
