"""Embedding flags given to a product (`geodino embed pca FEATURES --bbox ...`) are refused in one line (exit 2)
before anything is read: the products work on a feature raster as it is and ignored them silently (a study-area
map came out for the whole raster). The other way round too, by the same check (`check_flags`): a product's flags
given to the embedding, to `embed images` or to another product, and `key=value` items or extra files after a
product's files (`check_product_items`), were ignored silently and are one line now; no documented command is."""

from __future__ import annotations

import inspect

import pytest

from geodino import cli
from geodino.embed.commands import EMBED_FLAGS, PRODUCT_FLAGS, PRODUCT_OPTIONS, PRODUCTS

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


# -- the other direction: product flags given to the embedding, to `images` or to another product ------------------

VALUES = {"point": ["1,2"], "all_touched": [], "resample": [], "point_crs": ["EPSG:4326"], "method": ["knn"]}
INTS = ("k", "sample", "seed", "neighbors", "folds", "cv_gap", "max_cells")


def _product_flag(dest: str) -> list[str]:
    from geodino.embed.commands import _flag

    return [_flag(dest), *VALUES.get(dest, ["3" if dest in INTS else "x"])]


def test_the_product_table_is_the_product_functions_keywords():
    """`PRODUCT_OPTIONS` (what `check_flags` lets each product take) is its function's keyword-only parameters: a
    keyword added to a function and not to the table would be refused, one in the table only would be ignored."""
    from geodino.embed import products
    from geodino.embed.change import change_map
    from geodino.embed.classify import classify_map

    funcs = dict(zip(PRODUCTS, (products.pca_map, products.cluster_map, products.similarity_map)))
    funcs.update(zonal=products.zonal_embeddings, classify=classify_map, change=change_map)
    for product, func in funcs.items():
        params = inspect.signature(func).parameters
        kw = {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY}
        assert kw == {*PRODUCT_OPTIONS[product], "overwrite"} and "out" in params, product


@pytest.mark.parametrize("dest", PRODUCT_FLAGS)
def test_every_product_flag_given_to_the_embedding_is_refused(capsys, dest):
    from geodino.embed.commands import _flag

    line = err_line(capsys, "in.tif", "-b", "arch:vit_small", "--out", "o.tif", *_product_flag(dest))
    owners = [p for p in PRODUCTS if dest in PRODUCT_OPTIONS[p]]
    assert line.startswith(f"geodino: error: {_flag(dest)} applies to geodino embed {owners[0]}"), line
    assert line.endswith("not to geodino embed itself (which computes features); drop it"), line


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["pca", "f.tif", "--k", "8"], "--k applies to geodino embed cluster, not to geodino embed pca (its flags: "),
        (["zonal", "f.tif", "p.gpkg", "--threshold", "0.3"], "--threshold applies to geodino embed change, not to"),
        (["change", "a.tif", "b.tif", "--column", "c"], "--column applies to geodino embed classify, not to geodino"),
        (["similar", "f.tif", "--point", "1,2", "--all-touched"], "--all-touched applies to geodino embed zonal"),
        (["cluster", "f.tif", "--layer", "x"], "--layer applies to geodino embed similar, zonal and classify, not"),
        (["pca", "f.tif", "--k", "8", "--method", "knn"], "--k (cluster) and --method (classify) apply to those"),
        (
            ["images", "chips", "-b", "arch:vit_small", "--k", "8"],
            "--k applies to geodino embed cluster, not to geodino embed images; drop it",
        ),
    ],
)
def test_a_flag_of_another_product_is_refused(capsys, argv, said):
    out = "o.parquet" if argv[0] in ("zonal", "images") else "o.tif"
    line = err_line(capsys, *argv, "--out", out)
    assert said in line and "drop" in line, line


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["zonal", "F.tif", "P.gpkg", "tile=256"],
            "tile=256: key=value overrides set geodino embed itself (how "
            "features are computed), not geodino embed zonal, which takes FEATURES and POLYGONS and flags; drop it",
        ),
        (["pca", "F.tif", "tile=256"], "tile=256: key=value overrides set geodino embed itself"),
        (["cluster", "F.tif", "k=5"], "k=5: geodino embed cluster takes its options as flags; pass --k 5"),
        (["classify", "F.tif", "L.gpkg", "max-cells=9"], "takes its options as flags; pass --max-cells 9"),
        (["pca", "a.tif", "b.tif"], "geodino embed pca takes FEATURES; unexpected b.tif"),
        (["change", "a.tif", "b.tif", "c.tif"], "geodino embed change takes A and B; unexpected c.tif"),
        (["zonal", "F.tif"], "geodino embed zonal needs FEATURES and POLYGONS: geodino embed zonal FEATURES POLYGONS"),
    ],
)
def test_key_value_items_and_extra_files_after_a_product_are_refused(capsys, argv, said):
    line = err_line(capsys, *argv, "--out", "z.parquet" if argv[0] == "zonal" else "o.tif")
    assert said in line, line


def test_an_existing_file_with_an_equals_sign_is_still_a_file(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run=3.tif").write_bytes(b"not a raster")
    line = err_line(capsys, "pca", "run=3.tif", "--out", "o.tif")
    assert "key=value" not in line and "run=3.tif" in line, line


def test_no_documented_embed_command_is_refused(tmp_path, monkeypatch):
    """Every `geodino embed` command of README.md and docs/*.md passes the flag and item checks (the docs' runs in
    tests/docs run most of them for real; this covers all, quickly)."""
    import os
    import shlex

    from geodino.embed.commands import check_flags, check_product_items
    from tests.docs.commands import documented_commands

    monkeypatch.chdir(tmp_path)  # no folder named images here
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "8")  # what the shell expands (the README's SLURM array)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "0")
    parser = cli.build_parser()
    commands = [c for _, c in documented_commands() if c.startswith("geodino embed ")]
    assert len(commands) > 30
    for command in commands:
        args = parser.parse_args([os.path.expandvars(w) for w in shlex.split(command)[1:]])
        product = args.input if args.input in PRODUCTS else "images" if args.input == "images" else "embed"
        check_flags(args, product)
        if product in PRODUCTS:
            check_product_items(product, list(args.overrides))


def test_defaults_of_the_product_flags_are_the_functions(capsys, tmp_path):
    """The product flags have no argparse defaults (so that given ones are known): the functions' own apply."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    feats = tmp_path / "f.tif"
    rng = np.random.default_rng(0)
    with rasterio.open(feats, "w", driver="GTiff", height=12, width=16, count=4, dtype="float32", crs="EPSG:32633",
                       transform=from_origin(500000, 4000000, 40, 40)) as dst:  # fmt: skip
        dst.write(rng.normal(size=(4, 12, 16)).astype(np.float32))
        dst.update_tags(GEODINO_MODEL_SPEC="arch:test", GEODINO_MODEL_FINGERPRINT="abc")
    assert cli.main(["embed", "cluster", str(feats), "--out", str(tmp_path / "c.tif")]) == 0
    assert "(8 k-means classes" in capsys.readouterr().out
    with rasterio.open(tmp_path / "c.tif") as ds:
        assert ds.tags()["GEODINO_KMEANS_K"] == "8"
