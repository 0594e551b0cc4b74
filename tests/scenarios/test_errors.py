"""``scenarios.errors``: errors keep their field, reason and source across processes."""

from __future__ import annotations

import pickle

from hypothesis import given
from hypothesis import strategies as st

from scenarios.errors import FieldError, InputError


@given(
    field=st.text(max_size=30),
    reason=st.text(max_size=60),
    source=st.none() | st.text(max_size=30),
)
def test_an_input_error_survives_pickling(field: str, reason: str, source: str | None) -> None:
    # a worker process of the twin's pool raised one: unpickling it called InputError(message)
    # and broke the pool, so `simulate --plan` printed a traceback (BrokenProcessPool), exit 1
    err = InputError(field, reason, source=source)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is InputError
    assert (back.field, back.reason, back.source) == (field, reason, source)
    assert str(back) == str(err) == err.one_line()


def test_a_field_error_survives_pickling() -> None:
    back = pickle.loads(pickle.dumps(FieldError(("orders", 0, "id"), "duplicate id 'o1'")))
    assert back.path == ("orders", 0, "id") and back.reason == "duplicate id 'o1'"
