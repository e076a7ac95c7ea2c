"""Raw-file, diff and patch view speed on a 900-file repository, against git in the same run.

    .venv/bin/python benchmarks/views_files_diffs.py [--files 900] [--runs 25] [--raw 200]

Through the local server (real HTTP with keep-alive, real PostgreSQL), each
request authenticated by ``?api_key=``; the git figures run the ``git``
command line on the same bare repository:

- a raw file, warm: ``/bench/raw/<id>/<path>`` against ``git show <id>:<path>``;
  targets at most 0.2x git and under 10 ms (Kallithea 0.7 takes over a second);
- diffs (``changeset-diff``) of a small change, of a commit adding a 3 MB
  file and of one changing it in many places, and the patch
  (``changeset-patch``) of that last one, against ``git show`` with the
  view's flags (``--full-index --binary -M``; ``--format=`` for the diff
  alone): target at most 1.2x git. Kallithea 0.7's median for a patch is
  116 ms, so a fifth of it (23.2 ms) is shown beside the small change.

Requests and git runs alternate, so background load hits both alike.
Figures are the client's wall-clock time per request on loopback; beside
them, the same request made by calling the function's handler in-process,
which leaves out the local server's HTTP transport (on Lambda, API Gateway
does that part).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _setup import ADMIN_KEY, ROOT, describe, git, migrated_postgres, rpc, source_tree

RAW_TARGET_RATIO = 0.2
RAW_TARGET_MS = 10.0
DIFF_TARGET_RATIO = 1.2
KALLITHEA_PATCH_MS = 116.0
GIT_FLAGS = ["--full-index", "--binary", "-M"]


def large_text(rng: random.Random, lines: int = 60_000) -> list[str]:
    return [f"row {i:06d} {rng.random():.12f} {rng.random():.12f}\n" for i in range(lines)]


def commit_all(work: Path, files: dict[str, bytes | None], message: str) -> str:
    for name, content in files.items():
        path = work / name
        if content is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    return git(work, "rev-parse", "HEAD").strip()


def build(bare: Path, work: Path, files: int) -> dict[str, str]:
    """The benchmark's commits, pushed to ``bare`` and packed as a served repository is."""
    rng = random.Random(7)
    work.mkdir()
    git(work, "init", "-q")
    tree = source_tree(files, rng)
    names = sorted(name for name in tree if name.endswith(".py"))
    commits = {"root (900 files)": commit_all(work, tree, "import")}
    edits = {}
    for name in rng.sample(names, 5):
        lines = tree[name].decode().splitlines(keepends=True)
        lines[len(lines) // 2] = "changed line\n"
        edits[name] = "".join(lines).encode()
    commits["small change"] = commit_all(work, edits, "small change")
    rows = large_text(rng)
    commits["add 3 MB file"] = commit_all(work, {"data/large.txt": "".join(rows).encode()}, "add")
    for i in range(0, len(rows), 50):
        rows[i] = f"row {i:06d} changed\n"
    renamed = names[3]
    commits["change 3 MB file"] = commit_all(
        work,
        {
            "data/large.txt": "".join(rows).encode(),
            renamed: None,
            renamed.replace(".py", "_moved.py"): tree[renamed],
        },
        "many changes in the large file, one rename",
    )
    git(work, "push", "-q", str(bare), "master")
    git(bare, "gc", "-q")
    return commits


def timed_get(connection: http.client.HTTPConnection, path: str) -> tuple[float, bytes]:
    start = time.perf_counter()
    connection.request("GET", f"{path}?api_key={ADMIN_KEY}")
    response = connection.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status == 200, (response.status, body[:200])
    return elapsed, body


def timed_git(repo: Path, *args: str) -> tuple[float, bytes]:
    start = time.perf_counter()
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, check=True)
    return (time.perf_counter() - start) * 1000, result.stdout


def timed_handler(handler: Callable[..., Any], path: str) -> float:
    from tests.support.web import lambda_get  # importable once _setup put ROOT on sys.path

    start = time.perf_counter()
    page = lambda_get(handler, path, key=ADMIN_KEY)
    assert page.status == 200, (page.status, page.body[:200])
    return (time.perf_counter() - start) * 1000


