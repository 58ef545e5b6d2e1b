"""One training run per output folder: `lock_run_folder` holds an exclusive `flock` on `out/.geodino.lock`
(`RUN_LOCK`) for the life of the process, so that a second run into the same `output_dir` (pretrain or
distill) stops with one line instead of resuming from the first one's checkpoints while it still writes them.
The OS frees the lock on any exit, killed or not, so a killed run never leaves a stale lock behind.

The lock file itself is removed when the lock is given up normally: `release_run_folder` (pretrain calls it when
the run ends or fails), the CLI's clean-up of a folder created for a failed start, or at the latest at interpreter
exit (an `atexit` handler; `release_all_run_folders` before a distributed worker's `os._exit`), so a finished or
failed run leaves no `.geodino.lock` in its folder. A killed process may leave the file; that is harmless, since
the flock, not the file, is what locks.

Such leftover lock files (`.geodino.lock`, an output's `.NAME.geodino.lock`) are deliberately not swept the way
`geodino.io.sweep_temps` sweeps killed runs' temporaries: one is a few bytes, locks nothing while unheld, and the
next run of that folder or output locks the same file and removes it when it ends; removing it from outside would
race with a run that has just opened it to lock it.

Job arrays share folders across processes and nodes, so the lock says where its holder runs ("pid 123 on node07"),
a forked child (a DataLoader worker) does not keep its parent's lock (`_drop_in_child`: workers that outlived a
killed run kept its folder locked under a dead pid), and a filesystem that cannot lock at all (Lustre mounted
without `flock`, NFS without its lock daemon) is said once and runs unlocked: it refused every run as "in use by
another run" before, forever."""

from __future__ import annotations

import atexit
import contextlib
import errno
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from geodino.errors import InputError

__all__ = [
    "RUN_LOCK",
    "lock_run_folder",
    "lock_run_rank",
    "locked_output",
    "output_holder",
    "output_lock_path",
    "rank_lock_path",
    "release_all_run_folders",
    "release_run_folder",
    "run_rank_lock",
]

RUN_LOCK = ".geodino.lock"  # the lock file a training run holds in its output folder

HAS_FLOCK = importlib.util.find_spec("fcntl") is not None  # POSIX only
_LOCKS: dict[str, tuple[Path, IO[str], int]] = {}  # run folder -> (lock file, its open handle, owner pid)
_RANKS: dict[str, IO[str]] = {}  # rank locks this process holds (`lock_run_rank`) -> handles, kept until it exits
_OUTPUTS: dict[str, IO[str]] = {}  # output lock files this process holds (`locked_output`) -> their handles
# what a non-blocking flock of a file another process holds fails with (EACCES, EAGAIN: its fcntl emulation on NFS);
# any other error (ENOLCK, ENOSYS, EOPNOTSUPP, EINVAL) says the filesystem cannot lock at all
_BUSY = frozenset({errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES})
_SAID_UNLOCKED: set[str] = set()  # folders whose filesystem was said to lock nothing (once each per process)


class _CannotLock(OSError):
    """The filesystem of a lock file refuses `flock` itself (not: another process holds it)."""


def _holder_text() -> str:
    """What a lock file says of its holder: the pid and, since a job array shares folders across nodes, the host."""
    import socket

    return f"pid {os.getpid()} on {socket.gethostname() or 'this host'}"


def _say_unlocked(lock: Path, exc: OSError) -> None:
    """One stderr line per folder: its filesystem cannot lock, so a second run into it at once is not stopped."""
    key = str(lock.parent)
    if key in _SAID_UNLOCKED:
        return
    _SAID_UNLOCKED.add(key)
    why = exc.strerror or type(exc).__name__
    print(
        f"geodino: {lock.parent} is on a filesystem without file locks ({why}); this run goes on unlocked, so make "
        "sure no other run writes the same output at the same time",
        file=sys.stderr,
    )


