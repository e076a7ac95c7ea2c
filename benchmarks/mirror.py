"""Initial mirror and one-commit pull: repohost's fetch (dulwich) against git, over loopback HTTP.

    .venv/bin/python benchmarks/mirror.py [--commits 5000] [--files 4] [--runs 3]

The upstream is generated with ``git fast-import`` (``--commits`` commits each
changing ``--files`` files of about 1 KB spread over 64 directories, then
``git repack -ad`` as a hosting service would have it) and served by
``git http-backend`` on 127.0.0.1 (``tests.support.upstream``). Both sides get
the same server, so the comparison is between the clients:

- initial mirror: ``git clone --mirror`` against ``repohost.git.fetch.fetch_into``
  into an empty bare repository;
- one-commit pull: one new commit upstream, then ``git fetch`` in the git mirror
  against ``fetch_into`` in the repohost copy.

Each fetch runs in a fresh process under a small wrapper that reports wall time
and peak resident memory (``getrusage(RUSAGE_CHILDREN).ru_maxrss``, which covers
git's helpers such as ``index-pack`` too). Figures are medians of ``--runs``.
repohost's time includes starting Python and importing dulwich (about 0.2 s).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import _setup  # noqa: F401 - puts the project root on sys.path (for tests.support)

MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""

FETCH = """
import ipaddress, sys
from pathlib import Path
from repohost.git.fetch import fetch_into
from repohost.remotes import RemotePolicy, parse
policy = RemotePolicy(allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
fetch_into(Path(sys.argv[1]), parse(sys.argv[2], policy), policy)
"""

GIT_ENV = ["-c", "init.defaultBranch=master", "-c", "protocol.version=2"]


def measure(*argv: str) -> tuple[float, float]:
    """Seconds and peak MB of ``argv`` run in a fresh process tree."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, *argv], check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[0]), int(out[1]) / 1024


def repohost_fetch(target: Path, url: str) -> tuple[float, float]:
    return measure(sys.executable, "-c", FETCH, str(target), url)


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", *GIT_ENV, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def fast_import(repo: Path, commits: int, files: int, start: int, parent: bool) -> None:
    """Append ``commits`` commits to master with ``git fast-import`` (seconds, not minutes)."""
    rng = random.Random(start)
    words = [f"w{n:04d}" for n in range(4096)]
    chunks: list[bytes] = []
    for number in range(commits):
        changes = []
        for slot in range(files):
            text = " ".join(rng.choice(words) for _ in range(200)).encode() + b"\n"
            chunks.append(b"blob\nmark :%d\ndata %d\n%s\n" % (slot + 1, len(text), text))
            path = f"d{rng.randrange(64):02d}/f{rng.randrange(32):02d}.txt"
            changes.append(b"M 100644 :%d %s\n" % (slot + 1, path.encode()))
        message = b"commit %d\n" % (start + number)
        when = 1_600_000_000 + start + number
        chunks.append(
            b"commit refs/heads/master\ncommitter Bench <bench@example.com> %d +0000\n"
            b"data %d\n%s" % (when, len(message), message)
        )
        if number == 0 and parent:
            chunks.append(b"from refs/heads/master^0\n")
        chunks.extend(changes)
        chunks.append(b"\n")
    subprocess.run(["git", "fast-import", "--quiet"], input=b"".join(chunks), cwd=repo, check=True)


def count_objects(repo: Path) -> int:
    return len(git("rev-list", "--objects", "--all", cwd=repo).splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=5000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    from tests.support.upstream import GitUpstream

    with tempfile.TemporaryDirectory() as tmp, GitUpstream(Path(tmp) / "up") as upstream:
        work = Path(tmp)
        source = upstream.create("big.git")
        fast_import(source, options.commits, options.files, 0, parent=False)
        git("repack", "-adq", cwd=source)
        url = upstream.url("big.git")
        pack_mb = sum(p.stat().st_size for p in (source / "objects/pack").glob("*.pack")) / 2**20
        print(f"upstream: {count_objects(source)} objects, {pack_mb:.1f} MB packed")

        initial: dict[str, list[tuple[float, float]]] = {"git": [], "repohost": []}
        for run in range(options.runs):
            git_copy, our_copy = work / f"git{run}.git", work / f"ours{run}.git"
            initial["git"].append(measure("git", "clone", "-q", "--mirror", url, str(git_copy)))
            git("init", "-q", "--bare", str(our_copy))
            initial["repohost"].append(repohost_fetch(our_copy, url))

        pulls: dict[str, list[tuple[float, float]]] = {"git": [], "repohost": []}
        git_copy, our_copy = work / "git0.git", work / "ours0.git"
        for run in range(options.runs):
            fast_import(source, 1, options.files, options.commits + run, parent=True)
            pulls["git"].append(measure("git", "-C", str(git_copy), "fetch", "-q"))
            pulls["repohost"].append(repohost_fetch(our_copy, url))
        tip = git("rev-parse", "master", cwd=source)
        assert git("rev-parse", "master", cwd=our_copy) == tip
        assert git("rev-parse", "master", cwd=git_copy) == tip

    print(f"{'':24} {'git':>22} {'repohost (dulwich)':>22} {'ratio':>7}")
    for name, results in (("initial mirror", initial), ("one-commit pull", pulls)):
        row = {
            side: (statistics.median(s for s, _ in runs), statistics.median(m for _, m in runs))
            for side, runs in results.items()
        }
        cells = [f"{row[side][0]:8.2f} s {row[side][1]:7.0f} MB" for side in ("git", "repohost")]
        ratio = row["repohost"][0] / row["git"][0]
        print(f"{name:24} {cells[0]:>22} {cells[1]:>22} {ratio:6.1f}x")


if __name__ == "__main__":
    main()