def compare(
    label: str,
    connection: http.client.HTTPConnection,
    handler: Callable[..., Any],
    path: str,
    repo: Path,
    git_args: list[str],
    runs: int,
) -> tuple[float, float, int]:
    """Alternate requests, direct handler calls and git runs; the HTTP and git medians.

    The handler figure (the Lambda function alone: access checks, the view,
    base64) tells the view's cost from the local server's HTTP transport.
    """
    timed_get(connection, path)  # warm-up: imports, open repository caches
    ours, alone, theirs = [], [], []
    for _ in range(runs):
        elapsed, body = timed_get(connection, path)
        ours.append(elapsed)
        alone.append(timed_handler(handler, path))
        theirs.append(timed_git(repo, *git_args)[0])
    pad = " " * len(label)
    print(f"{label}: repohost {describe(ours)}  [{len(body) / 1e3:.0f} kB]")
    print(f"{pad}  handler  {describe(alone)}  (in-process, no HTTP)")
    print(f"{pad}  git      {describe(theirs)}")
    return statistics.median(ours), statistics.median(theirs), len(body)


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def run(port: int, scratch: Path, options: argparse.Namespace) -> None:
    from repohost.config import get_settings
    from repohost.web import changesets, files

    rpc(port, "create_repo", repo_name="bench")
    repo = get_settings().repos_root / "bench"
    commits = build(repo, scratch / "work", options.files)
    tip = commits["change 3 MB file"]
    print(f"repository: {options.files} files + a 3 MB text file, 4 commits, packed")
    print(f"(cpus: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f})\n")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    path = "pkg7/mod1/file7.py"
    ours, theirs, _ = compare(
        "raw file (warm)",
        connection,
        files.handle_event,
        f"/bench/raw/{tip}/{path}",
        repo,
        ["show", f"{tip}:{path}"],
        options.raw,
    )
    ratio = ours / theirs
    print(
        f"  {ratio:.2f}x git show rev:path (target <= {RAW_TARGET_RATIO}x: "
        f"{verdict(ratio <= RAW_TARGET_RATIO)}); {ours:.1f} ms "
        f"(target < {RAW_TARGET_MS:.0f} ms: {verdict(ours < RAW_TARGET_MS)})\n"
    )

    cases = [(f"diff, {name}", "changeset-diff", commit) for name, commit in commits.items()]
    cases.append(("patch, change 3 MB file", "changeset-patch", tip))
    cases.append(("patch, small change", "changeset-patch", commits["small change"]))
    for label, view, commit in cases:
        header = ["--format="] if view == "changeset-diff" else []
        ours, theirs, _ = compare(
            label,
            connection,
            changesets.handle_event,
            f"/bench/{view}/{commit}",
            repo,
            ["show", *header, *GIT_FLAGS, commit],
            options.runs,
        )
        ratio = ours / theirs
        line = f"  {ratio:.2f}x git show (target <= {DIFF_TARGET_RATIO}x: "
        line += f"{verdict(ratio <= DIFF_TARGET_RATIO)})"
        if label == "patch, small change":
            fifth = KALLITHEA_PATCH_MS / 5
            line += f"; Kallithea 0.7 116 ms / 5 = {fifth:.1f} ms: {verdict(ours <= fifth)}"
        print(line + "\n")
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=900)
    parser.add_argument("--runs", type=int, default=25, help="requests per diff or patch")
    parser.add_argument("--raw", type=int, default=200, help="raw file requests")
    options = parser.parse_args()
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # no access log line per request
    with (
        tempfile.TemporaryDirectory(prefix="views-files-") as scratch,
        migrated_postgres("bench_files"),
    ):
        from repohost.local.server import LocalServer

        with LocalServer(ROOT / "template.yaml", port=0) as server:
            run(int(server.url.rsplit(":", 1)[1]), Path(scratch), options)


if __name__ == "__main__":
    main()
