"""The contract battery: what every adapter must do, whatever the loss means.

These checks need no reference and no error model beyond a summation bound; they catch an adapter
whose plumbing is wrong before the conformance matrix judges its numbers. For every implementation
and every dtype under test, on a small seeded case of its loss (``lossconf.cases.random_cases``,
the smallest finite ones first, parameters at their defaults):

- ``dtype_preserved``: the value and the gradient come back in the dtype under test;
- ``grad_shape``: the gradient has the shape of the differentiated input, for every reduction;
- ``shape_none`` / ``shape_mean`` / ``shape_sum``: ``none`` gives one value per sample (per element
  for elementwise losses), ``mean`` and ``sum`` give a scalar;
- ``sum_of_none``: |sum(none) - sum| <= n u sum|none| + 0.5 ulp(sum), n the number of values: the
  recursive-summation bound (n - 1) u sum|l_i| plus one rounding u |l_i| of each ``none`` value, and
  the final rounding of ``sum``;
- ``mean_of_none``: |sum(none)/n - mean| <= u sum|none| + 0.5 ulp(mean), the same bound divided by n
  (default parameters: no weights, nothing ignored, so the mean divides by n);
- ``deterministic``: two identical calls give bitwise-identical values and gradients;
- ``invalid:<case>`` (float32, or the first declared dtype): every invalid input of the loss
  (``lossconf.invalid``: labels out of range, float labels, probabilities outside [0, 1], mismatched
  shapes) must raise or give NaN; a silent number fails unless a declared clip variant or a known
  deviation of the adapter documents it;
- ``declared_unsupported`` (a dtype the implementation leaves out) and
  ``reduction_<r>_declared_unsupported`` (a reduction it leaves out): the call must raise or break
  the contract (wrong dtype or shape); one that works is a false declaration, reported as a failure.

Everything runs in the adapter's worker process through ``lossconf.supervisor.Worker``; the framework is
never imported here. Check ids read ``contract:<adapter>:<impl>-<dtype>-<check>``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from lossconf.cases import Case, random_cases
from lossconf.errormodel import ulp
from lossconf.invalid import invalid_cases, judge_invalid
from lossconf.known import Known
from lossconf.reference.catalog import get_loss, get_variant
from lossconf.reference.dtypes import DTYPES, UNIT_ROUNDOFF
from lossconf.reference.dtypes import dtype_name as _dtype_name
from lossconf.supervisor import Worker, WorkerFailure
from lossconf.verdicts import cast_inputs

STATUSES = ("pass", "fail", "error", "skipped")
CASE_BUDGET = 8  # random cases drawn per loss; the smallest finite ones are tried first
CANDIDATES = 4
MAX_ELEMENTS = 4096


@dataclass
class ContractCheck:
    """One contract check: what is checked, on which case, and its outcome."""

    id: str
    adapter: str
    impl: str
    loss: str
    dtype: str
    check: str
    case: str | None = None
    reduction: str | None = None
    status: str = "pending"  # then one of STATUSES
    message: str = ""
    reproduce: str = ""

    def describe(self) -> dict:
        """JSON-ready form, for contract.json."""
        return asdict(self)


def contract_id(adapter: str, impl: str, dtype: str, check: str) -> str:
    """Readable id, e.g. ``contract:torch:cross_entropy-float16-dtype_preserved``."""
    return f"contract:{adapter}:{impl}-{dtype}-{check}"


def expected_shape(loss: str, first_shape: tuple, second_shape: tuple | None, params: dict) -> tuple:
    """The value's shape under ``params['reduction']``: per sample/element for none, () otherwise."""
    spec = get_loss(loss)
    if params.get("reduction", "none") != "none":
        return ()
    if spec.sequence:  # [N, T, C]: one value per sequence
        return tuple(first_shape[:1])
    if spec.elementwise:
        return tuple(np.broadcast_shapes(first_shape, second_shape)) if second_shape else tuple(first_shape)
    axis = params.get("axis", -1) % len(first_shape)
    return tuple(d for i, d in enumerate(first_shape) if i != axis)


