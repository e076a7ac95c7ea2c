"""Putting real commits into hosted repositories with the ``git`` command line."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path


def _env(home: Path, when: int) -> dict[str, str]:
    stamp = f"{when} +0000"
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Alice Example",
        "GIT_AUTHOR_EMAIL": "alice@example.com",
        "GIT_COMMITTER_NAME": "Alice Example",
        "GIT_COMMITTER_EMAIL": "alice@example.com",
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_DATE": stamp,
        "LC_ALL": "C.UTF-8",
    }


def git(cwd: Path, *args: str, when: int = 1_600_000_000) -> str:
    result = subprocess.run(
        ["git", "-c", "init.defaultBranch=master", *args],
        cwd=cwd,
        env=_env(cwd, when),
        capture_output=True,
        check=True,
    )
    return result.stdout.decode()


def push_commits(
    bare: Path,
    commits: list[dict[str, str | bytes | None]],
    branch: str = "master",
    start: int = 1_600_000_000,
) -> list[str]:
    """Commit each ``{path: content or None (delete)}`` in turn and push to ``bare``.

    Commit ``n`` is dated ``start + 60 n`` seconds (UTC).
    """
    ids = []
    bare = bare.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        git(work, "init", "-q")
        if git(work.parent, "--git-dir", str(bare), "for-each-ref", f"refs/heads/{branch}"):
            git(work, "fetch", "-q", str(bare), f"{branch}:refs/remotes/origin/{branch}")
            git(work, "checkout", "-q", "-B", branch, f"refs/remotes/origin/{branch}")
        else:
            git(work, "checkout", "-q", "-b", branch)
        for number, files in enumerate(commits):
            for name, content in files.items():
                path = work / name
                if content is None:
                    path.unlink()
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content if isinstance(content, bytes) else content.encode())
            git(work, "add", "-A")
            git(
                work,
                "commit",
                "-q",
                "-m",
                f"commit {number}: {', '.join(files)}",
                when=start + 60 * number,
            )
            ids.append(git(work, "rev-parse", "HEAD").strip())
        git(work, "push", "-q", str(bare), f"{branch}:{branch}")
    return ids
