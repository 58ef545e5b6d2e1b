"""The training data's extent (`train.data_extent`), the geometry of a run's exports' STAC items: the union of the
rasters' footprints checked against corners transformed independently with pyproj (tiles in two UTM zones, a ROI,
the antimeridian, many tiles), joined with the extent of the export a run starts from, and carried from a real
pretraining run through its checkpoints into the items of its exports."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from geodino.data.footprints import MAX_POINTS, union_footprint
from geodino.data.rasters import SceneInfo
from geodino.train.data_extent import training_extent
from tests.helpers import scene_info


def scene(crs: str, x: float, y: float, size: int = 100, res: float = 10.0) -> SceneInfo:
    return scene_info(crs, (res, 0.0, x, 0.0, -res, y), size, size, path=f"{crs}_{x}_{y}.tif")


def corners(s: SceneInfo, cols=(0, None), rows=(0, None)) -> list[tuple[float, float]]:
    """The scene's pixel corners in EPSG:4326, by pyproj (not the code under test)."""
    to = Transformer.from_crs(s.crs, "EPSG:4326", always_xy=True)
    t = s.affine
    return [
        to.transform(*(t * (c if c is not None else s.width, r if r is not None else s.height)))
        for c in cols
        for r in rows
    ]


def test_tiles_in_two_utm_zones_give_one_outline_covering_every_corner_and_no_more():
    a, b = scene("EPSG:32632", 690000, 5000000), scene("EPSG:32633", 310000, 5000000)  # either side of 12 E
    geom = union_footprint([a, b])
    pts = corners(a) + corners(b)
    assert all(geom.buffer(1e-9).contains(shapely.Point(p)) for p in pts)
    x0, y0, x1, y1 = geom.bounds  # tight: the envelope of the corners (edges are near-straight at 1 km)
    assert x0 == pytest.approx(min(p[0] for p in pts), abs=1e-6) and x1 == pytest.approx(
        max(p[0] for p in pts), abs=1e-6
    )
    assert y0 == pytest.approx(min(p[1] for p in pts), abs=1e-6) and y1 == pytest.approx(
        max(p[1] for p in pts), abs=1e-6
    )
    one = union_footprint([a])
    assert one.area < geom.area and geom.area == pytest.approx(one.area + union_footprint([b]).area, rel=1e-6)


def test_a_roi_region_keeps_only_the_part_in_use_and_an_empty_one_drops_the_scene():
    a, b = scene("EPSG:32633", 500000, 5000000), scene("EPSG:32633", 600000, 5000000)
    left = shapely.box(0, 0, 50, 100)  # pixel coordinates: the left half of a
    geom = union_footprint([a, b], [left, shapely.Polygon()])
    want = corners(a, cols=(0, 50))
    assert geom.geom_type == "Polygon"  # b is not used at all
    x0, _, x1, _ = geom.bounds
    assert x0 == pytest.approx(min(p[0] for p in want), abs=1e-6) and x1 == pytest.approx(
        max(p[0] for p in want), abs=1e-6
    )
    assert union_footprint([a], [shapely.Polygon()]) is None and union_footprint([]) is None


def test_many_tiles_stay_a_small_outline_and_the_antimeridian_splits_it():
    tiles = [scene("EPSG:32633", 500000 + 1000 * i, 5000000 - 1000 * j) for i in range(30) for j in range(30)]
    geom = union_footprint(tiles)  # 900 abutting tiles: one polygon, not 900
    assert geom.geom_type == "Polygon" and shapely.get_num_coordinates(geom) <= MAX_POINTS
    assert all(geom.buffer(1e-6).contains(shapely.Point(p)) for t in (tiles[0], tiles[-1]) for p in corners(t))
    # UTM 60 across 180 E: split into two parts; the bbox runs west > east (RFC 7946)
    x180, _ = Transformer.from_crs("EPSG:4326", "EPSG:32660", always_xy=True).transform(180.0, 10.0)
    extent = training_extent([_Source([scene("EPSG:32660", x180 - 500, 1110000)])])
    assert extent["geometry"]["type"] == "MultiPolygon"
    west, _, east, _ = extent["bbox"]
    assert 179.99 < west < 180.0 and -180.0 < east < -179.99


