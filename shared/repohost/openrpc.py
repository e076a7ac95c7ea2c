"""The API described as an OpenRPC document, generated from the method registry.

The registry's signatures are the only description of the methods: this module
turns them into OpenRPC 1.2.6 (served by ``rpc.discover``, kept in
``docs/openrpc.json``) and the README's method table. Regenerate both with
``python -m repohost.openrpc --write``; a test fails when either is stale.

OpenRPC assumes JSON-RPC 2.0; Kallithea's envelope differs, which the document
says in ``info.description`` and ``x-envelope``. Kallithea's errors are plain
strings without codes, so they are listed in ``x-errors`` rather than in
OpenRPC's ``errors`` (whose objects require a numeric code).
"""

from __future__ import annotations

import argparse
import inspect
import json
import types
import typing
from pathlib import Path
from typing import Any

from repohost import __version__
from repohost.rpc.registry import Method, Param, all_methods

OPENRPC_VERSION = "1.2.6"
ROOT = Path(__file__).resolve().parents[2]
DOCUMENT_PATH = ROOT / "docs" / "openrpc.json"
README_PATH = ROOT / "README.md"
TABLE_START = "<!-- methods:start -->"
TABLE_END = "<!-- methods:end -->"

DESCRIPTION = """\
A Kallithea-compatible JSON-RPC API. Every call is an HTTP POST to `<host>/_admin/api` \
whose body is the JSON object `{"id": ..., "api_key": "...", "method": "...", \
"args": {...}}` (not JSON-RPC 2.0: arguments go in `args`, always by name). The key may \
instead be sent as `Authorization: Bearer <key>`, omitting `api_key`. Every answer is \
HTTP 200 with `{"id": <echoed>, "result": ..., "error": null}` or `{"id": <echoed>, \
"result": null, "error": "<message>"}`; the messages a method may answer with are in its \
`x-errors`, besides the dispatcher's own ("Invalid API key", "Missing non optional \
... arg in JSON DATA", ...). Arguments typed boolean or integer also accept strings \
that spell one (`"true"`, `"false"`, `"5"`), as `kallithea-api` sends every value as a \
string."""

_SIMPLE_TYPES: dict[Any, str] = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    dict: "object",
    list: "array",
    tuple: "array",
    type(None): "null",
}


def schema_for(annotation: Any) -> dict[str, Any]:
    """A JSON Schema for a parameter or return annotation; ``{}`` (any value) if unknown."""
    if annotation is None:
        annotation = type(None)
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        options = [schema_for(option) for option in typing.get_args(annotation)]
        if all(set(option) == {"type"} for option in options):
            names: list[str] = []
            for option in options:
                kinds = option["type"]
                names.extend(kinds if isinstance(kinds, list) else [kinds])
            return {"type": list(dict.fromkeys(names))}
        return {"anyOf": options}
    if origin is typing.Literal:
        values = list(typing.get_args(annotation))
        kinds = {_SIMPLE_TYPES.get(type(value)) for value in values}
        return {"type": kinds.pop(), "enum": values} if len(kinds) == 1 else {"enum": values}
    if origin in (list, tuple) and typing.get_args(annotation):
        item = typing.get_args(annotation)[0]
        return {"type": "array", "items": schema_for(item)}
    kind = _SIMPLE_TYPES.get(origin or annotation)
    return {"type": kind} if kind else {}


def _param(param: Param) -> dict[str, Any]:
    schema = schema_for(param.annotation)
    if not param.required:
        json.dumps(param.default)  # a default must be JSON to be described (TypeError if not)
        schema["default"] = param.default
    return {"name": param.name, "required": param.required, "schema": schema}


def _description(method: Method) -> str:
    """The docstring after its summary paragraph, paragraphs kept, lines joined."""
    paragraphs = (inspect.getdoc(method.func) or "").split("\n\n")[1:]
    return "\n\n".join(p.replace("\n", " ") for p in paragraphs)


def _primary_names(methods: dict[str, Method]) -> dict[int, str]:
    """For functions registered under several names: the one named like the function."""
    return {id(m.func): name for name, m in methods.items() if name == m.func.__name__}


def _method(method: Method, primary: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": method.name, "summary": method.summary}
    description = _description(method)
    if description:
        entry["description"] = description
    entry["paramStructure"] = "by-name"
    entry["params"] = [_param(p) for p in method.params]
    entry["result"] = {
        "name": "result",
        "schema": schema_for(typing.get_type_hints(method.func).get("return", Any)),
    }
    entry["x-access"] = method.access
    entry["x-admin-only"] = method.admin_only
    entry["x-errors"] = list(method.errors)
    if primary is not None and primary != method.name:
        entry["x-alias-of"] = primary
    return entry


def document() -> dict[str, Any]:
    """The OpenRPC document for every registered method, ordered by name."""
    methods = all_methods()
    primary = _primary_names(methods)
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {
            "title": "repohost (Kallithea-compatible JSON-RPC API)",
            "version": __version__,
            "description": DESCRIPTION,
        },
        "methods": [_method(m, primary.get(id(m.func))) for m in methods.values()],
        "x-envelope": {
            "endpoint": "/_admin/api",
            "request": ["id", "api_key", "method", "args"],
            "response": ["id", "result", "error"],
        },
    }


def render_document(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def argument_synopsis(method: dict[str, Any]) -> str:
    """``name [optional]`` for each parameter of an OpenRPC method object."""
    return " ".join(p["name"] if p["required"] else f"[{p['name']}]" for p in method["params"])


def render_table(doc: dict[str, Any]) -> str:
    """The README's method reference, one row per method of the document."""
    lines = ["| Method | Arguments | Who may call | Summary |", "| --- | --- | --- | --- |"]
    for method in doc["methods"]:
        arguments = ", ".join(f"`{a}`" for a in argument_synopsis(method).split())
        summary = method["summary"]
        if "x-alias-of" in method:
            summary = f"Alias of `{method['x-alias-of']}`. {summary}"
        lines.append(
            f"| `{method['name']}` | {_cell(arguments)} | {_cell(method['x-access'])}"
            f" | {_cell(summary)} |"
        )
    return "\n".join(lines) + "\n"


def replace_table(readme: str, table: str) -> str | None:
    """``readme`` with the text between the markers replaced; None if a marker is missing."""
    start = readme.find(TABLE_START)
    end = readme.find(TABLE_END, start + len(TABLE_START)) if start >= 0 else -1
    if start < 0 or end < 0:
        return None
    head = readme[: start + len(TABLE_START)]
    return f"{head}\n{table}{readme[end:]}"


def write(root: Path = ROOT) -> list[str]:
    """Write ``docs/openrpc.json`` and the README table under ``root``; return what was done."""
    doc = document()
    target = root / DOCUMENT_PATH.relative_to(ROOT)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_document(doc))
    done = [f"wrote {target}"]
    readme = root / README_PATH.relative_to(ROOT)
    text = readme.read_text() if readme.exists() else ""
    updated = replace_table(text, render_table(doc))
    if updated is None:
        done.append(f"note: {readme} lacks {TABLE_START} ... {TABLE_END}; table not written")
    elif updated != text:
        readme.write_text(updated)
        done.append(f"updated the method table in {readme}")
    return done


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m repohost.openrpc",
        description="Print the OpenRPC document, or --write it and the README method table.",
    )
    parser.add_argument(
        "--write", action="store_true", help="write docs/openrpc.json and the README table"
    )
    args = parser.parse_args(argv)
    if args.write:
        for line in write():
            print(line)
    else:
        print(render_document(document()), end="")


if __name__ == "__main__":
    main()
