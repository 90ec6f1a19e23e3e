"""Renderers for the sandbox: the interface in ``base``; implementations beside it."""
