"""The OpenRPC description: valid against the meta-schema, true to the registry, fresh on disk.

``fixtures/openrpc-schema.json`` is the OpenRPC meta-schema as released for OpenRPC
1.2.6 (the ``MetaSchemaJSON`` built into open-rpc/meta-schema's ``meta_schema.go``,
commit 235fca5), pretty-printed. It refers to JSON Schema draft-07 by its https URL,
which is mapped here to the draft-07 meta-schema that ``jsonschema`` ships, so that
validation never touches the network.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any, Literal

import jsonschema
import pytest
from referencing import Registry, Resource

from repohost import openrpc
from repohost.rpc.registry import all_methods
from tests.support.api import Api

META_SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "openrpc-schema.json").read_text())


def validate(doc: dict[str, Any]) -> None:
    draft7 = Resource.from_contents(jsonschema.Draft7Validator.META_SCHEMA)
    registry = Registry().with_resource("https://json-schema.org/draft-07/schema", draft7)
    jsonschema.Draft7Validator(META_SCHEMA, registry=registry).validate(doc)


def test_document_is_valid_openrpc() -> None:
    doc = openrpc.document()
    validate(doc)
    assert doc["openrpc"] in META_SCHEMA["properties"]["openrpc"]["enum"]
    for method in doc["methods"]:
        for schema in [p["schema"] for p in method["params"]] + [method["result"]["schema"]]:
            jsonschema.Draft7Validator.check_schema(schema)


def test_the_validation_catches_a_broken_document() -> None:
    """The vendored meta-schema really checks methods (guards against a lax copy)."""
    doc = openrpc.document()
    del doc["methods"][0]["result"]
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)
    with pytest.raises(jsonschema.ValidationError):
        validate({**openrpc.document(), "openrpc": "9.9.9"})
    doc = openrpc.document()
    doc["methods"][0]["params"][0]["schema"] = {"type": 5}  # checked against draft-07
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


def test_every_method_is_described_as_registered() -> None:
    doc = openrpc.document()
    methods = all_methods()
    assert [m["name"] for m in doc["methods"]] == list(methods)
    for entry in doc["methods"]:
        method = methods[entry["name"]]
        assert entry["paramStructure"] == "by-name"
        assert entry["summary"] == method.summary
        assert [(p["name"], p["required"]) for p in entry["params"]] == [
            (p.name, p.required) for p in method.params
        ]
        for described, param in zip(entry["params"], method.params, strict=True):
            if not param.required:
                assert described["schema"]["default"] == param.default
        assert entry["x-access"] == method.access
        assert entry["x-admin-only"] == method.admin_only
        assert entry["x-errors"] == list(method.errors)


def test_known_methods_in_detail() -> None:
    doc = {m["name"]: m for m in openrpc.document()["methods"]}
    get_user = doc["get_user"]
    assert get_user["params"] == [
        {
            "name": "userid",
            "required": False,
            "schema": {"type": ["integer", "string", "null"], "default": None},
        }
    ]
    assert get_user["result"] == {"name": "result", "schema": {"type": "object"}}
    assert "user `<userid>` does not exist" in get_user["x-errors"]
    assert doc["get_users"]["result"]["schema"] == {"type": "array", "items": {"type": "object"}}
    assert doc["test"]["params"][0] == {"name": "args", "required": True, "schema": {}}
    assert doc["show_ip"]["x-alias-of"] == "get_ip"
    assert "x-alias-of" not in doc["get_ip"]
    assert doc["rpc.discover"]["x-access"] == "any authenticated user"


@pytest.mark.parametrize(
    ("annotation", "schema"),
    [
        (int, {"type": "integer"}),
        (bool, {"type": "boolean"}),
        (str, {"type": "string"}),
        (float, {"type": "number"}),
        (dict, {"type": "object"}),
        (dict[str, Any], {"type": "object"}),
        (list, {"type": "array"}),
        (list[str], {"type": "array", "items": {"type": "string"}}),
        (Any, {}),
        (None, {"type": "null"}),
        (int | str, {"type": ["integer", "string"]}),
        (bool | None, {"type": ["boolean", "null"]}),
        (typing.Optional[int], {"type": ["integer", "null"]}),  # noqa: UP045 - the old spelling
        (Literal["all", "dirs", "files"], {"type": "string", "enum": ["all", "dirs", "files"]}),
        (Literal[1, "a"], {"enum": [1, "a"]}),
        (
            Literal["a", "b"] | None,
            {"anyOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "null"}]},
        ),
        (list[int | str], {"type": "array", "items": {"type": ["integer", "string"]}}),
        (Path, {}),
    ],
)
def test_schema_for(annotation: Any, schema: dict[str, Any]) -> None:
    assert openrpc.schema_for(annotation) == schema


def test_docs_copy_is_fresh() -> None:
    assert openrpc.DOCUMENT_PATH.read_text() == openrpc.render_document(openrpc.document()), (
        "run `python -m repohost.openrpc --write` and commit docs/openrpc.json"
    )


def test_readme_table_is_fresh() -> None:
    if not openrpc.README_PATH.exists():
        pytest.skip("no README.md yet")
    readme = openrpc.README_PATH.read_text()
    expected = openrpc.replace_table(readme, openrpc.render_table(openrpc.document()))
    if expected is None:
        pytest.skip("README.md has no method table markers yet")
    assert readme == expected, "run `python -m repohost.openrpc --write` and commit README.md"


def test_table_rows() -> None:
    table = openrpc.render_table(openrpc.document())
    lines = table.splitlines()
    assert lines[0] == "| Method | Arguments | Who may call | Summary |"
    assert len(lines) == 2 + len(all_methods())
    row = next(line for line in lines if line.startswith("| `create_user` |"))
    assert "| `username`, `email`, `[password]`," in row
    assert next(line for line in lines if line.startswith("| `show_ip` |")).endswith(
        "| Alias of `get_ip`. " + all_methods()["show_ip"].summary + " |"
    )


def test_write_touches_only_the_text_between_the_markers(tmp_path: Path) -> None:
    before = (
        "# Title\n\nIntro.\n\n<!-- methods:start -->\nold table\n<!-- methods:end -->\n\nEnd.\n"
    )
    (tmp_path / "README.md").write_text(before)
    done = openrpc.write(tmp_path)
    assert any("updated the method table" in line for line in done)
    after = (tmp_path / "README.md").read_text()
    table = openrpc.render_table(openrpc.document())
    assert after == before.replace("old table\n", table)
    doc = json.loads((tmp_path / "docs" / "openrpc.json").read_text())
    assert doc == openrpc.document()
    assert openrpc.write(tmp_path) == [f"wrote {tmp_path / 'docs' / 'openrpc.json'}"]


def test_write_without_markers_leaves_the_readme_alone(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# Title\n")
    done = openrpc.write(tmp_path)
    assert any(line.startswith("note:") for line in done)
    assert (tmp_path / "README.md").read_text() == "# Title\n"
    assert (tmp_path / "docs" / "openrpc.json").exists()


def test_write_without_readme(tmp_path: Path) -> None:
    done = openrpc.write(tmp_path)
    assert any(line.startswith("note:") for line in done)
    assert not (tmp_path / "README.md").exists()


def test_rpc_discover_serves_the_document(api: Api) -> None:
    assert api.call("rpc.discover") == json.loads(json.dumps(openrpc.document()))
    _uid, key = api.new_user("plain")
    assert api.as_user(key).call("rpc.discover")["openrpc"] == openrpc.OPENRPC_VERSION


def test_rpc_discover_takes_no_arguments(api: Api) -> None:
    assert api.error("rpc.discover", extra=1) == "Unknown `extra` arg in JSON DATA"
