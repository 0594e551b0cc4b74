"""The ``dispatchlab`` entry point: usage errors are one line on stderr with exit code 2."""

from __future__ import annotations

import pytest

from dispatchlab.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    code = info.value.code
    assert isinstance(code, int)
    return code, out, err


def test_bad_option_value_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "scenario", "generate", "--seed", "1", "--orders", "abc")
    assert code == 2
    assert "Traceback" not in err
    assert "'--orders'" in err and "valid integer" in err
    assert "dispatchlab scenario generate --help" in " ".join(err.split())


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "nosuch")
    assert code == 2
    assert "No such command 'nosuch'" in err


def test_bad_input_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "scenario", "show", "/nonexistent/file.json")
    assert code == 2
    assert "file not found" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "version")
    assert code == 0
    assert out.strip().count(".") == 2
