"""GAN plugins: the `GAN` base class, its registry, networks and the built-ins."""

from gans import ambient as _ambient  # noqa: F401  (registers the built-ins)
from gans import vanilla as _vanilla  # noqa: F401
from gans.base import GAN, GANS

__all__ = ["GAN", "GANS"]
