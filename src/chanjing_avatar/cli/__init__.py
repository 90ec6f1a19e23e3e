"""The ``chanjing-avatar`` command."""


def main() -> None:
    import sys

    from .app import run

    sys.exit(run())
