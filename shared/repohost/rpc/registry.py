"""The method registry: typed functions in, JSON-RPC methods out.

A method is a plain function whose first parameter is the call context and
whose other parameters are the JSON-RPC ``args``. Its signature is the one
description of the method: required arguments are those without a default,
types come from the annotations, and the docstring's first line is its
summary. ``@api_method`` registers it; nothing else names it.
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from repohost.rpc.errors import JSONRPCError

MethodFunc = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    annotation: Any
    required: bool
    default: Any


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    func: MethodFunc
    params: tuple[Param, ...]
    #: Only callers with ``hg.admin`` may call it (checked before the method runs).
    admin_only: bool
    #: Who may call it, in words, for the API description.
    access: str
    summary: str
    #: The error strings the method itself may answer with, for the API description.
    errors: tuple[str, ...]

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


_methods: dict[str, Method] = {}


def api_method(
    *,
    name: str | None = None,
    admin_only: bool = False,
    access: str = "",
    aliases: tuple[str, ...] = (),
    errors: tuple[str, ...] = (),
) -> Callable[[MethodFunc], MethodFunc]:
    """Register the decorated function under ``name`` (default: its own) and ``aliases``."""

    def register(func: MethodFunc) -> MethodFunc:
        hints = typing.get_type_hints(func)
        signature = inspect.signature(func)
        params = tuple(
            Param(
                name=p.name,
                annotation=hints.get(p.name, Any),
                required=p.default is inspect.Parameter.empty,
                default=None if p.default is inspect.Parameter.empty else p.default,
            )
            for p in list(signature.parameters.values())[1:]  # the first is the context
        )
        summary = (inspect.getdoc(func) or "").split("\n\n")[0].replace("\n", " ")
        for method_name in (name or func.__name__, *aliases):
            _methods[method_name] = Method(
                name=method_name,
                func=func,
                params=params,
                admin_only=admin_only,
                access=access or ("admin" if admin_only else "any authenticated user"),
                summary=summary,
                errors=errors,
            )
        return func

    return register


def find_method(name: str) -> Method | None:
    """Return the method called ``name``, importing its module on first use.

    The generated index maps names to modules so that a cold Lambda imports
    only the module it needs.
    """
    method = _methods.get(name)
    if method is None:
        from repohost.methods._index import METHOD_MODULES

        module = METHOD_MODULES.get(name)
        if module is None:
            return None
        importlib.import_module(f"repohost.methods.{module}")
        method = _methods.get(name)
    return method


def all_methods() -> dict[str, Method]:
    """Every method, with every method module imported (for descriptions and tests)."""
    import pkgutil

    import repohost.methods

    for info in pkgutil.iter_modules(repohost.methods.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"repohost.methods.{info.name}")
    return dict(sorted(_methods.items()))


# --- argument checking ----------------------------------------------------------------------

_TRUE = {"true", "yes", "on", "1", "y", "t"}
_FALSE = {"false", "no", "off", "0", "n", "f", ""}


def _type_name(annotation: Any) -> str:
    names = {
        bool: "a boolean",
        int: "an integer",
        str: "a string",
        float: "a number",
        dict: "an object",
        list: "a list",
    }
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(_type_name(a) for a in options)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(annotation)))
    return names.get(origin or annotation, "a value")


def _coerce(value: Any, annotation: Any) -> Any:
    """Convert ``value`` to ``annotation`` or raise ``ValueError``.

    ``kallithea-api`` sends every value as a string, so strings that spell a
    boolean or an integer are accepted for those types (``"false"`` is false
    here, unlike in Kallithea where it is truthy).
    """
    if annotation is Any:
        return value
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        # Exact type matches first, so ``int | str`` keeps "12" a string.
        for option in options:
            if option is not type(None) and _is_instance(value, option):
                return value
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option)
            except ValueError:
                continue
        raise ValueError
    if origin is typing.Literal:
        if value in typing.get_args(annotation):
            return value
        raise ValueError
    if _is_instance(value, annotation):
        return value
    if annotation is bool:
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
    elif annotation is int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif annotation is float:
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    raise ValueError


def _is_instance(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    if origin is bool:
        return isinstance(value, bool)
    if origin in (int, float):
        return isinstance(value, origin) and not isinstance(value, bool)
    return isinstance(origin, type) and isinstance(value, origin)


def bind_arguments(method: Method, args: dict[str, Any]) -> dict[str, Any]:
    """Check ``args`` against the method's signature and return keyword arguments.

    Order and wording of the errors follow Kallithea 0.7: the last-declared
    missing required argument is named first, then unknown keys, then (a
    repohost addition) values of the wrong type, then strings holding NUL (which
    PostgreSQL cannot store, so no name could match). Explicit ``null`` means
    "not given" for optional arguments; for a required one it is a wrong type.
    """
    for param in reversed(method.params):
        if param.required and param.name not in args:
            raise JSONRPCError(f"Missing non optional `{param.name}` arg in JSON DATA")
    known = {p.name for p in method.params}
    unknown = [key for key in args if key not in known]
    if unknown:
        names = ", ".join(f"`{key}`" for key in unknown)
        raise JSONRPCError(f"Unknown {names} arg in JSON DATA")
    bound: dict[str, Any] = {}
    for param in method.params:
        if param.name not in args:
            continue
        value = args[param.name]
        if value is None and not param.required:
            continue
        try:
            bound[param.name] = _coerce(value, param.annotation)
        except ValueError:
            raise JSONRPCError(
                f"Incorrect type of `{param.name}` arg in JSON DATA:"
                f" expected {_type_name(param.annotation)}"
            ) from None
        text = bound[param.name]
        if isinstance(text, str) and "\x00" in text and param.annotation is not Any:
            # No name, id or text stored anywhere may hold one (PostgreSQL cannot store it).
            raise JSONRPCError(
                f"Incorrect value of `{param.name}` arg in JSON DATA:"
                " NUL characters are not allowed"
            )
    return bound
