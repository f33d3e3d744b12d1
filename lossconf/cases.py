"""Cases: the exact inputs lossconf tries, with their provenance.

Four kinds, all returned as ``Case`` records (``lossconf.case``):

- ``document``: every worked example of the five tutorial documents, from ``documents/*.toml``;
- ``edge``: the named edge catalog (``lossconf.edges``);
- ``random``: seeded, reproducible inputs from one integer seed (``lossconf.random_cases``);
- ``invalid``: inputs an implementation must reject with a clear error (``lossconf.invalid``).

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

import re
import tomllib
from functools import cache
from pathlib import Path

import numpy as np

from lossconf.case import MAX_PARAM_ELEMENTS, Case, check_losses, make_case
from lossconf.edges import EDGE_CASES, edge_cases
from lossconf.invalid import invalid_cases
from lossconf.random_cases import large_cases, random_cases, stable_hash
from lossconf.reference.catalog import CATALOG

DOCUMENTS_DIR = Path(__file__).with_name("documents")
KINDS = ("document", "edge", "random", "invalid")

# Tolerance of a printed number: half a unit in its last printed digit (the printing's rounding)
# plus DOC_ULPS units in the last place of the printed dtype at the number's magnitude (the rounding
# errors of the code that computed it in that dtype).
DOC_ULPS = 4


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
# All cases, replay
# ---------------------------------------------------------------------------------------------


def all_cases(seed: int, budget: int = 64, losses=None, kinds=KINDS) -> list[Case]:
    """Document, edge, random and invalid cases (as selected by ``kinds``) of the chosen losses."""
    kinds = tuple(kinds)
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"kinds: unknown kinds {sorted(unknown)}; expected some of {KINDS}")
    chosen = set(check_losses(losses))
    out: list[Case] = []
    if "document" in kinds:
        out += [c for c in document_cases() if c.loss in chosen]
    if "edge" in kinds:
        out += [c for c in edge_cases() if c.loss in chosen]
    if "random" in kinds:
        out += random_cases(seed, budget, [loss for loss in CATALOG if loss in chosen])
    if "invalid" in kinds:
        out += [c for c in invalid_cases() if c.loss in chosen]
    return out


_RANDOM_ID = re.compile(r"rand_(?P<loss>[a-z0-9_]+)_(?P<index>\d{3,})")


def case_by_id(case_id: str, seed: int, budget: int = 64) -> Case:
    """The case ``case_id`` exactly as ``all_cases(seed, budget)`` makes it."""
    match = _RANDOM_ID.fullmatch(case_id)
    if match and match["loss"] in CATALOG:
        pool = random_cases(seed, budget, [match["loss"]])
    elif case_id.startswith("doc"):
        pool = document_cases()
    elif case_id.startswith("inv_"):
        pool = invalid_cases()
    else:
        pool = edge_cases()
    for case in pool:
        if case.id == case_id:
            return case
    raise ValueError(f"case_id: no case {case_id!r} (seed {seed}, budget {budget})")


__all__ = ["EDGE_CASES", "KINDS", "MAX_PARAM_ELEMENTS", "Case", "all_cases", "case_by_id", "check_losses",
           "document_cases", "edge_cases", "invalid_cases", "large_cases", "make_case", "random_cases",
           "stable_hash"]
