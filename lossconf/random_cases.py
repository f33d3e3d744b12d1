"""Seeded random cases: reproducible inputs from one integer seed, and the large-vocabulary cases."""

from __future__ import annotations

import zlib

import numpy as np

from lossconf.case import Case, check_losses, make_case
from lossconf.reference.catalog import CATALOG

# Shape menus: few distinct shapes, so that the runner batches many "none" cases in one call.
BATCH_SIZES = (1, 4, 16, 64)
CLASS_COUNTS = (2, 3, 10, 100, 1000)
SCALE_RANGE = (-3.0, 3.0)  # log10 of the magnitude of logits and predictions
REDUCTION_WEIGHTS = {"none": 0.6, "mean": 0.2, "sum": 0.2}
IGNORE_INDEX = -100
# Predicted probabilities stay >= ~1e-6 (a float16 subnormal), so the random truths are finite in every
# dtype; exact zeros are edge cases.
PROBABILITY_FLOOR = 1e-6
# Cases per structure group: a group's cases share shape, reduction and params (not values), so that
# compiled modes trace and compile once per group, and reduction-"none" groups fill one call.
GROUP_SIZE = 4


def stable_hash(text: str) -> int:
    """A hash of ``text`` that is the same in every process and Python version (CRC-32)."""
    return zlib.crc32(text.encode("utf-8"))


class _Draw:
    """The random choices of one case: its structure (shape, reduction, params) from ``pick``, shared by
    the cases of a group, and its values (magnitudes, targets, labels) from ``rng``, its own."""

    def __init__(self, rng: np.random.Generator, pick: np.random.Generator, loss: str):
        self.rng, self.pick = rng, pick
        self.spec = CATALOG[loss]

    def n(self) -> int:
        return int(self.pick.choice(BATCH_SIZES))

    def c(self) -> int:
        return int(self.pick.choice(CLASS_COUNTS))

    def scale(self) -> float:
        return float(10.0 ** self.rng.uniform(*SCALE_RANGE))

    def reduction(self) -> str:
        allowed = [r for r in REDUCTION_WEIGHTS if r in self.spec.reductions]
        weights = np.array([REDUCTION_WEIGHTS[r] for r in allowed])
        return str(self.pick.choice(allowed, p=weights / weights.sum()))

    def logits(self, shape: tuple) -> np.ndarray:
        return self.rng.standard_normal(shape) * self.scale()

    def distribution(self, n: int, c: int, floor: float = 0.0) -> np.ndarray:
        """Probability rows: Dirichlet, concentration from peaked (0.05) to flat (10), entries >= ~floor."""
        alpha = 10.0 ** self.rng.uniform(-1.3, 1.0)
        p = np.maximum(self.rng.dirichlet(np.full(c, alpha), size=n), floor)
        return p / p.sum(axis=1, keepdims=True)

    def labels(self, n: int, c: int) -> np.ndarray:
        return self.rng.integers(0, c, size=n)

    def targets(self, n: int, c: int) -> np.ndarray:
        """Target rows in one of the formats: one-hot or soft."""
        if self.rng.random() < 0.5:
            one_hot = np.zeros((n, c))
            one_hot[np.arange(n), self.labels(n, c)] = 1.0  # not np.eye(c)[labels]: C x C for n rows
            return one_hot
        return self.distribution(n, c)

    def unit(self, shape: tuple) -> np.ndarray:
        """Values in (0, 1): uniform, or pushed towards 0 or 1 (log-uniform distance down to 1e-3,
        which float16 still separates from 1; exact 0 and 1 are edge cases)."""
        u = self.rng.uniform(1e-3, 1 - 1e-3, size=shape)
        if self.rng.random() < 0.3:
            tiny = 10.0 ** self.rng.uniform(-3, -1, size=shape)
            u = np.where(u < 0.5, tiny, 1 - tiny)
        return u


