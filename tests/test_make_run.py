"""``make run``'s server, as a newcomer meets it: a fresh folder, SQLite, one command."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start(cwd: Path, **env: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REPOHOST_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "repohost.local", "--template", str(ROOT / "template.yaml")],
        cwd=cwd,
        env={**clean, "PORT": "0", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    banner: list[str] = []
    for line in process.stdout:
        banner.append(line.rstrip("\n"))
        if line.startswith("  curl"):
            break
    match = re.search(r"serving on (http://127\.0\.0\.1:\d+)", "\n".join(banner))
    assert match, banner
    return process, match.group(1), banner


def get_user(url: str, key: str) -> dict:
    body = json.dumps({"id": 1, "api_key": key, "method": "get_user", "args": {}}).encode()
    with urllib.request.urlopen(f"{url}/_admin/api", data=body, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


def test_first_start_creates_admin_and_serves(tmp_path: Path) -> None:
    key = "c" * 40
    process, url, banner = start(tmp_path, ADMIN_API_KEY=key)
    try:
        assert f"Admin API key (shown once): {key}" in banner
        assert any(key in line and "curl" in line for line in banner)
        assert get_user(url, key)["result"]["username"] == "admin"
    finally:
        assert stop(process) == 0
    assert (tmp_path / "data" / "repohost.sqlite").is_file()
    assert (tmp_path / "data" / "repos").is_dir()

    process, url, banner = start(tmp_path)
    try:
        assert not any(key in line for line in banner), "the key is shown only once"
        assert any("admin already exists" in line for line in banner)
        assert get_user(url, key)["result"]["admin"] is True
    finally:
        assert stop(process) == 0


def test_random_key_when_none_is_chosen(tmp_path: Path) -> None:
    process, url, banner = start(tmp_path)
    try:
        line = next(x for x in banner if x.startswith("Admin API key (shown once): "))
        key = line.rsplit(" ", 1)[1]
        assert re.fullmatch(r"[0-9a-f]{40}", key)
        assert get_user(url, key)["error"] is None
    finally:
        assert stop(process) == 0
