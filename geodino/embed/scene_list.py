"""The scenes a many-scene `geodino embed` run names: whether its inputs are many scenes (`is_many`), and the list
of them (`list_scenes`: rasters and datacubes from folders, globs, `.txt` lists and paths, or a STAC JSON's items)
in a stable order with unique output names."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from geodino.data.paths import RASTER_EXTS, resolve_paths
from geodino.embed.stac import Scene, is_stac, read_stac
from geodino.errors import ConfigError, InputError


def is_many(inputs: list[str]) -> bool:
    """Whether `geodino embed` inputs name many scenes (several paths, a folder that is not a Zarr store, a glob,
    a `.txt` list or STAC JSON) rather than one raster or cube."""
    from geodino.data.cubes import is_zarr_store

    if len(inputs) != 1:
        return True
    text = str(inputs[0])
    if is_stac(text) or any(ch in text for ch in "*?[") or text.lower().endswith(".txt"):
        return True
    return Path(text).expanduser().is_dir() and not is_zarr_store(text)


def list_scenes(
    inputs: list[str],
    *,
    asset: str | None = None,
    asset_bands: list[str] | None = None,
    exclude: Path | None = None,
    quiet: bool = False,
) -> list[Scene]:
    """The scenes of a run, in a stable order, with unique output names; files under `exclude` (the output folder:
    `embed archive/ --out archive/feats/` must not take its own outputs for scenes on a rerun) are left out, and so
    are an earlier run's outputs a folder or glob finds (`_without_earlier_outputs`; `quiet`: without its warning,
    for a second listing of the same inputs)."""
    if len(inputs) == 1 and is_stac(inputs[0]):
        return read_stac(str(inputs[0]), asset, asset_bands)
    if asset or asset_bands:
        raise ConfigError(_asset_not_stac(inputs, asset))
    paths = _scene_paths(inputs)
    if exclude is not None:
        paths = [p for p in paths if p.startswith("/vsi") or "://" in p or not _inside(p, exclude)]
    paths = _without_earlier_outputs(paths, inputs, quiet)
    names = _scene_names(paths)
    scenes = [Scene(name, str(p), None, p) for p, name in zip(paths, names)]
    if dup := sorted(n for n, c in Counter(names).items() if c > 1):
        raise InputError(f"scenes {dup[0]!r} appear twice in the input list; list each raster once")
    return scenes


def _asset_not_stac(inputs: list[str], asset: str | None) -> str:
    """Why --asset/--asset-bands cannot serve these inputs, naming the input(s) that are not STAC JSON. An unquoted
    `--asset red nir item.json` gives `nir` as an input: when those inputs are asset names of the one STAC input, the
    comma spelling (`--asset red,nir`) is the way out."""
    from geodino.embed.stac import asset_names_in

    only = (
        "--asset and --asset-bands (asset= and asset_bands= in Python) apply to STAC input (a .json ItemCollection, "
        "catalog or item) only"
    )
    stac = [str(i) for i in inputs if is_stac(str(i))]
    other = [str(i) for i in inputs if not is_stac(str(i))]
    if not stac:
        return only
    if not other:
        return f"{only}, one per run; got {len(stac)} STAC inputs ({', '.join(stac)}): embed each in a run of its own"
    shown = ", ".join(other[:3]) + (f" and {len(other) - 3} more" if len(other) > 3 else "")
    line = f"{only}, but {shown} {'is' if len(other) == 1 else 'are'} not STAC input beside {stac[0]}"
    if len(stac) == 1 and asset and (names := asset_names_in(stac[0], other)) == other:
        return (
            f"{line}: {' '.join(names)} {'is an asset' if len(names) == 1 else 'are assets'} of {stac[0]}; "
            f"give several single-band assets apart by commas (--asset {','.join([asset, *names])})"
        )
    return line + "; embed the STAC input and the rasters in separate runs"


_HINT = "pass a folder, a glob or a .txt list of the scenes (rasters, or Zarr stores and NetCDF files)"


def _scene_paths(inputs: list[str]) -> list[str]:
    """The scenes the inputs name, in order, each once: rasters (`resolve_paths`: folders, globs, lists, files) and
    datacubes (`cube_open.cube_paths`): a Zarr store or NetCDF file named, and those a folder or glob holds beside
    its rasters. Before, a Zarr store named among several inputs was searched as a folder of rasters, and a folder
    or glob of cubes was refused as holding "no raster files" (a .txt list of them was the only way)."""
    from geodino.data.cube_open import cube_paths, is_cube_store
    from geodino.data.paths import _has_magic

    found: list[str] = []
    for item in inputs:
        text = str(item)
        local = not (text.startswith("/vsi") or "://" in text)
        p = Path(text).expanduser()
        if local and is_cube_store(p) and p.exists():
            found.append(str(p))
            continue
        many = local and (p.is_dir() or _has_magic(text))
        try:
            cubes = cube_paths(text) if many else []
        except InputError:  # none there: the rasters' line below says what was looked for
            cubes = []
        try:
            found += resolve_paths(text, RASTER_EXTS, what="raster", hint=_HINT)
        except InputError:
            if not cubes:
                raise
        found += cubes
    return list(dict.fromkeys(found))


def _scene_names(paths: list[str]) -> list[str]:
    """Output names: the stem; a stem in several folders gets its two folders in front (x/y/s.tif -> x_y_s), more
    of its path while those are alike (a/2024/06/s.tif, b/2024/06/s.tif -> a_2024_06_s, b_2024_06_s), and one still
    shared in one folder its format (x/y/s.tif, x/y/s.zarr -> x_y_s_tif). A file listed twice keeps one name."""
    stems = [Path(p).stem for p in paths]
    parents = [Path(p).resolve().parts[:-1] for p in paths]
    names = list(stems)
    for k in range(2, max(map(len, parents), default=0) + 1):
        count, folders = Counter(names), Counter(n for n, _ in set(zip(names, parents)))
        clash = {n for n in names if count[n] > 1 and (k == 2 or folders[n] > 1)}
        if not clash:
            break
        names = ["_".join((*q[-k:], s)) if n in clash else n for n, q, s in zip(names, parents, stems)]
    count = Counter(names)
    fmt = [Path(p.rstrip("/")).suffix.lstrip(".").lower() or "raster" for p in paths]  # "tif", "zarr", "vrt"
    return [f"{n}_{f}" if count[n] > 1 else n for f, n in zip(fmt, names)]


def _without_earlier_outputs(paths: list[str], inputs: list[str], quiet: bool = False) -> list[str]:
    """`paths` less the rasters a folder or glob found in an earlier run's output folder (one holding the
    `catalog.json` geodino writes, or its `stacked/` VRTs below it), with one warning naming the folders: an
    archive embedded to `archive/feats/` and again to `archive/feats2/` took the 192-band feature rasters of the
    first run for scenes. A path named as an input is kept."""
    import warnings

    from geodino.embed.scene_stacks import STACKED
    from geodino.embed.stac_items import CATALOG, MARK
    from geodino.errors import plural

    named = {str(Path(i).expanduser()) for i in inputs}
    marked: dict[Path, bool] = {}

    def ours(folder: Path) -> bool:
        if folder not in marked:
            try:
                marked[folder] = MARK in (folder / CATALOG).read_text(errors="replace")
            except OSError:
                marked[folder] = False
        return marked[folder]

    kept, left = [], Counter[str]()
    for p in paths:
        here = Path(p)
        found = None
        if not (p.startswith("/vsi") or "://" in p or p in named):
            # a stacked item's VRT lies one folder down (`OUT/stacked/`); a scene is not left out for a catalog
            # two folders up (`--out project/` once, the scenes in project/scenes/)
            up = (here.parent, here.parent.parent) if here.parent.name == STACKED else (here.parent,)
            found = next((f for f in up if ours(f)), None)
        if found is None:
            kept.append(p)
        else:
            left[str(found)] += 1
    if left and not quiet:
        folders = ", ".join(f"{f} ({n})" for f, n in left.items())
        warnings.warn(
            f"left out {plural(sum(left.values()), 'raster')} of an earlier geodino embed output ({folders}: its "
            f"{CATALOG} says so); to embed them as scenes, name the files",
            stacklevel=3,
        )
    return kept


def _inside(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())
