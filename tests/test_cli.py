"""``kallithea-api`` end to end: the installed script (a subprocess) and ``main()`` in-process,
against the local server over real HTTP, and loopback servers that misbehave on purpose.
"""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from repohost.cli import main
from repohost.client import KallitheaClient
from tests.conftest import ADMIN_KEY
from tests.support.loopback import Loopback, Reply, Seen, envelope, free_port

SCRIPT = Path(sys.executable).with_name("kallithea-api")
PAYLOAD = os.urandom(200_000)


@dataclass
class Run:
    status: int
    stdout: str
    stderr: str
    raw_stdout: bytes = b""


@dataclass
class Cli:
    """Runs the command one way (``mode``) with ``HOME`` and the working folder temporary."""

    mode: str
    home: Path
    cwd: Path
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Run:
        if self.mode == "subprocess":
            return self.subprocess(*args, env=env)
        with self.monkeypatch.context() as patch:
            # The local server runs in this process too: keep its access log out of stderr.
            patch.setattr(logging.getLogger("repohost"), "handlers", [])
            patch.chdir(self.cwd)
            patch.setenv("HOME", str(self.home))
            for name in ("KALLITHEA_API_KEY", "KALLITHEA_API_HOST"):
                patch.delenv(name, raising=False)
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            self.capsys.readouterr()
            status = main(list(args))
            out, err = self.capsys.readouterr()
        return Run(status, out, err)

    def subprocess(self, *args: str, env: dict[str, str] | None = None, **kw: Any) -> Run:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("KALLITHEA_")}
        environ.update(HOME=str(self.home), **(env or {}))
        kw.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.run(
            [str(SCRIPT), *args],
            stdout=subprocess.PIPE,
            env=environ,
            cwd=self.cwd,
            timeout=120,
            **kw,
        )
        err = proc.stderr.decode() if proc.stderr is not None else ""
        return Run(proc.returncode, proc.stdout.decode(errors="replace"), err, proc.stdout)

    @property
    def config(self) -> Path:
        return self.home / ".config" / "kallithea"


