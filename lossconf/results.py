"""results.json: loading and validating, merging shards, diffing two runs.

The schema is ``lossconf/results_schema.json`` (``lossconf-results/2``, whose files pack the checks:
``lossconf.records``; ``lossconf-results/1`` files still load). A partial run's stream
(``results.jsonl``) can be loaded too: it is assembled into the same document marked incomplete.
"""

from __future__ import annotations

import json
import math
import re
from functools import cache
from pathlib import Path

from lossconf.records import is_packed, unpack
from lossconf.stream import assemble, read_stream, write_results
from lossconf.verdicts import VERDICTS, summarize

SCHEMA_PATH = Path(__file__).with_name("results_schema.json")
BAD = ("fail", "error")


@cache
def _validator():
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def validate(results: dict) -> None:
    """ValueError naming the first schema violation, if any."""
    light = _without_bulk(results)
    error = next(iter(_validator().iter_errors(light)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ValueError(f"at {where}: {error.message[:300]}")
    _validate_bulk(results)


# The two bulk arrays of a file, the packed checks' rows and the cases' input arrays, are checked by
# _validate_bulk against the same rules as the schema's "packed_checks" rows and "nested" floats:
# jsonschema takes ~40 us per row or number (6 s on a default run's file), these loops 0.1 s.
_NONFINITE = frozenset(("nan", "inf", "-inf"))


def _without_bulk(results: dict) -> dict:
    light = dict(results)
    if isinstance(results.get("cases"), list):
        light["cases"] = [{**c, "first": None, "second": None} if isinstance(c, dict) else c
                          for c in results["cases"]]
    checks = results.get("checks")
    if isinstance(checks, list) and checks and all(isinstance(g, dict) and "rows" in g for g in checks):
        light["checks"] = [{**g, "rows": []} for g in checks]
    return light


def _validate_bulk(results: dict) -> None:
    for i, case in enumerate(results["cases"]):
        for key in ("first", "second"):
            value = case.get(key)
            if value is not None and not _nested_floats(value):
                raise ValueError(f"at cases/{i}/{key}: expected numbers (or 'nan', 'inf', '-inf'), "
                                 "in nested arrays, or null")
    if not is_packed(results["checks"]):
        return
    for i, group in enumerate(results["checks"]):
        if not isinstance(group["rows"], list):
            raise ValueError(f"at checks/{i}/rows: expected an array of rows")
        for j, row in enumerate(group["rows"]):
            if not (isinstance(row, list) and len(row) >= 2 and isinstance(row[0], int | str)
                    and not isinstance(row[0], bool) and row[1] in VERDICTS):
                raise ValueError(f"at checks/{i}/rows/{j}: expected [case index or id, verdict, ...] "
                                 f"with a verdict among {list(VERDICTS)}")


def _nested_floats(value: object) -> bool:
    if isinstance(value, list):
        return all(_nested_floats(v) for v in value)
    return (isinstance(value, int | float) and not isinstance(value, bool)) or value in _NONFINITE


def load(path: Path) -> dict:
    """A validated results document from results.json or a results.jsonl stream."""
    path = Path(path)
    if path.suffix == ".jsonl":
        from lossconf.stream import RunError

        try:
            stream = read_stream(path)
        except RunError as exc:
            raise ValueError(str(exc)) from None
        results = assemble(stream["header"], stream["adapter"], stream["check"], complete=False, interrupted=True)
    else:
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"malformed JSON ({exc})") from None
        except UnicodeDecodeError:
            raise ValueError("not a text file") from None
    if not isinstance(results, dict):
        raise ValueError("expected a JSON object")
    validate(results)
    if is_packed(results["checks"]):
        results["checks"] = unpack(results["checks"], [c["id"] for c in results["cases"]])
    for check in results["checks"]:  # files older than execution modes ran each adapter's only mode
        check.setdefault("mode", "")
    return results


def write(results: dict, path: Path) -> Path:
    """Validate and write atomically."""
    validate(results)
    return write_results(results, Path(path))


def _qualify(shards: list[dict]) -> list[dict]:
    """Rename an adapter to name@version (or @device) where shards ran different builds of it."""
    seen: dict[str, set[tuple[str, str]]] = {}
    for s in shards:
        for name, env in s["environment"].get("adapters", {}).items():
            seen.setdefault(name, set()).add((env.get("version", ""), env.get("device", "")))
    rename = {n for n, builds in seen.items() if len(builds) > 1}
    if not rename:
        return shards
    out = []
    for s in shards:
        envs = s["environment"].get("adapters", {})
        tag = {n: envs[n]["version"] + ("" if len({d for _, d in seen[n]}) == 1
                                        else "-" + _device_tag(envs[n]["device"]))
               for n in rename if n in envs}

        def q(name: str, tag=tag) -> str:
            return f"{name}@{tag[name]}" if name in tag else name

        s = json.loads(json.dumps(s))
        s["environment"]["adapters"] = {q(n): e for n, e in envs.items()}
        for impl in s["implementations"]:
            impl["adapter"] = q(impl["adapter"])
        for c in s["checks"]:
            if c["adapter"] in tag:
                c["id"] = c["id"].replace(f"{c['adapter']}:", f"{q(c['adapter'])}:", 1)
                c["adapter"] = q(c["adapter"])
        out.append(s)
    return out


def _device_tag(device: str) -> str:
    """A device as an id-safe tag: 'cuda:0' -> 'cuda0', '/GPU:0' -> 'gpu0' (check ids use ':' after the adapter)."""
    return re.sub(r"[^a-z0-9]+", "", device.lower()) or "device"


def _missing_shards(shards: list[dict]) -> list[str]:
    """The shards a merge lacks: for each build (adapters, versions, devices) run as n shards, every i of n."""
    seen: dict[tuple, set[int]] = {}
    for s in shards:
        i_n = s["config"].get("shard")
        if i_n:
            envs = s["environment"].get("adapters", {})
            build = tuple(sorted(f"{a}@{e.get('version', '')} on {e.get('device', '')}" for a, e in envs.items()))
            seen.setdefault((build, i_n[1]), set()).add(i_n[0])
    return [f"shard {i}/{n} of {', '.join(build) or 'a run without adapters'}"
            for (build, n), present in sorted(seen.items()) for i in range(1, n + 1) if i not in present]


def merge(shards: list[dict]) -> dict:
    """One results document from several shards (e.g. a CI matrix of framework versions or GPU hosts).

    Checks are keyed by id; where two shards disagree on a check (verdict or error), the first is
    kept and the disagreement is listed in ``merge.conflicts`` -- never silently overwritten.
    Adapters that ran in different versions or on different devices are kept apart as name@version
    (name@version-device when devices differ, e.g. a CPU and a GPU host). Merging shards of a
    ``--shard i/n`` run that lack some i marks the result incomplete and lists them.
    """
    if not shards:
        raise ValueError("merge: expected at least one results file")
    seeds = {s["seed"] for s in shards}
    if len(seeds) > 1:
        raise ValueError(f"merge: shards use different seeds {sorted(seeds)}; their random cases differ")
    missing = _missing_shards(shards)
    shards = _qualify(shards)
    base = json.loads(json.dumps(shards[0]))
    base["config"].pop("shard", None)  # the merge is the whole run, or says which shards it lacks
    checks: dict[str, dict] = {c["id"]: c for c in base["checks"]}
    conflicts = []
    repeated = 0  # checks present in several shards (counted once)
    for s in shards[1:]:
        env = base["environment"]
        for key in ("adapters", "skipped_adapters", "failed_adapters"):
            env[key] = {**s["environment"].get(key, {}), **env.get(key, {})}
        known_impls = {(i["adapter"], i["name"]) for i in base["implementations"]}
        base["implementations"] += [i for i in s["implementations"] if (i["adapter"], i["name"]) not in known_impls]
        cases = {c["id"]: c for c in base["cases"]}  # a shard may store inputs another one left out
        cases.update({c["id"]: c for c in s["cases"] if c["id"] not in cases or c.get("first") is not None})
        base["cases"] = list(cases.values())
        for c in s["checks"]:
            old = checks.get(c["id"])
            repeated += old is not None
            if old is None:
                checks[c["id"]] = c
            elif (old["verdict"], old["error"]) != (c["verdict"], c["error"]):
                conflicts.append({"id": c["id"], "verdicts": [old["verdict"], c["verdict"]],
                                  "errors": [old["error"], c["error"]]})
        base["complete"] = base["complete"] and s["complete"]
        base["interrupted"] = base["interrupted"] or s["interrupted"]
    base["checks"] = sorted(checks.values(), key=lambda c: c["id"])
    base["summary"] = summarize(base["checks"])
    if all("planned" in s["summary"] for s in shards):
        base["summary"]["planned"] = sum(s["summary"]["planned"] for s in shards) - repeated
    base["merge"] = {"shards": len(shards), "conflicts": conflicts}
    if missing:
        base["complete"] = False
        base["merge"]["missing_shards"] = missing
    return base


def _ratio(c: dict) -> float | None:
    r = c.get("ratio")
    return r if isinstance(r, int | float) and math.isfinite(r) else None


def diff(old: dict, new: dict, threshold: float = 2.0) -> dict:
    """New failures, fixed failures and error/bound drifts beyond ``threshold`` between two runs."""
    a = {c["id"]: c for c in old["checks"]}
    b = {c["id"]: c for c in new["checks"]}
    new_failures, fixed, drift = [], [], []
    for cid, c in sorted(b.items()):
        o = a.get(cid)
        if o is None:
            continue
        if c["verdict"] in BAD and o["verdict"] not in BAD:
            new_failures.append(f"{cid}: {o['verdict']} -> {c['verdict']} {c['message']}".strip())
        elif o["verdict"] in BAD and c["verdict"] not in BAD:
            fixed.append(f"{cid}: {o['verdict']} -> {c['verdict']}")
        ro, rn = _ratio(o), _ratio(c)
        if ro is not None and rn is not None and max(ro, rn) > 0.01:  # tiny ratios drift meaninglessly
            factor = max(ro, rn) / max(min(ro, rn), 1e-300)
            if factor > threshold:
                drift.append(f"{cid}: error/bound {ro:.3g} -> {rn:.3g}")
    return {
        "new_failures": new_failures, "fixed": fixed, "drift": drift,
        "added": sorted(set(b) - set(a)), "removed": sorted(set(a) - set(b)),
    }