def _covers_every_scene(geom, tiles) -> bool:
    """Every scene's four corners (pyproj) and centre lie in `geom`: nothing the data covers is cut off."""
    grown = geom.buffer(1e-9)
    return all(
        grown.contains(shapely.Point(p))
        for t in tiles
        for p in corners(t) + corners(t, cols=(t.width // 2,), rows=(t.height // 2,))
    )


def _fits(geom) -> bool:
    from shapely.geometry.polygon import orient

    parts = getattr(geom, "geoms", [geom])
    ccw = all(orient(p, 1.0).equals_exact(p, 0.0) for p in parts)
    return (
        geom.is_valid
        and geom.geom_type in ("Polygon", "MultiPolygon")
        and ccw
        and (shapely.get_num_coordinates(geom) <= MAX_POINTS)
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize("n", [250, 300])
def test_scattered_scenes_fit_in_the_vertex_limit_without_cutting_into_any(n):
    """Training sites scattered over a region (1 km scenes 5 km apart): too many parts to keep each as its own
    ring within MAX_POINTS. Simplification alone (Douglas-Peucker keeps every ring at >= 4 vertices) turned 250
    squares into triangles missing half of each scene, and never ended for 300 (run start hung)."""
    tiles = [scene("EPSG:32633", 300000 + 5000 * (i % 40), 5000000 - 5000 * (i // 40)) for i in range(n)]
    geom = union_footprint(tiles)
    assert _fits(geom) and _covers_every_scene(geom, tiles)
    x0, y0, x1, y1 = geom.bounds  # and claims no more than about two site spacings beyond them
    pts = [p for t in tiles for p in corners(t)]
    assert x0 > min(x for x, _ in pts) - 0.15 and x1 < max(x for x, _ in pts) + 0.15
    assert y0 > min(y for _, y in pts) - 0.1 and y1 < max(y for _, y in pts) + 0.1


@pytest.mark.timeout(120)
def test_a_tile_grid_with_hundreds_of_gaps_fits_without_cutting_into_any_tile():
    """A 40 x 40 grid of 1 km tiles with every other tile of every other row missing (cloudy tiles left out):
    ~400 holes, each a ring Douglas-Peucker keeps, so the old loop never ended."""
    tiles = [
        scene("EPSG:32633", 500000 + 1000 * i, 5000000 - 1000 * j)
        for i in range(40)
        for j in range(40)
        if not (i % 2 and j % 2)
    ]
    geom = union_footprint(tiles)
    assert _fits(geom) and _covers_every_scene(geom, tiles)


@pytest.mark.timeout(120)
def test_many_scattered_scenes_across_the_antimeridian_keep_a_west_to_east_bbox():
    """Scattered UTM 60 scenes on both sides of 180 E: the fitted outline stays split at +-180 (clipped there,
    not grown past it) and the bbox runs west > east."""
    x180, _ = Transformer.from_crs("EPSG:4326", "EPSG:32660", always_xy=True).transform(180.0, 10.0)
    tiles = [scene("EPSG:32660", x180 - 100000 + 5000 * (i % 40), 1200000 - 5000 * (i // 40)) for i in range(300)]
    extent = training_extent([_Source(tiles)])
    geom = shapely.geometry.shape(extent["geometry"])
    assert _fits(geom) and geom.geom_type == "MultiPolygon"
    wrapped = shapely.MultiPolygon(
        [shapely.transform(p, lambda c: c - [[360.0, 0.0]]) if p.bounds[0] > 0 else p for p in geom.geoms]
    )
    assert all(
        wrapped.buffer(1e-9).contains(shapely.Point(x - 360.0 if x > 0 else x, y)) for t in tiles for x, y in corners(t)
    )
    west, _, east, _ = extent["bbox"]
    assert 178.9 < west < 180.0 and -180.0 < east < -178.9
    assert all(-180.0 <= v <= 180.0 for p in geom.geoms for v in (p.bounds[0], p.bounds[2]))


def test_scenes_far_apart_in_one_crs_keep_their_curved_edges():
    """Two Sentinel-2-sized tiles 3,000 km apart in one UTM zone: each edge is densified for its own tile, as one
    scene's footprint is (a step from the whole union's extent, 150 km, left the 110 km edges straight, and their
    projected curves cut ~465 m off the tiles)."""
    a = scene("EPSG:32633", 300000, 7000000, size=10980)  # 63 N, towards the zone's west edge
    b = scene("EPSG:32633", 600000, 4000000, size=10980)
    geom = union_footprint([a, b])
    grown = geom.buffer(5e-5)  # ~5 m: what 20 points per edge leave (a single scene's footprint too)
    for t in (a, b):
        k = range(0, t.width + 1, 366)
        pts = corners(t, cols=k, rows=(0, t.height)) + corners(t, cols=(0, t.width), rows=k)
        assert all(grown.contains(shapely.Point(p)) for p in pts)


class _Source:
    """What training_extent reads of a loader's raster source: its placed scenes and its tile sampler (no ROI)."""

    def __init__(self, scenes):
        from geodino.data.tiling import TileSampler

        self.scenes = scenes
        self.tiles = TileSampler(scenes, 16)

    def placed_scenes(self):
        return list(self.scenes)


@pytest.mark.parametrize("sampling", ["random", "grid"])
def test_a_roi_that_leaves_scenes_out_gives_the_extent_of_the_tiles_drawn(sampling):
    """A ROI over part of an archive: the sampler keeps only the scenes it meets (its roi_px lists those), so
    the old one-to-one check fell back to every whole scene, ROI ignored (here 100 km of unused data). The extent
    is where the drawn tiles lie: the ROI part of the kept scene grown by a tile's reach (a random tile's centre is
    inside the ROI, a grid tile only meets it), and nothing of the scene the ROI misses."""
    from geodino.data.tiling import TileSampler

    a, b = scene("EPSG:32633", 500000, 5000000), scene("EPSG:32633", 600000, 5000000)  # b: 100 km east
    roi = shapely.box(500000, 4999500, 500330, 5000000)  # the west third of a, in the scenes' CRS
    tiles = TileSampler([a, b], 16, roi=roi, roi_crs="EPSG:32633", sampling=sampling, stride=16)
    src = _Source([a, b])
    src.tiles = tiles
    geom = shapely.geometry.shape(training_extent([src])["geometry"])
    rng = np.random.default_rng(0)
    drawn = (
        [tiles.random_tile(rng) for _ in range(2000)]
        if sampling == "random"
        else [tiles.grid_tile(k) for k in range(len(tiles))]
    )
    assert {t[0] for t in drawn} == {0}
    pts = [p for _, c, r, w, h in drawn for p in corners(a, cols=(c, c + w), rows=(r, r + h))]
    assert all(geom.buffer(1e-7).contains(shapely.Point(p)) for p in pts)  # 1 cm: chords of the densified edges
    assert geom.bounds[2] < max(x for x, _ in pts) + 0.003  # within a tile (160 m) of the tiles: not b, not all of a
    assert geom.area < union_footprint([a]).area * 0.6


def test_the_extent_joins_the_export_a_run_starts_from_and_sources_without_scenes_add_nothing(tmp_path):
    from geodino.models import build_model
    from geodino.models.checkpoints import save_export

    here = scene("EPSG:32633", 500000, 5000000)
    there = scene("EPSG:32618", 500000, 4000000)
    earlier = training_extent([_Source([there])])
    model = build_model("vit_tiny", patch_size=8, depth=1)
    props = {"geometry": earlier["geometry"], "bbox": earlier["bbox"]}
    save_export(tmp_path / "base.pth", model, dict(model.config), stac_properties=props)
    joined = training_extent([_Source([here]), object()], str(tmp_path / "base.pth"))
    geom = shapely.geometry.shape(joined["geometry"])
    assert geom.geom_type == "MultiPolygon" and len(geom.geoms) == 2
    assert all(geom.buffer(1e-9).contains(shapely.Point(p)) for p in corners(here) + corners(there))
    assert training_extent([object()])["geometry"] is None  # image folders and the like: no place on the map
    assert training_extent([], "arch:vit_small")["geometry"] is None
    assert training_extent([], str(tmp_path / "none.pth"))["geometry"] is None


def test_a_stage_started_from_the_previous_stages_checkpoint_keeps_its_extent(tmp_path):
    """The pretraining stages are chained with `init_from: runs/NAME/checkpoints/last.ckpt`: the checkpoint records
    its extent (`geodino.data_extent`), which the next stage's exports must keep, as they do for an export's item
    (the old code read only an item beside an export, so stage 2 forgot where stage 1 had looked)."""
    import torch

    from geodino.train.checkpointing import FORMAT

    here, there = scene("EPSG:32633", 500000, 5000000), scene("EPSG:32618", 500000, 4000000)
    ckpt = tmp_path / "runs" / "stage1" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    meta = {"format": FORMAT, "data_extent": training_extent([_Source([there])])}
    torch.save({"state_dict": {"w": torch.zeros(2)}, "geodino": meta}, ckpt)
    sharded = tmp_path / "runs" / "stage1" / "checkpoints" / "sharded.ckpt"
    sharded.mkdir()
    torch.save({"geodino": meta}, sharded / "meta.pt")
    for spec in (ckpt, sharded):
        joined = training_extent([_Source([here])], str(spec))
        geom = shapely.geometry.shape(joined["geometry"])
        assert all(geom.buffer(1e-9).contains(shapely.Point(p)) for p in corners(here) + corners(there))
    old = tmp_path / "old.ckpt"  # a checkpoint from before extents were recorded: nothing to join
    torch.save({"state_dict": {}, "geodino": {"format": FORMAT}}, old)
    assert training_extent([], str(old))["geometry"] is None
    assert training_extent([], str(tmp_path / "gone.ckpt"))["geometry"] is None


def test_a_pretraining_runs_exports_carry_the_rasters_extent(tiny_run, tiny_data, tmp_path):
    """The run's end export and a later `geodino export` of one of its checkpoints: same geometry, covering the
    two training rasters and nothing between them (they are 360 m apart)."""
    import rasterio

    from geodino.cli import main

    pts = []
    for f in sorted(tiny_data.glob("*.tif")):
        with rasterio.open(f) as src:
            to = Transformer.from_crs(src.crs.to_wkt(), "EPSG:4326", always_xy=True)
            pts += [to.transform(*(src.transform * (c, r))) for c in (0, src.width) for r in (0, src.height)]
    item = json.loads((tiny_run / "export" / "teacher.stac.json").read_text())
    geom = shapely.geometry.shape(item["geometry"])
    assert geom.geom_type == "MultiPolygon" and len(geom.geoms) == 2
    assert all(geom.buffer(1e-9).contains(shapely.Point(p)) for p in pts)
    assert item["bbox"] == pytest.approx(
        [min(x for x, _ in pts), min(y for _, y in pts), max(x for x, _ in pts), max(y for _, y in pts)], abs=1e-7
    )
    ckpt = sorted((tiny_run / "checkpoints").glob("*.ckpt"))[0]
    assert main(["export", str(ckpt), str(tmp_path / "again.pth")]) == 0
    again = json.loads((tmp_path / "again.stac.json").read_text())
    assert again["geometry"] == item["geometry"] and again["bbox"] == item["bbox"]
    assert np.isfinite(item["bbox"]).all()


def test_a_distilled_student_carries_its_teachers_extent(tiny_run, tmp_path):
    """Distilled on images (no place on the map) from the raster-trained teacher: the student's item has the
    teacher's geometry, joined through the distillation run."""
    from PIL import Image

    from geodino.config import load_config
    from geodino.train.distill import DistillConfig, distill
    from tests.train.test_distill import _overrides

    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(images / f"im{i}.png")
    teacher = tiny_run / "export" / "teacher.pth"
    students = "students=[{name: tiny, arch: vit_tiny, drop_path_rate: 0.0, overrides: {depth: 1}}]"
    extra = (f"teacher.spec={teacher}", students, "train.max_steps=1")
    exports = distill(load_config(DistillConfig, None, _overrides(images, tmp_path / "run", *extra)))
    item = json.loads((exports["tiny"].parent / "tiny.stac.json").read_text())
    want = json.loads((tiny_run / "export" / "teacher.stac.json").read_text())
    assert want["geometry"] is not None
    assert item["geometry"] == want["geometry"] and item["bbox"] == want["bbox"]
    assert item["properties"]["mlm:pretrained_source"].startswith(f"distilled from {teacher}")


@pytest.mark.parametrize("target", ["EPSG:32633", "EPSG:4326"])
def test_a_scene_read_through_a_warped_grid_claims_its_own_pixels_not_the_rectangles_corners(tmp_path, target):
    """A UTM 32N scene read in another CRS (`crs`/`res` set) lies tilted in the warped grid's rectangle, whose
    corners are nodata: the extent is the file's own outline, checked against pyproj corners."""
    import rasterio
    from rasterio.transform import from_origin

    from geodino.data.archive import RasterArchive

    path = tmp_path / "utm32.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=200,
        height=200,
        count=3,
        dtype="uint8",
        crs="EPSG:32632",
        transform=from_origin(690000, 5000000, 10, 10),
    ) as dst:
        dst.write(np.ones((3, 200, 200), np.uint8))
    res = 10.0 if target != "EPSG:4326" else 1e-4
    archive = RasterArchive([str(path)], crs=target, res=res, progress=False)
    (warped,) = archive.scenes
    assert warped.warped
    native = scene("EPSG:32632", 690000, 5000000, size=200)
    want = union_footprint([native])  # the file's outline, read in its own grid
    got = union_footprint([warped])
    rectangle = shapely.box(*got.bounds)
    assert got.symmetric_difference(want).area < 1e-3 * want.area
    assert rectangle.area > 1.02 * want.area  # the tilted outline: the old extent (the rectangle) claimed more
    assert all(got.buffer(1e-9).contains(shapely.Point(p)) for p in corners(native))