def _same_file(fh: IO[str], path: Path) -> bool:
    """Whether the open handle `fh` is still the file at `path` (not one a releasing run unlinked meanwhile)."""
    try:
        a, b = os.fstat(fh.fileno()), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _acquire(lock: Path, busy: Callable[[str], str], replaced: str) -> IO[str]:
    """Open and `flock` the file `lock` without waiting, write this process's id in it and return the handle: the
    one acquire of run folders and outputs. InputError `busy(holder)` when another process holds it; the holder may
    release (and unlink) it between our open and our lock, so the handle is checked to still be the file at `lock`
    and the new file locked if not (`replaced` after ten tries). OSError when the file cannot be opened;
    `_CannotLock` when its filesystem cannot lock (the file is removed again: it locks nothing)."""
    import fcntl

    for _ in range(10):
        fh = open(lock, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in _BUSY:
                fh.close()
                with contextlib.suppress(OSError):
                    lock.unlink()
                raise _CannotLock(exc.errno, exc.strerror) from exc
            fh.seek(0)
            owner = fh.read().strip() or "another process"
            fh.close()
            raise InputError(busy(owner)) from exc
        if _same_file(fh, lock):
            break
        fh.close()
    else:
        raise InputError(replaced)
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(_holder_text())
        fh.flush()
    except OSError:  # a full disk: the lock file goes again (it stayed, empty, beside the output of a failed run)
        with contextlib.suppress(OSError):
            lock.unlink()
        with contextlib.suppress(OSError):
            fh.close()
        raise
    return fh


def lock_run_folder(out: Path) -> None:
    """Lock `out` for this process (a no-op when it already holds it, e.g. a second stage in one process); raise
    InputError naming the holder when another process has it."""
    if not HAS_FLOCK:  # not a POSIX system: no lock
        return
    key = str(out.resolve())
    if key in _LOCKS:
        return
    path = out / RUN_LOCK
    try:
        fh = _acquire(
            path,
            lambda owner: (
                f"output_dir {out} is in use by another run ({owner}); wait for it to finish (a killed run frees "
                "it) or choose another output_dir"
            ),
            f"output_dir {out}: its lock file {RUN_LOCK} keeps being replaced; try again",
        )
    except _CannotLock as exc:
        _say_unlocked(path, exc)
        return
    rank = _held_rank(out)
    if rank is not None:  # an earlier run's spawned ranks still work here, their launching process gone
        _release(path, fh, os.getpid())
        raise InputError(
            f"output_dir {out} is in use by rank {rank[0]} of an earlier run ({rank[1]}) whose launching process "
            "is gone; it stops on its own within a minute: run the same command again then (or stop that process)"
        )
    _LOCKS[key] = (path, fh, os.getpid())


_RANK_LOCK = re.compile(r"\.geodino\.rank(\d+)\.lock")  # run_rank_lock's names


def run_rank_lock(out: Path, rank: int) -> Path:
    """The lock file rank `rank` of a `trainer.strategy=ddp_spawn` run holds in run folder `out` (`lock_run_rank`)."""
    return out / f".geodino.rank{int(rank)}.lock"


def lock_run_rank(out: Path, rank: int) -> None:
    """In a rank process another process started for the run in `out` (ddp_spawn): hold `run_rank_lock(out,
    rank)` until the process has exited (the OS frees it; no `atexit` release, which came seconds before a rank's
    torch and gloo teardown ended). The folder's own lock is the launching process's, so a SIGKILL of that process
    freed the folder while its ranks (which torch stops by a SIGINT, `spawned_rank` at the latest) still trained and
    saved there; `lock_run_folder` refuses while any rank lock is held, and removes those no process holds. A no-op
    off POSIX, where the filesystem cannot lock, or when this process holds it already."""
    if not HAS_FLOCK:
        return
    path = run_rank_lock(out, rank)
    key = str(path.resolve())
    if key in _RANKS:
        return
    try:
        fh = _acquire(
            path,
            lambda owner: (
                f"output_dir {out}: rank {rank} of another run ({owner}) works there; choose another output_dir"
            ),
            f"output_dir {out}: its lock file {path.name} keeps being replaced; try again",
        )
    except _CannotLock:  # the folder's own lock said so already
        return
    _RANKS[key] = fh


def _held_rank(out: Path) -> tuple[str, str] | None:
    """(rank, holder) of a rank lock in `out` another process holds (`lock_run_rank`), or None; the rank lock files
    no process holds (ended ranks') are removed: the caller holds the folder's lock, so no rank of its run has one."""
    import fcntl

    try:
        names = [e.name for e in os.scandir(out)]
    except OSError:
        return None
    for name in sorted(names):
        found = _RANK_LOCK.fullmatch(name)
        if found is None or str((out / name).resolve()) in _RANKS:
            continue
        with contextlib.suppress(OSError), open(out / name) as fh:  # read-only: a probe never creates a lock file
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in _BUSY:
                    return found.group(1), fh.read().strip() or "another process"
                continue  # a filesystem that cannot lock: nothing to say
            (out / name).unlink()
    return None


def release_run_folder(out: Path) -> None:
    """Give up this process's lock on `out` and remove its lock file (a no-op when this process does not hold
    it): a run that ended, or failed at start-up, leaves no `.geodino.lock` behind. The file is unlinked while
    still locked, so no other process can lock it in between (a waiter that opened it re-checks, see above)."""
    entry = _LOCKS.pop(str(out.resolve()), None)
    if entry is not None:
        _held_rank(out)  # its ddp_spawn ranks have ended: their lock files go too
        _release(*entry)


def _release(path: Path, fh: IO[str], pid: int) -> None:
    if pid == os.getpid():  # a forked child inherits the table; the file is its parent's to remove
        with contextlib.suppress(OSError):
            if _same_file(fh, path):
                path.unlink()
    with contextlib.suppress(OSError):
        fh.close()


def _drop_in_child() -> None:
    """After a fork, in the child: let go of the parent's locks. An flock belongs to the open file, which the fork
    shares, so DataLoader workers (forked) that outlived a killed run kept its folder or output locked, the refusal
    naming a pid that no longer runs. Each handle's descriptor is pointed at /dev/null rather than closed, so that
    its number cannot be reused under the handle; the parent's lock is untouched."""
    handles = [fh for _, fh, _ in _LOCKS.values()] + list(_RANKS.values()) + list(_OUTPUTS.values())
    if not handles:
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fh in handles:
            with contextlib.suppress(OSError, ValueError):
                os.dup2(null, fh.fileno(), inheritable=False)
    finally:
        os.close(null)


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_drop_in_child)


