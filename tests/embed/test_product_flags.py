"""Embedding flags given to a product (`geodino embed pca FEATURES --bbox ...`) are refused in one line (exit 2)
before anything is read: the products work on a feature raster as it is and ignored them silently (a study-area
map came out for the whole raster)."""

from __future__ import annotations

import inspect

import pytest

from geodino import cli
from geodino.embed.commands import EMBED_FLAGS, PRODUCTS

OUT = {"zonal": "z.parquet"}
ARGS = {"zonal": ["f.tif", "p.gpkg"], "classify": ["f.tif", "l.gpkg", "--column", "c"], "change": ["a.tif", "b.tif"]}


@pytest.fixture(autouse=True)
def embed_only(monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.embed.commands",))


def err_line(capsys, *argv: str) -> str:
    code = cli.main(["embed", *argv])
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    return lines[0]


def _argv(product: str, *flags: str) -> list[str]:
    return [product, *ARGS.get(product, ["f.tif"]), "--out", str(OUT.get(product, "o.tif")), *flags]


@pytest.mark.parametrize("product", PRODUCTS)
@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--bbox", "500000", "4990000", "501000", "4991000"], "--bbox"),
        (["--window", "0", "0", "64", "64"], "--window"),
        (["--bbox-crs", "EPSG:4326"], "--bbox-crs"),
    ],
)
def test_an_area_flag_on_a_product_says_to_embed_the_area_first(capsys, tmp_path, product, flags, named):
    line = err_line(capsys, *_argv(product, *flags))
    assert line.startswith(f"geodino: error: {named} applies to geodino embed itself"), line
    assert f"not to geodino embed {product}" in line
    flag = named.removesuffix("-crs")
    assert f"embed that area first (geodino embed INPUT -b SPEC {flag} ... --out AREA.tif)" in line
    assert f"then run geodino embed {product} on AREA.tif" in line


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--tile", "256"], "--tile applies to geodino embed itself (how features are computed)"),
        (["-b", "arch:vit_small"], "--backbone applies"),
        (["--bf16", "--threads", "2"], "--bf16 and --threads apply"),
        (["--l2", "true", "--no-progress"], "--l2 and --no-progress apply"),
        (["--config", "embed.yaml"], "--config applies to geodino embed itself (an embed config file)"),
        (["--device", "cpu"], "--device applies"),
    ],
)
def test_other_embedding_flags_on_a_product_are_refused(capsys, flags, said):
    for product in ("pca", "classify", "change"):
        line = err_line(capsys, *_argv(product, *flags))
        assert said in line and f"not to geodino embed {product}" in line and "drop" in line, line


def test_out_and_overwrite_pass_and_no_product_takes_another_embedding_flag(capsys, tmp_path):
    """--out/--overwrite are the products' own: the run gets past the flag check (to the missing raster). And no
    product function has a parameter named as an embedding flag: the one shared list stays right."""
    code = cli.main(["embed", "pca", str(tmp_path / "missing.tif"), "--out", str(tmp_path / "o.tif"), "--overwrite"])
    assert code == 2 and "applies to geodino embed itself" not in capsys.readouterr().err
    from geodino.embed import products
    from geodino.embed.change import change_map
    from geodino.embed.classify import classify_map
    from geodino.embed.commands import PRODUCT_SHARED

    funcs = (products.pca_map, products.cluster_map, products.similarity_map, products.zonal_embeddings)
    for f in (*funcs, classify_map, change_map):
        taken = set(inspect.signature(f).parameters) & set(EMBED_FLAGS)
        assert taken == set(PRODUCT_SHARED), (f.__name__, taken)
