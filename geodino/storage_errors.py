"""One line for a write the storage refused (full disk, quota, file-size limit, read-only or forbidden folder) or a
name too long, whichever library raised it: the CLI's exit-code-1 line and the messages of the writers that know how
to go on (embed's --resume, the probe feature cache). Kept apart from `geodino.cli` so those writers need not import
the CLI."""

from __future__ import annotations

__all__ = ["STORAGE_ERRNOS", "STORAGE_WORDS", "named_refusal", "storage_error"]

STORAGE_ERRNOS = {"ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EFBIG"}
STORAGE_WORDS = (
    "No space left on device",
    "Disk quota exceeded",
    "Read-only file system",
    "Permission denied",
    "File too large",
)


def storage_error(exc: BaseException, *, again: str | None = None) -> str | None:
    """One line for a write that the storage refused (full disk, quota, read-only or forbidden folder), found on
    `exc` or its causes, whichever library raised it (OSError from Python, pyarrow's OSError, safetensors'
    SafetensorError and GDAL errors carry only the OS message): names the file when known and what to do. Every
    writer writes under a temporary name and renames when complete, so nothing under a final name is partial;
    None for any other error, which keeps its traceback. `again`: how to go on once space is freed, when not "run the
    same command again" (embed: its partial output is kept, so --resume)."""
    import errno

    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        code = errno.errorcode.get(cur.errno, "") if isinstance(cur, OSError) and cur.errno else ""
        if code == "ENAMETOOLONG":  # a name past 255 bytes (an input: outputs are refused before, io.refuse_long_name)
            where = getattr(cur, "filename", None) or "a path"
            return f"file name too long: {where}; use names of at most 255 bytes (and paths of at most 4096)"
        text = str(cur)
        word = next((w for w in STORAGE_WORDS if w in text), None)
        if code in STORAGE_ERRNOS or word:
            what = (cur.strerror if isinstance(cur, OSError) and cur.strerror else None) or word or code
            where = getattr(cur, "filename", None)
            if where:  # the output asked for, not the hidden temporary it is written under
                from geodino.io_temps import temp_target

                where = temp_target(where) or where
            if code in ("EACCES", "EPERM") or word == "Permission denied":
                tail = f", {again}" if again else ""
                return (
                    f"permission denied{f' on {where}' if where else ''} ({what}); make it readable or writable{tail}"
                )
            target = f" writing {where}" if where else ""
            if code == "EFBIG" or word == "File too large":  # a file system's (FAT32: 4 GiB) or `ulimit -f` limit
                then = again or "then run the same command again"
                return (
                    f"the storage refused a write{target} ({what}: past the largest file the file system or "
                    f"`ulimit -f` allows); write to another file system or raise the limit, {then}"
                )
            fix = (
                f"free space (or make it writable), {again}"
                if again
                else ("free space or choose a writable --out, then run the same command again")
            )
            return f"the storage refused a write{target} ({what}); nothing was left under a final name: {fix}"
        cur = cur.__cause__ or cur.__context__
    return None


def named_refusal(exc: BaseException, path: object) -> OSError | None:
    """The refused write that `storage_error` finds on `exc` or its causes, as an OSError naming `path`, when it
    names no file: torch.save's error of a full disk carries no file name, safetensors' only the OS message, so the
    line could not say which output failed. None when `exc` is no refusal or already names its file."""
    import errno
    import os

    words = dict(zip(STORAGE_WORDS, (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EFBIG)))
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        code = cur.errno if isinstance(cur, OSError) and errno.errorcode.get(cur.errno or 0) in STORAGE_ERRNOS else None
        word = next((w for w in STORAGE_WORDS if w in str(cur)), None)
        if code or word:
            if getattr(cur, "filename", None):
                return None
            num = code or words[word or ""]
            return OSError(num, os.strerror(num), str(path))
        cur = cur.__cause__ or cur.__context__
    return None
