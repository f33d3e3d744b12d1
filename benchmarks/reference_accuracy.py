"""Print the reference's worst error against the mpmath oracle, per loss and dtype (float64 ulps).

Also measures the choice of extended precision for float64 inputs: long double (what the reference
uses) against double-double (compensated) arithmetic, on softmax cross-entropy values. Runs in < 60 s.

    python benchmarks/reference_accuracy.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from mpmath import mp, mpf

from lossconf.reference import numpy_ref, oracle
from lossconf.reference.catalog import CATALOG
from lossconf.reference.dtypes import DTYPES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibrate_kappa import random_inputs  # noqa: E402

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


def extended_precision_comparison(rows: int = 300) -> None:
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


def accuracy_table(trials: int = 4) -> None:
    print(f"\nworst |reference - oracle| in float64 ulps, value / grad ({trials} random inputs per reduction)")
    print(f"{'loss':32} " + " ".join(f"{d:>19}" for d in DTYPES))
    for i, (loss_id, loss) in enumerate(CATALOG.items()):
        cells = []
        for dtype in DTYPES:
            rng = np.random.default_rng([1, i, DTYPES.index(dtype)])
            worst_v = worst_g = 0.0
            for reduction in loss.reductions:
                for _ in range(trials):
                    first, second, params = random_inputs(loss_id, rng, dtype, max_classes=100)
                    v, g = numpy_ref.value_and_grad(loss_id, first, second, reduction=reduction, **params)
                    ov, og = oracle.value_and_grad(loss_id, first, second, reduction=reduction, **params)
                    worst_v = max(worst_v, float(np.max(oracle.error_ulps(v, ov), initial=0)))
                    worst_g = max(worst_g, float(np.max(oracle.error_ulps(g, og), initial=0)))
            cells.append(f"{worst_v:9.2g} /{worst_g:8.2g}")
        print(f"{loss_id:32} " + " ".join(cells))
    print("(gradient ulps are large only where the gradient itself is a cancellation, e.g. p - t at the\n"
          " optimum; tests/test_reference_oracle.py bounds those by u_work * S)")


if __name__ == "__main__":
    start = time.perf_counter()
    with np.errstate(all="ignore"):
        extended_precision_comparison()
        accuracy_table()
    print(f"\n{time.perf_counter() - start:.1f} s")
