"""A run checkpointed before sources had `fast_decode` (or with the other value) resumes: the key is free."""

from __future__ import annotations

from geodino.train.checkpointing import _RESUME_FIXED, RESUME_FREE_FIELDS, changed_resume_field
from geodino.train.distill.export import RESUME_FIXED as DISTILL_FIXED
from geodino.train.distill.export import RESUME_FREE_FIELDS as DISTILL_FREE


def _cfg(**source):
    return {"seed": 0, "data": {"sources": [{"type": "images", "paths": ["a/"], **source}, {"type": "raster"}]}}


def test_a_checkpoint_without_fast_decode_resumes():
    old, new = _cfg(), _cfg(fast_decode=True)
    assert changed_resume_field(old, new, _RESUME_FIXED, free_fields=())[0] == "data.sources[0].fast_decode"
    assert changed_resume_field(old, new, _RESUME_FIXED) is None
    assert changed_resume_field(_cfg(fast_decode=False), new, _RESUME_FIXED, free_fields=RESUME_FREE_FIELDS) is None
    assert changed_resume_field(old, new, DISTILL_FIXED, free_fields=DISTILL_FREE) is None
    # other source fields still count
    assert changed_resume_field(_cfg(), _cfg(paths=["b/"]), _RESUME_FIXED)[0] == "data.sources[0].paths"
