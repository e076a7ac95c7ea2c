"""Real git repositories built with the ``git`` command line, shared by the git tests.

- ``sample``: branches, lightweight/annotated/nested tags, a tag on a tree, a
  branch and a tag with the same name, an all-digit branch, a remote head and
  a symbolic ref to it, a merge, a binary file, a rename, a deletion, an executable-bit change, a
  symlink, a file→symlink type change, a submodule entry, Unicode and spaces in
  names, a file without final newline, a Latin-1 commit message, a commit
  older than its parent (clock skew) and two commits with the same time.
- ``sample_packed``: the same after ``git gc`` (packs, packed-refs, commit-graph).
- ``dag_repos``: random histories (merges, several roots, equal and skewed
  commit times) to check the revision order against git commit by commit.
- ``empty_repo`` and ``big_repo`` (900 files in 120 directories, for timings).

Every repository is made once per session; tests that write copy one first.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

T0 = 1_600_000_000
ALICE = ("Alice Example", "alice@example.com")
JOHN = ("Jöhn Dœ", "john@example.com")


def git_env(home: Path) -> dict[str, str]:
    """An environment in which no user or system git configuration leaks in."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
    }


def git(cwd: Path, *args: str, env: dict[str, str] | None = None, data: bytes | None = None) -> str:
    """Run git in ``cwd`` and return its standard output as text."""
    base = git_env(cwd)
    base.update(env or {})
    result = subprocess.run(
        ["git", "-c", "init.defaultBranch=master", "-c", "core.quotepath=false", *args],
        cwd=cwd,
        env=base,
        input=data,
        capture_output=True,
        check=True,
    )
    return result.stdout.decode("utf-8")


def when(offset: int, tz: str = "+0000") -> str:
    return f"{T0 + offset} {tz}"


def commit_tree(path: Path, tree: str, message: str, offset: int, *parents: str) -> str:
    """A commit made with ``git commit-tree`` (no ref points to it yet)."""
    env = {
        "GIT_AUTHOR_NAME": ALICE[0],
        "GIT_AUTHOR_EMAIL": ALICE[1],
        "GIT_COMMITTER_NAME": ALICE[0],
        "GIT_COMMITTER_EMAIL": ALICE[1],
        "GIT_AUTHOR_DATE": when(offset),
        "GIT_COMMITTER_DATE": when(offset),
    }
    args = [arg for parent in parents for arg in ("-p", parent)]
    return git(path, "commit-tree", tree, *args, "-m", message, env=env).strip()


@dataclass
class WorkTree:
    """A non-bare repository used to build history step by step."""

    path: Path
    commits: dict[str, str] = field(default_factory=dict)

    def write(self, name: str, data: bytes | str) -> None:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)
        git(self.path, "add", "--", name)

    def symlink(self, name: str, points_to: str) -> None:
        target = self.path / name
        if target.exists() or target.is_symlink():
            target.unlink()
        os.symlink(points_to, target)
        git(self.path, "add", "--", name)

    def commit(
        self,
        key: str,
        message: str,
        offset: int,
        *,
        tz: str = "+0000",
        author: tuple[str, str] = ALICE,
        extra: tuple[str, ...] = (),
    ) -> str:
        self.git_commit(["commit", "-q", *extra, "-m", message], offset, tz=tz, author=author)
        return self.remember(key)

    def git_commit(
        self, args: list[str], offset: int, *, tz: str = "+0000", author: tuple[str, str] = ALICE
    ) -> None:
        env = {
            "GIT_AUTHOR_NAME": author[0],
            "GIT_AUTHOR_EMAIL": author[1],
            "GIT_COMMITTER_NAME": "Committer",
            "GIT_COMMITTER_EMAIL": "committer@example.com",
            "GIT_AUTHOR_DATE": when(offset, tz),
            "GIT_COMMITTER_DATE": when(offset, tz),
        }
        git(self.path, *args, env=env)

    def remember(self, key: str) -> str:
        self.commits[key] = git(self.path, "rev-parse", "HEAD").strip()
        return self.commits[key]


