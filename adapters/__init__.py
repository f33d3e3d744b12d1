"""Framework adapters: one module per framework, each calling the framework's public loss APIs."""

from lossconf.adapters.base import Adapter, Impl, Unsupported

__all__ = ["Adapter", "Impl", "Unsupported"]