def summation_bound(values: np.ndarray, reduced: float, dtype: str, mean: bool = False) -> float:
    """How far a correct reduction may be from the exact sum (or mean) of the ``none`` values.

    sum: n u sum|v| + 0.5 ulp(sum); mean: u sum|v| + 0.5 ulp(mean), with n = values.size.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    spread = UNIT_ROUNDOFF[dtype] * math.fsum(np.abs(v)) * (1 if mean else v.size)
    return spread + 0.5 * float(ulp(np.asarray(reduced), dtype))


def _candidates(loss: str, seed: int) -> list[Case]:
    """Small finite seeded cases of ``loss`` with default parameters, smallest magnitude first."""
    spec = get_loss(loss)
    out = []
    for case in random_cases(seed, CASE_BUDGET, [loss]):
        arrays = [case.first] + ([case.second] if case.second is not None else [])
        defaults = all(k == "reduction" or _is_default(v, spec.param(k).default) for k, v in case.params.items())
        if (defaults and case.first.ndim >= 1 and case.first.shape[0] >= 2 and case.first.size <= MAX_ELEMENTS
                and all(np.isfinite(a).all() for a in arrays)):
            out.append(case)
    out.sort(key=lambda c: (float(np.max(np.abs(c.first))), c.first.size))
    return out[:CANDIDATES]


# hidden parameters under which a declared variant's 'mean' is not sum(none) / n (CTC: each l_i / L_i first)
MEAN_REDEFINING = ("mean_per_target_length",)


def _mean_redefined(impl: dict) -> bool:
    """Whether the implementation's declared variant defines 'mean' otherwise than as the mean of 'none'."""
    return impl["variant"] is not None and any(k in get_variant(impl["variant"]).overrides for k in MEAN_REDEFINING)


def _is_default(value, default) -> bool:
    if isinstance(value, np.ndarray) or value is None or default is None:
        return value is None and default is None
    return value == default


