"""report.md names each source's cloud rule (and --qa-shadow, --qa-band) and the --max-cloud it applies: a report
with many `cloud` tiles says which test called them cloud. On the real Landsat-7 sample (uint8 DN read with scale
1/255, not reflectance) the swir rule called 59 of 121 cloud-free tiles cloud (forest and sea); report.md named
neither the rule nor the limit."""

from __future__ import annotations

from geodino.data.curate.report import markdown

REPORT = {
    "tiles": 4,
    "removed": {"nodata": 0, "cloud": 2, "duplicate": 0},
    "clustered": 2,
    "levels": [2],
    "kept": 2,
    "top_clusters": {"before": [1, 1], "after": [1, 1]},
    "level1_clusters": {"before": [1, 1], "after": [1, 1]},
}


def test_report_names_each_sources_cloud_rule_and_limit():
    rules = {
        "s2": "qa(qa_band=SCL (scl), read for screening only, with cloud shadow; t=0.5)",
        "l7": "swir(blue=0, green=1, nir=3, red=2, swir16=4, swir22=5; t=0.5)",
    }
    text = markdown({**REPORT, "cloud_rules": rules, "config": {"max_cloud": 0.3}})
    assert "Cloud rule (a tile is dropped above a 0.3 share of cloud-like pixels):" in text
    assert f"- s2: {rules['s2']}" in text and f"- l7: {rules['l7']}" in text
    assert text.index("Cloud rule") < text.index("| top-level cluster")


def test_report_without_rules_keeps_its_lines():
    text = markdown(REPORT)  # a report dict of an older run: no cloud_rules key
    assert "Cloud rule" not in text and "2 cloud" in text
