"""Calibrate the error model's kappa per loss and quantity; writes lossconf/kappa.json.

kappa = 2 x the worst (|got - truth| - 0.5 ulp(truth)) / (u * S) of a straightforward correct
implementation computed in the dtype under test (lossconf.reference.straightforward), over seeded
random inputs: C from 1 to 2000, scales 1e-3 to 1e3, all four dtypes, all reductions, the canonical
semantics and each variant of the loss; rounded up to a nice number, at least 1.

linear_cross_entropy (several gradients) draws its own inputs (``linear_inputs``): N 1-8, D 1-64, V up to
2000, logits of size 1e-2..1e2, with bias, class weights, smoothing and variants at random.

    python benchmarks/calibrate_kappa.py [--trials 1000] [--seed 0] [--losses a,b] [--dry-run]

``--losses`` recalibrates only those losses and keeps the others' kappa from kappa.json.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import ml_dtypes
import numpy as np

from lossconf.errormodel import ulp
from lossconf.reference import numpy_ref, probability, straightforward
from lossconf.reference.catalog import CATALOG
from lossconf.reference.dtypes import DTYPES, UNIT_ROUNDOFF, numpy_dtype

KAPPA_JSON = Path(__file__).resolve().parents[1] / "lossconf" / "kappa.json"
CLASS_COUNTS = (1, 2, 3, 5, 10, 100, 1000, 2000)
NICE = (1, 1.5, 2, 3, 4, 5, 6, 8)


def random_inputs(loss_id: str, rng: np.random.Generator, dtype: str,
                  max_classes: int = max(CLASS_COUNTS)) -> tuple[np.ndarray, object, dict]:
    """(first, second, params) for one seeded random call, arrays already cast to ``dtype``; params may
    name one of the loss's variants (``variant``), which every implementation takes as a keyword."""
    loss = CATALOG[loss_id]
    if loss_id == "linear_cross_entropy":
        return linear_inputs(rng, dtype, max_classes)
    scale = 10 ** rng.uniform(-3, 3)
    if loss.sequence:
        return ctc_inputs(rng, dtype, min(max_classes, 12))
    if loss.classes_axis:
        shape = (int(rng.integers(1, 6)), int(rng.choice([c for c in CLASS_COUNTS if c <= max_classes])))
    else:
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 50)))

    def dist() -> np.ndarray:  # soft labels / probabilities on the simplex, sometimes one-hot
        if rng.random() < 0.3:
            return np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
        return rng.dirichlet(np.full(shape[1], 10 ** rng.uniform(-1, 1)), shape[0])

    params = {}
    variant = rng.choice([None, *loss.variants])
    if variant is not None:
        params["variant"] = str(variant)
    if "log_input" in loss.param_names:  # the clip variant takes probabilities
        params["log_input"] = variant is None and bool(rng.random() < 0.5)
    role = loss.inputs[0].role
    if role in ("logits", "predictions"):
        first = scale * rng.standard_normal(shape)
    elif role == "log_probabilities":
        first = np.log(dist()) if params["log_input"] else dist()
    elif loss.classes_axis:  # probabilities on the simplex, or one-hot/soft labels (smooth_labels)
        first = dist()
    else:
        first = 1 / (1 + np.exp(-scale * rng.standard_normal(shape)))
    second = None
    if loss.has_second:
        target = loss.inputs[1]
        if target.role == "labels":
            second = rng.integers(0, shape[1], shape[0])
        elif target.domain.startswith("class probabilities"):
            second = dist()
        elif target.domain == "values in [0, 1]":
            second = rng.random(shape) if rng.random() < 0.7 else rng.integers(0, 2, shape).astype(float)
        elif target.domain.startswith("-1 or 1"):
            second = rng.choice([-1.0, 1.0], shape)
        elif target.domain.startswith("non-negative counts"):
            second = np.floor(rng.exponential(10 ** rng.uniform(-1, 2), shape)) if rng.random() < 0.7 else \
                scale * rng.random(shape)
        else:
            second = scale * rng.standard_normal(shape)
    if loss_id == "poisson_nll":  # a log-rate of moderate size, or a rate > 0
        first = rng.uniform(-1, 1) * 5 + rng.standard_normal(shape) if params["log_input"] else \
            scale * rng.exponential(1.0, shape)
        params["full"] = bool(rng.random() < 0.5)
    if loss_id == "sigmoid_focal_loss":
        params["gamma"] = float(rng.choice([0.0, 1.0, 2.0, 3.0]))
        params["alpha"] = None if rng.random() < 0.5 else float(rng.choice([0.25, 0.5, 0.75]))
    for name, menu in (("delta", (0.25, 1.0, 3.0)), ("beta", (0.0, 1.0, 3.0))):
        if name in loss.param_names:  # exact in every dtype: a power of two >= 1 times the menu (beta < 1/2
            # would scale up an underflowed d^2 in float16: an absolute error the subnormal term does not cover)
            power = 2.0 ** round(math.log2(max(scale, 1.0))) if rng.random() < 0.5 else 1.0
            params[name] = float(rng.choice(menu)) * power
    if "label_smoothing" in loss.param_names:
        params["label_smoothing"] = float(rng.choice([0.0, 0.1]))
    np_dtype = numpy_dtype(dtype)
    first = first.astype(np_dtype)
    if second is not None and second.dtype.kind == "f":
        second = second.astype(np_dtype)
    return first, second, params


