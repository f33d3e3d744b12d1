"""Throughput: checks per second of lossconf vs a straightforward loop, on the same torch checks.

The subset: the torch adapter, the seeded random cases of every loss (``--budget`` per loss), all four
dtypes, value and gradient. Both sides run in their own fresh process and are timed from start to
end, framework import included (what a user waits for), and without it (steady state):

- lossconf: ``lossconf.runner.run`` (worker process, batching, error-model judging, streaming);
- loop: in one process, for every (case, implementation, dtype): call torch once through the same
  adapter table, compute the NumPy reference, ``np.allclose`` against it (then the declared
  variant's truth) -- what a hand-written pytest parametrisation does.

    python benchmarks/throughput.py [--budget 64] [--seed 0] [--no-batch]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RTOL = {"float16": 1e-2, "bfloat16": 1e-1, "float32": 1e-5, "float64": 1e-12}


def _loop(seed: int, budget: int) -> dict:
    start = time.perf_counter()
    from lossconf.adapters.loading import load_adapter
    from lossconf.cases import random_cases
    from lossconf.reference import DTYPES, value_and_grad
    from lossconf.verdicts import cast_inputs

    adapter = load_adapter("torch")
    adapter.load()
    impls = adapter.implementations()
    imported = time.perf_counter()
    checks = agree = 0
    for case in random_cases(seed, budget):
        for impl in (i for i in impls if i.loss == case.loss):
            for dtype in DTYPES:
                if impl.unsupported_reason(dtype, case.params, case.first.shape):
                    continue
                first, second, params = cast_inputs(case, dtype)
                got = adapter.value_and_grad(impl, first, second, params, dtype)
                for variant in (None, impl.variant) if impl.variant else (None,):
                    with np.errstate(all="ignore"):
                        truth = value_and_grad(case.loss, first, second, variant=variant, **params)
                    # a gradient per differentiable input is a tuple (linear CE); the reference's is the first's
                    ok = [g is None or np.allclose(np.asarray(g[0] if isinstance(g, tuple) else g, np.float64),
                                                   np.asarray(t, np.float64), rtol=RTOL[dtype], atol=RTOL[dtype],
                                                   equal_nan=True)
                          for g, t in zip(got, truth, strict=True)]
                    if all(ok):
                        break
                checks += 1 if got[1] is None else 2
                agree += sum(ok)
    end = time.perf_counter()
    return {"checks": checks, "agree": agree, "seconds": end - start, "steady": end - imported}


def _lossconf(seed: int, budget: int, batch: bool) -> dict:
    start = time.perf_counter()
    from lossconf.runner import RunConfig, run

    with tempfile.TemporaryDirectory() as out:
        results = run(RunConfig(out=Path(out), adapters=("torch",), kinds=("random",), seed=seed, budget=budget,
                                batch=batch))
    end = time.perf_counter()
    ran = [c for c in results["checks"] if c["verdict"] != "unsupported"]
    # steady state: the adapter's jobs (framework calls and judging, reference truths included)
    return {"checks": len(ran), "seconds": end - start, "steady": results["timings"]["torch"],
            "timings": results["timings"]}


def _side(name: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--side", name, "--seed", str(args.seed), "--budget", str(args.budget)]
    cmd += ["--no-batch"] if args.no_batch else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Both sides in fresh processes; prints checks, seconds, checks per second and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-batch", action="store_true", help="lossconf without batching")
    parser.add_argument("--side", choices=("loop", "lossconf"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        side = _loop(args.seed, args.budget) if args.side == "loop" else _lossconf(args.seed, args.budget,
                                                                                   not args.no_batch)
        print(json.dumps(side))
        return
    loop, lc = _side("loop", args), _side("lossconf", args)
    print(f"torch, random cases, budget {args.budget}, 4 dtypes, value + grad"
          f"{' (lossconf without batching)' if args.no_batch else ''}")
    print(f"{'side':<10} {'checks':>7} {'total s':>8} {'checks/s':>9} {'steady s':>9} {'checks/s':>9}")
    for name, r in (("loop", loop), ("lossconf", lc)):
        print(f"{name:<10} {r['checks']:7d} {r['seconds']:8.2f} {r['checks'] / r['seconds']:9.0f} "
              f"{r['steady']:9.2f} {r['checks'] / r['steady']:9.0f}")
    def rate(r: dict, key: str) -> float:
        return r["checks"] / r[key]

    print(f"ratio lossconf / loop, checks per second: {rate(lc, 'seconds') / rate(loop, 'seconds'):.2f} with "
          f"imports, {rate(lc, 'steady') / rate(loop, 'steady'):.2f} steady state (target >= 5)")
    print(f"loop agreement with allclose: {loop['agree']} of {loop['checks']}; lossconf timings: {lc['timings']}")


if __name__ == "__main__":
    main()