@dataclass
class SampleRepo:
    path: Path
    commits: dict[str, str]


def _build_sample(work: WorkTree) -> None:
    git(work.path, "init", "-q")
    work.write("README.md", "hello\n")
    work.write("a.txt", "a\n")
    work.write("a/y.txt", "y\n")
    work.write("a-b/x.txt", "x\n")
    work.write("docs/index.rst", "index\n")
    work.write("docs/api/ref.rst", "ref\n")
    work.write("src/main.py", "print('hi')\n")
    work.write("file with spaces.txt", "spaces\n")
    work.write("ünï cödé/naïve.txt", "unicode\n")
    work.write("日本語.txt", "japanese\n")
    work.write("img/logo.png", bytes(range(256)) * 4)
    work.write("noeol.txt", "no final newline")
    work.write("old.txt", "to be deleted\n")
    work.write("tc", "regular file, later a symlink\n")
    work.commit("c1", "Initial commit", 0, tz="+0200")

    work.write("README.md", "hello\nworld\n")
    git(work.path, "update-index", "--chmod=+x", "src/main.py")
    work.symlink("link", "README.md")
    git(
        work.path, "update-index", "--add", "--cacheinfo", f"160000,{work.commits['c1']},vendor/sub"
    )
    work.commit("c2", "Second: readme, exec bit, symlink, submodule", 100, tz="-0700")

    git(work.path, "mv", "docs/index.rst", "docs/intro.rst")
    git(work.path, "rm", "-q", "old.txt")
    work.commit("c3", "Rename index, delete old", 200)

    git(work.path, "checkout", "-q", "-b", "feature")
    work.write("feature.txt", "feature\n")
    work.commit("f1", "Feature one", 300)
    work.write("a.txt", "a changed on feature\n")
    work.commit("f2", "Feature two", 500)

    git(work.path, "checkout", "-q", "master")
    work.write("src/main.py", "print('hello')\n")
    work.commit("c4", "Ünïcode message ✓\n\nwith a body", 400, author=JOHN)
    work.git_commit(["merge", "-q", "--no-ff", "-m", "Merge feature", "feature"], 600)
    work.remember("merge")

    (work.path / "tc").unlink()
    work.symlink("tc", "README.md")
    work.write("img/logo.png", bytes(range(255, -1, -1)) * 4)
    (work.path / "msg").write_bytes("Latin-1 message: café\n".encode("latin-1"))
    work.git_commit(["-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "-F", "msg"], 700)
    (work.path / "msg").unlink()
    work.remember("c5")

    c = work.commits
    git(work.path, "tag", "v0.1", c["c1"])
    work.git_commit(["tag", "-a", "v1.0", "-m", "release 1.0", c["merge"]], 650)
    work.git_commit(["tag", "-a", "nested", "-m", "tag of a tag", "v1.0"], 660)
    git(work.path, "tag", "tree-tag", f"{c['c1']}^{{tree}}")
    git(work.path, "branch", "same", c["c2"])
    git(work.path, "tag", "same", c["c1"])
    git(work.path, "branch", "2", c["c1"])
    git(work.path, "update-ref", "refs/remotes/origin/upstream", c["c3"])

    git(work.path, "checkout", "-q", "-b", "skew", c["c1"])
    work.write("skew.txt", "older than its parent\n")
    work.commit("skew", "Clock skew", -1000)
    git(work.path, "checkout", "-q", "-b", "tie", c["c1"])
    work.write("tie.txt", "same time as c2\n")
    work.commit("tie", "Same time as c2", 100)
    git(work.path, "checkout", "-q", "master")


def _dag_stream(seed: int, count: int) -> bytes:
    """A ``git fast-import`` stream of a random history with merges, ties and skew."""
    rng = random.Random(seed)
    names = ["master", "dev", "topic/a", "topic/b", "x", "y"]
    tips: dict[str, int] = {}
    out: list[bytes] = []
    for mark in range(1, count + 1):
        branch = "master" if mark == 1 else rng.choice(names)
        parent = tips.get(branch)
        if parent is None and mark > 1 and rng.random() < 0.8:
            parent = rng.randint(1, mark - 1)
        merge = rng.randint(1, mark - 1) if mark > 2 and rng.random() < 0.2 else None
        stamp = T0 + mark * 30 + rng.randint(0, 40) * 60
        if rng.random() < 0.2:
            stamp = T0 + 4000  # many commits, tips included, share one time
        body = f"commit {mark}\n".encode()
        out.append(f"commit refs/heads/{branch}\nmark :{mark}\n".encode())
        out.append(f"author A <a@example.com> {stamp} +0000\n".encode())
        out.append(f"committer C <c@example.com> {stamp} +0000\n".encode())
        out.append(b"data %d\n%s" % (len(body), body))
        if parent is not None:
            out.append(f"from :{parent}\n".encode())
        if merge is not None and merge != parent:
            out.append(f"merge :{merge}\n".encode())
        content = f"{mark}\n".encode()
        out.append(b"M 100644 inline f%d.txt\ndata %d\n%s\n" % (mark % 7, len(content), content))
        tips[branch] = mark
        if rng.random() < 0.1:
            out.append(f"reset refs/tags/t{mark}\nfrom :{mark}\n\n".encode())
    return b"".join(out)


@pytest.fixture(scope="session")
def repos_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fixture-repos")


@pytest.fixture(scope="session")
def sample(repos_dir: Path) -> SampleRepo:
    work = WorkTree(repos_dir / "sample-work")
    work.path.mkdir()
    _build_sample(work)
    bare = repos_dir / "sample.git"
    git(repos_dir, "clone", "-q", "--mirror", str(work.path), str(bare))
    git(bare, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/upstream")
    return SampleRepo(bare, dict(work.commits))


@pytest.fixture(scope="session")
def sample_packed(repos_dir: Path, sample: SampleRepo) -> SampleRepo:
    packed = repos_dir / "sample-packed.git"
    git(repos_dir, "clone", "-q", "--mirror", str(sample.path), str(packed))
    git(packed, "gc", "-q")
    git(packed, "commit-graph", "write", "--reachable")
    return SampleRepo(packed, sample.commits)


@pytest.fixture(scope="session")
def dag_repos(repos_dir: Path) -> list[Path]:
    paths = []
    for seed in (1, 2, 3):
        path = repos_dir / f"dag-{seed}.git"
        git(repos_dir, "init", "-q", "--bare", str(path))
        git(path, "fast-import", "--quiet", data=_dag_stream(seed, 300))
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def empty_repo(repos_dir: Path) -> Path:
    path = repos_dir / "empty.git"
    git(repos_dir, "init", "-q", "--bare", str(path))
    return path


@pytest.fixture(scope="session")
def big_repo(repos_dir: Path) -> Path:
    """One commit with 900 files: 30 directories × 3 subdirectories × 10 files."""
    path = repos_dir / "big.git"
    git(repos_dir, "init", "-q", "--bare", str(path))
    stream = [f"commit refs/heads/master\ncommitter C <c@example.com> {T0} +0000\n".encode()]
    stream.append(b"data 4\nbig\n")
    for top in range(30):
        for sub in range(3):
            for leaf in range(10):
                content = f"{top}/{sub}/{leaf}\n".encode()
                name = f"dir{top:02d}/sub{sub}/file{leaf}.txt"
                stream.append(
                    b"M 100644 inline %s\ndata %d\n%s\n" % (name.encode(), len(content), content)
                )
    git(path, "fast-import", "--quiet", data=b"".join(stream))
    return path


@pytest.fixture
def writable_sample(tmp_path: Path, sample: SampleRepo) -> Iterator[SampleRepo]:
    """A private copy of ``sample`` that a test may change."""
    copy = tmp_path / "sample.git"
    shutil.copytree(sample.path, copy, symlinks=True)
    yield SampleRepo(copy, sample.commits)
