"""Fetch every branch and tag of a remote into a hosted bare repository (``pull``, mirrors, forks).

Objects first, refs last. The pack is received into an unlinked temporary file
outside the repository, then indexed into ``objects/pack`` by dulwich (a
``tmp_pack_*`` file renamed into place, then its index); only once every object
the new refs name is present do the refs move, each by an atomic file replace
checked against the value it had before. A process killed at any moment leaves
the old refs over a complete object store, at worst with an unreferenced pack or
a ``tmp_pack_*`` file, which a later fetch removes once it is an hour old.
Callers hold the repository's write lock.

Mirror semantics, as Kallithea's git pull (facts §6.1): every ``refs/heads/*``
and ``refs/tags/*`` of the remote is force-updated; refs deleted upstream stay;
HEAD follows the remote's HEAD on the first fetch into an empty repository (as
``git clone --mirror``) and later only while it names a branch the repository
lacks (the upstream renamed its default branch).

Connections follow ``repohost.remotes``: HTTP(S) through a urllib3 pool whose
connections resolve, check and connect to exactly the checked addresses, so
every redirect hop is checked; ``git://`` and ``ssh://`` connect to an address
checked here (the ``git://`` request then names the address, not the host).
No proxy is used. ``ssh`` runs in batch mode: keys and ``known_hosts`` must be
in place (Lambda has no ssh client; ``make run`` may).

A ``deadline`` (``time.monotonic()`` value) bounds the fetch for a synchronous
``pull``: ``OutOfTime`` is raised when the pack is still arriving at the
deadline, or when indexing what arrived would likely outlast it; nothing has
changed then. ``git://`` and ``ssh`` have no read timeout, so a stalled peer
there is bounded only by the function's own timeout.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repohost.remotes import DEFAULT_PORTS, Remote, RemotePolicy, RemoteRefused, connect, resolve

if TYPE_CHECKING:
    import urllib3
    from dulwich.client import GitClient
    from dulwich.repo import Repo

log = logging.getLogger(__name__)

__all__ = ["FetchError", "FetchResult", "OutOfTime", "fetch_into"]

#: Refs a mirror copies; HEAD is asked for too, for its symbolic target.
MIRRORED = (b"refs/heads/", b"refs/tags/")
CONNECT_TIMEOUT = 10.0
#: Longest silence from an HTTP server before the fetch gives up.
READ_TIMEOUT = 120.0
#: A ``tmp_pack_*`` file or index-less pack this old is debris of a killed fetch.
STALE_SECONDS = 3600
#: Conservative indexing speed (dulwich on one Lambda vCPU), to judge whether a
#: received pack can be indexed before the deadline.
INDEX_BYTES_PER_SECOND = 8 * 1024 * 1024


class FetchError(Exception):
    """The remote could not be fetched; the message holds no credentials."""


class OutOfTime(Exception):
    """The deadline came before the fetch could finish; nothing was changed."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    #: ``ref name -> (old id or None, new id)`` for every ref that moved.
    moved: dict[str, tuple[str | None, str]] = field(default_factory=dict)

    @property
    def tips(self) -> list[str]:
        """The new ids, once each (Kallithea's journal lists pulled revisions)."""
        return sorted({new for _old, new in self.moved.values()})


def fetch_into(
    repo_path: Path, remote: Remote, policy: RemotePolicy, *, deadline: float | None = None
) -> FetchResult:
    """Fetch ``remote`` into the bare repository at ``repo_path`` (see the module docstring).

    Raises ``RemoteRefused`` when a connection (a redirect, say) reaches a refused
    address, ``OutOfTime`` past ``deadline``, ``FetchError`` for anything else.
    """
    from dulwich.errors import NotGitRepository
    from dulwich.repo import Repo

    try:
        target = Repo(os.fspath(repo_path))
    except (NotGitRepository, OSError) as exc:
        raise FetchError(f"no repository to fetch into: {exc}") from exc
    with target as repo, tempfile.TemporaryFile(prefix="repohost-") as spool:
        objects = Path(repo.object_store.path)
        present = _pack_debris(objects)
        try:
            repo.object_store.prune(grace_period=STALE_SECONDS)
            before = _mirrored(repo.get_refs())
            refs, symrefs = _receive(repo, remote, policy, deadline, spool)
            if spool.tell():
                _check_time(deadline, spool.tell() / INDEX_BYTES_PER_SECOND)
                spool.seek(0)
                try:
                    repo.object_store.add_thin_pack(spool.read, None)
                except BaseException:
                    # E.g. a full disk: take away the pack that could not be completed.
                    _remove_debris(objects, present)
                    raise
            wanted = _mirrored(refs)
            if any(sha not in repo.object_store for sha in wanted.values()):
                raise FetchError("the remote sent no objects for some of its refs")
            moved = _move_refs(repo, before, wanted)
            _follow_head(repo, symrefs, first=not before)
        except (RemoteRefused, OutOfTime, FetchError):
            raise
        except Exception as exc:
            _check_time(deadline)  # a read that timed out at the deadline ran out of time
            raise FetchError(_describe(exc, remote)) from exc
    return FetchResult(
        {name.decode(): (_hex(old), new.decode()) for name, (old, new) in moved.items()}
    )


