"""Cases: ids unique and stable, seeded reproducibility, coverage of the catalog, budget, and every
case's inputs accepted by the reference with a finite truth unless the case means otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from lossconf.cases import EDGE_CASES, Case, all_cases, case_by_id, edge_cases, random_cases
from lossconf.random_cases import BATCH_SIZES, CLASS_COUNTS, GROUP_SIZE
from lossconf.reference.catalog import CATALOG
from lossconf.reference.dtypes import DTYPES
from lossconf.reference.numpy_ref import value_and_grad

SEED, BUDGET = 20240917, 8


def _same(a: Case, b: Case) -> bool:
    return (a.id == b.id and a.loss == b.loss and np.array_equal(a.first, b.first, equal_nan=True)
            and ((a.second is None and b.second is None)
                 or np.array_equal(a.second, b.second, equal_nan=a.second.dtype.kind == "f"))
            and a.params.keys() == b.params.keys()
            and all(np.array_equal(a.params[k], b.params[k]) for k in a.params))


def test_ids_unique_across_kinds():
    ids = [c.id for c in all_cases(SEED, BUDGET)]
    assert len(ids) == len(set(ids))


def test_random_ids_are_stable_names():
    cases = random_cases(SEED, BUDGET, ["softmax"])
    assert [c.id for c in cases[:3]] == ["rand_softmax_000", "rand_softmax_001", "rand_softmax_002"]


def test_same_seed_same_arrays_and_different_seed_different_arrays():
    a, b, c = random_cases(SEED, BUDGET), random_cases(SEED, BUDGET), random_cases(SEED + 1, BUDGET)
    assert all(_same(x, y) for x, y in zip(a, b, strict=True))
    assert sum(not _same(x, y) for x, y in zip(a, c, strict=False)) > 0.9 * len(a)


def test_adding_a_loss_does_not_change_the_others():
    alone = random_cases(SEED, BUDGET, ["sigmoid_cross_entropy"])
    together = [c for c in random_cases(SEED, BUDGET) if c.loss == "sigmoid_cross_entropy"]
    assert all(_same(x, y) for x, y in zip(alone, together, strict=True))


def test_budget_honoured_without_optional_params():
    # smooth_labels is defined by its eps; kl_divergence states log_input=True (the default) explicitly
    essential = {"reduction", "log_input", "label_smoothing"}
    for loss in CATALOG:
        cases = random_cases(SEED, 12, [loss])
        if CATALOG[loss].grad_params:  # W travels as a param; every case is its own call, so fewer cases
            assert len(cases) == max(2, 12 // 8) + 1 and all("linear_weight" in c.params for c in cases), loss
            continue
        plain = [c for c in cases if set(c.params) <= essential and c.params.get("log_input", True) is True
                 and ("label_smoothing" not in c.params or loss == "smooth_labels")]
        assert len(plain) >= 12, loss
    assert random_cases(SEED, 0) == []


def test_optional_params_appear():
    params = {k for c in random_cases(SEED, 64) for k in c.params}
    assert {"weight", "ignore_index", "label_smoothing", "pos_weight", "log_input", "axis"} <= params
    kl = random_cases(SEED, 64, ["kl_divergence"])
    assert any(c.params["log_input"] is False for c in kl)


def test_random_shapes_come_from_the_menu_and_vary():
    # linear_cross_entropy's first input is hidden states [N, D] (its V is in the projection's shape);
    # CTC's is frames [N, T, C] with sequence shapes of their own (tests/test_reference_ctc.py)
    cases = [c for c in random_cases(SEED, 64) if not CATALOG[c.loss].grad_params and not CATALOG[c.loss].sequence]
    assert {c.first.shape[0] for c in cases} == set(BATCH_SIZES)
    classes = {c.first.shape[1] for c in cases if c.first.ndim > 1}
    assert classes == set(CLASS_COUNTS) and max(classes) >= 1000
    logits = [np.abs(c.first).max() for c in cases if c.loss == "softmax_cross_entropy"]
    assert min(logits) < 1e-2 and max(logits) > 1e2  # scales from 1e-3 to 1e3
    assert {c.params["reduction"] for c in cases} == {"none", "mean", "sum"}
    sce = random_cases(SEED, 64, ["softmax_cross_entropy"])
    onehot = [np.isin(c.second, (0.0, 1.0)).all() for c in sce]
    assert any(onehot) and not all(onehot)  # one-hot and soft labels
    assert all(c.second.dtype == np.int64 for c in random_cases(SEED, 4, ["sparse_softmax_cross_entropy"]))
    assert all(c.first.dtype == np.float64 for c in cases)


def test_a_structure_group_shares_shape_and_params_not_values():
    """The cases of a group share their shape, reduction and params (so they share a call or a compiled
    shape) and draw their own values; groups draw their structures independently."""
    for loss in ("sparse_softmax_cross_entropy", "sigmoid_cross_entropy", "ctc", "poisson_nll"):
        cases = random_cases(SEED, 16, [loss])
        groups: dict[int, list[Case]] = {}
        for c in cases:
            groups.setdefault(c.provenance["group"], []).append(c)
        assert {len(g) for g in groups.values()} == {GROUP_SIZE}, loss
        for group in groups.values():
            head = group[0]
            for c in group[1:]:
                assert c.first.shape == head.first.shape and c.params.keys() == head.params.keys(), c.id
                assert all(np.array_equal(c.params[k], head.params[k]) for k in c.params), c.id
                assert not np.array_equal(c.first, head.first), c.id
        structures = {(g[0].first.shape, repr(sorted(g[0].params.items()))) for g in groups.values()}
        assert len(structures) > 1, loss
    alone = random_cases(SEED, 16, ["hinge"], group_size=1)
    assert len({c.provenance["group"] for c in alone}) == len(alone)
    with pytest.raises(ValueError, match="group_size: expected a positive integer"):
        random_cases(SEED, 16, ["hinge"], group_size=0)


def test_every_loss_has_edge_and_random_cases():
    edges = edge_cases()
    for loss in CATALOG:
        assert sum(c.loss == loss for c in edges) >= 3, loss
        assert any(c.loss == loss for c in random_cases(SEED, 1, [loss])), loss
        reductions = {c.params["reduction"] for c in edges if c.loss == loss}
        assert reductions == set(CATALOG[loss].reductions), loss


def test_edge_catalog_is_documented_and_complete():
    edges = edge_cases()
    assert all(c.kind == "edge" and c.note for c in edges)
    assert all(c.dtypes is None or set(c.dtypes) <= set(DTYPES) for c in edges)
    ids = {c.id for c in edges}
    for wanted in ("edge_sce_gap_1e4", "edge_sce_gap_88_7", "edge_sce_gap_104", "edge_sce_gap_11_f16",
                   "edge_sce_gap_20_f16", "edge_sce_pos_inf", "edge_sce_nan", "edge_sce_equal_c1000",
                   "edge_sce_c1", "edge_sce_c2", "edge_sce_n0_none", "edge_bce_p0_z0", "edge_sce_soft_sum_gt1",
                   "edge_sce_soft_sum_lt1", "edge_sce_eps_0_0", "edge_sce_eps_0_1", "edge_sce_eps_1_0",
                   "edge_sparse_all_ignored_mean", "edge_sparse_weight_ignore_eps_mean",
                   "edge_sigce_subnormal_f32", "edge_mse_broadcast_row", "edge_sparse_axis1"):
        assert wanted in ids, wanted
    assert next(c for c in edges if c.id == "edge_sce_gap_20_f16").dtypes == ("float16",)
    assert next(c for c in edges if c.id == "edge_sparse_axis1").params["axis"] == 1


def test_edge_cases_are_copies():
    edges = edge_cases()
    edges[0].first[...] = 123.0
    assert not np.array_equal(EDGE_CASES[0].first, edges[0].first)


def test_case_by_id_replays_every_kind():
    every = all_cases(SEED, BUDGET)
    for case in every[::7]:
        assert _same(case_by_id(case.id, SEED, BUDGET), case), case.id
    with pytest.raises(ValueError, match="case_id"):
        case_by_id("rand_softmax_999", SEED, BUDGET)


def test_selection_and_bad_arguments():
    only = all_cases(SEED, 2, losses=["softmax"], kinds=("edge", "random"))
    assert only and {c.loss for c in only} == {"softmax"} and {c.kind for c in only} == {"edge", "random"}
    with pytest.raises(ValueError, match="kinds"):
        all_cases(SEED, kinds=("weird",))
    with pytest.raises(ValueError, match="loss_id"):
        random_cases(SEED, 2, ["no_such_loss"])
    with pytest.raises(ValueError, match="seed"):
        random_cases(-1)
    with pytest.raises(ValueError, match="budget"):
        random_cases(SEED, budget=-3)
    with pytest.raises(TypeError, match="losses"):
        random_cases(SEED, 2, "softmax")


def _truth(case):
    value, grad = value_and_grad(case.loss, case.first, case.second, **case.params)
    return np.asarray(value, dtype=np.float64), np.asarray(grad, dtype=np.float64)


@pytest.mark.parametrize("kind", ["document", "edge", "random"])
def test_reference_accepts_every_case_and_truth_is_finite_unless_meant(kind):
    bad = []
    for case in all_cases(SEED, BUDGET, kinds=(kind,)):
        value, grad = _truth(case)  # a ValueError here means a malformed case
        if case.kind == "document":
            continue  # documents state their own numbers (tests/test_documents.py)
        if not case.nonfinite:
            if not (np.isfinite(value).all() and np.isfinite(grad).all()):
                bad.append(case.id)
    assert bad == []




def test_jobs_of_a_large_case_follow_each_other_and_invalid_inputs_come_last():
    """A truth too large for the cache is held until the next one: its checks must be adjacent. Invalid
    inputs run after every other job: a framework that does not check them may corrupt its heap."""
    from lossconf.jobs import MAX_BATCH_ELEMENTS, Job, job_order

    small = Case("s", "mean_squared_error", np.zeros(4), np.zeros(4), {"reduction": "mean"})
    bad = Case("inv", "mean_squared_error", np.zeros(4), np.zeros(3), {"reduction": "mean"}, kind="invalid")
    big = [Case(f"b{i}", "linear_cross_entropy", np.zeros((2, 4)), np.zeros(2, np.int64),
                {"reduction": "mean", "linear_weight": np.zeros((MAX_BATCH_ELEMENTS // 4, 4))}) for i in (1, 2)]
    jobs = [Job({"name": impl}, "float32", [case], []) for impl in ("a", "b") for case in (bad, big[0], small, big[1])]
    order = [(j.cases[0].id, j.impl["name"]) for j in job_order(jobs)]
    assert order == [("s", "a"), ("s", "b"), ("b1", "a"), ("b1", "b"), ("b2", "a"), ("b2", "b"),
                     ("inv", "a"), ("inv", "b")]


@pytest.mark.parametrize("module", ["lossconf.random_cases", "lossconf.edges", "lossconf.invalid", "lossconf.case"])
def test_each_case_module_imports_first(module):
    """A program may import any case module first: the catalogs import ``lossconf.case``, not each other's
    half-initialised modules (``import lossconf.random_cases`` first used to fail with a circular import)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