def linear_inputs(rng: np.random.Generator, dtype: str, max_classes: int = max(CLASS_COUNTS)) -> tuple:
    """(h, labels, params) for one seeded linear_cross_entropy call, float arrays cast to ``dtype``."""
    n, d = int(rng.integers(1, 9)), int(rng.integers(1, 65))
    v = int(rng.choice([c for c in CLASS_COUNTS if 1 < c <= max_classes]))
    scale = 10 ** rng.uniform(-2, 2)  # typical logit size
    dt = numpy_dtype(dtype)
    params = {"linear_weight": (rng.standard_normal((v, d)) * scale / np.sqrt(d)).astype(dt),
              "label_smoothing": float(rng.choice([0.0, 0.1]))}
    if rng.random() < 0.3:
        params["linear_bias"] = (scale * rng.standard_normal(v)).astype(dt)
    if rng.random() < 0.3:
        params["weight"] = rng.uniform(0.1, 3, v).astype(dt)
    variant = rng.choice([None, "smoothing_over_c_minus_1"])  # the others change only what straightforward lacks
    if variant is not None:
        params["variant"] = str(variant)
    return rng.standard_normal((n, d)).astype(dt), rng.integers(0, v, n), params


def _results(loss_id: str, rng: np.random.Generator, dtype: str, reduction: str) -> tuple:
    """(first, second, params, [(quantity, straightforward result, truth, S), ...]) for one random call."""
    first, second, params = random_inputs(loss_id, rng, dtype)
    if loss_id == "linear_cross_entropy":
        got = straightforward.linear_cross_entropy(first, second, reduction=reduction, **params)
    else:
        got = straightforward.value_and_grad(loss_id, first, second, reduction=reduction, **params)
    ref = numpy_ref.evaluate(loss_id, first, second, reduction=reduction, **params)
    truths = [(ref.value, ref.scale_value), (ref.grad, ref.scale_grad), *ref.grads.values()]
    return first, second, params, [(q, g, *t) for q, g, t in zip(CATALOG[loss_id].quantities, got, truths, strict=True)]
