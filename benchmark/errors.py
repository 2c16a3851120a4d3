"""The project's user-facing errors; every one derives from `BenchmarkError`."""

from __future__ import annotations

from corruptions.registry import BenchmarkError, DataError, PluginError


class ConfigError(BenchmarkError, ValueError):
    """A matrix file, preset or command-line option is invalid."""


class StoreError(BenchmarkError):
    """A run directory cannot be used."""


__all__ = ["BenchmarkError", "ConfigError", "DataError", "PluginError", "StoreError"]
