"""Corruption plugins: the `Corruption` base class, its registry and the built-ins."""

from corruptions import block_pixels as _block_pixels  # noqa: F401  (registers the built-ins)
from corruptions import contamination as _contamination  # noqa: F401
from corruptions import gaussian as _gaussian  # noqa: F401
from corruptions.base import CORRUPTIONS, Corrupted, Corruption, SubsetCorruption
from corruptions.registry import BenchmarkError, DataError, PluginError, Registry

__all__ = [
    "CORRUPTIONS",
    "BenchmarkError",
    "Corrupted",
    "Corruption",
    "DataError",
    "PluginError",
    "Registry",
    "SubsetCorruption",
]
