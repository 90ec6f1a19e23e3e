"""chanjing-avatar: a client for Chanjing's lip-sync Open API, with a local sandbox."""

from ._version import __version__

__all__ = ["__version__"]
