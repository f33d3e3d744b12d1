"""scikit-learn adapter: the ``sklearn.metrics`` losses. Values only (no autodiff), so every
implementation is ``grad=False``; each metric returns one Python float, the adapter hands it back in
the dtype under test (it was computed in that dtype, so the conversion is exact).

Conventions a reader should know before the table:
- ``log_loss(y_true, y_proba)`` is categorical_cross_entropy. It takes hard labels only, so a target
  row t is passed the way sklearn documents weighting: the row of probabilities repeated once per class
  c with t_c != 0, with label c and ``sample_weight`` t_c, which gives sum_c t_c (-log p_c) per row
  exactly (marked composed). ``normalize=False`` is the sum; ``normalize=True`` divides by the summed weights, i.e. by
  N when each target row sums to 1 (the catalog's mean). It clips to [eps, 1 - eps] with
  eps = ``np.finfo(dtype).eps`` and does not renormalise rows (it only warns), so there is one
  implementation row per dtype, each declaring the catalog variant ``clip_probabilities_eps_<dtype>``;
  classes on the last axis of a [N, C] input, C >= 2 (a single column is read as the positive-class
  probability);
- the regression metrics average each output column and then the columns; the catalog's mean is over
  all elements, so both arrays are flattened to one output (targets broadcast to the predictions'
  shape first). For MSE and MAE that is the same number; for RMSE it is the catalog's
  sqrt(mean over all elements), not sklearn's mean of per-column RMSEs;
- bfloat16 is left out: sklearn's input validation accepts only NumPy's own float dtypes.
"""

from __future__ import annotations

import numpy as np

from lossconf.adapters.base import Impl, NumpyAdapter

_DOCS = "https://scikit-learn.org/stable/modules/generated/sklearn.metrics."
DTYPES = ("float16", "float32", "float64")
MAX_COMPOSED = 1 << 24  # probabilities in log_loss's composed input: [16, 1000] soft targets still fit


def _two_d_classes_last(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """log_loss takes y_proba [N, C], C >= 2, and a y_true indicator of the same shape."""
    axis = params.get("axis", -1)
    if len(shape) != 2 or axis % 2 != 1:
        return f"log_loss takes [n_samples, n_classes] with classes last (got axis={axis}, shape={shape})"
    if shape[1] < 2:
        return "log_loss reads a single column as the positive-class probability of a binary problem"
    if second_shape is not None and tuple(second_shape) != tuple(shape):
        return f"y_true must be an indicator matrix of y_proba's shape (got {second_shape})"
    if shape[0] * shape[1] ** 2 > MAX_COMPOSED:
        return (f"log_loss takes hard labels, so a soft target row is passed as up to C weighted rows: "
                f"N C^2 = {shape[0] * shape[1] ** 2:,} probabilities for {list(shape)}, over the "
                f"{MAX_COMPOSED:,} lossconf composes (a [64, 1000] call took 9 s and 0.5 GB)")
    return None


def _one_output(metric):
    """The metric on flattened predictions and (broadcast) targets, in the dtype under test."""
    def call(x, y, reduction):
        if reduction != "mean":  # sklearn's regression metrics only average
            raise ValueError(f"{metric.__name__} has no reduction={reduction!r}; it returns the mean")
        y = np.broadcast_to(y, x.shape)
        return np.asarray(metric(y.reshape(-1), x.reshape(-1)), dtype=x.dtype)

    return call


class SklearnAdapter(NumpyAdapter):
    """sklearn.metrics: log_loss, mean_squared_error, mean_absolute_error, root_mean_squared_error."""

    name = "sklearn"
    module = "sklearn"
    distributions = ("scikit-learn",)

    def load(self) -> None:
        """Import sklearn.metrics."""
        import sklearn.metrics  # noqa: F401

    def implementations(self) -> list[Impl]:
        """sklearn.metrics functions that implement catalog losses."""
        import warnings

        import sklearn.metrics as m

        def log_loss_for(dtype: str):
            def log_loss(p, t, reduction, axis=-1):
                if p.dtype != np.dtype(dtype):  # each dtype has its own row: its clip bound is that dtype's eps
                    raise ValueError(f"log_loss[{dtype}] takes {dtype} probabilities (got {p.dtype})")
                rows, labels = np.nonzero(t)  # a zero weight adds nothing: one row per nonzero target only
                with warnings.catch_warnings():  # "The y_prob values do not sum to one": computed anyway
                    warnings.simplefilter("ignore", UserWarning)
                    value = m.log_loss(labels, p[rows], sample_weight=t[rows, labels],
                                       labels=np.arange(p.shape[1]), normalize=reduction == "mean")
                return np.asarray(value, dtype=p.dtype)

            return log_loss

        regression = {"dtypes": DTYPES, "reductions": ("mean",), "grad": False,
                      "note": "predictions and targets flattened to one output"}
        return [
            *(
                Impl("categorical_cross_entropy", "sklearn.metrics.log_loss", log_loss_for(dtype),
                     name=f"log_loss[{dtype}]", params=("axis",), reductions=("mean", "sum"), dtypes=(dtype,),
                     grad=False,
                     variant=f"clip_probabilities_eps_{dtype}", restrict=_two_d_classes_last, composed=True,
                     note="target rows as per-class sample weights; normalize=True for mean (" + _DOCS
                     + "log_loss.html)")
                for dtype in DTYPES
            ),
            Impl("mean_squared_error", "sklearn.metrics.mean_squared_error", _one_output(m.mean_squared_error),
                 **regression),
            Impl("mean_absolute_error", "sklearn.metrics.mean_absolute_error", _one_output(m.mean_absolute_error),
                 **regression),
            Impl("root_mean_squared_error", "sklearn.metrics.root_mean_squared_error",
                 _one_output(m.root_mean_squared_error), **regression),
        ]
