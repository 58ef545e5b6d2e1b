"""Which parts of a killed `embed images` run no longer hold what a run on the files as they are now would write.

Each part records, for each of its images, the file as it was when the part was made (`file_state`: its size, its
modification time in ns and the sha256 of its first 64 KiB, `provenance.file_digest`), taken before its pixels are
read, and the folder's DN -> reflectance rules (`settled_rules`: settled over every file at the start of a run, so
one file replaced anywhere, even in a part not yet made, can change the rule of every image). A resume redoes the
parts one of whose files now reads otherwise, or all of them when the rules differ (`stale_parts`), and says so in
one line: rows are per image, so redoing a part beats refusing the run. A part of an earlier version, which records
neither, is trusted as before.

The content's head catches a file replaced by `cp -p` or `rsync -t` (which keep the modification time); the time
catches an edit past the first 64 KiB that keeps the size (an uncompressed TIFF). A file only touched is redone too:
it costs time, never a wrong row. Hashing 64 KiB is a small part of reading an image (a 1.7 MB 13-band TIFF: 0.2 of
8 ms), and the work folder is the only place this is kept: no output records it, so outputs stay byte-identical.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from geodino.errors import plural

__all__ = ["file_state", "file_states", "settled_rules", "stale_parts"]


def file_state(path: Path) -> str | None:
    """`"<size> <mtime_ns> <sha256 of the first 64 KiB>"` of the file at `path`; None when it does not read (a
    file that comes back later reads as changed)."""
    from geodino.embed.provenance import file_digest

    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return None
    digest = file_digest(path)
    return None if digest is None else f"{digest[0]} {mtime} {digest[1]}"


def file_states(root: Path, files: list[str]) -> list[str | None]:
    """`file_state` of each of `files` (relative to `root`)."""
    return [file_state(root / rel) for rel in files]


def settled_rules(scaling: Any) -> dict[str, str]:
    """The DN -> reflectance rules settled for the folder (`InputScaling.fixed`): `"<dtype> <bands>"` -> the rule's
    description."""
    return {f"{name} {n}": rule[2] for (name, n), rule in sorted(scaling.fixed.items())}


def stale_parts(parts: list[Any], data: Any, *, say: bool) -> list[Any]:
    """The parts (`image_parts.Part`) to redo: those whose recorded files (`Part.files`) now read otherwise and, when
    the folder's rules differ from those a part recorded (`Part.settled`), every part that records them; with `say`,
    one line saying what changed and how much is redone. `data`: the run's `image_files.ImageFiles`, primed."""
    now = settled_rules(data.scaling)
    changed: list[str] = []
    rules: tuple[str, str, str] | None = None
    stale, unread = [], 0
    for part in parts:
        if part.files is None:  # written before parts recorded their files: trusted as before
            continue
        if not isinstance(part.files, list) or len(part.files) != part.hi - part.lo:
            stale.append(part)  # a record that does not read: redone, not trusted
            unread += 1
            continue
        files = data.files[part.lo : part.hi]
        moved = [rel for rel, was, state in zip(files, part.files, file_states(data.root, files)) if was != state]
        changed += moved
        if part.settled != now:
            rules = rules or _rule_change(part.settled, now)
            stale.append(part)
        elif moved:
            stale.append(part)
    if stale and say:
        print(f"geodino: {_what(changed, rules, unread)}; {_redo(stale)}", file=sys.stderr)
    return stale


def _rule_change(was: Any, now: dict[str, str]) -> tuple[str, str, str]:
    """(data, rule then, rule now) of the first dtype and band count whose rule differs, each rule its formula."""
    was = was if isinstance(was, dict) else {}
    key = next((k for k in sorted({*was, *now}) if was.get(k) != now.get(k)), "none 0")
    return key, _formula(was.get(key)), _formula(now.get(key))


def _formula(text: Any) -> str:
    return str(text).split(" (", 1)[0] if text else "none"


def _what(changed: list[str], rules: tuple[str, str, str] | None, unread: int) -> str:
    """What changed, in words: the images (one named), the folder's rule (its dtype, bands, then and now) and the
    parts whose record of their files does not read."""
    said = [f"{plural(unread, 'part')} of the partial run with a damaged record of its files"] if unread else []
    if changed:
        eg = "" if len(changed) == 1 else "e.g. "
        said.append(f"{plural(len(changed), 'image')} changed since the partial run ({eg}{changed[0]})")
    if rules is not None:
        key, was, now = rules
        dtype, _, bands = key.rpartition(" ")
        n = int(bands) if bands.isdigit() else 0
        said.append(
            f"the folder's DN -> reflectance rule for {dtype} images of {plural(n, 'band')} changed since the "
            f"partial run (then {was}, now {now}: an image replaced anywhere in the folder)"
        )
    return " and ".join(said)


def _redo(stale: list[Any]) -> str:
    return f"re-embedding {plural(len(stale), 'part')} ({plural(sum(p.hi - p.lo for p in stale), 'image')})"