def _receive(
    repo: Repo, remote: Remote, policy: RemotePolicy, deadline: float | None, spool: Any
) -> tuple[dict[bytes, bytes | None], dict[bytes, bytes]]:
    """Negotiate and write the pack the remote sends into ``spool``; its refs and symrefs."""

    def wants(refs: dict[bytes, bytes], depth: int | None = None) -> list[bytes]:
        missing = {sha for sha in _mirrored(refs).values() if sha not in repo.object_store}
        return sorted(missing)

    def pack_data(chunk: bytes) -> int:
        _check_time(deadline)
        return spool.write(chunk)

    client, path = _client(remote, policy, deadline)
    try:
        result = client.fetch_pack(
            path,
            wants,
            repo.get_graph_walker(),
            pack_data,
            ref_prefix=[b"HEAD", *MIRRORED],
        )
    finally:
        pool = getattr(client, "pool_manager", None)
        if pool is not None:
            pool.clear()  # close the connections now, not when collected
    return result.refs, result.symrefs


def _pack_debris(objects: Path) -> set[str]:
    """What an interrupted ``add_thin_pack`` can leave: ``tmp_pack_*`` files, index-less
    packs and ``.lock`` files in ``objects/pack``."""
    found = set()
    for folder in (objects, objects / "pack"):
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            continue
        for name in names:
            if folder == objects:
                debris = name.startswith("tmp_pack_")
            else:
                debris = name.endswith(".lock") or (
                    name.endswith(".pack") and not os.path.exists(folder / (name[:-5] + ".idx"))
                )
            if debris:
                found.add(os.path.join(folder, name))
    return found


def _remove_debris(objects: Path, present: set[str]) -> None:
    """Remove the debris this fetch made (the caller holds the write lock, so it is ours).

    A pack without its index names no object git would read, and no ref moved
    to anything in it, so removing it changes nothing the repository shows.
    """
    for path in _pack_debris(objects) - present:
        try:
            os.unlink(path)
        except OSError as exc:
            log.warning("fetch: could not remove %s: %s", os.path.basename(path), exc)


def _check_time(deadline: float | None, needed: float = 0.0) -> None:
    if deadline is not None and time.monotonic() + needed > deadline:
        raise OutOfTime


def _mirrored(refs: dict[bytes, Any]) -> dict[bytes, bytes]:
    """The branches and tags a mirror copies (valid names, peeled entries left out)."""
    from dulwich.refs import check_ref_format

    return {
        name: sha
        for name, sha in refs.items()
        if sha and name.startswith(MIRRORED) and check_ref_format(name)
    }


def _move_refs(
    repo: Repo, before: dict[bytes, bytes], after: dict[bytes, bytes]
) -> dict[bytes, tuple[bytes | None, bytes]]:
    moved = {}
    for name, new in sorted(after.items()):
        old = before.get(name)
        if old == new:
            continue
        if old is None:
            changed = repo.refs.add_if_new(name, new)
        else:
            changed = repo.refs.set_if_equals(name, old, new)
        if changed:
            moved[name] = (old, new)
        else:
            log.warning("fetch: %s changed meanwhile and was left alone", name.decode())
    return moved


