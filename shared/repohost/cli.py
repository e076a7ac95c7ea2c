"""``kallithea-api``: Kallithea's command-line API client, compatible, with a few additions.

Everything a script written for Kallithea's command does works the same:
options, the config file, ``key:value`` arguments sent as strings, and the
output. The additions: a non-zero exit status on every failure, the key and
host from the environment, ``help [METHOD]`` from the server's ``rpc.discover``,
``download URL``, and plain messages for network trouble.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from repohost.client import (
    ApiError,
    ClientError,
    DownloadFailed,
    KallitheaClient,
    TransportError,
)

PROG = "kallithea-api"
DEFAULT_CONFIG = "~/.config/kallithea"
ENV_KEY = "KALLITHEA_API_KEY"
ENV_HOST = "KALLITHEA_API_HOST"

EXIT_OK = 0
EXIT_API_ERROR = 1  # the server answered with an error (or refused a download)
EXIT_USAGE = 2  # bad command line, missing key or host
EXIT_NETWORK = 3  # no usable answer: connection, timeout, not JSON, id mismatch
EXIT_LOCAL = 4  # a local file could not be read or written

USAGE = f"""\
{PROG} [-h] [--format=FORMAT] [--apikey=APIKEY] [--apihost=APIHOST] [--config=CONFIG] \
[--save-config] METHOD <key:val> <key2:val> ...
       {PROG} help [METHOD]
       {PROG} download URL [-o FILE]
Create config file: {PROG} --apikey=<key> --apihost=https://your.server --save-config"""

EPILOG = f"""\
arguments:
  key:value is split at the first ":", so values may contain colons. Every value is
  sent as a JSON string, as Kallithea's command does; the server converts strings that
  spell a boolean (e.g. "true", "false", "1", "0") or an integer ("5", "-1") for
  arguments of those types.

environment:
  {ENV_KEY}, {ENV_HOST}  the key and host when --apikey/--apihost are not
  given; they win over the config file (keeps the key out of shell history).

exit status:
  {EXIT_OK} success; {EXIT_API_ERROR} the server answered with an error or refused a \
download;
  {EXIT_USAGE} usage error; {EXIT_NETWORK} network or protocol error (no connection, \
timeout,
  an answer that is not JSON); {EXIT_LOCAL} a local file could not be read or written."""

DOWNLOAD_HELP = f"""\
usage: {PROG} download URL [-o FILE]

Fetch a raw file or archive URL of the API host (or a path on it, e.g.
/team/app/archive/tip.zip) with the key sent as "Authorization: Bearer", never in
the URL. A redirect to other storage (S3) is followed without the key. The file is
named as the server says unless -o names a file or a folder; -o - writes to stdout.
Progress goes to stderr: a bar on a terminal, else one summary line."""

TYPING_NOTE = (
    'Every value is sent as a string; the server converts "true"/"false" and digits'
    " for boolean and integer arguments."
)


class _Usage(Exception):
    """A command-line mistake: usage and message on stderr, exit 2 (as argparse)."""


