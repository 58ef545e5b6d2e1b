"""The default column of two option tables agrees with the dataclass it documents: docs/embed.md "Options"
(`EmbedConfig`) and docs/data.md "Sources" (`SourceConfig`). Every field must have a row (a new option without
one fails), and every row's default must read as the field's default: a literal (`512`, `cosine`, `true`, `1, 0`)
is compared as a value; a description (`overlap/4`, `whole raster`) is listed in DESCRIBED with the code value it
stands for, so that changing the default in the code without the doc fails here."""

from __future__ import annotations

import dataclasses
import re

import pytest

from tests.docs.commands import ROOT

# descriptions used in the default column -> the code default they describe (None: "unset", decided at run time)
DESCRIBED = {
    "embed.md": {
        "backbone": ("—", ""),
        "out": ("—", ""),
        "margin": ("overlap/4", None),
        "l2_normalize": ("auto", None),
        "sensor": ("—", None),
        "scale": ("—", None),
        "band_scale": ("—", None),
        "band_offset": ("—", None),
        "bands": ("all", None),
        "nodata": ("declared", None),
        "variable": ("—", None),
        "time": ("—", None),
        "bbox": ("whole raster", None),
        "bbox_crs": ("the raster's CRS", None),
        "window": ("whole raster", None),
        "grid_offset": ("the input's own grid", None),
        "asset": ("—", None),
        "asset_bands": ("all", None),
        "chunk": ("auto", 0),
        "block_rows": ("chunk", 0),
    },
    "data.md": {
        "name": ("`source<i>` (its place in `sources`, from 0)", ""),
        "paths": ("-", []),
        "sensor": ("- (images, tar: `imagenet`; synthetic: `sat493m`; rasters: inferred from the files)", None),
        "bands": ("all", None),
        "band_names": ("-", None),
        "nodata": ("file's", None),
        "stride": ("tile_size", None),
        "roi": ("-", None),
        "crs": ("native", None),
        "res": ("native", None),
        "index_cache": ("-", None),
        "on_error": ("skip for `images` and `tar`, else stop", None),
        "dataset": ("-", None),
        "dataset_kwargs": ("-", {}),
        "variable": ("auto", None),
        "band_dim": ("auto", None),
    },
}


def _table(doc: str, header: str) -> list[tuple[list[str], str]]:
    """(keys, default cell) of each row of the table whose header line starts with `header`; a row that names
    several keys (`a`, `b` / `c`; `cube: a, b`) gives them all; `--flag` names are left out."""
    lines = (ROOT / "docs" / doc).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        keys = [k for k in re.findall(r"`([^`]+)`", cells[0]) if not k.startswith("-")]
        rows.append((keys, cells[1]))
    return rows


def _split(cell: str, n: int) -> list[str]:
    """A default cell for n keys: one value each, split at commas outside brackets (`1, 0`, `true, [10, 20]`), or
    one value that all of them share (`overwrite` / `resume`: false)."""
    if n == 1:
        return [cell]
    parts = [p.strip() for p in re.split(r",\s*(?![^\[]*\])", cell)]
    if len(parts) == 1:
        return parts * n
    assert len(parts) == n, f"default cell {cell!r} does not give one value for each of its {n} keys"
    return parts


def _literal(text: str):
    """A default as written in the table: true/false, a number, or a word (backticks and quotes dropped)."""
    text = text.strip("`'\"")
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _cases(doc: str, header: str, schema: type) -> list[tuple[str, str, object]]:
    """(key, default as documented, the code's default) for every row key; fails on a key no field has."""
    defaults = {f.name: getattr(schema(), f.name) for f in dataclasses.fields(schema)}
    out = []
    for keys, cell in _table(doc, header):
        for key, value in zip(keys, _split(cell, len(keys)), strict=True):
            assert key in defaults, f"docs/{doc}: `{key}` is not a {schema.__name__} field"
            out.append((key, value, defaults[key]))
    return out


def _check(doc: str, header: str, schema: type) -> None:
    cases = _cases(doc, header, schema)
    documented = {key for key, _, _ in cases}
    missing = sorted({f.name for f in dataclasses.fields(schema)} - documented)
    assert not missing, f"docs/{doc}: {schema.__name__} fields without a row: {missing}"
    described = DESCRIBED[doc]
    wrong = []
    for key, value, code in cases:
        if key in described:
            text, meant = described[key]
            if value != text or code != meant:
                wrong.append(f"`{key}`: doc {value!r}, code {code!r} (this test reads {text!r} as {meant!r})")
        elif _literal(value) != code or isinstance(code, bool) != isinstance(_literal(value), bool):
            wrong.append(f"`{key}`: doc {value!r}, code {code!r}")
    assert not wrong, f"docs/{doc} defaults disagree with {schema.__name__}:\n" + "\n".join(wrong)


def test_embed_options_table_matches_embed_config() -> None:
    from geodino.embed.config import EmbedConfig

    _check("embed.md", "| key / flag | default |", EmbedConfig)


def test_data_source_keys_table_matches_source_config() -> None:
    from geodino.data.config import SourceConfig

    _check("data.md", "| key | default | meaning |", SourceConfig)


@pytest.mark.parametrize("doc", sorted(DESCRIBED))
def test_every_described_default_is_a_row(doc) -> None:
    """A DESCRIBED entry whose row was removed or renamed is stale: say so instead of passing silently."""
    from geodino.data.config import SourceConfig
    from geodino.embed.config import EmbedConfig

    header, schema = {
        "embed.md": ("| key / flag | default |", EmbedConfig),
        "data.md": ("| key | default | meaning |", SourceConfig),
    }[doc]
    keys = {key for key, _, _ in _cases(doc, header, schema)}
    assert set(DESCRIBED[doc]) <= keys
