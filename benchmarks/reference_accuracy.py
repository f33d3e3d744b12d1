"""Measure the reference's worst error against the mpmath oracle; writes lossconf/reference_accuracy.json.

Per loss and input dtype: the worst value and gradient error in float64 ulps (or u_float64 * S where
the result is itself a cancellation and that is smaller), over seeded random inputs. Also measures the
choice of extended precision for float64 inputs: long double (what the reference uses) against
double-double (compensated) arithmetic, on softmax cross-entropy values. Runs in about a minute.

    python benchmarks/reference_accuracy.py [--trials 10] [--dry-run]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from mpmath import mp, mpf

from lossconf.reference import numpy_ref, oracle
from lossconf.reference.catalog import CATALOG
from lossconf.reference.dtypes import DTYPES, UNIT_ROUNDOFF

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibrate_kappa import random_inputs  # noqa: E402

ACCURACY_JSON = Path(__file__).resolve().parents[1] / "lossconf" / "reference_accuracy.json"

# -- double-double arithmetic (Dekker / Knuth error-free transformations), vectorised -----------------


def two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def split(a):
    c = 134217729.0 * a
    hi = c - (c - a)
    return hi, a - hi


def two_prod(a, b):
    p = a * b
    ah, al = split(a)
    bh, bl = split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def dd_add(a, b):
    s, e = two_sum(a[0], b[0])
    e += a[1] + b[1]
    return two_sum(s, e)


def dd_mul(a, b):
    p, e = two_prod(a[0], b[0])
    e += a[0] * b[1] + a[1] * b[0]
    return two_sum(p, e)


LN2 = (0.6931471805599453, 2.3190468138462996e-17)


def dd_exp(x):
    """exp of a double-double: x = k ln2 + r, r / 2^10, Taylor to r^9, then square 10 times."""
    k = np.round(x[0] / LN2[0])
    r = dd_add(x, dd_mul((-k, np.zeros_like(k)), LN2))
    r = (r[0] / 1024, r[1] / 1024)
    term, total = r, dd_add((np.ones_like(k), np.zeros_like(k)), r)
    for n in range(2, 10):
        term = dd_mul(term, r)
        term = (term[0] / n, term[1] / n)  # error ~ u |term|, negligible for n >= 2 at |r| < 4e-4
        total = dd_add(total, term)
    for _ in range(10):
        total = dd_mul(total, total)
    return np.ldexp(total[0], k.astype(int)), np.ldexp(total[1], k.astype(int))


def dd_log(a):
    """log of a double-double by one Newton step from the float64 log: y + a exp(-y) - 1."""
    y = np.log(a[0])
    e = dd_mul(a, dd_exp((-y, np.zeros_like(y))))
    return dd_add((y, np.zeros_like(y)), dd_add(e, (-np.ones_like(y), np.zeros_like(y))))


def dd_softmax_xent(x, t):
    """Per-row -sum t log_softmax(x) in double-double, in the reference's cancellation-free form."""
    m = x.max(axis=1, keepdims=True)
    z = two_sum(x, -m)  # exact
    e = dd_exp(z)
    a = np.argmax(x, axis=1)
    rows = np.arange(x.shape[0])
    e[0][rows, a], e[1][rows, a] = 0.0, 0.0
    r = (np.zeros(x.shape[0]), np.zeros(x.shape[0]))
    lin = (np.zeros(x.shape[0]), np.zeros(x.shape[0]))
    total = (np.zeros(x.shape[0]), np.zeros(x.shape[0]))
    for c in range(x.shape[1]):
        r = dd_add(r, (e[0][:, c], e[1][:, c]))
        tz = dd_mul((t[:, c], np.zeros_like(r[0])), (z[0][:, c], z[1][:, c]))
        lin = dd_add(lin, (-tz[0], -tz[1]))
        total = dd_add(total, (t[:, c], np.zeros_like(r[0])))
    big_l = dd_log(dd_add((np.ones_like(r[0]), np.zeros_like(r[0])), r))
    return dd_add(dd_mul(total, big_l), lin)


