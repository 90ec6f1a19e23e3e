from .fakes import clock, ctx, store  # noqa: F401 - fixtures