class _Failure(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _Usage(message)


def _parser() -> _Parser:
    parser = _Parser(
        prog=PROG,
        usage=USAGE,
        description="Kallithea API cli (repohost)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    parser.add_argument("-h", "--help", action="store_true", help="show this help and the methods")
    config = parser.add_argument_group("config")
    config.add_argument("--apikey", help=f"api access key (default: ${ENV_KEY})")
    config.add_argument(
        "--apihost", help=f"api host, e.g. https://code.example.com (default: ${ENV_HOST})"
    )
    config.add_argument(
        "--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)"
    )
    config.add_argument(
        "--save-config", action="store_true", help="save the given config into a file"
    )
    api = parser.add_argument_group("API")
    api.add_argument(
        "method",
        metavar="METHOD",
        nargs="?",
        help="API method name to call followed by key:value attributes",
    )
    api.add_argument(
        "--format",
        choices=("pretty", "text", "json"),
        default="pretty",
        help="output format: pretty (default; text is the same) or json",
    )
    api.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the server (default: %(default)g)",
    )
    api.add_argument(
        "-o", "--output", help="download: the file or folder to write to, - for stdout"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit status (see EPILOG)."""
    parser = _parser()
    try:
        args, rest = parser.parse_known_args(argv)
        return _run(parser, args, rest)
    except _Usage as exc:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _Failure as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.status
    except DownloadFailed as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_API_ERROR
    except TransportError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_NETWORK
    except OSError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_LOCAL


def _run(parser: _Parser, args: argparse.Namespace, rest: list[str]) -> int:
    config_path = Path(os.path.expanduser(args.config))
    apikey = args.apikey or os.environ.get(ENV_KEY)
    apihost = args.apihost or os.environ.get(ENV_HOST)
    if args.save_config:
        if not (apikey and apihost):
            raise _Usage("--save-config requires --apikey and --apihost")
        return _save_config(config_path, apikey, apihost)

    config = _load_config(config_path)
    apikey = apikey or config.get("apikey")
    apihost = apihost or config.get("apihost")
    if args.help or args.method == "help":
        return _help(parser, args, rest, apikey, apihost)
    if not (apikey and apihost):
        raise _Usage("Could not find config file and missing --apikey or --apihost in params")
    if not args.method:
        raise _Usage("Please specify method name")
    client = _client(apihost, apikey, args.timeout)
    if args.method == "download":
        return _download(client, args.output, rest)
    if args.output is not None:
        raise _Usage("-o/--output is only for download")

    arguments: dict[str, str] = {}
    for token in rest:
        key, colon, value = token.partition(":")
        if not colon:
            print(f"Error parsing arguments: {token!r} is not key:value", file=sys.stderr)
            return EXIT_USAGE
        arguments[key] = value

    pretty = args.format != "json"
    if pretty:
        print(f"Calling method {args.method} => {apihost}", flush=True)
    try:
        result = client.call(args.method, **arguments)
    except ApiError as exc:
        _print_response(exc.error, pretty, error=True)
        return EXIT_API_ERROR
    _print_response(result, pretty, error=False)
    return EXIT_OK


def _client(apihost: str, apikey: str, timeout: float) -> KallitheaClient:
    try:
        return KallitheaClient(apihost, apikey, timeout=timeout)
    except ValueError as exc:  # not an http(s) URL
        raise _Usage(str(exc)) from None


def _print_response(value: Any, pretty: bool, *, error: bool) -> None:
    """Kallithea's output: pretty has a header and indents; json is the bare value."""
    if pretty:
        prefix = "ERROR:" if error else ""
        print(f"Server response \n{prefix}{json.dumps(value, indent=4, sort_keys=True)}")
    else:
        print(json.dumps(value))


# --- config file ------------------------------------------------------------------------------


def _load_config(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _Failure(f"{path} is not a JSON config file: {exc}", EXIT_LOCAL) from None
    if not isinstance(data, dict):
        raise _Failure(f"{path} is not a JSON object", EXIT_LOCAL)
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _save_config(path: Path, apikey: str, apihost: str) -> int:
    """Write the config atomically as a new file of mode 0600 (it holds a credential)."""
    existed = path.exists()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as file:
            json.dump({"apikey": apikey, "apihost": apihost}, file, indent=4)
            file.write("\n")
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    print(f"{'Updated' if existed else 'Created new'} config in {path}")
    return EXIT_OK


# --- help -------------------------------------------------------------------------------------


def _help(
    parser: _Parser,
    args: argparse.Namespace,
    rest: list[str],
    apikey: str | None,
    apihost: str | None,
) -> int:
    """``--help`` always succeeds (the method list is a bonus); ``help`` needs the server."""
    names = rest if args.method in ("help", None) else [args.method, *rest]
    if len(names) > 1:
        raise _Usage("help takes at most one METHOD")
    if names and names[0] == "download":
        print(DOWNLOAD_HELP)
        return EXIT_OK
    if args.help and not names:
        parser.print_help()
        print()
        if not (apikey and apihost):
            print("Give --apihost and --apikey (or save them with --save-config) to list")
            print("the methods of your server here.")
            return EXIT_OK
        try:
            return _print_methods(_describe(apihost, apikey, args.timeout), apihost)
        except ClientError as exc:
            print(f"{PROG}: could not list the server's methods: {exc}", file=sys.stderr)
            return EXIT_OK
    if not (apikey and apihost):
        raise _Usage("Could not find config file and missing --apikey or --apihost in params")
    try:
        doc = _describe(apihost, apikey, args.timeout)
    except ApiError as exc:
        raise _Failure(
            f"the server does not describe its methods (rpc.discover: {exc})", EXIT_API_ERROR
        ) from None
    if not names:
        return _print_methods(doc, apihost)
    method = next((m for m in doc["methods"] if m["name"] == names[0]), None)
    if method is None:
        raise _Usage(f"the server has no method {names[0]!r} (`{PROG} help` lists them)")
    _print_method(method)
    return EXIT_OK


def _describe(apihost: str, apikey: str, timeout: float) -> dict[str, Any]:
    """The server's OpenRPC document (ApiError from a Kallithea server, which has none)."""
    return _client(apihost, apikey, timeout).call("rpc.discover")


def _synopsis(method: dict[str, Any]) -> str:
    from repohost.openrpc import argument_synopsis

    return " ".join(filter(None, (method["name"], argument_synopsis(method))))


def _print_methods(doc: dict[str, Any], apihost: str) -> int:
    print(f"Methods of {apihost} ([optional] arguments in brackets):")
    print()
    for method in doc["methods"]:
        print(f"  {_synopsis(method)}")
        print(f"      {method.get('summary', '')}")
    print()
    print(f"`{PROG} help METHOD` describes a method. {TYPING_NOTE}")
    return EXIT_OK


def _type_text(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(value) for value in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(_type_text(option) for option in schema["anyOf"])
    kinds = schema.get("type")
    if kinds is None:
        return "any value"
    names = []
    for kind in kinds if isinstance(kinds, list) else [kinds]:
        if kind == "array" and "items" in schema:
            names.append(f"list of {_type_text(schema['items'])}")
        else:
            names.append(kind)
    return " or ".join(names)


def _print_method(method: dict[str, Any]) -> None:
    print(_synopsis(method))
    print()
    print(method.get("summary", ""))
    if method.get("description"):
        print()
        print(method["description"])
    print()
    if "x-alias-of" in method:
        print(f"Alias of: {method['x-alias-of']}")
    print(f"Who may call: {method.get('x-access', '?')}")
    params = method.get("params", [])
    print("Arguments:" if params else "Arguments: none")
    width = max((len(p["name"]) for p in params), default=0)
    for param in params:
        schema = param.get("schema", {})
        if param.get("required"):
            when = "required"
        else:
            when = f"optional, default {json.dumps(schema.get('default'))}"
        print(f"  {param['name']:<{width}}  {_type_text(schema)} ({when})")
    print(f"Result: {_type_text(method.get('result', {}).get('schema', {}))}")
    errors = method.get("x-errors", [])
    if errors:
        print("Errors:")
        for error in errors:
            print(f"  {error}")
    print()
    print(f"Call: {PROG} {method['name']} key:value ...")
    print(TYPING_NOTE)


# --- download ---------------------------------------------------------------------------------


def _download(client: KallitheaClient, output: str | None, rest: list[str]) -> int:
    if len(rest) != 1:
        raise _Usage(f"download takes one URL: {PROG} download URL [-o FILE]")
    try:
        client.resolve(rest[0])
    except ValueError as exc:
        raise _Usage(str(exc)) from None
    bar = _ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    if output == "-":
        received = 0
        with client.fetch(rest[0]) as download:
            for chunk in download.chunks():
                sys.stdout.buffer.write(chunk)
                received += len(chunk)
                if bar is not None:
                    bar(received, download.length)
        sys.stdout.buffer.flush()
        summary = f"Wrote {received} bytes to stdout"
    else:
        target = client.download(rest[0], Path(output) if output else None, bar)
        summary = f"Saved {target} ({target.stat().st_size} bytes)"
    if bar is not None:
        bar.finish()
    else:
        print(summary, file=sys.stderr)
    return EXIT_OK


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class _ProgressBar:
    """A one-line bar redrawn in place (at most ten times a second) on a terminal."""

    WIDTH = 30

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last_draw = 0.0
        self.state: tuple[int, int | None] = (0, None)

    def __call__(self, received: int, total: int | None) -> None:
        self.state = (received, total)
        now = time.monotonic()
        if now - self.last_draw >= 0.1:
            self.last_draw = now
            self._draw()

    def _draw(self) -> None:
        received, total = self.state
        if total:
            done = min(received / total, 1.0)
            filled = int(done * self.WIDTH)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            line = f"{done:4.0%} [{bar}] {_size(received)} / {_size(total)}"
        else:
            line = f"{_size(received)}"
        self.stream.write(f"\r{line}\x1b[K")
        self.stream.flush()

    def finish(self) -> None:
        self._draw()
        self.stream.write("\n")
        self.stream.flush()
