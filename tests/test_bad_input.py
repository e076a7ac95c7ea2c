"""Bad input of every kind gets a well-formed envelope, and nothing is half-written.

The cases come from the registry, so a new method is covered the day it is added.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.support.api import Api

ISSUE2_AREAS = {"server", "users", "user_groups", "api_keys"}
#: Cases per method: a quick run in ``make test``, ``make fuzz`` for the deep one.
FUZZ_EXAMPLES = int(os.environ.get("REPOHOST_FUZZ_EXAMPLES", "25"))


def methods() -> list[Any]:
    from repohost.rpc.registry import all_methods

    return [
        m for m in all_methods().values() if m.func.__module__.rsplit(".", 1)[1] in ISSUE2_AREAS
    ]


def row_counts() -> dict[str, int]:
    from repohost.db.engine import transaction
    from repohost.db.models import Base

    with transaction() as session:
        return {
            t.name: session.scalar(select(func.count()).select_from(t))
            for t in Base.metadata.sorted_tables
        }


WRONG_VALUES = ([["list"]], {"an": "object"}, 1.5)


def _wrong_for(annotation: Any) -> Any:
    """A JSON value no parameter of this type accepts (Any accepts everything)."""
    text = str(annotation)
    if annotation is Any or "Any" in text:
        return None
    return next(v for v in WRONG_VALUES if type(v).__name__ not in text)


WRONG_TYPE_CASES = [
    (m.name, p.name)
    for m in methods()
    for p in m.params
    if _wrong_for(p.annotation) is not None and "float" not in str(p.annotation)
]


@pytest.mark.parametrize(("method", "param"), WRONG_TYPE_CASES)
def test_wrong_type_for_every_argument(lambda_api: Api, method: str, param: str) -> None:
    from repohost.rpc.registry import find_method

    spec = find_method(method)
    assert spec is not None
    args = {p.name: "1" for p in spec.params if p.required}
    args[param] = _wrong_for(spec.param(param).annotation)
    before = row_counts()
    error = lambda_api.error(method, **args)
    assert error.startswith(f"Incorrect type of `{param}` arg in JSON DATA: expected ")
    assert row_counts() == before


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


@pytest.mark.parametrize("method", [m.name for m in methods()])
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_fuzzed_arguments_never_break_the_envelope(
    lambda_api: Api, method: str, data: st.DataObject
) -> None:
    from repohost.rpc.registry import find_method

    spec = find_method(method)
    assert spec is not None
    names = [p.name for p in spec.params] + ["unexpected"]
    args = data.draw(st.dictionaries(st.sampled_from(names), json_values, max_size=len(names)))
    before = row_counts()
    envelope = lambda_api.envelope(method, args)
    assert envelope["error"] != "Internal server error", (method, args)
    if envelope["error"] is not None:
        assert envelope["result"] is None
        assert row_counts() == before, (method, args, envelope)
    json.dumps(envelope)
