"""Fixtures of the command-line tests."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

#: ``run_here(*argv, env=None)``: exit status and stderr of ``dispatchlab argv``
RunHere = Callable[..., tuple[int, str]]


@pytest.fixture
def run_here(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> RunHere:
    """``dispatchlab argv`` in this process: its exit status and stderr, under the environment
    a subprocess of test_service_cli's ``_run`` gets (put back afterwards); a server that
    would start fails the test."""
    import api.serve
    from api.core.config import get_settings
    from dispatchlab.cli import main

    def no_server(*args: object, **kwargs: object) -> None:
        pytest.fail("the server was started")

    monkeypatch.setattr(api.serve, "serve_workers", no_server)

    def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        saved = dict(os.environ)
        for key in list(os.environ):
            if key.startswith("DISPATCHLAB_") or key == "DATABASE_URL":
                del os.environ[key]
        os.environ.update(env or {})
        get_settings.cache_clear()
        capsys.readouterr()
        try:
            with pytest.raises(SystemExit) as info:
                main(list(argv))
        finally:
            os.environ.clear()
            os.environ.update(saved)
            get_settings.cache_clear()
        code = info.value.code
        assert isinstance(code, int)
        return code, capsys.readouterr().err

    return run
