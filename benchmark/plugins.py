"""Loading users' plugin files (`--plugin FILE`) and describing what is registered."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import sys
from pathlib import Path

from benchmark.errors import ConfigError
from corruptions import CORRUPTIONS
from corruptions.registry import Registry
from gans import GANS

logger = logging.getLogger(__name__)


def import_plugin_file(path: Path) -> None:
    """Import a Python file so that its `@CORRUPTIONS.register` / `@GANS.register` decorators run.

    Raises:
        ConfigError: if the file does not exist, is not a .py file, or fails to import.
    """
    path = Path(path)
    if path.suffix != ".py" or not path.is_file():
        raise ConfigError(f"--plugin {str(path)!r} is not an existing .py file")
    resolved = path.resolve()
    module_name = (
        f"benchmark_plugin_{path.stem}_{hashlib.sha1(str(resolved).encode()).hexdigest()[:8]}"
    )
    if module_name in sys.modules:
        return  # imported already: registering twice would be a duplicate
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[module_name]
        raise ConfigError(
            f"--plugin {str(path)!r} failed to import: {type(err).__name__}: {err}"
        ) from err
    logger.info("plugin file=%s imported", path)


def describe_plugins() -> str:
    """Every registered corruption and GAN with its description, parameters and defaults."""
    sections = []
    for title, registry in (("corruptions", CORRUPTIONS), ("gans", GANS)):
        sections.append(f"{title}:")
        sections.extend(_describe(registry, name) for name in registry.names())
    return "\n".join(sections) + "\n"


def _describe(registry: Registry, name: str) -> str:
    cls = registry.get(name)
    params = ", ".join(f"{p.name}={p.default!r}" for p in registry.parameters(name))
    lines = [f"  {name}: {cls.description or (cls.__doc__ or '').strip().splitlines()[0]}"]
    lines.append(f"      params: {params or 'none'}")
    return "\n".join(lines)