@pytest.fixture(params=["subprocess", "in-process"])
def cli(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    return Cli(request.param, home, cwd, monkeypatch, capsys)


@pytest.fixture
def server(db: str, local_server: str) -> str:
    return local_server


def creds(host: str, key: str = ADMIN_KEY) -> list[str]:
    return [f"--apikey={key}", f"--apihost={host}"]


@pytest.fixture
def loopback() -> Iterator[Any]:
    servers: list[Loopback] = []

    def start(respond: Any) -> Loopback:
        servers.append(Loopback(respond).__enter__())
        return servers[-1]

    yield start
    for one in servers:
        one.__exit__()


# --- output shapes ------------------------------------------------------------------------------


def test_pretty_output(cli: Cli, server: str) -> None:
    me = KallitheaClient(server, ADMIN_KEY).call("get_user")
    run = cli(*creds(server), "get_user")
    assert run.status == 0, run
    assert run.stdout == (
        f"Calling method get_user => {server}\n"
        f"Server response \n{json.dumps(me, indent=4, sort_keys=True)}\n"
    )
    assert run.stderr == ""


def test_text_format_is_pretty(cli: Cli, server: str) -> None:
    pretty = cli(*creds(server), "get_user")
    assert cli(*creds(server), "--format=text", "get_user").stdout == pretty.stdout


def test_json_output(cli: Cli, server: str) -> None:
    me = KallitheaClient(server, ADMIN_KEY).call("get_user")
    run = cli(*creds(server), "--format", "json", "get_user")
    assert (run.status, run.stdout) == (0, json.dumps(me) + "\n")


def test_server_error_pretty(cli: Cli, server: str) -> None:
    run = cli(*creds(server), "get_user", "userid:nosuch")
    assert run.status == 1
    assert run.stdout == (
        f"Calling method get_user => {server}\n"
        'Server response \nERROR:"user `nosuch` does not exist"\n'
    )


def test_server_error_json(cli: Cli, server: str) -> None:
    run = cli(*creds(server), "--format=json", "get_user", "userid:nosuch")
    assert (run.status, run.stdout) == (1, '"user `nosuch` does not exist"\n')


def test_invalid_key(cli: Cli, server: str) -> None:
    run = cli(*creds(server, "b" * 40), "--format=json", "get_user")
    assert (run.status, run.stdout) == (1, '"Invalid API key"\n')


def test_unknown_format_is_a_usage_error(cli: Cli, server: str) -> None:
    run = cli(*creds(server), "--format=xml", "get_user")
    assert run.status == 2
    assert "invalid choice: 'xml'" in run.stderr


# --- arguments ------------------------------------------------------------------------------------


def test_values_are_sent_as_strings_split_at_the_first_colon(cli: Cli, server: str) -> None:
    run = cli(*creds(server), "--format=json", "test", "args:5")
    assert run.stdout == '"5"\n'
    run = cli(*creds(server), "--format=json", "test", "args:http://h:8/x:y")
    assert run.stdout == '"http://h:8/x:y"\n'
    run = cli(*creds(server), "--format=json", "test", "args:")
    assert run.stdout == '""\n'


def test_typed_arguments_are_converted_by_the_server(cli: Cli, server: str) -> None:
    run = cli(
        *creds(server),
        "--format=json",
        "create_user",
        "username:bob",
        "email:bob@example.com",
        "active:false",
        "admin:0",
    )
    assert run.status == 0, run
    created = json.loads(run.stdout)["user"]
    assert (created["active"], created["admin"]) == (False, False)
    run = cli(*creds(server), "--format=json", "get_user", f"userid:{created['user_id']}")
    assert json.loads(run.stdout)["username"] == "bob"
    run = cli(*creds(server), "--format=json", "create_api_key", "userid:bob", "lifetime:-1")
    assert run.status == 0, run
    assert json.loads(run.stdout)["expires"] == -1


def test_a_wrongly_typed_value_is_the_servers_error(cli: Cli, server: str) -> None:
    run = cli(*creds(server), "--format=json", "create_api_key", "lifetime:soon")
    assert run.status == 1
    assert json.loads(run.stdout).startswith("Incorrect type of `lifetime` arg in JSON DATA")


@pytest.mark.parametrize("token", ["userid", "--unknown-option"])
def test_a_token_without_colon_is_refused_before_calling(cli: Cli, server: str, token: str) -> None:
    run = cli(*creds(server), "get_user", token)
    assert run.status == 2
    assert run.stdout == ""
    assert run.stderr.startswith("Error parsing arguments")


def test_output_option_is_only_for_download(cli: Cli, server: str) -> None:
    run = cli(*creds(server), "-o", "x", "get_user")
    assert run.status == 2
    assert "-o/--output is only for download" in run.stderr


# --- credentials: options, config file, environment ---------------------------------------------


def test_missing_credentials(cli: Cli) -> None:
    run = cli("get_user")
    assert run.status == 2
    assert run.stderr.startswith("usage: kallithea-api")
    assert run.stderr.endswith(
        "kallithea-api: error: Could not find config file and missing --apikey or --apihost"
        " in params\n"
    )


def test_missing_method(cli: Cli, server: str) -> None:
    run = cli(*creds(server))
    assert run.status == 2
    assert run.stderr.endswith("kallithea-api: error: Please specify method name\n")


def test_save_config_round_trip(cli: Cli, server: str) -> None:
    run = cli(*creds(server), "--save-config")
    assert (run.status, run.stdout) == (0, f"Created new config in {cli.config}\n")
    expected = json.dumps({"apikey": ADMIN_KEY, "apihost": server}, indent=4) + "\n"
    assert cli.config.read_text() == expected
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600

    run = cli("--format=json", "get_user")
    assert run.status == 0, run
    assert json.loads(run.stdout)["username"] == "admin"

    cli.config.chmod(0o644)
    run = cli(*creds(server), "--save-config")
    assert (run.status, run.stdout) == (0, f"Updated config in {cli.config}\n")
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600
    assert [p.name for p in cli.config.parent.iterdir()] == ["kallithea"]


def test_config_option_names_another_file(cli: Cli, server: str) -> None:
    path = cli.home / "farm.json"
    run = cli(*creds(server), f"--config={path}", "--save-config")
    assert run.stdout == f"Created new config in {path}\n"
    assert not cli.config.exists()
    assert cli(f"--config={path}", "--format=json", "get_user").status == 0
    assert cli("--format=json", "get_user").status == 2


def test_options_win_over_the_config_file(cli: Cli, server: str) -> None:
    cli(f"--apikey={'b' * 40}", f"--apihost={server}", "--save-config")
    assert cli("--format=json", "get_user").stdout == '"Invalid API key"\n'
    assert cli(f"--apikey={ADMIN_KEY}", "--format=json", "get_user").status == 0


@pytest.mark.parametrize("given", [["--apikey=k"], ["--apihost=http://h"], []])
def test_save_config_requires_key_and_host(cli: Cli, given: list[str]) -> None:
    run = cli(*given, "--save-config")
    assert run.status == 2
    assert run.stderr.endswith(
        "kallithea-api: error: --save-config requires --apikey and --apihost\n"
    )
    assert not cli.config.exists()


def test_key_and_host_from_the_environment(cli: Cli, server: str) -> None:
    env = {"KALLITHEA_API_KEY": ADMIN_KEY, "KALLITHEA_API_HOST": server}
    run = cli("--format=json", "get_user", env=env)
    assert run.status == 0, run
    assert json.loads(run.stdout)["username"] == "admin"
    bad_env = {**env, "KALLITHEA_API_KEY": "b" * 40}
    assert cli(f"--apikey={ADMIN_KEY}", "--format=json", "get_user", env=bad_env).status == 0
    # The environment wins over the config file.
    cli(f"--apikey={'b' * 40}", f"--apihost={server}", "--save-config")
    assert cli("--format=json", "get_user", env=env).status == 0


def test_save_config_takes_the_key_from_the_environment(cli: Cli, server: str) -> None:
    run = cli(f"--apihost={server}", "--save-config", env={"KALLITHEA_API_KEY": ADMIN_KEY})
    assert run.status == 0
    assert json.loads(cli.config.read_text())["apikey"] == ADMIN_KEY


def test_unreadable_config_is_a_local_error(cli: Cli) -> None:
    cli.config.parent.mkdir(parents=True)
    cli.config.write_text("apikey = x\n")
    run = cli("get_user")
    assert run.status == 4
    assert f"{cli.config} is not a JSON config file" in run.stderr


def test_bad_api_host_is_a_usage_error(cli: Cli) -> None:
    run = cli("--apikey=k", "--apihost=ftp://example.com", "get_user")
    assert run.status == 2
    assert "http:// or https://" in run.stderr


# --- help -----------------------------------------------------------------------------------------


def test_help_lists_the_servers_methods(cli: Cli, server: str) -> None:
    run = cli(*creds(server), "--help")
    assert run.status == 0, run
    assert run.stdout.startswith("usage: kallithea-api")
    assert "KALLITHEA_API_KEY" in run.stdout
    assert "exit status:" in run.stdout
    assert f"Methods of {server}" in run.stdout
    assert "\n  get_user [userid]\n      A user with the permissions" in run.stdout
    assert "\n  create_user username email [password]" in run.stdout
    assert "\n  rpc.discover\n" in run.stdout
    assert cli(*creds(server), "help").stdout == run.stdout[run.stdout.index("Methods of") :]


def test_help_without_credentials_still_helps(cli: Cli) -> None:
    run = cli("--help")
    assert run.status == 0
    assert run.stdout.startswith("usage: kallithea-api")
    assert "to list\nthe methods of your server" in run.stdout
    run = cli("help")
    assert run.status == 2
    assert "Could not find config file" in run.stderr


def test_help_for_a_method(cli: Cli, server: str) -> None:
    run = cli(*creds(server), "help", "get_user")
    assert run.status == 0, run
    lines = run.stdout.splitlines()
    assert lines[0] == "get_user [userid]"
    assert "Who may call: any user for themselves; admin for others" in lines
    assert "  userid  integer or string or null (optional, default null)" in lines
    assert "Result: object" in lines
    assert "  user `<userid>` does not exist" in lines
    assert cli(*creds(server), "get_user", "--help").stdout == run.stdout
    alias = cli(*creds(server), "help", "show_ip").stdout.splitlines()
    assert "Alias of: get_ip" in alias


def test_help_for_an_unknown_method(cli: Cli, server: str) -> None:
    run = cli(*creds(server), "help", "nosuch")
    assert run.status == 2
    assert "the server has no method 'nosuch'" in run.stderr


def test_help_for_download_needs_no_server(cli: Cli) -> None:
    run = cli("help", "download")
    assert run.status == 0
    assert run.stdout.startswith("usage: kallithea-api download URL [-o FILE]")


def test_help_against_a_server_without_rpc_discover(cli: Cli, loopback: Any) -> None:
    kallithea = loopback(lambda seen: envelope(seen, error="No such method: rpc.discover"))
    run = cli(*creds(kallithea.url), "help")
    assert run.status == 1
    assert "does not describe its methods (rpc.discover: No such method" in run.stderr
    run = cli(*creds(kallithea.url), "--help")
    assert run.status == 0
    assert run.stdout.startswith("usage: kallithea-api")
    assert "could not list the server's methods" in run.stderr


# --- network trouble ------------------------------------------------------------------------------


def test_connection_refused(cli: Cli) -> None:
    host = f"http://127.0.0.1:{free_port()}"
    run = cli(*creds(host), "get_user")
    assert run.status == 3
    assert run.stdout == f"Calling method get_user => {host}\n"
    assert run.stderr.startswith(f"kallithea-api: cannot connect to {host}/_admin/api:")
    assert "refused" in run.stderr


def test_timeout(cli: Cli, loopback: Any) -> None:
    hanging = loopback(lambda seen: Reply(hang=True))
    run = cli(*creds(hanging.url), "--timeout=0.5", "create_user", "username:x", "email:x@e.com")
    assert run.status == 3
    assert run.stderr == (
        f"kallithea-api: no answer from {hanging.url}/_admin/api within 0.5 seconds\n"
    )
    assert len(hanging.seen) == 1


def test_html_answer(cli: Cli, loopback: Any) -> None:
    page = b"<!DOCTYPE html><html><title>Login</title></html>"
    proxy = loopback(lambda seen: Reply(200, page, {"Content-Type": "text/html; charset=utf-8"}))
    run = cli(*creds(proxy.url), "--format=json", "get_users")
    assert run.status == 3
    assert run.stdout == ""
    assert run.stderr.startswith(
        f"kallithea-api: the answer from {proxy.url}/_admin/api is not JSON"
        " (text/html; charset=utf-8): '<!DOCTYPE html>"
    )


def test_id_mismatch(cli: Cli, loopback: Any) -> None:
    liar = loopback(lambda seen: Reply(200, b'{"id": 0, "result": 1, "error": null}'))
    run = cli(*creds(liar.url), "--format=json", "get_users")
    assert run.status == 3
    assert "something went wrong. ID mismatch got 0, expected" in run.stderr


# --- download -------------------------------------------------------------------------------------


@pytest.fixture
def s3_redirect(loopback: Any) -> tuple[Loopback, Loopback]:
    """An API host that redirects archives to a second loopback server playing S3."""
    storage = loopback(lambda seen: Reply(200, PAYLOAD, {"Content-Type": "application/zip"}))

    def api(seen: Seen) -> Reply:
        if seen.path.endswith("/missing.zip"):
            return Reply(404, b"Unknown revision missing")
        return Reply(302, b"", {"Location": f"{storage.url}/cache/obj?X-Amz-Signature=s"})

    return loopback(api), storage


def test_download_follows_the_redirect_without_forwarding_the_key(
    cli: Cli, s3_redirect: tuple[Loopback, Loopback], tmp_path: Path
) -> None:
    api, storage = s3_redirect
    target = tmp_path / "app.zip"
    run = cli(*creds(api.url), "download", "/team/app/archive/tip.zip", "-o", str(target))
    assert run.status == 0, run
    assert target.read_bytes() == PAYLOAD
    assert run.stderr == f"Saved {target} ({len(PAYLOAD)} bytes)\n"
    assert run.stdout == ""
    (asked,) = api.seen
    assert asked.path == "/team/app/archive/tip.zip"
    assert asked.headers["Authorization"] == f"Bearer {ADMIN_KEY}"
    assert ADMIN_KEY not in asked.path
    (fetched,) = storage.seen
    assert "authorization" not in {h.lower() for h in fetched.headers}
    assert ADMIN_KEY not in fetched.path


def test_download_to_a_folder_uses_the_servers_name(
    cli: Cli, s3_redirect: tuple[Loopback, Loopback], tmp_path: Path
) -> None:
    api, _storage = s3_redirect
    run = cli(*creds(api.url), "download", f"{api.url}/team/app/archive/v1.tar.gz", "-o", ".")
    assert run.status == 0, run
    assert (cli.cwd / "v1.tar.gz").read_bytes() == PAYLOAD
    assert run.stderr == f"Saved v1.tar.gz ({len(PAYLOAD)} bytes)\n"
    again = cli(*creds(api.url), "download", "/team/app/archive/v1.tar.gz")
    assert again.status == 4
    assert "not replaced (give -o FILE to overwrite)" in again.stderr
    replaced = cli(*creds(api.url), "download", "/team/app/archive/v1.tar.gz", "-o", "v1.tar.gz")
    assert replaced.status == 0


def test_download_to_stdout(cli: Cli, s3_redirect: tuple[Loopback, Loopback]) -> None:
    api, _storage = s3_redirect
    run = cli.subprocess(*creds(api.url), "download", "/a/archive/tip.zip", "-o", "-")
    assert run.status == 0
    assert run.raw_stdout == PAYLOAD
    assert run.stderr == f"Wrote {len(PAYLOAD)} bytes to stdout\n"


def test_download_progress_bar_on_a_terminal(
    cli: Cli,
    s3_redirect: tuple[Loopback, Loopback],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api, _storage = s3_redirect
    args = [*creds(api.url), "download", "/a/archive/tip.zip", "-o", str(tmp_path / "a.zip")]
    if cli.mode == "subprocess":
        leader, follower = os.openpty()
        try:
            run = cli.subprocess(*args, stderr=follower)
        finally:
            os.close(follower)
        shown = _read_all(leader).decode()
    else:

        class Terminal(io.StringIO):
            def isatty(self) -> bool:
                return True

        terminal = Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        run = cli(*args)
        shown = terminal.getvalue()
    assert run.status == 0
    size = f"{len(PAYLOAD) / 1024:.1f} KiB"
    assert f"\r100% [{'#' * 30}] {size} / {size}" in shown
    assert shown.endswith("\n")
    assert "Saved" not in shown


def _read_all(fd: int) -> bytes:
    chunks = []
    try:
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
    except OSError:  # EIO once the other end is closed and drained
        pass
    finally:
        os.close(fd)
    return b"".join(chunks)


def test_download_refused_by_the_server(cli: Cli, s3_redirect: tuple[Loopback, Loopback]) -> None:
    api, _storage = s3_redirect
    run = cli(*creds(api.url), "download", "/a/archive/missing.zip", "-o", "x.zip")
    assert run.status == 1
    assert "HTTP 404 from" in run.stderr
    assert "Unknown revision missing" in run.stderr
    assert list(cli.cwd.iterdir()) == []


def test_download_refuses_to_send_the_key_elsewhere(
    cli: Cli, s3_redirect: tuple[Loopback, Loopback]
) -> None:
    api, storage = s3_redirect
    run = cli(*creds(api.url), "download", f"{storage.url}/cache/obj")
    assert run.status == 2
    assert "is not on the API host" in run.stderr
    assert storage.seen == []


@pytest.mark.parametrize("urls", [[], ["/a", "/b"]])
def test_download_takes_one_url(cli: Cli, urls: list[str]) -> None:
    run = cli("--apikey=k", "--apihost=http://127.0.0.1:9", "download", *urls)
    assert run.status == 2
    assert "download takes one URL" in run.stderr


def test_download_connection_refused(cli: Cli, tmp_path: Path) -> None:
    host = f"http://127.0.0.1:{free_port()}"
    run = cli(*creds(host), "download", "/a/raw/tip/f", "-o", str(tmp_path / "f"))
    assert run.status == 3
    assert "cannot connect to" in run.stderr
