"""Input files are read up to a size cap, so an endless or enormous one ends promptly."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios.errors import InputError
from scenarios.files import DEFAULT_MAX_INPUT_BYTES, MAX_INPUT_ENV, max_input_bytes, read_limited
from scenarios.io import load_scenario, read_json, read_plan
from scenarios.model import Scenario
from scenarios.variants import read_variants

DEV_ZERO = Path("/dev/zero")
needs_dev_zero = pytest.mark.skipif(not DEV_ZERO.exists(), reason="no /dev/zero here")


def test_without_an_override_the_cap_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_INPUT_ENV, raising=False)
    assert max_input_bytes() == DEFAULT_MAX_INPUT_BYTES
    monkeypatch.setenv(MAX_INPUT_ENV, "1_000")
    assert max_input_bytes() == 1000


@pytest.mark.parametrize("raw", ["abc", "0", "-5", "1.5"])
def test_a_bad_override_names_the_variable(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(MAX_INPUT_ENV, raw)
    with pytest.raises(InputError) as err:
        max_input_bytes()
    assert err.value.field == MAX_INPUT_ENV
    assert repr(raw) in err.value.reason


@settings(
    max_examples=40,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(size=st.integers(0, 300), cap=st.integers(1, 200))
def test_a_file_is_read_whole_up_to_the_cap_and_refused_past_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, cap: int
) -> None:
    monkeypatch.setenv(MAX_INPUT_ENV, str(cap))
    path = tmp_path / "input.bin"
    path.write_bytes((bytes(range(256)) * 2)[:size])
    if size <= cap:
        assert read_limited(path) == path.read_bytes()
    else:
        with pytest.raises(InputError) as err:
            read_limited(path, field="plan")
        assert (err.value.source, err.value.field) == (str(path), "plan")
        assert f"larger than the {cap:,} bytes" in err.value.reason
        assert MAX_INPUT_ENV in err.value.reason


@needs_dev_zero
@pytest.mark.parametrize("fmt", ["json", "solomon", "lilim", "vrplib", "vroom"])
def test_an_endless_scenario_stops_at_the_cap(monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    monkeypatch.setenv(MAX_INPUT_ENV, "4096")
    with pytest.raises(InputError) as err:
        load_scenario(DEV_ZERO, fmt)
    assert err.value.source == str(DEV_ZERO)
    assert "larger than the 4,096 bytes" in err.value.reason


@needs_dev_zero
def test_endless_plans_requests_and_variant_files_stop_at_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(MAX_INPUT_ENV, "4096")
    for read in (read_plan, lambda p: read_json(Scenario, p), read_variants):
        with pytest.raises(InputError, match="larger than the 4,096 bytes"):
            read(DEV_ZERO)


@needs_dev_zero
def test_the_format_of_a_device_is_not_guessed() -> None:
    # its first lines cannot be read twice (a FIFO): a clear error, not a hang
    with pytest.raises(InputError) as err:
        load_scenario(DEV_ZERO)
    assert err.value.field == "format" and "pass --format" in err.value.reason


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_a_zip_is_read_under_the_cap_and_must_unpack_under_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scenarios.files import read_zip_limited

    monkeypatch.setenv(MAX_INPUT_ENV, "10000")
    small = _zip(tmp_path / "small.zip", {"a": b"x" * 100})
    assert read_zip_limited(small) == small.read_bytes()
    # a few hundred bytes that unpack to 50 kB: a zip bomb in miniature
    bomb = _zip(tmp_path / "bomb.npz", {"a.npy": b"0" * 30_000, "b.npy": b"0" * 20_000})
    assert bomb.stat().st_size < 10_000
    with pytest.raises(InputError) as err:
        read_zip_limited(bomb, field="demos")
    assert (err.value.source, err.value.field) == (str(bomb), "demos")
    assert "unpacks to 50,000 bytes, more than the 10,000 bytes" in err.value.reason
    big = tmp_path / "big.zip"
    big.write_bytes(b"PK" + b"\0" * 20_000)
    with pytest.raises(InputError, match="larger than the 10,000 bytes") as err:
        read_zip_limited(big, field="model")
    assert err.value.source == str(big)


@pytest.mark.parametrize("content", [b"", b"[]", b"PK\x03\x04 broken", b"\x93NUMPY"])
def test_a_file_that_is_no_zip_names_itself(tmp_path: Path, content: bytes) -> None:
    from scenarios.files import read_zip_limited

    path = tmp_path / "m.zip"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_zip_limited(path, field="model")
    assert err.value.one_line() == f"{path}: model: is not a zip file"


@needs_dev_zero
def test_an_endless_zip_stops_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    from scenarios.files import read_zip_limited

    monkeypatch.setenv(MAX_INPUT_ENV, "4096")
    with pytest.raises(InputError, match="larger than the 4,096 bytes"):
        read_zip_limited(DEV_ZERO, field="model")


def test_a_stream_is_read_whole_up_to_the_cap_and_refused_past_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Standard input (``dispatchlab allocate -``) is capped as a file is."""
    import io

    from scenarios.files import read_stream_limited

    monkeypatch.setenv(MAX_INPUT_ENV, "8")
    assert read_stream_limited(io.BytesIO(b"12345678"), source="<stdin>") == b"12345678"
    with pytest.raises(InputError) as caught:
        read_stream_limited(io.BytesIO(b"123456789"), source="<stdin>")
    assert caught.value.source == "<stdin>" and "larger than the 8 bytes" in caught.value.reason