def _random_inputs(d: _Draw, loss: str, optional: bool) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """(first, second, params) of one random case; ``optional`` adds the loss's optional params."""
    n, c, rng, pick = d.n(), d.c(), d.rng, d.pick
    params: dict = {"reduction": d.reduction()}
    axis1 = optional and d.spec.classes_axis and "axis" in d.spec.param_names and pick.random() < 0.3
    if loss in ("softmax_cross_entropy", "sparse_softmax_cross_entropy", "softmax", "log_softmax"):
        first = d.logits((n, c))
        second = {"softmax_cross_entropy": lambda: d.targets(n, c),
                  "sparse_softmax_cross_entropy": lambda: d.labels(n, c)}.get(loss, lambda: None)()
        if optional and loss.endswith("cross_entropy"):
            if pick.random() < 0.6:
                params["label_smoothing"] = float(pick.choice([0.05, 0.1, 0.2, 0.5]))
            if pick.random() < 0.6:
                params["weight"] = pick.uniform(0.1, 2.0, size=c)
            if loss.startswith("sparse") and pick.random() < 0.6:
                params["ignore_index"] = IGNORE_INDEX
                second = np.where(rng.random(n) < 0.25, IGNORE_INDEX, second)
    elif loss in ("sigmoid_cross_entropy", "sigmoid"):
        first = d.logits((n, c))
        second = d.unit((n, c)) if rng.random() < 0.5 else rng.integers(0, 2, (n, c)).astype(np.float64)
        second = second if loss == "sigmoid_cross_entropy" else None
        if optional and loss == "sigmoid_cross_entropy":
            if pick.random() < 0.6:
                params["pos_weight"] = pick.uniform(0.1, 5.0, size=c)
            if pick.random() < 0.6:
                params["label_smoothing"] = float(pick.choice([0.05, 0.1, 0.2]))
    elif loss == "binary_cross_entropy":
        first = d.unit((n, c))
        second = d.unit((n, c)) if rng.random() < 0.5 else rng.integers(0, 2, (n, c)).astype(np.float64)
    elif loss == "categorical_cross_entropy":
        first, second = d.distribution(n, c, PROBABILITY_FLOOR), d.targets(n, c)
    elif loss == "kl_divergence":
        q, second = d.distribution(n, c, PROBABILITY_FLOOR), d.distribution(n, c)
        params["log_input"] = not (optional and pick.random() < 0.6)
        first = np.log(q) if params["log_input"] else q
    elif loss in ("mean_squared_error", "mean_absolute_error", "root_mean_squared_error"):
        first = d.logits((n, c))
        second = first + d.logits((n, c)) if rng.random() < 0.5 else d.logits((n, c))
    elif loss == "smooth_labels":
        first = d.targets(n, c)
        second = None
        params["label_smoothing"] = float(pick.uniform(0.0, 1.0))
    elif loss == "cosine_similarity":
        first = d.logits((n, c))
        second = first + d.logits((n, c)) if rng.random() < 0.5 else d.logits((n, c))
    elif loss == "sigmoid_focal_loss":
        first = d.logits((n, c))
        second = d.unit((n, c)) if rng.random() < 0.3 else rng.integers(0, 2, (n, c)).astype(np.float64)
        if optional:
            params["gamma"] = float(pick.choice([0.0, 1.0, 3.0]))
            if pick.random() < 0.7:
                params["alpha"] = float(pick.choice([0.25, 0.5, 0.75]))
    elif loss in ("huber", "smooth_l1", "log_cosh"):
        first = d.logits((n, c))
        second = first + d.logits((n, c)) if rng.random() < 0.5 else d.logits((n, c))
        name = {"huber": "delta", "smooth_l1": "beta"}.get(loss)
        if optional and name:  # exact in every dtype
            params[name] = float(pick.choice([0.5, 2.0, 4.0] + ([0.0] if name == "beta" else [])))
    elif loss in ("hinge", "squared_hinge"):
        first, second = d.logits((n, c)), rng.choice([-1.0, 1.0], (n, c))
    elif loss == "poisson_nll":
        log_rate = rng.uniform(-4.0, 4.0, (n, c))  # rates e^-4 .. e^4: finite in every dtype
        second = np.floor(rng.exponential(float(np.exp(rng.uniform(-2, 3))), (n, c)))
        params["log_input"] = not (optional and pick.random() < 0.5)
        first = log_rate if params["log_input"] else np.exp(log_rate)
        if optional and pick.random() < 0.5:
            params["full"] = True
    elif loss == "ctc":
        first, second, params = _ctc_inputs(d, optional)
        return first, second, params
    else:
        raise ValueError(f"losses: no random generator for {loss!r}; add one to lossconf.random_cases._random_inputs")
    if axis1:  # the class axis in position 1 of [N, C, d], d = 2
        first = np.stack([first, first[::-1]], axis=-1)
        if second is not None:
            second = np.stack([second, second[::-1]], axis=-1)
        params["axis"] = 1
    return first, second, params


CTC_FRAMES = (1, 4, 12, 30)
CTC_CLASSES = (2, 3, 5, 12)


