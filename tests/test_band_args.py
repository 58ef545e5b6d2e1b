"""`geodino.data.band_args`: the one parser of band selections (names for data configs, names or a count for a
backbone, 1-based numbers for embed).

The first three tables are every input form the three parsers it replaced accepted (`data.config.band_list`,
`backbones.spec.bands_option`, `embed.config.band_numbers` at d6ea8e4), with the outputs those gave, checked by hand:
they must not change. The rest is what changed: forms now accepted (numpy, YAML text), band numbers that slipped
through as backbone names (text "4,3,2", numpy arrays) now refused, one message form for every refusal, and band
names given to a backbone without a sensor said out loud.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from geodino.data.band_args import parse_backbone_bands, parse_band_names, parse_band_numbers
from geodino.errors import ConfigError


class EnumLike:
    """A band enum as TerraTorch passes them: named by its text, as before."""

    def __str__(self) -> str:
        return "EnumLike.RED"

    def __repr__(self) -> str:  # a stable test id (pytest-xdist workers must collect the same names)
        return "EnumLike.RED"


NAMES_ACCEPTED = [
    (None, None),
    ("", None),
    ("  ", None),
    ("red", ["red"]),
    ("red,nir", ["red", "nir"]),
    (" red , nir ,", ["red", "nir"]),
    (["red nir"], ["red nir"]),  # a list item with a space is one name (a file's band may be called so)
    ("12", ["12"]),  # a file's bands may be labelled "1", "2": numeric text stays a name here
    ("4,3,2", ["4", "3", "2"]),
    ([], None),
    ((), None),
    (["red", "nir"], ["red", "nir"]),
    (("red", "nir"), ["red", "nir"]),
    ([" red"], [" red"]),  # list items are kept as given
    (["4", "3"], ["4", "3"]),
]

BACKBONE_ACCEPTED = [
    (None, (None, None)),
    ("red", (1, ["red"])),
    ("red,nir", (2, ["red", "nir"])),
    (" red , nir ,", (2, ["red", "nir"])),
    (["red nir"], (1, ["red nir"])),  # a list item with a space stays one name
    ("B02,B03,B04", (3, ["B02", "B03", "B04"])),
    ("12", (12, None)),
    (" 12 ", (12, None)),
    (3, (3, None)),
    (["red", "nir"], (2, ["red", "nir"])),
    (("red", "nir"), (2, ["red", "nir"])),
    ([" red"], (1, [" red"])),
    (np.array(["red", "nir"]), (2, ["red", "nir"])),
    ([EnumLike()], (1, ["EnumLike.RED"])),
]

NUMBERS_ACCEPTED = [
    (None, None),
    ("12", [12]),
    (" 12 ", [12]),
    ("0", [0]),  # out-of-range numbers are the reader's to refuse (it knows the band count)
    ("3,", [3]),
    ("4,3,2", [4, 3, 2]),
    ("4 3 2", [4, 3, 2]),
    ("4,3, 2", [4, 3, 2]),
    ("+4", [4]),
    ([], None),
    ((), None),
    (["4", "3"], [4, 3]),
    ([" 4", "+3"], [4, 3]),
    ([4, 3, 2], [4, 3, 2]),
    ((4, 3, 2), [4, 3, 2]),
    ([np.int64(1), np.int64(2)], [1, 2]),
    (("4", 3, np.int64(2)), [4, 3, 2]),
    ([0], [0]),
    ([-1], [-1]),
    (np.array([4, 3, 2]), [4, 3, 2]),
    (np.array([], dtype=int), None),
]


def _ids(table):
    return [repr(v) for v, _ in table]


@pytest.mark.parametrize(("value", "expected"), NAMES_ACCEPTED, ids=_ids(NAMES_ACCEPTED))
def test_names_accepted_as_before(value, expected):
    from geodino.data.config import band_list

    assert parse_band_names(value, "bands") == expected
    assert band_list(value, "bands") == expected  # the old name data/stats.py calls


def test_names_as_text_apart_by_spaces_are_refused():
    """'red nir' was one band named "red nir" that no file has; now one line with the comma spelling."""
    with pytest.raises(ConfigError, match=r"bands='red nir' cannot be used: .*bands=red,nir"):
        parse_band_names("red nir", "bands")
    with pytest.raises(ConfigError, match=r"bands='red nir' cannot be used: .*bands=red,nir"):
        parse_backbone_bands("red nir")  # a spec's ?bands=red nir: one name no checkpoint has


@pytest.mark.parametrize(("value", "expected"), BACKBONE_ACCEPTED, ids=_ids(BACKBONE_ACCEPTED))
def test_backbone_bands_accepted_as_before(value, expected):
    assert parse_backbone_bands(value) == expected


@pytest.mark.parametrize(("value", "expected"), NUMBERS_ACCEPTED, ids=_ids(NUMBERS_ACCEPTED))
def test_numbers_accepted_as_before(value, expected):
    from geodino.embed.config import band_numbers

    for parse in (parse_band_numbers, band_numbers):  # band_numbers: the old name embed/images.py calls
        got = parse(value)
        assert got == expected and all(type(b) is int for b in got or [])


def test_config_schemas_read_bands_through_it():
    from geodino.data.config import DataConfig, SourceConfig
    from geodino.embed.config import EmbedConfig

    cfg = DataConfig(sources=[SourceConfig(paths=["x/"], bands="red, nir", band_names=[])])  # type: ignore[arg-type]
    cfg.validate()
    assert cfg.sources[0].bands == ["red", "nir"] and cfg.sources[0].band_names is None
    emb = EmbedConfig(bands=("4", 3, np.int64(2)))  # type: ignore[arg-type]
    emb.validate()
    assert emb.bands == [4, 3, 2]


# --- new forms: numpy values and YAML flow text ------------------------------------------------------------------


def test_numpy_and_yaml_text_forms_are_read():
    """A numpy count crashed bands_option (TypeError: not iterable), a numpy array of names was refused by
    band_list, and "[4, 3, 2]" (a YAML list written as text) was read as the names '[4', '3', '2]'."""
    assert parse_backbone_bands(np.int64(4)) == (4, None)
    assert parse_backbone_bands("[red, nir]") == (2, ["red", "nir"])
    assert parse_band_names(np.array(["red", "nir"]), "bands") == ["red", "nir"]
    assert parse_band_names("[red, nir]", "bands") == ["red", "nir"]
    assert parse_band_numbers("[4, 3, 2]") == [4, 3, 2]
    assert parse_band_numbers("[]") is None


# --- refusals: one form, naming the key, and where the other kind goes ------------------------------------------

KEY = "data.sources[0].bands"
BACKBONE_RULE = r"a backbone's bands are band names \(bands=\['red', 'green', 'blue'\], \?bands=red,green,blue in a "
TO_EMBED = r"; 1-based band numbers select the input's bands in embed \(bands=\[4,3,2\], --bands 4,3,2\)$"

REFUSED = [
    # band numbers given as a backbone's bands: read as names they matched none (a checkpoint's kernels all became
    # the mean kernel); the list form was refused, these forms slipped through
    (parse_backbone_bands, "4,3,2", BACKBONE_RULE + ".*" + TO_EMBED),
    (parse_backbone_bands, "4 3 2", TO_EMBED),
    (parse_backbone_bands, ["4", "3"], TO_EMBED),
    (parse_backbone_bands, np.array([4, 3, 2]), TO_EMBED),
    (parse_backbone_bands, [np.int64(1), np.int64(2)], TO_EMBED),
    (parse_backbone_bands, [2.0], TO_EMBED),
    (parse_backbone_bands, [4, 3, 2], TO_EMBED),
    # not a count or names at all (was a count of True, a 3-band model for 0, a TypeError, the name 'None')
    (parse_backbone_bands, True, BACKBONE_RULE + r".*\)$"),
    (parse_backbone_bands, 0, r"; a band count is at least 1$"),
    (parse_backbone_bands, "0", r"; a band count is at least 1$"),
    (parse_backbone_bands, 2.5, BACKBONE_RULE),
    (parse_backbone_bands, [None], r"; None is not a band name$"),
    (parse_backbone_bands, {"red"}, BACKBONE_RULE),
    (parse_backbone_bands, "", r"; leave data.sources\[0\].bands out to keep the backbone's own$"),
    # numbers where names are matched: numpy ones too, with the b1, b2 ... names to write instead
    (parse_band_names, np.array([1, 2]), r"not numbers .*so write data.sources\[0\].bands=\['b1', 'b2'\]$"),
    (parse_band_names, [np.int64(1), np.int64(2)], r"embed's bands, --bands\); .*so write .*\['b1', 'b2'\]$"),
    (parse_band_names, "[1, 2]", r"so write data.sources\[0\].bands=\['b1', 'b2'\]$"),
    (parse_band_names, [1, 2], r"so write data.sources\[0\].bands=\['b1', 'b2'\]$"),
    (parse_band_names, 3, r"bands are band names here \(e.g. \['red', 'nir'\], or the text 'red,nir'\)$"),
    (parse_band_names, [True], r"; True is not a band name$"),
    # a count or names where embed reads band numbers
    (parse_band_numbers, 3, r"band names go to the backbone .*; a band count goes to the backbone \(its spec's "),
    (parse_band_numbers, ["B02", "B03"], r"embed's bands are 1-based band numbers .*or a sensor \(sensor=NAME"),
    (parse_band_numbers, "", r"embed's bands are 1-based band numbers"),
]


@pytest.mark.parametrize(("parse", "value", "pattern"), REFUSED, ids=[f"{p.__name__}-{v!r}" for p, v, _ in REFUSED])
def test_refusals_are_one_line_of_one_form(parse, value, pattern):
    with pytest.raises(ConfigError) as info:
        parse(value, KEY)
    msg = str(info.value)
    assert msg.startswith(f"{KEY}={value!r} cannot be used: ") and "\n" not in msg
    assert re.search(pattern, msg), msg


def test_embed_images_hint_still_replaces_the_rule():
    """embed/images.py passes its own rule (`hint=`): the message keeps the shared form around it."""
    with pytest.raises(ConfigError, match=r"^bands=\['R'\] cannot be used: embed_images' bands are numbers$"):
        parse_band_numbers(["R"], hint="embed_images' bands are numbers")


# --- load_backbone: band numbers as spec text, band names without a sensor -------------------------------------

ARCH = "arch:vit_tiny?depth=1&patch_size=8"


def test_band_numbers_in_a_spec_are_refused():
    """`?bands=4,3,2` (embed's numbers, put in the spec) built a 3-band backbone whose bands were named '4', '3', '2'
    (on a checkpoint: no kernel matched, all became the mean kernel)."""
    from geodino.backbones import load_backbone

    with pytest.raises(ConfigError, match=r"^bands='4,3,2' cannot be used: a backbone's bands are band names"):
        load_backbone(f"{ARCH}&bands=4,3,2")


@pytest.mark.parametrize("how", ["keyword", "spec"])
def test_band_names_without_a_sensor_say_they_get_no_statistics(how):
    """`load_backbone("arch:...", bands=[4 names])` gave mean 0 / std 1 without a word: the names chose no
    statistics. It still loads (the names say which band is which: the probes' RGB previews read them)."""
    from geodino.backbones import load_backbone

    names = ["red", "green", "blue", "nir"]
    pattern = (
        r"band names red, green, blue, nir were given without a sensor, so nothing gives their statistics .*"
        r"mean 0 / std 1.*load_backbone\(\.\.\., sensor=NAME\), \?sensor=NAME in a spec"
    )
    with pytest.warns(UserWarning, match=pattern):
        fb = load_backbone(ARCH, bands=names) if how == "keyword" else load_backbone(f"{ARCH}&bands={','.join(names)}")
    assert fb.bands == names and fb.in_chans == 4
    assert fb.mean.flatten().tolist() == [0.0] * 4 and fb.std.flatten().tolist() == [1.0] * 4
    assert fb.norm_source.startswith("none: bands named without a sensor")


def test_module_with_named_bands_and_no_sensor_warns_too():
    from geodino.backbones import load_backbone
    from geodino.models import build_model

    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=1)
    with pytest.warns(UserWarning, match=r"backbone <module>: band names b1, b2, b3, b4 were given without a sensor"):
        load_backbone(model, bands=["b1", "b2", "b3", "b4"])


def test_sensor_count_or_rgb_names_stay_quiet():
    """Where the statistics come from somewhere (a sensor; the documented 3-band ImageNet default) or no names were
    given (a count), nothing is said."""
    from geodino.backbones import load_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s2 = load_backbone(ARCH, bands=["red", "green", "blue", "nir"], sensor="sentinel2_l2a")
        counted = load_backbone(ARCH, bands=4)
        rgb = load_backbone(ARCH, bands=["red", "green", "blue"])
    assert s2.sensor.name == "sentinel2_l2a" and float(s2.std.flatten()[0]) != 1.0
    assert counted.bands is None and counted.in_chans == 4
    assert rgb.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])