def extended_precision_comparison(rows: int = 300) -> dict:
    """Max and median float64 ulps of long double and double-double softmax CE values, printed."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 8)) * 10 ** rng.uniform(-2, 2, (rows, 1))
    t = rng.dirichlet(np.ones(8), rows)
    exact, _ = oracle.value_and_grad("softmax_cross_entropy", x, t)
    ld, _ = numpy_ref.value_and_grad("softmax_cross_entropy", x, t)
    hi, lo = dd_softmax_xent(x, t)
    with mp.workdps(oracle.DIGITS):
        dd_err = [float(abs(mpf(h) + mpf(lo_) - e) / mpf(float(np.spacing(abs(float(e))))))
                  for h, lo_, e in zip(hi, lo, exact, strict=True)]
    ld_err = oracle.error_ulps(ld, exact)
    print(f"extended precision for float64 inputs, softmax CE values, {rows} random rows (float64 ulps):")
    print(f"  long double (reference): max {np.max(ld_err):.2e}  median {np.median(ld_err):.2e}")
    print(f"  double-double          : max {np.max(dd_err):.2e}  median {np.median(dd_err):.2e}")
    return {name: {"max": sig3(np.max(err)), "median": sig3(np.median(err))}
            for name, err in (("long_double", ld_err), ("double_double", dd_err))}


def sig3(x: float) -> float:
    """x to 3 significant digits (the JSON is read by people)."""
    return float(f"{x:.3g}")


def worst_errors(loss_id: str, dtype: str, trials: int) -> dict:
    """Worst value and gradient error: float64 ulps, or u_float64 * S where that is smaller."""
    loss = CATALOG[loss_id]
    rng = np.random.default_rng([1, list(CATALOG).index(loss_id), DTYPES.index(dtype)])
    worst = {"value": 0.0, "grad": 0.0}
    for reduction in loss.reductions:
        for _ in range(trials):
            first, second, params = random_inputs(loss_id, rng, dtype, max_classes=100)
            ref = numpy_ref.evaluate(loss_id, first, second, reduction=reduction, **params)
            exact_v, exact_g = oracle.value_and_grad(loss_id, first, second, reduction=reduction, **params)
            for quantity, got, exact, scale in (("value", ref.value, exact_v, ref.scale_value),
                                                ("grad", ref.grad, exact_g, ref.scale_grad)):
                ulps = oracle.error_ulps(got, exact)
                scaled = oracle.error_scaled(got, exact, np.asarray(scale) * UNIT_ROUNDOFF["float64"])
                worst[quantity] = max(worst[quantity], float(np.max(np.minimum(ulps, scaled), initial=0)))
    return worst


def accuracy_table(trials: int, losses: list[str] | None = None) -> dict:
    """{loss: {dtype: {"value": .., "grad": ..}}} over seeded random inputs (every loss, or ``losses``), printed
    as a table."""
    print(f"\nworst |reference - oracle| in float64 ulps (or u64 S where smaller), value / gradient "
          f"({trials} random inputs per reduction)")
    print(f"{'loss':32} " + " ".join(f"{d:>19}" for d in DTYPES))
    table = {}
    for loss_id in losses or CATALOG:
        table[loss_id] = {dtype: {q: sig3(e) for q, e in worst_errors(loss_id, dtype, trials).items()}
                          for dtype in DTYPES}
        cells = [f"{c['value']:9.2g} /{c['grad']:8.2g}" for c in table[loss_id].values()]
        print(f"{loss_id:32} " + " ".join(cells))
    return table


METHOD = (
    "worst |reference - oracle| over seeded random inputs (benchmarks/calibrate_kappa.py random_inputs, "
    "{trials} per loss, dtype and reduction, C <= 100, scales 1e-3..1e3, label smoothing 0 or 0.1), per "
    "element in ulps of float64 at the oracle value or, where the result is itself a cancellation (a "
    "gradient p - t near the optimum, a KL value near 0), in units of u_float64 * S (the error model's "
    "unit), whichever is smaller. The reference works in float64 for float16/bfloat16/float32 inputs and "
    "in np.longdouble ({nmant}-bit mantissa on {machine}) for float64 inputs; oracle: mpmath at {digits} "
    "significant digits. benchmarks/reference_accuracy.py --trials {trials}"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="random inputs per loss, dtype and reduction")
    parser.add_argument("--dry-run", action="store_true", help="print only, do not write reference_accuracy.json")
    parser.add_argument("--losses", help="comma-separated loss ids: measure only these, keep the others' rows")
    args = parser.parse_args()
    losses = args.losses.split(",") if args.losses else None
    start = time.perf_counter()
    with np.errstate(all="ignore"):
        if losses:  # the other rows and the extended-precision comparison stay as measured
            kept = json.loads(ACCURACY_JSON.read_text())
            table = {**kept["losses"], **accuracy_table(args.trials, losses)}
            extended = kept["float64_work_softmax_ce_value_ulps"]
        else:
            extended = extended_precision_comparison()
            table = accuracy_table(args.trials)
    result = {
        "losses": table,
        "method": METHOD.format(trials=args.trials, nmant=int(np.finfo(np.longdouble).nmant),
                                machine=platform.machine(), digits=oracle.DIGITS),
        "measured": datetime.date.today().isoformat(),
        "oracle_digits": oracle.DIGITS,
        "float64_work_softmax_ce_value_ulps": extended,
    }
    if not args.dry_run:
        ACCURACY_JSON.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {ACCURACY_JSON}")
    print(f"\n{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