def _follow_head(repo: Repo, symrefs: dict[bytes, bytes], first: bool) -> None:
    """Point HEAD at the remote's default branch on a first fetch, or when HEAD names nothing."""
    target = symrefs.get(b"HEAD")
    current = repo.refs.read_ref(b"HEAD") or b""
    if not target or not current.startswith(b"ref: ") or target not in repo.refs:
        return
    name = current[5:].strip()
    if name != target and (first or name not in repo.refs):
        repo.refs.set_symbolic_ref(b"HEAD", target)


def _hex(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None


def _describe(exc: Exception, remote: Remote) -> str:
    from repohost.remotes import scrub

    text = str(exc).strip() or type(exc).__name__
    return scrub(f"{type(exc).__name__}: {text}"[:500], remote)


# --- clients --------------------------------------------------------------------------------


def _client(remote: Remote, policy: RemotePolicy, deadline: float | None) -> tuple[GitClient, str]:
    from dulwich import client

    if remote.is_local:
        return client.LocalGitClient(), remote.path
    if remote.scheme in ("http", "https"):
        read = READ_TIMEOUT
        if deadline is not None:
            read = max(0.1, min(read, deadline - time.monotonic()))
        return (
            client.Urllib3HttpGitClient(
                remote.url,
                pool_manager=checked_pool_manager(policy, read),
                username=remote.username,
                password=remote.password,
            ),
            remote.path,
        )
    address = _checked_address(remote, policy)
    if remote.scheme == "git":
        return client.TCPGitClient(address, port=remote.port), remote.path
    alias = f"-o HostKeyAlias={remote.host}" if address != remote.host else ""
    return (
        client.SSHGitClient(
            address,
            port=remote.port,
            username=remote.username,
            vendor=client.SubprocessSSHVendor(),
            ssh_command=f"ssh -o BatchMode=yes {alias}".strip(),
        ),
        remote.path,
    )


def _checked_address(remote: Remote, policy: RemotePolicy) -> str:
    """The first checked address of the remote's host (every address checked)."""
    try:
        infos = resolve(remote.host, remote.port or DEFAULT_PORTS[remote.scheme], policy)
    except (OSError, UnicodeError) as exc:
        raise FetchError(f"cannot resolve the host: {exc}") from exc
    return str(infos[0][4][0])


def checked_pool_manager(policy: RemotePolicy, read_timeout: float) -> urllib3.PoolManager:
    """A urllib3 pool manager that checks every URL it opens and every address it connects to."""
    import urllib3
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    class Checked:
        """Mixed into urllib3's connections: ``repohost.remotes.connect`` makes the socket."""

        host: str
        port: int
        _dns_host: str
        timeout: Any
        source_address: Any
        socket_options: Any

        def _new_conn(self) -> socket.socket:
            timeout = self.timeout if isinstance(self.timeout, int | float) else None
            try:
                return connect(
                    self._dns_host,
                    self.port,
                    policy,
                    timeout,
                    self.source_address,
                    self.socket_options,
                )
            except socket.gaierror as exc:
                raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"connecting to {self.host} timed out") from exc
            except OSError as exc:
                raise NewConnectionError(self, f"cannot connect: {exc}") from exc  # type: ignore[arg-type]

    class CheckedHTTP(Checked, HTTPConnection):
        pass

    class CheckedHTTPS(Checked, HTTPSConnection):
        pass

    class CheckedHTTPPool(HTTPConnectionPool):
        ConnectionCls = CheckedHTTP

    class CheckedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = CheckedHTTPS

    class CheckedManager(urllib3.PoolManager):
        def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> Any:
            # Redirects come back through here, so each hop's URL is checked too.
            scheme = url.partition("://")[0].lower()
            if scheme not in ("http", "https"):
                raise RemoteRefused("only https, http, ssh and git URLs are allowed")
            return super().urlopen(method, url, redirect=redirect, **kw)

    from dulwich import __version__ as dulwich_version

    manager = CheckedManager(
        headers={"User-Agent": f"git/dulwich-{'.'.join(map(str, dulwich_version))} repohost"},
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=read_timeout),
        retries=urllib3.Retry(total=3, connect=2, read=0, redirect=5, raise_on_redirect=True),
    )
    manager.pool_classes_by_scheme = {"http": CheckedHTTPPool, "https": CheckedHTTPSPool}
    return manager
