"""One rule for the dense probes' file pairs (segmentation's image/mask, canopy's image/CHM): pair by file name
over all listed entries (folders, files or globs); entry by entry (the i-th target entry holds the targets of the
i-th image entry) where a name is in two places, as LoveDA's Urban and Rural folders both hold `0.png` or two
sites both hold `plot_1_CHM.tif`; refused in one line where such entries do not line up.

How one set of images is paired with one set of targets by name (mask or CHM suffixes, canopy's fallback by order)
stays with each probe (`segmentation_data.pair_masks`, `chm.pair_chms`); this module decides over which files it
runs. Detection is not paired here: its annotation files name their images inside (`boxes.match_boxes`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from geodino.errors import InputError, plural

Pairs = list[tuple[Path, Path]]


def named_twice(entries: list[list[Path]]) -> tuple[Path, Path] | None:
    """The first two files of one stem among the entries' files (in one entry or in two), or None."""
    first: dict[str, Path] = {}
    for files in entries:
        for f in files:
            if f.stem in first:
                return first[f.stem], f
            first[f.stem] = f
    return None


def pair_entries(
    images: list[list[Path]],
    targets: list[list[Path]],
    pair: Callable[[list[Path], list[Path]], Pairs],
    keys: tuple[str, str],
    what: str,
) -> Pairs:
    """(image, target) pairs of the listed entries' files (`images[i]`: the files of the i-th image entry):
    `pair` over all files when no name is in two places; `pair` entry by entry when one is and both keys list as
    many entries, none holding a name twice itself; else one InputError line naming the two files and `keys`
    (`what`: the targets' noun, "mask" or "CHM")."""
    if named_twice(targets) is None and named_twice(images) is None:
        return pair([f for files in images for f in files], [f for files in targets for f in files])
    within = _first_twice([[e] for e in targets], [[e] for e in images], what)  # one entry holding a name twice
    if within is None and len(images) == len(targets):
        return [p for imgs, tgts in zip(images, targets, strict=True) for p in pair(imgs, tgts)]
    from geodino.user_keys import user_key

    found = within or _first_twice([targets], [images], what)
    assert found is not None  # a name is in two places, so in some group
    noun, a, b = found
    ik, tk = user_key(keys[0]), user_key(keys[1])
    now = (
        "one entry holds both" if within else f"{tk} has {plural(len(targets), 'entry', 'entries')}, {ik} {len(images)}"
    )
    raise InputError(
        f"{noun} name {b.name} is in two places ({a}, {b}; {now}) and {what}s are paired with images by name; "
        f"list {ik} and {tk} entry by entry, as many of each in the same order, one folder each "
        f"({ik}: [a/images, b/images], {tk}: [a/{what.lower()}s, b/{what.lower()}s]), or rename the files"
    )


def _first_twice(
    targets: list[list[list[Path]]], images: list[list[list[Path]]], what: str
) -> tuple[str, Path, Path] | None:
    """(noun, first, second) of the first group of entries holding a name twice, targets before images."""
    for noun, groups in ((what, targets), ("image", images)):
        for group in groups:
            if (t := named_twice(group)) is not None:
                return noun, t[0], t[1]
    return None
