"""Which parts of a killed `embed images` run no longer hold what a run on the files as they are now would write.

Each part records, for each of its images, the file as it was when the part was made (`file_stamps.file_record`:
its size, modification time in ns, the sha256 of its first 64 KiB, inode change time and inode number), taken before
its pixels are read, and the folder's DN -> reflectance rules (`settled_rules`: settled over every file at the start
of a run, so one file replaced anywhere, even in a part not yet made, can change the rule of every image). A resume
redoes the parts one of whose files now reads otherwise, or all of them when the rules differ (`stale_parts`), and
says so in one line: rows are per image, so redoing a part beats refusing the run (a refusal's `--overwrite` would
redo every part of a million-image run, not only those made by another rule). The rules are not in the run's
identity, nor is the geodino version, so a geodino that reads the folder by another rule (16-bit PNGs were x/10000,
now x/65535) redoes the parts made by the old one instead of writing one output of mixed vectors. A part of an
earlier version, which records neither its files nor the folder's rules, is trusted unless it records a rule met
that this run no longer applies to any image (`Part.rules`): then it is redone.

A file is checked by the rule the feature cache and a feature raster's resume use (`file_stamps.recheck`): stat
first, so a resume of a million embedded images reads none whose stat is as recorded; the head is hashed only for
a file whose change time or inode moved with its size and modification time kept (`cp -p`, `rsync -t`: the content
tells it apart). Another size or modification time is a change with no read, so an edit past the first 64 KiB that
keeps the size (an uncompressed TIFF) is caught, and a file only touched is redone: it costs time, never a wrong
row. A part written before parts recorded the change time and inode has each file's head hashed, as then. The work
folder is the only place this is kept: no output records it, so outputs stay byte-identical.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from geodino.errors import plural

__all__ = ["settled_rules", "stale_parts", "take_files"]


def take_files(root: Path, files: list[str]) -> tuple[list[str | None], list[list[int]], int]:
    """(states, stamps, when) of each of `files` (relative to `root`) now, as a part records them: each file's
    `file_stamps.file_record` split into its state and its `[ctime_ns, inode]`, and the time.time_ns() before."""
    from geodino.embed.file_stamps import file_record

    taken = time.time_ns()
    records = [file_record(root / rel) for rel in files]
    return [r[0] for r in records], [r[1:] for r in records], taken


def settled_rules(scaling: Any) -> dict[str, str]:
    """The DN -> reflectance rules settled for the folder (`InputScaling.fixed`): `"<dtype> <bands>"` -> the rule's
    description."""
    return {f"{name} {n}": rule[2] for (name, n), rule in sorted(scaling.fixed.items())}


def stale_parts(parts: list[Any], data: Any, *, say: bool) -> list[Any]:
    """The parts (`image_parts.Part`) to redo: those whose recorded files (`Part.files`) now read otherwise and, when
    the folder's rules differ from those a part recorded (`Part.settled`), every part that records them; with `say`,
    one line saying what changed and how much is redone. `data`: the run's `image_files.ImageFiles`, primed."""
    now = _formulas(settled_rules(data.scaling))
    applied = {*now.values(), *(_formula(r[2]) for r in data.scaling.declared.values())}  # every rule this run applies
    changed: list[str] = []
    rules: tuple[str, str, str] | None = None
    stale, unread, older = [], 0, 0
    for part in parts:
        if part.files is None:  # written before parts recorded their files: trusted, unless made by another rule
            if not {_formula(r) for r in part.rules} <= applied:
                stale.append(part)
                older += 1
            continue
        if not _files_read(part):
            stale.append(part)  # a record that does not read: redone, not trusted
            unread += 1
            continue
        files = data.files[part.lo : part.hi]
        moved = [
            rel
            for rel, was, stamp in zip(files, part.files, _stamps(part))
            if not _same(data.root, rel, was, stamp, part)
        ]
        changed += moved
        if _formulas(part.settled) != now:
            rules = rules or _rule_change(_formulas(part.settled), now)
            stale.append(part)
        elif moved:
            stale.append(part)
    if stale and say:
        print(f"geodino: {_what(changed, rules, unread, older)}; {_redo(stale)}", file=sys.stderr)
    return stale


