"""Random cases drawn in structure groups: what they cover and how many framework calls and compiled
shapes they need, with groups (``lossconf.random_cases.GROUP_SIZE``) and without (group size 1: every
case draws its own shape, reduction and params, as lossconf did before).

Coverage: the distribution of batch sizes, class counts, reductions, optional params and input
magnitudes over all random cases, and the distinct (shape, params) structures a loss gets per seed.
Cost: for each loss, the framework calls the runner plans (``lossconf.jobs.make_jobs``:
reduction-"none" cases of one shape and params share a call) and the distinct shape signatures among
them (``lossconf.jobs.signature``: what tf.function traces and XLA compiles once each), summed over the
losses; per implementation and dtype, as every adapter sees them.
No framework is imported.

    python benchmarks/case_groups.py [--seeds 0-4] [--budget 64]
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from lossconf.jobs import make_jobs, signature
from lossconf.random_cases import GROUP_SIZE, random_cases
from lossconf.reference import CATALOG


def measure(seeds: list[int], budget: int, group_size: int) -> dict:
    """Coverage counters and (calls, signatures) per seed, for one group size."""
    cover = {k: Counter() for k in ("N", "C", "reduction", "params", "log10 max|x|")}
    calls, shapes, structures, cases = [], [], [], 0
    for seed in seeds:
        drawn = random_cases(seed, budget, group_size=group_size)
        cases += len(drawn)
        seed_calls = seed_shapes = 0
        for loss in CATALOG:
            mine = [c for c in drawn if c.loss == loss]
            jobs = make_jobs({"name": loss}, "float32", mine, {c.id: [c.id] for c in mine}, batch=True)
            seed_calls += len(jobs)
            seed_shapes += len({signature(j) for j in jobs})
            structures.append(len({(c.first.shape, repr(sorted(c.params.items()))) for c in mine}))
        calls.append(seed_calls)
        shapes.append(seed_shapes)
        for c in drawn:
            if c.first.ndim == 2 and not CATALOG[c.loss].grad_params:
                cover["N"][c.first.shape[0]] += 1
                cover["C"][c.first.shape[1]] += 1
            cover["reduction"][c.params.get("reduction")] += 1
            for k in c.params:
                if k != "reduction":
                    cover["params"][k] += 1
            top = float(np.max(np.abs(c.first))) if c.first.size else 0.0
            cover["log10 max|x|"][int(np.floor(np.log10(top))) if top > 0 else "0"] += 1
    return {"cover": cover, "calls": calls, "shapes": shapes, "structures": structures, "cases": cases}


def _share(counter: Counter) -> str:
    total = sum(counter.values())
    return ", ".join(f"{k}: {100 * v / total:.0f}%" for k, v in sorted(counter.items(), key=lambda kv: str(kv[0])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4", help="seeds a-b (default: %(default)s)")
    parser.add_argument("--budget", type=int, default=64)
    args = parser.parse_args()
    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    rows = {"group size 1 (before)": measure(seeds, args.budget, 1),
            f"group size {GROUP_SIZE} (now)": measure(seeds, args.budget, GROUP_SIZE)}
    print(f"random cases of seeds {args.seeds}, budget {args.budget}; per implementation and dtype:")
    for name, r in rows.items():
        print(f"\n{name}: {r['cases']} cases")
        print(f"  framework calls per seed  {min(r['calls'])}-{max(r['calls'])} (mean {np.mean(r['calls']):.0f})")
        print(f"  distinct shape signatures {min(r['shapes'])}-{max(r['shapes'])} (mean {np.mean(r['shapes']):.0f})")
        print(f"  distinct (shape, params) per loss and seed: mean {np.mean(r['structures']):.1f}")
        for key, counter in r["cover"].items():
            print(f"  {key:13s} {_share(counter)}")
    before, now = rows.values()
    print(f"\ncalls {np.mean(now['calls']) / np.mean(before['calls']):.2f}x, "
          f"compiled shapes {np.mean(now['shapes']) / np.mean(before['shapes']):.2f}x of group size 1")


if __name__ == "__main__":
    main()
