"""Runnable Python reproductions of single checks, for the report and for issue reports.

A snippet rebuilds the exact inputs in the dtype under test (inline arrays when results.json carries
them, else ``lossconf.cases.case_by_id`` with the run's seed and budget), shows the implementation's
source so the framework call is visible, calls the framework through its adapter and the reference,
and prints both.
"""

from __future__ import annotations

import math
import textwrap

from lossconf.random_cases import GROUP_SIZE
from lossconf.reference.catalog import get_loss


def snippet(results: dict, check: dict) -> str:
    """A self-contained Python script that reproduces ``check`` (a record of ``results["checks"]``)."""
    if not isinstance(results, dict) or not isinstance(check, dict):
        raise TypeError("results and check: expected the results.json dict and one of its checks")
    missing = [k for k in ("id", "case", "adapter", "impl", "dtype", "quantity", "loss") if k not in check]
    if missing:
        raise ValueError(f"check: missing fields {missing}")
    case = next((c for c in results.get("cases", []) if c["id"] == check["case"]), None)
    impl = next(
        (i for i in results.get("implementations", [])
         if i["adapter"] == check["adapter"] and i["name"] == check["impl"]),
        None,
    )
    adapter_env = results.get("environment", {}).get("adapters", {}).get(check["adapter"], {})
    lines = [
        f"# Reproduce lossconf check {check['id']} (verdict: {check.get('verdict')})",
        f"# lossconf {results.get('lossconf_version', '?')}, {check['adapter']} "
        f"{adapter_env.get('version', '?')}, seed {results.get('seed')}, budget {results.get('budget')}",
    ]
    if impl is not None:
        lines.append(f"# {check['adapter']}:{impl['name']} calls {impl['api']}; its source:")
        lines += ["#     " + line for line in textwrap.dedent(impl.get("source", "")).rstrip().splitlines()]
    lines += [
        "import numpy as np",
        "from numpy import inf, nan",
        "",
        "from lossconf.adapters.loading import load_adapter",
        "from lossconf.reference import value_and_grad",
        "from lossconf.reference.dtypes import numpy_dtype",
        "",
        f"dtype = {check['dtype']!r}",
        "dt = numpy_dtype(dtype)",
    ]
    lines += _inputs(results, check, case)
    variant = impl.get("variant") if impl else None
    lines += [
        "",
        f"adapter = load_adapter({_target(results, check['adapter'])!r})",
        "adapter.load()",
        f"impl = {{i.name: i for i in adapter.implementations()}}[{check['impl']!r}]",
        *_call_lines(check, len(adapter_env.get("modes") or ()) > 1),
        "with np.errstate(all='ignore'):",
        f"    truth_value, truth_grad = value_and_grad({check['loss']!r}, first, second, **params)",
    ]
    if variant:
        lines += [
            "    # the declared variant's truth, for comparison",
            f"    variant_value, variant_grad = value_and_grad({check['loss']!r}, first, second, "
            f"variant={variant!r}, **params)",
        ]
    lines += [
        "",
        "np.set_printoptions(precision=17)",
        f'print("{check["adapter"]} value:", value)',
        'print("reference value:", np.asarray(truth_value, dtype=np.float64))',
        f'print("{check["adapter"]} grad:", grad)',
        'print("reference grad:", np.asarray(truth_grad, dtype=np.float64))',
    ]
    if variant:
        lines += [
            f'print("variant {variant} value:", np.asarray(variant_value, dtype=np.float64))',
            f'print("variant {variant} grad:", np.asarray(variant_grad, dtype=np.float64))',
        ]
    return "\n".join(lines) + "\n"


def _call_lines(check: dict, several_modes: bool) -> list[str]:
    """The adapter call, in the check's execution mode when the adapter declares several."""
    mode = f", {check['mode']!r}" if several_modes and check.get("mode") else ""
    return [f"value, grad = adapter.value_and_grad(impl, first, second, params, dtype{mode})"]


def _inputs(results: dict, check: dict, case: dict | None) -> list[str]:
    """Lines that define ``first``, ``second`` and ``params`` in the dtype under test."""
    inline = (
        case is not None
        and case.get("first") is not None
        and (case.get("second_shape") is None or case.get("second") is not None)
    )
    if not inline:
        groups = results.get("config", {}).get("random_group_size")
        warn = [] if groups == GROUP_SIZE or not check["case"].startswith("rand_") else [
            f"# Caution: this lossconf draws random cases in structure groups of {GROUP_SIZE}; the run drew them "
            f"{'in groups of ' + str(groups) if groups else 'one by one (before lossconf drew them in groups)'}, "
            "so a random case replayed here has other inputs than it had in the run."]
        return [
            *warn,
            "from lossconf.cases import case_by_id",
            "from lossconf.verdicts import cast_inputs",
            "",
            f"case = case_by_id({check['case']!r}, {results.get('seed')!r}, {results.get('budget')!r})",
            "first, second, params = cast_inputs(case, dtype)",
        ]
    loss = get_loss(case["loss"])
    labels = loss.has_second and loss.inputs[1].role == "labels"
    lines = [f"first = np.array({_literal(case['first'])}, dtype=np.float64).reshape({tuple(case['shape'])})"
             ".astype(dt)"]
    if case.get("second") is None:
        lines.append("second = None")
    elif labels:
        lines.append(f"second = np.array({_literal(case['second'])}, dtype=np.int64)")
    else:
        lines.append(f"second = np.array({_literal(case['second'])}, dtype=np.float64)"
                     f".reshape({tuple(case['second_shape'])}).astype(dt)")
    lines.append("params = {")
    for name, value in case.get("params", {}).items():
        if isinstance(value, list):  # weight and pos_weight arrays are cast like the inputs
            lines.append(f"    {name!r}: np.array({_literal(value)}, dtype=np.float64).astype(dt),")
        else:
            lines.append(f"    {name!r}: {value!r},")
    lines.append("}")
    return [textwrap.fill(line, 110, subsequent_indent="    ", break_long_words=False,
                          break_on_hyphens=False) for line in lines]


def _literal(values: object) -> str:
    """Python source for a nested list from results.json ('nan'/'inf' strings become nan/inf)."""
    if isinstance(values, list):
        return "[" + ", ".join(_literal(v) for v in values) + "]"
    if isinstance(values, str):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}[values]
    if isinstance(values, float) and not math.isfinite(values):
        return "nan" if math.isnan(values) else ("inf" if values > 0 else "-inf")
    return repr(values)


def _target(results: dict, adapter: str) -> str:
    """How to load the adapter again: its recorded target (a file path for third-party adapters)."""
    return results["environment"].get("adapters", {}).get(adapter, {}).get("target") or adapter