def _files_read(part: Any) -> bool:
    """Whether the part's record of its files reads: a state (str, or None for a file that did not read) each."""
    files = part.files
    return (
        isinstance(files, list)
        and len(files) == part.hi - part.lo
        and all(f is None or isinstance(f, str) for f in files)
    )


def _stamps(part: Any) -> list[Any]:
    """The `[ctime_ns, inode]` of each of the part's files, or None each where the part records none that read
    (a part of an earlier version, or a damaged record: its files' heads are hashed, as before stamps were kept)."""
    from geodino.embed.file_stamps import stamp_reads

    stamps, n = part.stamps, part.hi - part.lo
    ok = (
        isinstance(stamps, list)
        and len(stamps) == n
        and isinstance(part.taken_ns, int)
        and all(map(stamp_reads, stamps))
    )
    return stamps if ok else [None] * n


def _same(root: Path, rel: str, state: str | None, stamp: list[int] | None, part: Any) -> bool:
    """Whether `rel` is still the file the part recorded (`file_stamps.recheck`: stat first)."""
    from geodino.embed.file_stamps import recheck

    return recheck(root / rel, state, stamp, part.taken_ns if stamp is not None else 0)[0]


def _rule_change(was: Any, now: dict[str, str]) -> tuple[str, str, str]:
    """(what differs, rule then, rule now): the first dtype and band count whose rule differs, each rule its
    formula; when that group is on one side only (geodino grouped the files otherwise: 16-bit PNGs were uint16 data,
    now 16-bit photos), each side names its groups that differ."""
    was = was if isinstance(was, dict) else {}
    keys = [k for k in sorted({*was, *now}) if was.get(k) != now.get(k)] or ["none 0"]
    if keys[0] in was and keys[0] in now:
        return _group(keys[0]), _formula(was[keys[0]]), _formula(now[keys[0]])
    then = [f"{_group(k)}: {_formula(was[k])}" for k in keys if k in was] or ["none"]
    new = [f"{_group(k)}: {_formula(now[k])}" for k in keys if k in now] or ["none"]
    return "", ", ".join(then), ", ".join(new)


def _group(key: str) -> str:
    """`"<dtype> <bands>"` (`settled_rules`' key) in words: "uint16 images of 3 bands"."""
    dtype, _, bands = key.rpartition(" ")
    return f"{dtype} images of {plural(int(bands) if bands.isdigit() else 0, 'band')}"


def _formula(text: Any) -> str:
    """A rule's formula ("x/255"), without the words on where it came from ("(by dtype: uint8; ...)", "(the
    backbone's DN scale: ...)"), which differ between versions for the same rule: rules are compared by it."""
    return str(text).split(" (", 1)[0] if text else "none"


def _formulas(settled: Any) -> Any:
    """A part's record of the folder's rules (`Part.settled`) as formulas by group; a record that is no mapping
    as it is (it then differs from any run's, and the part is redone)."""
    return {k: _formula(v) for k, v in settled.items()} if isinstance(settled, dict) else settled


def _what(changed: list[str], rules: tuple[str, str, str] | None, unread: int, older: int = 0) -> str:
    """What changed, in words: the images (one named), the folder's rule (its dtype, bands, then and now), the
    parts whose record of their files does not read and the parts of an earlier version made by another rule."""
    said = [f"{plural(unread, 'part')} of the partial run with a damaged record of its files"] if unread else []
    if changed:
        eg = "" if len(changed) == 1 else "e.g. "
        said.append(f"{plural(len(changed), 'image')} changed since the partial run ({eg}{changed[0]})")
    if rules is not None:
        group, was, now = rules
        why = "an image replaced anywhere in the folder, or a geodino that reads it by another rule"
        if group:
            said.append(
                f"the folder's DN -> reflectance rule for {group} changed since the partial run (then {was}, now "
                f"{now}: {why})"
            )
        else:
            said.append(
                f"the folder's DN -> reflectance rules changed since the partial run (then {was}; now {now}: {why})"
            )
    if older:
        said.append(
            f"{plural(older, 'part')} of the partial run, written by an earlier geodino, made by a DN -> "
            "reflectance rule this run does not apply"
        )
    return " and ".join(said)


def _redo(stale: list[Any]) -> str:
    return f"re-embedding {plural(len(stale), 'part')} ({plural(sum(p.hi - p.lo for p in stale), 'image')})"
