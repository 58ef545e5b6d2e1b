"""Split lists naming images the folder lacks: torchgeo's EuroSAT keeps the images its split file names and drops the
rest without a word (a partly extracted download scored part of the split, silently; now one warning), and a
BigEarthNet patch its split CSV names but the folder lacks stopped with numpy's traceback (now one line naming it)."""

from __future__ import annotations

import warnings

import pytest

from geodino.eval.datasets import DatasetConfig, build_dataset
from tests.eval.test_datasets import make_eurosat


def test_a_split_list_naming_missing_images_warns_once_with_counts_and_an_example(tmp_path):
    make_eurosat(tmp_path)  # test split: Forest_4, River_4
    listed = tmp_path / "eurosat-test.txt"
    listed.write_text(listed.read_text() + "Forest_99.jpg\nRiver_77.jpg\nRiver_78.jpg\n")
    cfg = DatasetConfig(name="eurosat", root=str(tmp_path))
    with pytest.warns(UserWarning) as caught:
        first = build_dataset(cfg, "test")
        build_dataset(cfg, "test")  # the task builds the split the suite checked: no second line
    msgs = [str(w.message) for w in caught if "eurosat-test.txt" in str(w.message)]
    base = tmp_path / "ds/images/remote_sensing/otherDatasets/sentinel_2/tif"
    assert msgs == [
        f"eurosat (test split): eurosat-test.txt names 5 images but 3 of them are not in {base} (e.g. Forest_99.tif): "
        "the probe scores the 2 found, not the whole split; extract the dataset again (see datasets/README.md for "
        "how to get it and the layout geodino expects)"
    ]
    assert len(first) == 2
    with warnings.catch_warnings():  # a complete split list is quiet
        warnings.simplefilter("error")
        assert len(build_dataset(cfg, "train")) == 4


def test_a_bigearthnet_patch_the_split_csv_names_but_the_folder_lacks_is_one_line_naming_it(tmp_path):
    import shutil

    from geodino.errors import InputError
    from tests.eval.test_datasets import make_bigearthnet

    make_bigearthnet(tmp_path)
    shutil.rmtree(tmp_path / "BigEarthNet-v1.0" / "S2A_test_1")
    ds = build_dataset(DatasetConfig(name="bigearthnet", root=str(tmp_path)), "test")
    assert ds[0]["image"].shape[0] == 12  # the patches that are there still read
    with pytest.raises(InputError) as err:  # numpy's 'need at least one array to stack' traceback, exit 1
        ds[1]
    assert str(err.value).startswith(
        f"bigearthnet (test split): patch {tmp_path / 'BigEarthNet-v1.0' / 'S2A_test_1'} listed in "
        "bigearthnet-test.csv cannot be read ("
    )
    assert str(err.value).endswith("): missing or incomplete; extract the dataset again (see datasets/README.md "
                                   "for how to get it and the layout geodino expects)")  # fmt: skip
