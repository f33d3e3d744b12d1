"""Document cases: every printed number is reproduced by the reference or carries an erratum, and
every erratum is real.

The expected numbers are the ones the documents print (in lossconf/documents/*.toml with their
quotes) and, for errata, values computed with mpmath when the data files were written.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from lossconf.cases import (
    DOCUMENTS_DIR,
    ERRATUM_KINDS,
    document_cases,
    document_checks,
    document_context,
    reference_value,
    reproduces,
)
from lossconf.reference.catalog import CATALOG
from lossconf.reference.dtypes import DTYPES

# the tutorials live beside the repository (../shared/documents); LOSSCONF_DOCUMENTS overrides
_BESIDE = Path(__file__).resolve().parents[2] / "shared" / "documents"
SOURCE_DOCUMENTS = Path(os.environ.get("LOSSCONF_DOCUMENTS", _BESIDE))
CASES = document_cases()
ERRATA = [c for c in CASES if c.provenance.get("erratum")]
CORRECTED_PRECISION = {"significant": 10}  # `corrected` values are written with 10 significant digits


def _printed(case) -> np.ndarray:
    return np.asarray(case.provenance["printed"], dtype=np.float64)


def test_every_document_file_has_cases_and_names_its_document():
    files = sorted(DOCUMENTS_DIR.glob("*.toml"))
    assert len(files) == 5
    for path in files:
        stems = {c.id[:6] for c in CASES if c.provenance["document"] == path.stem + ".txt"}
        assert stems == {"doc" + path.stem[:3]}, path.name


@pytest.mark.skipif(not SOURCE_DOCUMENTS.is_dir(), reason="the source documents are not on this machine")
def test_quotes_are_verbatim():
    """Every quote (cases and context) is in its document, up to whitespace; '...' elides text."""
    entries = [c.provenance for c in CASES] + document_context()
    for entry in entries:
        text = re.sub(r"\s+", "", (SOURCE_DOCUMENTS / entry["document"]).read_text(encoding="utf-8"))
        for piece in entry["quote"].split("..."):
            assert re.sub(r"\s+", "", piece) in text, (entry["where"], piece)


def test_ids_unique_and_fields_valid():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    for case in CASES:
        prov = case.provenance
        assert case.kind == "document" and case.loss in CATALOG
        assert prov["printed_dtype"] in DTYPES and prov["printed_by"] and prov["where"] and prov["quote"]
        assert prov.get("quantity", case.loss) == case.loss, "an intermediate quantity is its own catalog loss"
        if prov.get("erratum"):
            assert prov["erratum_kind"] in ERRATUM_KINDS and "\n" not in prov["erratum"]


def test_context_entries_give_a_reason():
    context = document_context()
    assert context and all(e["reason"] and e["quote"] and e["where"] for e in context)


def test_the_key_examples_are_cases():
    ids = {c.id for c in CASES}
    for key in ("doc000_softmax_fig3", "doc001_rel1", "doc001_rel2", "doc001_rel4", "doc001_rel5",
                "doc001_scaled2", "doc001_loss_sum", "doc003_smooth_labels", "doc003_sigmoid_api",
                "doc004_batch_mean_onehot", "doc004_neglog_1e-7", "doc004_log_values"):
        assert key in ids


def test_every_printed_number_is_reproduced_or_has_an_erratum():
    for case in CASES:
        printed = _printed(case)
        if printed.size == 0:
            continue
        ok = reproduces(reference_value(case), printed, case.provenance["printed_precision"],
                        case.provenance["printed_dtype"])
        assert ok.all() or case.provenance.get("erratum"), (case.id, printed, reference_value(case))


@pytest.mark.parametrize("case", ERRATA, ids=[c.id for c in ERRATA])
def test_every_erratum_is_real(case):
    prov = case.provenance
    kind = prov["erratum_kind"]
    checked = False
    if kind == "printed":  # the printed number itself is wrong
        assert not reproduces(reference_value(case), _printed(case), prov["printed_precision"],
                              prov["printed_dtype"]).all()
        checked = True
    if "as_written" in prov:  # the inputs the document shows do not give its numbers
        shown = prov["as_written"]
        value = reference_value(case, shown["first"], shown.get("second"))
        assert not reproduces(value, _printed(case), prov["printed_precision"], prov["printed_dtype"]).any()
        checked = True
    if "corrected" in prov:  # the stated right value is what the reference computes
        assert reproduces(reference_value(case), prov["corrected"], CORRECTED_PRECISION, "float64").all()
        checked = True
    if kind == "output":  # the code's output is missing (or belongs to other code)
        assert _printed(case).size == 0 or "corrected" in prov
    assert checked, f"{case.id}: an erratum needs as_written, corrected or kind 'printed' to be verifiable"


def test_tolerance_is_tight_enough_to_see_errata():
    """The eq. (2-5) value is -log(0.497) to 12 decimals: a 1e-9 change must not be reproduced."""
    case = next(c for c in CASES if c.id == "doc003_eq2_5")
    printed = _printed(case)
    assert reproduces(reference_value(case), printed, case.provenance["printed_precision"], "float64").all()
    assert not reproduces(reference_value(case) + 1e-9, printed, case.provenance["printed_precision"], "float64")


def test_document_checks_records_fit_the_results_schema():
    schema = json.loads((Path(__file__).parents[1] / "lossconf" / "results_schema.json").read_text())
    item = {**schema["properties"]["documents"]["items"], "$defs": schema["$defs"]}
    records = document_checks()
    n_printed = sum(_printed(c).size for c in CASES)
    n_missing = sum(1 for c in CASES if _printed(c).size == 0 and c.provenance.get("erratum_kind") == "output")
    assert len(records) == n_printed + n_missing
    for record in records:
        safe = json.loads(json.dumps(record).replace("Infinity", '"inf"').replace("NaN", '"nan"'))
        jsonschema.validate(safe, item)
    assert all(r["reproduced"] or r["erratum"] for r in records)