class ContractBattery:
    """The contract checks of one adapter: planned at construction (ids exist), run by ``run``."""

    def __init__(self, worker: Worker, desc: dict, dtypes: Sequence[str] = DTYPES, *,
                 losses: Sequence[str] | None = None, seed: int = 0, target: str | None = None,
                 known: Sequence[Known] = ()) -> None:
        self.worker, self.desc, self.seed, self.known = worker, desc, seed, list(known)
        self.adapter = desc["name"]
        self.target = target or desc.get("target") or self.adapter
        self.dtypes = tuple(dtypes)
        self.impls = [i for i in desc["implementations"] if losses is None or i["loss"] in losses]
        self.checks: list[ContractCheck] = []
        self._calls: dict[tuple, tuple] = {}
        self._cases: dict[str, Case] = {}
        self._plan()

    # -- planning --------------------------------------------------------------------------------
    def _plan(self) -> None:
        pool = {loss: _candidates(loss, self.seed) for loss in {i["loss"] for i in self.impls}}
        self._invalid = [c for c in invalid_cases() if c.loss in pool]
        plan_cases = [
            {"id": f"{c.id}@{r}", "loss": c.loss, "params": {**c.params, "reduction": r}, "shape": list(c.first.shape),
             "second_shape": None if c.second is None else list(c.second.shape)}
            for cases in pool.values() for c in cases for r in get_loss(c.loss).reductions
        ] + [_plan_case(c) for c in self._invalid]
        reasons = self.worker.request(("plan", plan_cases, list(DTYPES)), timeout=600) if plan_cases else {}
        for impl in self.impls:
            self._plan_impl(impl, pool[impl["loss"]], reasons.get(impl["name"], {}))
            self._plan_invalid(impl, reasons.get(impl["name"], {}))

    def _plan_invalid(self, impl: dict, reasons: dict) -> None:
        dtype = next((d for d in ("float32", *self.dtypes) if d in self.dtypes and d in impl["dtypes"]), None)
        for case in (c for c in self._invalid if c.loss == impl["loss"]):
            if dtype and f"{case.id}|{dtype}" not in reasons:
                self._add(impl, dtype, f"invalid:{case.id}", case, "none")

    def _plan_impl(self, impl: dict, cases: list[Case], reasons: dict) -> None:
        loss = get_loss(impl["loss"])
        declared = [r for r in loss.reductions if r in impl["reductions"]]
        chosen: dict[str, tuple[Case, list[str]]] = {}
        for dtype in [d for d in DTYPES if d in impl["dtypes"]]:
            scored = [(c, [r for r in declared if f"{c.id}@{r}|{dtype}" not in reasons]) for c in cases]
            best = max(scored, key=lambda s: len(s[1]), default=None)
            if best and best[1]:
                chosen[dtype] = best
        add = self._add
        for dtype in self.dtypes:
            if dtype not in impl["dtypes"]:
                base = next(iter(chosen.values()), None)
                if base:
                    add(impl, dtype, "declared_unsupported", base[0], base[1][0])
                continue
            if dtype not in chosen:
                add(impl, dtype, "no_case", None, None, status="skipped",
                    message=f"no small finite case of {impl['loss']} that {impl['api']} supports in {dtype} "
                    f"(seed {self.seed}); the contract is not checked here")
                continue
            case, reductions = chosen[dtype]
            first = reductions[0]
            add(impl, dtype, "dtype_preserved", case, first)
            if impl["grad"]:
                add(impl, dtype, "grad_shape", case, first)
            for r in reductions:
                add(impl, dtype, f"shape_{r}", case, r)
            if "none" in reductions and loss.id != "root_mean_squared_error":
                for r in ("sum", "mean"):
                    if r in reductions and not (r == "mean" and _mean_redefined(impl)):
                        add(impl, dtype, f"{r}_of_none", case, r)
            add(impl, dtype, "deterministic", case, first)
        if chosen:
            dtype = next((d for d in ("float32", "float64") if d in chosen and d in self.dtypes),
                         next((d for d in self.dtypes if d in chosen), None))
            for r in loss.reductions:
                if r not in impl["reductions"] and dtype:
                    add(impl, dtype, f"reduction_{r}_declared_unsupported", chosen[dtype][0], r)

    def _add(self, impl: dict, dtype: str, check: str, case: Case | None, reduction: str | None,
             status: str = "pending", message: str = "") -> None:
        c = ContractCheck(contract_id(self.adapter, impl["name"], dtype, check), self.adapter, impl["name"],
                          impl["loss"], dtype, check, case.id if case else None, reduction, status, message)
        if case is not None:
            c.reproduce = self._snippet(impl["name"], case, dtype, reduction)
        self.checks.append(c)
        if case is not None:
            self._cases[case.id] = case

    def _snippet(self, impl: str, case: Case, dtype: str, reduction: str | None) -> str:
        return "\n".join([
            "from lossconf.adapters.loading import load_adapter",
            "from lossconf.cases import case_by_id",
            "from lossconf.verdicts import cast_inputs",
            f"adapter = load_adapter({self.target!r}); adapter.load()",
            f"impl = {{i.name: i for i in adapter.implementations()}}[{impl!r}]",
            f"first, second, params = cast_inputs(case_by_id({case.id!r}, seed={self.seed}, budget={CASE_BUDGET}), "
            f"{dtype!r})",
            f"value, grad = adapter.value_and_grad(impl, first, second, {{**params, 'reduction': {reduction!r}}}, "
            f"{dtype!r})",
            "print(value.dtype, value.shape, value, grad.dtype if grad is not None else None)",
        ])

    # -- running ---------------------------------------------------------------------------------
    def run(self) -> list[ContractCheck]:
        """Run every planned check (once); returns the checks with their status and message."""
        impls = {i["name"]: i for i in self.impls}
        for c in self.checks:
            if c.status == "pending":
                try:
                    c.status, c.message = self._judge(c, impls[c.impl])
                except Exception as exc:  # a contract check must never end the battery
                    c.status, c.message = "error", f"checking failed: {exc!r}"
        return self.checks

    def _call(self, impl: str, case_id: str, dtype: str, reduction: str, repeat: int = 0):
        """(value, grad) or the WorkerFailure, memoised per (impl, case, dtype, reduction, repeat)."""
        key = (impl, case_id, dtype, reduction, repeat)
        if key not in self._calls:
            case = self._cases[case_id]
            first, second, params = cast_inputs(case, dtype)
            try:
                value, grad, _ = self.worker.call(impl, dtype, first, second, {**params, "reduction": reduction})
                grad = grad[0] if isinstance(grad, tuple) else grad  # the battery checks d/dfirst
                self._calls[key] = (np.asarray(value), None if grad is None else np.asarray(grad), None)
            except WorkerFailure as exc:
                self._calls[key] = (None, None, exc)
        return self._calls[key]

    def _judge(self, c: ContractCheck, impl: dict) -> tuple[str, str]:
        case = self._cases[c.case]
        if c.check.startswith("invalid:"):  # no expected shape: the shapes may not even match
            return self._judge_invalid(c, impl, case, *self._call(c.impl, c.case, c.dtype, c.reduction))
        want = expected_shape(c.loss, case.first.shape, None if case.second is None else case.second.shape,
                              {**case.params, "reduction": c.reduction})
        value, grad, exc = self._call(c.impl, c.case, c.dtype, c.reduction)
        where = f"{impl['api']} on case {c.case} (shape {list(case.first.shape)}), reduction={c.reduction!r}"
        if c.check.endswith("declared_unsupported"):
            return _judge_undeclared(c, value, exc, want, where)
        if exc is not None:
            known = self._known_error(c)
            if known:  # the framework's own documented failure: there is no result to check the plumbing on
                return "skipped", (f"{where} in {c.dtype} raised ({exc.kind}), known deviation {known} of the "
                                   f"framework; the contract is not checked on this input")
            return "error", f"{where} in {c.dtype} raised ({exc.kind}): {exc}"
        if c.check == "dtype_preserved":
            got = [_dtype_name(value.dtype)] + ([_dtype_name(grad.dtype)] if grad is not None else [])
            if any(g != c.dtype for g in got):
                return "fail", f"{where}: {c.dtype} inputs gave value/grad dtypes {got}, expected {c.dtype}"
            return "pass", ""
        if c.check == "grad_shape":
            return self._judge_grad_shape(c, impl, case, where)
        if c.check.startswith("shape_"):
            if value.shape != want:
                return "fail", f"{where}: value shape {value.shape}, expected {want} for reduction={c.reduction!r}"
            return "pass", ""
        if c.check.endswith("_of_none"):
            return self._judge_reduction_sum(c, value, where)
        if c.check == "deterministic":
            again, grad2, exc2 = self._call(c.impl, c.case, c.dtype, c.reduction, repeat=1)
            if exc2 is not None:
                return "error", f"{where}: the second identical call raised ({exc2.kind}): {exc2}"
            same = value.tobytes() == again.tobytes() and (grad is None or grad.tobytes() == grad2.tobytes())
            if not same:
                diff = np.max(np.abs(value.astype(np.float64) - again.astype(np.float64)), initial=0.0)
                return "fail", f"{where}: two identical calls differ (value max |difference| {diff:.3g})"
            return "pass", ""
        raise ValueError(f"check: unknown contract check {c.check!r}")

    def _known_error(self, c: ContractCheck) -> str | None:
        """The id of a known entry saying this implementation raises here (no input conditions), or None."""
        version = self.desc.get("environment", {})  # the adapter's and its libraries' versions
        return next((k.id for k in self.known for quantity in ("value", "grad") if k.matches(
            self.adapter, c.impl, quantity, c.dtype, c.case, version, frozenset({"error"}))), None)

    def _judge_invalid(self, c: ContractCheck, impl: dict, case: Case, value, grad, exc) -> tuple[str, str]:
        """Raise or NaN on every quantity; a silent number fails unless documented (variant, known)."""
        version = self.desc.get("environment", {})  # the adapter's and its libraries' versions
        out = []
        for quantity, got in (("value", value), ("grad", grad)):
            if quantity == "grad" and not impl["grad"]:
                continue
            rec = judge_invalid({"verdict": "error", "message": ""}, case, impl, got,
                                None if exc is None else (exc.kind, str(exc)))
            known = next((k.id for k in self.known if k.matches(
                self.adapter, c.impl, quantity, c.dtype, case.id, version)), None)
            if rec["verdict"] == "fail" and known:
                rec.update(verdict="pass", message=f"known {known}: {rec['message']}")
            out.append((quantity, rec))
        bad = [(q, r) for q, r in out if r["verdict"] in ("fail", "error")]
        shown = bad or out
        status = "fail" if any(r["verdict"] == "fail" for _, r in bad) else ("error" if bad else "pass")
        return status, f"{case.note}: " + "; ".join(f"{q} {r['message']}" for q, r in shown)

    def _judge_grad_shape(self, c: ContractCheck, impl: dict, case: Case, where: str) -> tuple[str, str]:
        for r in [r for r in get_loss(c.loss).reductions if r in impl["reductions"]]:
            value, grad, exc = self._call(c.impl, c.case, c.dtype, r)
            if exc is not None:
                continue  # reported by shape_<r>
            if grad is None:
                return "fail", f"{where}: the adapter returned no gradient for reduction={r!r} (Impl.grad is True)"
            if grad.shape != case.first.shape:
                return "fail", (f"{where}: gradient shape {grad.shape} for reduction={r!r}, expected the input's "
                                f"{case.first.shape}")
        return "pass", ""

    def _judge_reduction_sum(self, c: ContractCheck, reduced: np.ndarray, where: str) -> tuple[str, str]:
        none, _, exc = self._call(c.impl, c.case, c.dtype, "none")
        if exc is not None:
            return "error", f"reduction='none' raised ({exc.kind}): {exc}"
        if none.shape == () or reduced.shape != ():
            return "skipped", "shapes are wrong (see shape_none / shape_" + c.reduction + ")"
        values = none.astype(np.float64).ravel()
        got = float(reduced.astype(np.float64))
        if not (np.isfinite(values).all() and math.isfinite(got)):
            return "skipped", f"non-finite values in {c.dtype} (overflow on this case); nothing to compare"
        n = values.size
        total = math.fsum(values)
        want = total / n if c.reduction == "mean" else total
        bound = summation_bound(values, got, c.dtype, mean=c.reduction == "mean")
        if abs(got - want) > bound:
            what = "sum(none)/n" if c.reduction == "mean" else "sum(none)"
            return "fail", (f"{where}: {c.reduction} = {got!r} but {what} = {want!r} (n = {n}); difference "
                            f"{abs(got - want):.3g} exceeds the summation bound {bound:.3g}")
        return "pass", ""


