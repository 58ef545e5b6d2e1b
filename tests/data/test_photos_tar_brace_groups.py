"""Every brace group of a shard path expands, as webdataset's braceexpand does: two groups with zero-padded ranges
name the shards of two folders; a group that is no pattern (`{x}`) no longer stops the groups after it (the path
stayed unexpanded and was "does not exist"); nested lists no longer come out repeated; `{0..10..5}` steps and
`{a..c}` letter ranges expand."""

from __future__ import annotations

from geodino.data.images import TarShardSource, expand_braces
from tests.data.test_photos_tar_braces import _shard


def test_two_groups_with_zero_padded_ranges_name_the_shards(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        for s in range(3):
            _shard(tmp_path / folder / f"shard-{s:03d}.tar", 1, s)
    src = TarShardSource(str(tmp_path / "{a,b}" / "shard-{000..001}.tar"), shuffle=False)
    got = [p.split("/")[-2] + "/" + p.split("/")[-1] for p in src.shards]
    assert got == ["a/shard-000.tar", "a/shard-001.tar", "b/shard-000.tar", "b/shard-001.tar"]
    assert len(src) == 4


def test_a_group_that_is_no_pattern_keeps_the_later_groups(tmp_path):
    assert expand_braces("{x}/s-{08..10}.tar") == ["{x}/s-08.tar", "{x}/s-09.tar", "{x}/s-10.tar"]
    assert expand_braces("s-{}-{a,b}") == ["s-{}-a", "s-{}-b"]
    assert expand_braces("a{b-{0..1}") == ["a{b-0", "a{b-1"]  # an unmatched brace is text
    folder = tmp_path / "{run}"
    folder.mkdir()
    for s in range(2):
        _shard(folder / f"shard-{s}.tar", 1, s)
    assert len(TarShardSource(str(folder / "shard-{0..1}.tar"), shuffle=False).shards) == 2


def test_nested_lists_steps_and_letters():
    assert expand_braces("s-{{000..001},{010..011}}.tar") == ["s-000.tar", "s-001.tar", "s-010.tar", "s-011.tar"]
    assert expand_braces("s-{a,{b,c}}") == ["s-a", "s-b", "s-c"]
    assert expand_braces("s-{0..10..5}") == ["s-0", "s-5", "s-10"]
    assert expand_braces("s-{10..0..5}") == ["s-10", "s-5", "s-0"]
    assert expand_braces("s-{a..c}") == ["s-a", "s-b", "s-c"]
