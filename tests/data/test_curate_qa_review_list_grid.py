"""Review follow-up of `geodino data curate`: a raster list's windows are col/row on the grid the curation read
(a source's `crs:`/`res:` reprojection target, or the scenes' native grids). Read by a source without the same
`crs:`/`res:`, the same col/row named other pixels (a window at row 41 of a 73-row warped scene became rows 41-73 of
the 64-row native scene, partly past it) and nothing was said. The list now records its grid (Parquet metadata
`geodino:grid`) and a source on another grid is refused in one line; the same grid (any spelling of the CRS) and
lists written before (no record) read as before."""

from __future__ import annotations

import warnings

import pyarrow.parquet as pq
import pytest

from geodino.data.config import SourceConfig
from geodino.data.curate.tilelist import GRID_KEY
from geodino.data.loaders import build_source
from geodino.errors import InputError
from tests.data.test_curate_qa_report_read_apart import _curate


def _source(tmp_path, **grid):
    cfg = SourceConfig(type="raster", paths=[str(tmp_path / "cur" / "curated.parquet")],
                       sensor=str(tmp_path / "s2qa.yaml"), **grid)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the QA band read as a model input
        return build_source(cfg, shuffle=False, progress=False)


# a QA band read as a model band is this test's input; its warning is test_qa_band_as_model_input's subject
@pytest.mark.filterwarnings("ignore:band .* is a QA band:UserWarning")
def test_a_reprojected_list_read_without_its_grid_is_refused(tmp_path):
    _curate(tmp_path, crs="EPSG:32632", res=10)
    listed = pq.read_table(tmp_path / "cur" / "curated.parquet")
    assert b'"crs": "EPSG:32632"' in listed.schema.metadata[GRID_KEY.encode()]
    with pytest.raises(InputError, match=r"holds windows on crs: EPSG:32632, res: 10, but this source reads the "):
        _source(tmp_path)
    with pytest.raises(InputError, match=r"but this source reads crs: EPSG:32632, res: 20; set the source's crs:/res"):
        _source(tmp_path, crs="EPSG:32632", res=20.0)
    assert len(_source(tmp_path, crs="epsg:32632", res=10)) == 2  # the same grid, another spelling
    # a list of an earlier geodino (no record) reads as before
    pq.write_table(listed.replace_schema_metadata({}), tmp_path / "cur" / "curated.parquet")
    assert len(_source(tmp_path)) == 2


# a QA band read as a model band is this test's input; its warning is test_qa_band_as_model_input's subject
@pytest.mark.filterwarnings("ignore:band .* is a QA band:UserWarning")
def test_a_native_list_read_on_a_reprojected_grid_is_refused(tmp_path):
    _curate(tmp_path)
    assert len(_source(tmp_path)) == 2
    with pytest.raises(InputError, match=r"holds windows on the scenes' native grids \(no crs:/res:\), but this"):
        _source(tmp_path, crs="EPSG:32632", res=10.0)
