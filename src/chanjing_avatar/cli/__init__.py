"""The ``chanjing-avatar`` command."""


def main() -> None:
    from .app import run

    run()
