"""`geodino.backbones.__all__` is the user API: spec parsing and build helpers of geodino's own modules
(`as_int`, `parse_value`, `check_build_options`, `build_timm`, `timm_geometry`) were listed there, so
`from geodino.backbones import *` and the API's listing gave them as user functions. They stay importable by name."""

from __future__ import annotations

HELPERS = ("as_int", "build_timm", "check_build_options", "parse_value", "timm_geometry")


def test_backbones_all_is_the_user_api_and_helpers_stay_importable():
    import geodino.backbones as backbones
    from geodino.backbones import spec, timm

    assert not set(HELPERS) & set(backbones.__all__)
    assert set(backbones.__all__) >= {"FrozenBackbone", "load_backbone", "layer_indices", "LAYER_SETS", "parse_spec"}
    for name in backbones.__all__:
        assert hasattr(backbones, name), name
    star: dict = {}
    exec("from geodino.backbones import *", star)
    assert "load_backbone" in star and not set(HELPERS) & set(star)
    from geodino.backbones import as_int, build_timm, check_build_options, parse_value, timm_geometry

    assert (as_int, parse_value, check_build_options) == (spec.as_int, spec.parse_value, spec.check_build_options)
    assert (build_timm, timm_geometry) == (timm.build_timm, timm.timm_geometry)
