"""Command-line overrides of one entry of a list in a config (`data.sources[0].paths=[...]`, `students.1.arch=...`).

OmegaConf merges lists whole, so such a key was an unknown key (`sources[0]`) or a raw merge error; these set the
one key inside the entry and keep the rest of the list."""

from __future__ import annotations

import re
from typing import Any

from geodino.config_value_words import field_type, value_words
from geodino.errors import ConfigError

INDEX = re.compile(r"\[(\d+)\]")


def list_path(key: str) -> str | None:
    """`key` in dotted form when it names an entry of a list (`data.sources[0].paths`, `students.1.arch`:
    `data.sources.0.paths`), else None."""
    dotted = INDEX.sub(r".\1", key)
    return dotted if any(p.isdigit() for p in dotted.split(".")) else None


def update_entry(cfg: Any, dotted: str, value: Any, schema: type, where: str) -> Any:
    """Set one key inside one entry of a list (the rest of the list kept): OmegaConf merges only whole lists, so
    `data.sources[0].paths=...` was an unknown key and `students.0.arch=...` a raw merge error."""
    from omegaconf import DictConfig, ListConfig, OmegaConf
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if not part.isdigit():
            continue
        head = ".".join(parts[:i])
        node = OmegaConf.select(cfg, head, throw_on_missing=False) if head else None
        if isinstance(node, DictConfig):  # a mapping keyed by numbers: the key, as before
            continue
        if not isinstance(node, ListConfig):
            raise ConfigError(f"{where}: {head or dotted!r} is not a list, so [{part}] names nothing in it")
        if int(part) >= len(node):
            n = len(node)
            have = f"entries {head}[0]..{head}[{n - 1}]" if n > 1 else f"one entry, {head}[0]" if n else "no entries"
            raise ConfigError(
                f"{where}: {head} has {have}; set the whole list to add one ({head}=[...] on the command line)"
            )
    try:
        OmegaConf.update(cfg, dotted, value, merge=True)
    except (ConfigAttributeError, ConfigKeyError) as exc:
        pattern = re.sub(r"\.\d+(?=\.|$)", "[i]", dotted)
        from geodino.config_keys import unknown_key_message

        raise ConfigError(unknown_key_message(pattern, schema, where)) from exc
    except ValidationError as exc:
        # OmegaConf's later lines (`full_key: ...`, `object_type=...`) repeat the key this line names
        msg = str(exc).strip().splitlines()[0]
        key = re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", dotted)
        words = value_words(msg, str(key), field_type(exc))
        raise ConfigError(f"config key {key!r} in {where} has a bad value: {words}") from exc
    return cfg