@atexit.register
def release_all_run_folders() -> None:
    """Release every lock this process still holds: at interpreter exit (distill, and callers that do not release
    their own) and before a multi-process run leaves through `os._exit`, which skips `atexit`."""
    while _LOCKS:
        _release(*_LOCKS.popitem()[1])


def output_lock_path(path: Path) -> Path:
    """The lock file of output `path` (a file, an export's name or a folder): the hidden sibling
    `.NAME.geodino.lock`, outside the output itself, so that a folder swapped in whole keeps its lock."""
    from geodino.io_temps import aside_name

    return aside_name(_output(path), RUN_LOCK)  # a long NAME cut: `.NAME.geodino.lock` past 255 bytes left it unlocked


def _output(path: Path) -> Path:
    """`path` with a name (a folder given as `.`, `..` or `dir/` resolved), the user's `~` expanded."""
    path = Path(path).expanduser()
    return path.resolve() if path.name in ("", ".", "..") else path


_RANK_TAIL = len(".rank") + 10 + len(RUN_LOCK)  # bytes of a rank lock's `.rankR.geodino.lock` at most


def rank_lock_path(path: Path, rank: int) -> Path:
    """The lock file of rank `rank` of output `path`, which the ranks of `geodino embed --world-size` share:
    `.NAME.rankR.geodino.lock`, a long NAME cut alike for every rank (`io_temps.aside_name`) so that
    `output_holder(ranks=True)` finds each by the same start."""
    from geodino.io_temps import aside_name

    return aside_name(_output(path), f".rank{int(rank)}{RUN_LOCK}", _RANK_TAIL)


def _rank_locks(path: Path) -> list[Path]:
    """The rank lock files (`rank_lock_path`) beside output `path`, found by name in its folder (not a glob of it: a
    name holding `[`, `*` or `?` matched none)."""
    from geodino.io_temps import aside_name

    start = aside_name(_output(path), ".rank", _RANK_TAIL)
    try:
        names = [e.name for e in os.scandir(start.parent)]
    except OSError:
        return []
    cut = len(start.name), len(RUN_LOCK)
    return [
        start.parent / n
        for n in names
        if n.startswith(start.name) and n.endswith(RUN_LOCK) and n[cut[0] : -cut[1]].isdigit()
    ]


def output_holder(path: Path, *, ranks: bool = False) -> str | None:
    """Who holds the lock of output `path` (`locked_output`), as its lock file says ("pid 123 on node07"), or None
    when no other process does (this one's own lock does not count). `ranks`: the locks of its ranks count as the
    output's too (`rank_lock_path`, `geodino embed --world-size`). A probe, not a lock: the answer may change right
    after."""
    if not HAS_FLOCK:
        return None
    import fcntl

    lock = output_lock_path(path)
    for p in (lock, *(_rank_locks(path) if ranks else ())):
        with contextlib.suppress(OSError):
            if str(p.resolve()) in _OUTPUTS:
                continue
            with open(p) as fh:  # read-only: a probe never creates a lock file
                try:
                    fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno in _BUSY:  # else a filesystem that cannot lock: nobody holds anything there
                        return fh.read().strip() or "another process"
    return None


@contextlib.contextmanager
def locked_output(
    path: Path, *, what: str = "output", shown: Path | None = None, lock_file: Path | None = None
) -> Iterator[None]:
    """Hold an exclusive `flock` on output `path` (`output_lock_path`) while the block writes it, so that a second
    run writing the same output (another process, e.g. `data curate`, `viz attention` or `export` into one --out)
    stops with one InputError line instead of mixing its files with the first one's. A no-op when this process
    holds it already (nested writers) or cannot create the lock file beside the output (a read-only parent); the
    OS frees the lock on any exit and the file is removed when the block ends. `shown`: the file the refusal names
    when it is not `path` (`convert` onto X.pth takes the lock of export name X); `lock_file`: the lock taken when it
    is not `output_lock_path(path)` (a rank's, `rank_lock_path`)."""
    if not HAS_FLOCK:  # not a POSIX system: no lock
        yield
        return
    lock, named = lock_file or output_lock_path(path), shown or path
    key = str(lock.resolve())
    if key in _OUTPUTS:
        yield
        return
    try:
        fh = _acquire(
            lock,
            lambda owner: (
                f"{what} {named} is being written by another run ({owner}, lock {lock}); wait for it to "
                f"finish (a killed run frees it) or choose another {what}"
            ),
            f"{what} {named}: its lock file {lock} keeps being replaced; try again",
        )
    except _CannotLock as exc:
        _say_unlocked(lock, exc)
        fh = None
    except OSError:  # no lock file possible beside it (a missing or read-only parent): the writer says why
        fh = None
    if fh is None:
        yield
        return
    _OUTPUTS[key] = fh
    try:
        yield
    finally:
        _OUTPUTS.pop(key, None)
        _release(lock, fh, os.getpid())
