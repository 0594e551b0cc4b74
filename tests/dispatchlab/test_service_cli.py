"""``dispatchlab serve | demo | keys``: bad storage and server options are one line, exit 2.

The commands hand their options to the service through the environment: each command runs
as a subprocess here (a data dir that is a file; ``serve`` on a bad ``DATABASE_URL``), the
other cases in this process (the ``run_here`` fixture of this folder's conftest: the
environment is the subprocess' own, put back afterwards, and a server that would start fails
the test), which skips the CLI's imports (~1.7 s of CPU per subprocess).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatchlab.cli import app
from tests.dispatchlab.conftest import RunHere

CLI = [sys.executable, "-c", "from dispatchlab.cli import main; main()"]


def _run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Exit status and stderr of ``dispatchlab argv`` (a server that starts is a failure)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHLAB_")}
    clean.pop("DATABASE_URL", None)
    proc = subprocess.run(
        [*CLI, *argv],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stderr


def _one_line(err: str, *needles: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_bad_database_url_is_one_line_before_anything_starts(run_here: RunHere) -> None:
    port = _closed_port()
    code, err = run_here(
        "keys", "list", "--database-url", f"postgresql://u:secret@127.0.0.1:{port}/db"
    )
    assert code == 2
    line = _one_line(err, "--database-url: cannot connect to", "Connection refused")
    assert "secret" not in line  # the password is not printed
    code, err = run_here("keys", "list", "--database-url", "foo://x")
    assert code == 2
    _one_line(err, "--database-url: unknown database kind 'foo'")
    code, err = run_here("keys", "create", "--role", "oms", "--database-url", "not a url")
    assert code == 2
    _one_line(err, "--database-url: not a database URL")
    # the service checked nothing: 4 workers printed a traceback each and the command exited 0
    env = {"DATABASE_URL": f"postgresql://u@127.0.0.1:{port}/db"}
    code, err = _run("serve", "--workers", "4", "--port", str(port), env=env)
    assert code == 2
    _one_line(err, "DATABASE_URL: cannot connect to")


def test_a_sqlite_file_in_a_missing_folder_is_one_line_and_makes_no_folder(
    tmp_path: Path, run_here: RunHere
) -> None:
    # the folders were made: a typo's '/nonexistent/x.db' left /nonexistent behind
    target = tmp_path / "missing" / "x.db"
    code, err = run_here("keys", "list", "--database-url", f"sqlite:///{target}")
    assert code == 2
    _one_line(err, f"--database-url: folder {target.parent} does not exist")
    assert not target.parent.exists()


@pytest.mark.parametrize("command", [["serve"], ["demo"], ["keys", "list"]])
def test_data_dir_that_is_a_file_is_one_line(tmp_path: Path, command: list[str]) -> None:
    # each command as a subprocess, as it is run (the other cases: in this process)
    a_file = tmp_path / "a.txt"
    a_file.write_text("x")
    code, err = _run(*command, "--data-dir", str(a_file))
    assert code == 2
    _one_line(err, f"--data-dir: {a_file} is not a folder")


@pytest.mark.parametrize("command", [["serve"], ["demo"], ["keys", "list"]])
def test_a_data_dir_whose_parent_is_missing_is_one_line_and_makes_no_folder(
    tmp_path: Path, command: list[str], run_here: RunHere
) -> None:
    # the missing parents were made: a typo's '--data-dir /srv/dispatchlb/data' built the
    # tree and served from an empty database
    target = tmp_path / "typo" / "deeper" / "data"
    port = ["--port", str(_closed_port())] if command[0] != "keys" else []
    code, err = run_here(*command, *port, "--data-dir", str(target))
    assert code == 2
    _one_line(err, f"--data-dir: the folder {target.parent} does not exist")
    assert not (tmp_path / "typo").exists()


def test_a_data_dir_setting_whose_parent_is_missing_is_one_line_and_makes_no_folder(
    tmp_path: Path, run_here: RunHere
) -> None:
    # (the same check of DISPATCHLAB_DATA_DIR, once: it ran in each command's case above)
    target = tmp_path / "typo" / "deeper" / "data"
    code, err = run_here("keys", "list", env={"DISPATCHLAB_DATA_DIR": str(target)})
    assert code == 2
    _one_line(err, f"DISPATCHLAB_DATA_DIR: the folder {target.parent} does not exist")
    assert not (tmp_path / "typo").exists()


def test_a_missing_data_dir_whose_parent_exists_is_made(tmp_path: Path, run_here: RunHere) -> None:
    target = tmp_path / "data"
    code, err = run_here("keys", "list", "--data-dir", str(target))
    assert code == 0, err
    assert (target / "dispatchlab.sqlite3").is_file()


@pytest.mark.parametrize("value", ["65", "1000000000000", "0"])
def test_serve_job_workers_is_bounded_before_anything_starts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    # 10**12 was taken: the job pool is sized from it (on Ray, as many warm-up tasks are
    # submitted at start); the option's range is checked by the parser, no server started
    import dispatchlab.cli.api as api_cli
    from dispatchlab.cli import main

    def serve(*args: object, **kwargs: object) -> None:
        pytest.fail(f"the server was started with --job-workers {value}")

    monkeypatch.setattr(api_cli, "_serve", serve)
    with pytest.raises(SystemExit) as info:
        main(["serve", "--job-workers", value])
    assert info.value.code == 2
    _one_line(
        capsys.readouterr().err,
        f"error: --job-workers: must be an integer from 1 to 64, got {value}",
    )


def test_the_job_workers_setting_has_the_options_bound(tmp_path: Path, run_here: RunHere) -> None:
    # DISPATCHLAB_JOB_WORKERS=10**12 was taken as the option was
    from api.core.config import MAX_JOB_WORKERS
    from dispatchlab.cli.api import MAX_JOB_WORKERS as OPTION_MAX

    assert MAX_JOB_WORKERS == OPTION_MAX
    code, err = run_here(
        "keys",
        "list",
        "--data-dir",
        str(tmp_path),
        env={"DISPATCHLAB_JOB_WORKERS": str(10**12)},
    )
    assert code == 2
    _one_line(err, "DISPATCHLAB_JOB_WORKERS: Input should be less than or equal to 64")


def _bad_value(annotation: object) -> str | None:
    """A value the environment may give that a setting of this type refuses (None: any)."""
    text = str(annotation)
    if "Path" in text or annotation is str or text in ("str | None", "typing.Optional[str]"):
        return None  # any string is a path or a URL: the service checks those itself
    return "not-a-value"


def _settings_cases() -> list[tuple[str, str, str]]:
    """(setting, variable, bad value) of every setting whose type can refuse a value."""
    from api.core.config import Settings, setting_env_name

    cases = []
    for name, info in Settings.model_fields.items():
        bad = _bad_value(info.annotation)
        if bad is not None:
            cases.append((name, setting_env_name(name, {}), bad))
    return cases


def test_every_setting_that_can_refuse_a_value_is_checked() -> None:
    names = {name for name, _, _ in _settings_cases()}
    assert {"job_workers", "job_executor", "auth_enabled", "demo_seed", "heartbeat_s"} <= names
    assert "data_dir" not in names and "database_url" not in names


@pytest.mark.parametrize(("name", "variable", "bad"), _settings_cases())
def test_a_bad_setting_names_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, variable: str, bad: str
) -> None:
    # the error named the settings field (job_workers), which no user sets
    from api.core.config import load_settings
    from scenarios.errors import InputError

    for key in list(os.environ):
        if key.startswith("DISPATCHLAB_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv(variable, bad)
    with pytest.raises(InputError) as info:
        load_settings()
    assert info.value.field == variable, (name, info.value.one_line())
    assert variable.startswith("DISPATCHLAB_") and name.upper() in variable


def test_a_settings_alias_is_named_as_given() -> None:
    from api.core.config import setting_env_name

    assert setting_env_name("database_url", {}) == "DATABASE_URL"
    assert setting_env_name("database_url", {"DISPATCHLAB_DATABASE_URL": "x"}) == (
        "DISPATCHLAB_DATABASE_URL"
    )
    assert setting_env_name("models_dir_override", {}) == "DISPATCHLAB_MODELS_DIR"
    assert setting_env_name("job_workers", {}) == "DISPATCHLAB_JOB_WORKERS"


@pytest.mark.parametrize("command", [["serve"], ["demo"], ["keys", "list"]])
def test_a_bad_environment_setting_is_one_line_naming_the_variable(
    tmp_path: Path, command: list[str], run_here: RunHere
) -> None:
    port = ["--port", str(_closed_port())] if command[0] != "keys" else []
    code, err = run_here(
        *command, *port, "--data-dir", str(tmp_path), env={"DISPATCHLAB_JOB_WORKERS": "abc"}
    )
    assert code == 2
    line = _one_line(err, "DISPATCHLAB_JOB_WORKERS: Input should be a valid integer")
    assert "job_workers:" not in line
    # lower case is read too (pydantic-settings ignores the case): named as documented
    code, err = run_here(
        *command, *port, "--data-dir", str(tmp_path), env={"dispatchlab_demo": "x"}
    )
    assert code == 2
    _one_line(err, "DISPATCHLAB_DEMO: Input should be a valid boolean")


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        # 70000 was announced as :70000 while uvicorn listened on 70000 % 65536 = 4464
        # as every option's range: Click's words were "Invalid value for '--port': Input
        # should be less than or equal to 65535 (try 'dispatchlab serve --help')"
        (
            ["serve", "--port", "70000"],
            ["error: --port: must be an integer from 0 to 65535, got 70000"],
        ),
        (["serve", "--port", "-1"], ["error: --port: must be an integer from 0 to 65535, got -1"]),
        (
            ["demo", "--port", "65536"],
            ["error: --port: must be an integer from 0 to 65535, got 65536"],
        ),
        # was a KeyError traceback from uvicorn's config
        (["serve", "--log-level", "foo"], ["'--log-level'", "'foo' is not one of", "'trace'"]),
    ],
)
def test_serve_port_and_log_level_are_checked(
    capsys: pytest.CaptureFixture[str], argv: list[str], needles: list[str]
) -> None:
    from dispatchlab.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    _one_line(capsys.readouterr().err, *needles)


def test_the_storage_check_leaves_the_settings_to_be_read_later(tmp_path: Path) -> None:
    from api.core.config import get_settings
    from dispatchlab.cli.api import _check_storage

    get_settings.cache_clear()
    _check_storage(tmp_path, None)
    # `serve --demo` sets DISPATCHLAB_DEMO after this check; a cached copy made here would
    # hide it from the service started in the same process (/v1/demo answered 404)
    assert get_settings.cache_info().currsize == 0


def test_serve_on_ray_checks_the_ray_address_first(tmp_path: Path, run_here: RunHere) -> None:
    """serve hung in ray.init (minutes of retries) on an address nobody answers at."""
    if find_spec("ray") is None:  # (not imported: the check needs only its presence)
        pytest.skip("ray is not installed")
    port = _closed_port()
    env = {"DISPATCHLAB_JOB_EXECUTOR": "ray", "DISPATCHLAB_RAY_ADDRESS": f"127.0.0.1:{port}"}
    code, err = run_here("serve", "--data-dir", str(tmp_path), "--port", str(port), env=env)
    assert code == 2
    _one_line(err, f"DISPATCHLAB_RAY_ADDRESS: no Ray cluster answers at 127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("name", "needle"),
    [("x" * 201, "at most 200 characters (got 201)"), ("a\x00b", "NUL")],
)
def test_a_key_name_the_database_cannot_keep_is_one_line(
    tmp_path: Path, name: str, needle: str
) -> None:
    """PostgreSQL refuses both (a traceback from the command; SQLite kept them): refused as
    over HTTP, before any database is touched."""
    args = ["keys", "create", "--role", "oms", "--name", name, "--data-dir", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    _one_line(result.stderr, "--name: ", needle)
    assert not (tmp_path / "dispatchlab.sqlite3").exists()