def ctc_inputs(rng: np.random.Generator, dtype: str, max_classes: int = 12) -> tuple[np.ndarray, object, dict]:
    """CTC: logits [N, T, C] (T up to 30, scales 1e-3..1e2), labels [N, S] with S <= T/2, per-sequence lengths
    half of the time, the blank at 0 or C - 1, the canonical semantics or the mean-over-target-lengths variant."""
    n, t, c = int(rng.integers(1, 5)), int(rng.integers(1, 31)), int(rng.integers(2, max_classes + 1))
    s = int(rng.integers(0, t // 2 + 1))
    blank = int(rng.choice([0, c - 1]))
    labels = rng.integers(0, c - 1, (n, s))
    labels = labels + (labels >= blank)
    params: dict = {"blank": blank}
    if rng.random() < 0.5:
        params["input_lengths"] = rng.integers(min(2 * s, t), t + 1, n)
        params["target_lengths"] = rng.integers(0, s + 1, n)
    if rng.random() < 0.5:
        params["variant"] = "ctc_mean_over_target_lengths"
    first = (10 ** rng.uniform(-3, 2) * rng.standard_normal((n, t, c))).astype(numpy_dtype(dtype))
    return first, labels, params


def excess(got: np.ndarray, truth: np.ndarray, scale: np.ndarray, dtype: str,
           undecided: np.ndarray | None = None) -> tuple[float, int]:
    """Worst (error - 0.5 ulp) / (u S) over elements whose truth is finite and not subnormal in the
    dtype, and the count of elements left out: the straightforward result is non-finite where the truth
    is not (overflow), or the truth is subnormal in the dtype (gradual underflow: absolute errors of
    the order of the smallest normal number, which a relative error model cannot bound), or the element
    is ``undecided`` (see ``clip_undecided``)."""
    truth64 = np.asarray(truth, np.float64)
    got = np.asarray(got, np.float64)
    in_dtype = truth64.astype(numpy_dtype(dtype)).astype(np.float64)
    ok = np.isfinite(in_dtype)
    if undecided is not None:
        ok &= ~undecided
    exact = np.asarray(truth)  # long double for float64 inputs: may be nonzero where truth64 underflowed to 0
    subnormal = (np.abs(exact) < float(ml_dtypes.finfo(numpy_dtype(dtype)).smallest_normal)) & (exact != 0)
    bad = int(np.count_nonzero(ok & (~np.isfinite(got) | subnormal)))
    ok &= np.isfinite(got) & ~subnormal
    if not ok.any():
        return 0.0, bad
    err = np.abs(got[ok] - np.asarray(truth)[ok]).astype(np.float64) - 0.5 * ulp(truth64[ok], dtype)
    s = np.broadcast_to(scale, truth64.shape)[ok]
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(err <= 0, 0.0, err / (UNIT_ROUNDOFF[dtype] * s))
    return float(np.max(k)), bad


def clip_undecided(first: np.ndarray, params: dict, dtype: str) -> np.ndarray | None:
    """Gradient elements of the normalize-then-clip variant in rows where q = p / sum(p) lies within
    rounding (2 (1 + log2 C) u q + the smallest subnormal) of a clip bound: a correct implementation's
    rounded q may fall on either side, and the clip's gradient jumps there, so no precision bound applies.
    (The other clip variants clip an input, whose side is exact.)"""
    if params.get("variant") != "normalize_then_clip_1e-7":
        return None
    d = numpy_dtype(dtype)
    lo, hi = probability.clip_bounds(1e-7, d)
    p = first.astype(np.float64)
    q = p / np.sum(p, axis=-1, keepdims=True)
    tol = 2 * (1 + np.log2(p.shape[-1])) * UNIT_ROUNDOFF[dtype] * q + float(ml_dtypes.finfo(d).smallest_subnormal)
    with np.errstate(invalid="ignore"):
        near = (np.abs(q - lo) <= tol) | (np.abs(q - hi) <= tol)
    return np.broadcast_to(near.any(axis=-1, keepdims=True), p.shape)


def norms_out_of_range(loss_id: str, first: np.ndarray, second, dtype: str) -> np.ndarray | None:
    """cosine_similarity rows whose sum of squares overflows the dtype or falls below its smallest normal
    number: a straightforward implementation returns 0 or NaN there (a range limit, registered per framework
    where it shows, not an accuracy kappa should absorb)."""
    if loss_id != "cosine_similarity":
        return None
    info = ml_dtypes.finfo(numpy_dtype(dtype))
    bad = np.zeros(first.shape[:-1], bool)
    for a in (first, second):
        s2 = np.sum(np.square(a.astype(np.float64)), axis=-1)
        bad |= (s2 > float(info.max)) | (s2 < float(info.smallest_normal))
    return bad


def ctc_exponent_unbounded(loss_id: str, first: np.ndarray, second, params: dict, dtype: str) -> np.ndarray | None:
    """CTC gradient entries of sequences whose value scale S_v has u S_v > 1/4: the posterior exp(alpha + beta -
    lp + l) then errs in its exponent by more than a quarter, a relative error e^(u S_v) - 1 that no linear bound
    covers (long sequences of large logits in float16/bfloat16; torch and Paddle refuse those dtypes, TensorFlow
    computes them in float32)."""
    if not CATALOG[loss_id].sequence:
        return None
    ref = numpy_ref.evaluate(loss_id, first, second, reduction="none", **params)
    bad = UNIT_ROUNDOFF[dtype] * np.asarray(ref.scale_value, np.float64) > 0.25
    return np.broadcast_to(bad[:, None, None], first.shape)


def nice(k: float) -> float:
    """The smallest number of the series 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, ... that is >= k (>= 1)."""
    if k <= 1:
        return 1.0
    decade = 10 ** math.floor(math.log10(k))
    for m in NICE + (10,):
        if m * decade >= k * (1 - 1e-12):
            return float(m * decade)
    raise AssertionError(k)


def calibrate(trials: int, seed: int, losses: list[str] | None = None) -> dict:
    """Worst measured kappa per loss, quantity and dtype (every catalog loss, or ``losses``)."""
    worst: dict = {}
    for i, (loss_id, loss) in enumerate(CATALOG.items()):
        if losses is not None and loss_id not in losses:
            continue
        rng = np.random.default_rng([seed, i])
        for dtype in DTYPES:
            for reduction in loss.reductions:
                for _ in range(trials):
                    first, second, params, results = _results(loss_id, rng, dtype, reduction)
                    value_overflowed = False
                    for quantity, got, truth, s in results:
                        undecided = clip_undecided(first, params, dtype) if quantity == "grad" else None
                        if quantity == "grad" and undecided is None:
                            undecided = ctc_exponent_unbounded(loss_id, first, second, params, dtype)
                        out_of_range = norms_out_of_range(loss_id, first, second, dtype)
                        if out_of_range is not None:  # per sample: the value's rows, every gradient entry of a row
                            undecided = out_of_range if quantity == "value" and reduction == "none" else \
                                np.broadcast_to(out_of_range[..., None], first.shape) if quantity == "grad" else \
                                np.asarray(out_of_range.any())
                        k, bad = excess(got, truth, s, dtype, undecided)
                        if quantity == "value":
                            value_overflowed = bool(np.any(np.isfinite(np.asarray(truth, np.float64))
                                                           & ~np.isfinite(got)))
                        elif value_overflowed:  # an intermediate overflowed: the gradient is moot
                            k, bad = 0.0, int(np.size(got))
                        cell = worst.setdefault(loss_id, {}).setdefault(quantity, {}).setdefault(
                            dtype, {"kappa": 0.0, "left_out": 0})
                        cell["kappa"] = max(cell["kappa"], k)
                        cell["left_out"] += bad
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="random inputs per loss, dtype and reduction")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dry-run", action="store_true", help="print the table, do not write kappa.json")
    parser.add_argument("--losses", help="comma-separated loss ids: calibrate only these, keep the others' kappa")
    args = parser.parse_args()
    losses = args.losses.split(",") if args.losses else None
    worst = calibrate(args.trials, args.seed, losses)
    table = json.loads(KAPPA_JSON.read_text()) if losses else {}
    print(f"{'loss':32} {'qty':18} " + " ".join(f"{d:>9}" for d in DTYPES) + "   kappa  (worst measured / (u S))")
    for loss_id, per_q in worst.items():
        table[loss_id] = {}
        for quantity, per_dtype in per_q.items():
            k = nice(2 * max(c["kappa"] for c in per_dtype.values()))
            table[loss_id][quantity] = k
            cells = " ".join(f"{per_dtype[d]['kappa']:9.3g}" for d in DTYPES)
            left_out = sum(c["left_out"] for c in per_dtype.values())
            note = f"  ({left_out} overflowed/subnormal/undecided elements left out)" if left_out else ""
            print(f"{loss_id:32} {quantity:18} {cells}   {k:5g}{note}")
    table["_method"] = table.get("_method") if losses else (
        "kappa = nice(2 x max over seeded random inputs of (|got - truth| - 0.5 ulp(truth)) / (u S)), >= 1, "
        "where got is lossconf.reference.straightforward (every operation rounded to the dtype), truth and S "
        f"from lossconf.reference.numpy_ref; benchmarks/calibrate_kappa.py --trials {args.trials} "
        f"--seed {args.seed}; C in {list(CLASS_COUNTS)}, scales 1e-3..1e3, dtypes {list(DTYPES)}, all reductions, "
        "canonical and every variant; gradients as reverse-mode autodiff of the forward formula computes them"
    )
    if not args.dry_run:
        KAPPA_JSON.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
        print(f"wrote {KAPPA_JSON}")


if __name__ == "__main__":
    main()
