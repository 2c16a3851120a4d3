from __future__ import annotations

import pytest

from corruptions import CORRUPTIONS, Corruption, PluginError, Registry


class _Base:
    pass


class _Plugin(_Base):
    def __init__(self, *, strength: float = 1.0) -> None:
        self.strength = strength


def test_registry_register_and_create() -> None:
    registry: Registry[_Base] = Registry("thing", _Base)
    registry.register("my_plugin")(_Plugin)
    assert registry.names() == ["my_plugin"]
    assert registry.create("my_plugin", {"strength": 2.0}).strength == 2.0
    assert [(p.name, p.default) for p in registry.parameters("my_plugin")] == [("strength", 1.0)]


@pytest.mark.parametrize("name", ["", "Bad-Name", "2fast", None])
def test_registry_rejects_invalid_names(name: object) -> None:
    registry: Registry[_Base] = Registry("thing", _Base)
    with pytest.raises(PluginError, match=r"thing name .* is invalid; use snake_case"):
        registry.add(name, _Plugin)  # type: ignore[arg-type]


def test_registry_rejects_duplicates() -> None:
    registry: Registry[_Base] = Registry("thing", _Base)
    registry.add("one", _Plugin)
    with pytest.raises(PluginError, match=r"thing name 'one' is registered already"):
        registry.add("one", _Plugin)


def test_registry_rejects_wrong_base_class() -> None:
    registry: Registry[_Base] = Registry("thing", _Base)
    with pytest.raises(PluginError, match=r"thing 'x' must be a subclass of _Base"):
        registry.add("x", dict)  # type: ignore[arg-type]


def test_registry_unknown_name_suggests_closest() -> None:
    with pytest.raises(
        PluginError,
        match=r"unknown corruption 'gausian' \(did you mean 'gaussian'\?\); "
        r"registered: block_pixels, contamination, emnist, gaussian",
    ):
        CORRUPTIONS.get("gausian")


def test_registry_unknown_parameter_lists_accepted() -> None:
    with pytest.raises(
        PluginError,
        match=r"corruption 'gaussian' has no parameter 'noise' \(did you mean 'noise_std'\?\); "
        r"accepted: blur_sigma, noise_std",
    ):
        CORRUPTIONS.create("gaussian", {"noise": 0.1})


def test_registry_holds_only_corruptions() -> None:
    assert all(issubclass(CORRUPTIONS.get(name), Corruption) for name in CORRUPTIONS)
