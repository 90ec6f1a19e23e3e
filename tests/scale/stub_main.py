"""``python tests/scale/stub_main.py sandbox serve|worker ...``: the CLI with the tests' fake
renderer registered as ``stub``, so that a deployment's processes render (and list voices) as the
contract tests' embedded sandbox does."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the fake renderer

from chanjing_avatar.cli import main
from chanjing_avatar.render import register_renderer
from sandbox.stub import stub_renderer

register_renderer("stub", stub_renderer)
main()
