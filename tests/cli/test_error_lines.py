"""The CLI's error lines come from the library errors' attributes, never from parsing their text."""

from __future__ import annotations

from pathlib import Path

import pytest

from chanjing_avatar import Client, InsecureBaseUrlError
from chanjing_avatar.cli._errors import ExitCode, describe


def test_insecure_base_url_names_the_host_without_the_library_advice(tmp_path: Path) -> None:
    with pytest.raises(InsecureBaseUrlError) as info:
        Client("a" * 8, "s" * 16, base_url="http://api.example.com", credentials_dir=tmp_path)
    assert info.value.host == "api.example.com"
    assert "allow_http=True" in str(info.value)  # the library's advice is for library users
    failure = describe(info.value)
    assert failure.code == ExitCode.USAGE
    assert "'api.example.com'" in failure.message and "allow_http" not in failure.message


def test_an_existing_output_is_named_with_the_option_to_replace_it(tmp_path: Path) -> None:
    from chanjing_avatar._core._download import output_exists

    error = output_exists(tmp_path / "out.mp4")
    assert error.filename == str(tmp_path / "out.mp4") and "overwrite=True" in str(error)
    failure = describe(error)
    assert failure.code == ExitCode.USAGE
    assert failure.message == f"{tmp_path / 'out.mp4'} exists; use --overwrite to replace it"