def _judge_undeclared(c: ContractCheck, value, exc, want: tuple, where: str) -> tuple[str, str]:
    """A declared-unsupported call must raise or break the contract; one that works is reported."""
    what = f"dtype {c.dtype}" if c.check == "declared_unsupported" else f"reduction={c.reduction!r}"
    if exc is not None:
        first_line = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else exc.kind
        return "pass", f"rejected as declared: {first_line}"
    if _dtype_name(value.dtype) != c.dtype or value.shape != want:
        return "pass", (f"not supported, as declared: gave {_dtype_name(value.dtype)} {value.shape}, "
                        f"the contract needs {c.dtype} {want}")
    return "fail", (f"{where}: declared without {what}, but the call works ({c.dtype} result of shape {want}); "
                    f"declare it so the conformance matrix judges it, or document why it is left out")


def _plan_case(case: Case) -> dict:
    return {"id": case.id, "loss": case.loss, "params": case.params, "shape": list(case.first.shape),
            "second_shape": None if case.second is None else list(case.second.shape)}


def battery_summary(checks: list[ContractCheck]) -> dict[str, int]:
    """Counts per status; they add up to len(checks)."""
    counts = dict.fromkeys(STATUSES, 0)
    for c in checks:
        counts[c.status] = counts.get(c.status, 0) + 1
    return counts
