"""Finding adapters: built-ins, the ``lossconf.adapters`` entry-point group, ``module:attr``, ``file.py:attr``.

Loading an adapter object never imports its framework: frameworks are imported only inside the
adapter's worker process (``Adapter.load``), because some frameworks crash when imported together.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path

from lossconf.adapters.base import Adapter

BUILTIN = {
    "torch": "lossconf.adapters.torch:TorchAdapter",
    "tensorflow": "lossconf.adapters.tensorflow:TensorFlowAdapter",
    "jax": "lossconf.adapters.jax:JaxAdapter",
    "paddle": "lossconf.adapters.paddle:PaddleAdapter",
    # GPU-only fused kernels (skipped with "needs CUDA" on CPU machines)
    "liger": "lossconf.adapters.gpu_fused:LigerAdapter",
    "cut_cross_entropy": "lossconf.adapters.gpu_fused:CutCrossEntropyAdapter",
    "transformer_engine": "lossconf.adapters.gpu_fused:TransformerEngineAdapter",
    "mlx": "lossconf.adapters.mlx:MlxAdapter",
    "tinygrad": "lossconf.adapters.tinygrad:TinygradAdapter",
    "onnxruntime": "lossconf.adapters.onnxruntime:OnnxRuntimeAdapter",
    "scipy": "lossconf.adapters.scipy:ScipyAdapter",
    "sklearn": "lossconf.adapters.sklearn:SklearnAdapter",
    "keras_jax": "lossconf.adapters.keras:KerasJaxAdapter",
    "keras_torch": "lossconf.adapters.keras:KerasTorchAdapter",
}


class AdapterLoadError(Exception):
    """The adapter target cannot be loaded; the message says what was expected."""


def _entry_point_targets() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="lossconf.adapters")}


def known_targets() -> dict[str, str]:
    """Adapter name -> target for the built-ins and every installed entry point."""
    return {**BUILTIN, **_entry_point_targets()}


def load_adapter(target: str) -> Adapter:
    """An Adapter instance from a name, ``package.module:attr`` or ``path/to/file.py:attr``.

    ``attr`` may name an Adapter subclass or instance; without ``:attr`` the module must define
    exactly one Adapter subclass.
    """
    targets = known_targets()
    spec = targets.get(target, target)
    module_part, _, attr = spec.partition(":")
    try:
        if module_part.endswith(".py") or "/" in module_part:
            module = _import_file(Path(module_part))
        else:
            module = importlib.import_module(module_part)
    except AdapterLoadError:
        raise
    except ModuleNotFoundError as exc:
        raise AdapterLoadError(
            f"adapter {target!r}: cannot import {module_part!r} ({exc}); expected one of "
            f"{sorted(targets)}, 'package.module:Attr' or 'path/to/file.py:Attr'"
        ) from None
    except Exception as exc:  # an adapter module that fails on import is the adapter's error
        raise AdapterLoadError(f"adapter {target!r}: importing {module_part!r} failed: {exc!r}") from None
    obj = getattr(module, attr, None) if attr else _single_adapter_class(module, target)
    if obj is None:
        raise AdapterLoadError(f"adapter {target!r}: {module_part!r} has no attribute {attr!r}")
    if isinstance(obj, type) and not issubclass(obj, Adapter):
        obj = None  # never instantiate an arbitrary class
    adapter = obj() if isinstance(obj, type) else obj
    if not isinstance(adapter, Adapter):
        raise AdapterLoadError(
            f"adapter {target!r}: {attr or module_part!r} is not an Adapter, expected a "
            "lossconf.adapters.Adapter subclass or instance"
        )
    if not adapter.name:
        raise AdapterLoadError(f"adapter {target!r}: the Adapter has no name (set the class attribute 'name')")
    adapter.target = spec  # how a worker process finds it again
    return adapter


def _import_file(path: Path):
    if not path.is_file():
        raise AdapterLoadError(f"adapter file {str(path)!r} does not exist; expected path/to/file.py:Attr")
    name = f"lossconf_user_adapter_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AdapterLoadError(f"adapter file {str(path)!r} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _single_adapter_class(module, target: str) -> type[Adapter]:
    found = [
        v for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Adapter) and v is not Adapter and v.__module__ == module.__name__
    ]
    if len(found) != 1:
        raise AdapterLoadError(
            f"adapter {target!r}: expected exactly one Adapter subclass in the module, found "
            f"{len(found)}; name it as 'module:Attr'"
        )
    return found[0]
