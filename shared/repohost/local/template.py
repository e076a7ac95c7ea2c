"""Read the HTTP routes of a SAM ``template.yaml`` and match requests against them.

The local runner serves exactly what the template declares, so a route added to the
template is served by ``make run`` without a second list to keep in step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

DEFAULT_ROUTE = "$default"
DEFAULT_TIMEOUT = 3  # seconds: Lambda's default when the template sets none
DEFAULT_MEMORY_SIZE = 128  # MB: Lambda's default


class TemplateError(ValueError):
    """The template cannot be served locally (bad route, missing code location, ...)."""


@dataclass(frozen=True, slots=True)
class Tag:
    """A CloudFormation short-form intrinsic (``!Ref X`` is ``Tag("Ref", "X")``)."""

    name: str
    value: Any


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that keeps ``!Ref``, ``!Sub``, ... as :class:`Tag` instead of failing."""


def _construct_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> Tag:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return Tag(suffix, value)


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: str | Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template, short-form intrinsics included."""
    with Path(path).open(encoding="utf-8") as fh:
        doc = yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(doc, dict):
        raise TemplateError(f"{path}: not a CloudFormation template")
    return doc


@dataclass(frozen=True, slots=True)
class Route:
    """One ``HttpApi`` event of one function: what API Gateway would route to it."""

    method: str  # upper case; "ANY" matches every method
    path_template: str  # API Gateway syntax ("/repos/{name}/{path+}") or "$default"
    function_name: str  # the function's logical id in the template
    code_uri: Path  # absolute directory holding the handler module
    handler: str  # Lambda handler string, "module.function"
    timeout: int  # seconds
    memory_size: int = DEFAULT_MEMORY_SIZE
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", _parse_path_template(self.path_template))

    @property
    def route_key(self) -> str:
        """``requestContext.routeKey`` as API Gateway reports it ("POST /_admin/api")."""
        if self.path_template == DEFAULT_ROUTE:
            return DEFAULT_ROUTE
        return f"{self.method} {self.path_template}"


def _split(path: str) -> list[str]:
    return [] if path == "/" else path[1:].split("/")


def _parse_path_template(path: str) -> tuple[str, ...]:
    if path == DEFAULT_ROUTE:
        return ()
    if not path.startswith("/"):
        raise TemplateError(f"route path {path!r} must start with '/'")
    segments = tuple(_split(path))
    for i, seg in enumerate(segments):
        if seg.endswith("+}") and i != len(segments) - 1:
            raise TemplateError(f"route path {path!r}: a greedy variable must be last")
        if seg.startswith("{") != seg.endswith("}") or seg in ("{}", "{+}"):
            raise TemplateError(f"route path {path!r}: bad variable {seg!r}")
    return segments


def _resolve(value: Any, parameters: Mapping[str, Any]) -> Any:
    """Resolve ``!Ref Parameter`` to the parameter's Default; other values pass through."""
    if isinstance(value, Tag) and value.name == "Ref" and value.value in parameters:
        return parameters[value.value].get("Default")
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameters:
        return parameters[value["Ref"]].get("Default")
    return value


def _int_setting(function: str, settings: Mapping[str, Any], key: str, default: int) -> int:
    value = settings.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TemplateError(f"{function}: {key} must be a number, got {value!r}") from None


def routes_from_template(path: str | Path) -> list[Route]:
    """Every ``HttpApi`` route of every ``AWS::Serverless::Function`` in the template.

    ``Globals.Function`` supplies defaults for ``CodeUri``, ``Handler``, ``Timeout`` and
    ``MemorySize``; ``!Ref`` to a template parameter resolves to its ``Default``. An
    ``HttpApi`` event without ``Path`` and ``Method`` is the ``$default`` route, as in SAM.
    """
    template_path = Path(path).resolve()
    doc = load_template(template_path)
    parameters = doc.get("Parameters") or {}
    globals_fn = (doc.get("Globals") or {}).get("Function") or {}
    routes: list[Route] = []
    for name, resource in (doc.get("Resources") or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties") or {}
        settings = {  # the function's own properties win over Globals
            key: _resolve(value, parameters) for key, value in {**globals_fn, **props}.items()
        }
        events = [
            ev.get("Properties") or {}
            for ev in (props.get("Events") or {}).values()
            if isinstance(ev, dict) and ev.get("Type") == "HttpApi"
        ]
        if not events:
            continue
        code_uri, handler = settings.get("CodeUri"), settings.get("Handler")
        if not isinstance(code_uri, str) or not isinstance(handler, str):
            raise TemplateError(f"{name}: CodeUri and Handler must be plain strings to run locally")
        for ev in events:
            if str(ev.get("PayloadFormatVersion", "2.0")) != "2.0":
                raise TemplateError(f"{name}: only payload format 2.0 is supported")
            routes.append(
                Route(
                    method=str(ev.get("Method", "ANY")).upper(),
                    path_template=str(ev.get("Path", DEFAULT_ROUTE)),
                    function_name=name,
                    code_uri=(template_path.parent / code_uri).resolve(),
                    handler=handler,
                    timeout=_int_setting(name, settings, "Timeout", DEFAULT_TIMEOUT),
                    memory_size=_int_setting(name, settings, "MemorySize", DEFAULT_MEMORY_SIZE),
                )
            )
    return routes


def _match_segments(route: Route, parts: list[str]) -> dict[str, str] | None:
    """Path parameters (percent-decoded, as API Gateway passes them) or None."""
    params: dict[str, str] = {}
    for i, seg in enumerate(route.segments):
        if seg.endswith("+}"):
            rest = "/".join(parts[i:])
            if not rest:
                return None
            params[seg[1:-2]] = unquote(rest)
            return params
        if i >= len(parts) or not parts[i]:
            return None
        if seg.startswith("{"):
            params[seg[1:-1]] = unquote(parts[i])
        elif unquote(parts[i]) != seg:
            return None
    return params if len(parts) == len(route.segments) else None


def _specificity(route: Route) -> tuple[bool, bool, tuple[int, ...], bool]:
    """Sort key, most specific first.

    API Gateway picks a full match over a greedy match over ``$default``. Within those,
    segment by segment from the left, a literal beats a variable, which beats a greedy
    variable (so ``/pets/{proxy+}`` beats ``/{proxy+}``); then an explicit method beats
    ``ANY``.
    """
    greedy = bool(route.segments) and route.segments[-1].endswith("+}")
    kinds = tuple(
        2 if seg.endswith("+}") else 1 if seg.startswith("{") else 0 for seg in route.segments
    )
    return (
        route.path_template == DEFAULT_ROUTE,
        greedy,
        kinds,
        route.method == "ANY",
    )


def sort_routes(routes: Iterable[Route]) -> list[Route]:
    """Routes in the order :func:`match_route` tries them."""
    return sorted(routes, key=_specificity)


def match_route(
    routes: Iterable[Route], method: str, raw_path: str
) -> tuple[Route, dict[str, str]] | None:
    """The route API Gateway would pick for ``method raw_path``, with its path parameters.

    ``routes`` must be in :func:`sort_routes` order. ``ANY`` matches every method; an
    explicit ``GET`` route does not match ``HEAD`` (as on API Gateway HTTP APIs).
    """
    method = method.upper()
    parts = _split(raw_path)
    for route in routes:
        if route.method not in ("ANY", method):
            continue
        if route.path_template == DEFAULT_ROUTE:
            return route, {}
        params = _match_segments(route, parts)
        if params is not None:
            return route, params
    return None
