"""Corruption plugins: the `Corruption` base class, its registry and the built-ins."""

from corruptions import gaussian as _gaussian  # noqa: F401  (registers the built-ins)
from corruptions.base import CORRUPTIONS, Corrupted, Corruption, SubsetCorruption
from corruptions.registry import BenchmarkError, PluginError, Registry

__all__ = [
    "CORRUPTIONS",
    "BenchmarkError",
    "Corrupted",
    "Corruption",
    "PluginError",
    "Registry",
    "SubsetCorruption",
]