def _ctc_inputs(d: _Draw, optional: bool) -> tuple[np.ndarray, np.ndarray, dict]:
    """Logits [N, T, C] (scale up to 1e2) and labels [N, S], S <= T/2 so that every target fits; with optional
    params: lengths per sequence, the blank last, and zero_infinity with a target too long for its input."""
    rng, pick = d.rng, d.pick
    n, t, c = int(pick.choice(BATCH_SIZES[:3])), int(pick.choice(CTC_FRAMES)), int(pick.choice(CTC_CLASSES))
    s = int(pick.integers(0, t // 2 + 1))
    params: dict = {"reduction": d.reduction()}
    blank = c - 1 if optional and pick.random() < 0.5 else 0
    labels = rng.integers(0, c - 1, (n, s))
    labels = labels + (labels >= blank)  # every class but the blank
    first = rng.standard_normal((n, t, c)) * min(d.scale(), 100.0)
    if optional:
        params["input_lengths"] = pick.integers(min(2 * s, t), t + 1, n)  # 2 s - 1 frames fit any target
        params["target_lengths"] = pick.integers(0, s + 1, n)
        if blank:
            params["blank"] = blank
        if pick.random() < 0.3:
            params["zero_infinity"] = True
            if s >= 2:  # the first sequence gets fewer frames than labels: no alignment, loss 0
                params["target_lengths"][0], params["input_lengths"][0] = s, s - 1
    return first, labels, params


def _optional_count(budget: int) -> int:
    return max(2, budget // 4) if budget else 0


def _random_for_loss(seed: int, budget: int, loss: str, group_size: int) -> list[Case]:
    """Case i draws its values from its own generator; its structure (shape, reduction, params) from its
    group's: the ``group_size`` consecutive cases of a group share one, so that they share a framework call
    (reduction "none") or at least a compiled shape. Cases with optional params form groups of their own."""
    if loss == "linear_cross_entropy":
        return _random_linear(seed, budget)
    has_optional = loss not in ("binary_cross_entropy", "mean_squared_error", "mean_absolute_error",
                                "root_mean_squared_error", "smooth_labels", "sigmoid", "log_cosh", "hinge",
                                "squared_hinge")
    optional_flags = [False] * budget + [True] * (_optional_count(budget) if has_optional else 0)
    values, structure = stable_hash(loss), stable_hash(f"{loss}/structure")
    cases = []
    for i, optional in enumerate(optional_flags):
        group = (i - budget) // group_size + budget if optional else i // group_size  # optional: groups of their own
        d = _Draw(np.random.default_rng([seed, values, i]), np.random.default_rng([seed, structure, group]), loss)
        first, second, params = _random_inputs(d, loss, optional)
        note = "with optional params" if optional else "no optional params"
        cases.append(make_case(f"rand_{loss}_{i:03d}", loss, first, second, kind="random", params=params,
                               note=f"{note}; shape {list(first.shape)}; structure group {group}",
                               provenance={"seed": seed, "group": group}))
    return cases


def random_cases(seed: int, budget: int = 64, losses=None, group_size: int = GROUP_SIZE) -> list[Case]:
    """Per loss, ``budget`` seeded cases without optional params plus ``budget // 4`` with them, in groups
    of ``group_size`` that share their shape and params (1: every case drawn on its own)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise ValueError(f"budget: expected a non-negative integer, got {budget!r}")
    if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)) or group_size < 1:
        raise ValueError(f"group_size: expected a positive integer, got {group_size!r}")
    return [c for loss in check_losses(losses) for c in _random_for_loss(int(seed), int(budget), loss, int(group_size))]


LARGE_ROWS, LARGE_CLASSES = 1024, 131072  # a language-model batch over a 128k-token vocabulary
LARGE_DTYPES = ("float32", "bfloat16")  # the dtypes such models train in; each truth holds ~2 GiB


def large_cases(seed: int, losses=None) -> list[Case]:
    """Seeded large-vocabulary cases: sparse softmax CE, mean, on 1024 x 131072 logits (1 GiB in float64),
    and ``large_linear_cases``; only those of ``losses`` (None: all)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    linear = large_linear_cases(seed) if losses is None or "linear_cross_entropy" in losses else []
    if losses is not None and "sparse_softmax_cross_entropy" not in losses:
        return linear
    rng = np.random.default_rng([int(seed), stable_hash("large")])
    logits = rng.standard_normal((LARGE_ROWS, LARGE_CLASSES))
    logits *= 3.0  # the spread of a trained model's logits: a few units
    labels = rng.integers(0, LARGE_CLASSES, LARGE_ROWS)
    return [*linear, make_case(
        "large_sparse_softmax_cross_entropy_vocab131072", "sparse_softmax_cross_entropy", logits, labels,
        kind="random", params={"reduction": "mean"}, provenance={"seed": int(seed), "scale": "large"},
        dtypes=LARGE_DTYPES, note=f"large vocabulary: {LARGE_ROWS} x {LARGE_CLASSES} logits, sparse labels, mean",
    )]


# -- linear_cross_entropy: hidden states and a projection instead of logits -------------------------
LINEAR_LLM = (64, 128, 32768)  # N, D, V of the default report's LLM-shaped case (CPU-sized)
LINEAR_LLM_DTYPES = ("bfloat16", "float32")  # what LLM heads train in
LINEAR_LARGE = ((512, 1024, 131072), (512, 512, 262144))  # --scale large: realistic vocabularies
LINEAR_HIDDEN = (8, 32, 64)


def linear_inputs(rng: np.random.Generator, n: int, d: int, v: int, logit_scale: float = 3.0,
                  offset: float = 0.0) -> tuple[np.ndarray, np.ndarray, dict]:
    """(h [N, D], labels [N], {"linear_weight": W [V, D]}) with logits h W^T of spread ``logit_scale``.

    Column 0 of h is 1, so column 0 of W is a per-class bias: ``offset`` added there shifts every logit
    (softmax cancels it; the products and their accumulation do not)."""
    h = rng.standard_normal((n, d))
    h[:, 0] = 1.0
    w = rng.standard_normal((v, d)) * (logit_scale / np.sqrt(d))
    w[:, 0] += offset
    return h, rng.integers(0, v, n), {"linear_weight": w}


def _random_linear(seed: int, budget: int) -> list[Case]:
    """``max(2, budget // 8)`` small seeded cases (each is its own framework call: W is shared by the
    rows, so cases cannot be concatenated), half with optional params, and the LLM-shaped case."""
    loss = "linear_cross_entropy"
    rng = np.random.default_rng([seed, stable_hash(loss)])
    d = _Draw(rng, rng, loss)  # one stream: each linear case is its own call anyway
    cases = []
    count = max(2, budget // 8) if budget else 0
    for i in range(count):
        n, v = d.n(), d.c()
        h, labels, params = linear_inputs(rng, n, int(rng.choice(LINEAR_HIDDEN)), v, d.scale())
        params["reduction"] = d.reduction()
        optional = i % 2 == 1
        if optional:
            params["linear_bias"] = rng.standard_normal(v)
            params["label_smoothing"] = float(rng.choice([0.0, 0.1]))
            if rng.random() < 0.5:
                params["weight"] = rng.uniform(0.1, 2.0, size=v)
            params["ignore_index"] = IGNORE_INDEX
            labels = np.where(rng.random(n) < 0.25, IGNORE_INDEX, labels)
        cases.append(make_case(f"rand_{loss}_{i:03d}", loss, h, labels, kind="random", params=params,
                               note=f"{'with' if optional else 'no'} optional params; h {list(h.shape)}, "
                               f"V {v}", provenance={"seed": seed}))
    if budget:
        cases.append(_linear_llm_case(seed, count, LINEAR_LLM, LINEAR_LLM_DTYPES))
    return cases


def _linear_llm_case(seed: int, index: int, shape: tuple[int, int, int], dtypes: tuple[str, ...],
                     scale: str = "default") -> Case:
    """An LLM head: mean over N tokens, a quarter of them padding (ignore_index), logits of spread 3."""
    n, d, v = shape
    rng = np.random.default_rng([seed, stable_hash(f"linear_llm_{v}")])
    h, labels, params = linear_inputs(rng, n, d, v)
    labels = np.where(rng.random(n) < 0.25, IGNORE_INDEX, labels)
    params.update(reduction="mean", ignore_index=IGNORE_INDEX)
    prefix = "large" if scale == "large" else "rand"
    return make_case(f"{prefix}_linear_cross_entropy_{index:03d}" if scale != "large" else
                     f"large_linear_cross_entropy_vocab{v}", "linear_cross_entropy", h, labels, kind="random",
                     params=params, dtypes=dtypes, provenance={"seed": seed, "scale": scale},
                     note=f"LLM head: N {n} tokens (1/4 padding, ignore_index), D {d}, V {v}, mean")


def large_linear_cases(seed: int) -> list[Case]:
    """--scale large: linear_cross_entropy over 131072 and 262144 classes (W of 1 GiB in float64)."""
    return [_linear_llm_case(int(seed), 0, shape, LARGE_DTYPES, "large") for shape in LINEAR_LARGE]
