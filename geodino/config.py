"""Typed configs: dataclass schemas filled from YAML files and dotted `key=value` overrides.

OmegaConf's structured configs do the typing and merging; this module adds what users need around it:
an unknown key names the closest valid keys, a YAML file can extend another one (`_base_: other.yaml`), and
`describe()` lists every key with its default for `--help`.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from geodino.config_entries import INDEX as _INDEX
from geodino.config_entries import list_path as _list_path
from geodino.config_entries import update_entry as _update_entry
from geodino.config_keys import unknown_key_message
from geodino.config_lists import comma_list, text_lists
from geodino.config_none import none_word
from geodino.config_record import record_set_keys
from geodino.config_record import set_keys as set_keys
from geodino.config_value_words import field_type, value_words
from geodino.errors import ConfigError, plural

if TYPE_CHECKING:
    from omegaconf import DictConfig, ListConfig

T = TypeVar("T")

BASE_KEY = "_base_"
# the shipped configs (package data, so that a pip install has them; a checkout's configs/ links here)
CONFIGS = Path(__file__).resolve().parent / "configs"
_CONFIG_FOLDERS = {
    "PretrainConfig": "pretrain",
    "DistillConfig": "distill",
    "SuiteConfig": "eval",
    "EmbedConfig": "embed",
}


def find_config(path: str | Path, schema: type | None = None) -> Path:
    """`path` when it is a file; else the shipped config it names, so that the README's commands run from any
    folder and from a pip install: `configs/pretrain/demo.yaml` (the part after `configs/`), or a bare name
    (`small_vit_tiny`, `demo.yaml`) in the shipped folder of the command's config (pretrain, distill, eval,
    embed), else in the one folder that has it. Unresolved: `path` itself (the reader then says not found)."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    found: list[Path] = []
    if "configs" in p.parts[:-1]:
        found.append(CONFIGS.joinpath(*p.parts[len(p.parts) - 1 - p.parts[::-1].index("configs") + 1 :]))
    if len(p.parts) == 1:
        name = p.name if p.suffix in (".yaml", ".yml") else f"{p.name}.yaml"
        folder = _CONFIG_FOLDERS.get(getattr(schema, "__name__", ""))
        if folder:
            found.append(CONFIGS / folder / name)
        anywhere = sorted(CONFIGS.glob(f"*/{name}"))
        if len(anywhere) == 1:
            found += anywhere
    return next((c for c in found if c.is_file()), p)


def shipped_configs(schema: type | None = None) -> list[str]:
    """Names of the shipped configs for `schema`'s command (all of them, as folder/name, without a schema)."""
    folder = _CONFIG_FOLDERS.get(getattr(schema, "__name__", ""))
    if folder:
        return sorted(f.stem for f in (CONFIGS / folder).glob("*.yaml"))
    return sorted(f"{f.parent.name}/{f.stem}" for f in CONFIGS.glob("*/*.yaml"))


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping of a YAML config file, its `_base_` files merged in (one-line ConfigErrors)."""
    return _read_yaml(Path(path))


def _read_yaml(path: Path, seen: tuple[Path, ...] = (), schema: type | None = None) -> dict[str, Any]:
    """Read a YAML file, resolving `_base_` (a path relative to the file, or a list of them; else a shipped config
    by name or `configs/...` path, as `--config` takes them) first."""
    from omegaconf import OmegaConf

    path = path.expanduser()
    if path.is_dir():
        raise ConfigError(_folder_line(path, seen))
    if not path.is_file():
        if seen:  # a _base_: name the file that asks for it
            raise ConfigError(
                f"config file {path.name}, the {BASE_KEY} of {seen[-1]}, not found next to it nor among the shipped "
                f"configs; write a path relative to {seen[-1].name} or a shipped name"
                + (f" ({', '.join(shipped_configs(schema))})" if schema is not None else "")
            )
        raise ConfigError(f"config file {path} not found; pass an existing YAML file to --config (config= in Python)")
    if path.resolve() in seen:
        raise ConfigError(f"config file {path} includes itself through {BASE_KEY}")
    try:
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
    except Exception as exc:  # yaml errors have many classes; all mean the same to the user
        raise ConfigError(_yaml_line(path, exc)) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(raw).__name__}")
    bases = raw.pop(BASE_KEY, None)
    if bases is None:
        # keys as the YAML wrote them: a non-text one is named by the schema check as an unknown key
        return cast(dict[str, Any], raw)
    merged: DictConfig | ListConfig = OmegaConf.create({})
    for base in [bases] if isinstance(bases, str) else list(bases):
        beside = path.parent / base
        found = beside if beside.is_file() else find_config(base, schema)
        if not found.is_file():
            found = beside  # the error names it as written, next to the file
        merged = OmegaConf.merge(merged, _read_yaml(found, (*seen, path.resolve()), schema))
    return OmegaConf.to_container(OmegaConf.merge(merged, raw), resolve=False)  # type: ignore[return-value]


def _example_key(schema: type) -> str:
    """A `key=value` of `schema` to show in the override error: its run length where it has one (pretraining's
    `trainer.max_steps`, distillation's `train.max_steps`), else its first plain key with that key's default."""

    def leaves(cls: Any, prefix: str = "") -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for f in dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ():
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if dataclasses.is_dataclass(default):
                out += leaves(type(default), f"{prefix}{f.name}.")
            elif isinstance(default, bool | int | float | str):
                out.append((f"{prefix}{f.name}", default))
        return out

    found = leaves(schema)
    for key, _ in found:
        if key.split(".")[-1] == "max_steps":
            return f"{key}=100"
    return f"{found[0][0]}={found[0][1]}" if found else "key=value"


def _parse_override(item: str, schema: type | None = None) -> tuple[str, Any]:
    from omegaconf import OmegaConf

    if "=" not in item:
        example = _example_key(schema) if schema is not None else "key=value"
        fields = getattr(schema, "__dataclass_fields__", {})
        prefix = "data." if "data" in fields else "" if "sources" in fields else None
        if prefix is not None and item.strip() and Path(item).expanduser().exists():  # a data path given bare
            hint = (
                f"; to use {item} as data, pass it as a source: '{prefix}sources=[{{type: raster, paths: [{item}]}}]' "
                "(GeoTIFFs; type: images for JPEG/PNG folders)"
            )
            raise ConfigError(f"override {item!r} must look like key=value{hint}")
        raise ConfigError(f"override {item!r} must look like key=value (for example {example})")
    key, value = item.split("=", 1)
    try:
        parsed = cast("DictConfig", OmegaConf.create(f"v: {value}"))["v"] if value else ""  # a `v:` mapping
    except Exception as exc:  # yaml's parser and scanner errors, OmegaConf's grammar errors
        problem = getattr(exc, "problem", None) or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"override {item!r}: value {value!r} is not valid YAML ({problem}); close its brackets and quotes, "
            f'or wrap the value in quotes ({key.strip()}="...") to pass it as text'
        ) from exc
    if hasattr(parsed, "_content") or isinstance(parsed, (list, dict)):
        parsed = OmegaConf.to_container(parsed)
    return key.strip(), parsed


def is_override(arg: str) -> bool:
    """A command-line `key=value` override (dotted key, no leading dash), as `load_config` takes them."""
    key, eq, _ = arg.partition("=")
    plain = _INDEX.sub("", key).replace(".", "").replace("_", "")  # data.sources[0].paths: one entry of a list
    return bool(eq) and not arg.startswith("-") and plain.isalnum()


def _yaml_line(path: Path, exc: Exception) -> str:
    """One line for a config file that does not parse: where (line and column) and what (`yaml_problem`)."""
    from geodino.yaml_errors import yaml_problem

    return f"config file {path} is not valid YAML{yaml_problem(exc)}"


def _folder_line(path: Path, seen: tuple[Path, ...] = ()) -> str:
    """One line for a config path that is a folder (was "not found"): a YAML file is expected; the folder's own
    YAML files are offered when it has a few."""
    names = sorted(p.name for p in path.glob("*.y*ml"))
    offer = f" (it holds {', '.join(names[:5])}{', ...' if len(names) > 5 else ''})" if names else ""
    asked = f", the {BASE_KEY} of {seen[-1]}," if seen else ""
    return f"config file {path}{asked} is a folder; a YAML config file is expected{offer}"


def load_config(schema: type[T], path: str | Path | None = None, overrides: str | Sequence[str] | None = None) -> T:
    """Build a `schema` instance from defaults, an optional YAML file and dotted overrides (a list of `key=value`
    strings, or one such string).

    Raises ConfigError naming the file and key for unknown keys, wrong types and bad YAML.
    """
    from omegaconf import OmegaConf

    overrides = _override_list(overrides)

    cfg = OmegaConf.structured(schema)
    sources: list[tuple[str, Any, Any]] = []
    if path is not None:
        found = find_config(path, schema)
        if found.is_dir():
            raise ConfigError(_folder_line(found))
        if not found.is_file() and schema.__name__ in _CONFIG_FOLDERS:
            raise ConfigError(
                f"config file {found} not found; pass an existing YAML file to --config (config= in Python) or a "
                f"shipped one by name: {', '.join(shipped_configs(schema))}"
            )
        sources.append((str(found), _read_yaml(found, schema=schema), None))
    for item in overrides or []:
        key, value = _parse_override(item, schema)
        value = comma_list(schema, key, value, item)  # bands=1,2 (YAML text): [1, 2] for a list key
        sources.append((f"override {item!r}", _list_path(key) or _nest(key, value), value))
    for where, data, value in sources:
        if isinstance(data, str):  # one entry of a list, after the file and the overrides before it
            cfg = _update_entry(cfg, data, value, schema, where)
        else:
            cfg = _merge(cfg, data, schema, where)
    # recorded after `validate`, so only a later check (the run's start) can tell a key set from one left default
    return record_set_keys(_finish(cfg, schema, ""), (data for _, data, _ in sources))


def whole_number(value: Any, name: str, example: int = 100) -> int:
    """`value` as an int for a Python argument `name`: ints, whole floats and numeric strings ("4", " 4 ") pass, numpy
    numbers too (an array's element, np.int64(4)); anything else (text, 2.5, True, None) is one ConfigError line naming
    the argument and what it takes."""
    import numbers

    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool | float):  # np.float32 is not a float
        value = float(value)
    if isinstance(value, bool):
        ok = None
    elif isinstance(value, int):
        return value
    elif isinstance(value, float):
        ok = int(value) if value.is_integer() else None
    elif isinstance(value, str):
        try:
            ok = int(value.strip())
        except ValueError:
            try:
                f = float(value.strip())
                ok = int(f) if f.is_integer() else None
            except ValueError:
                ok = None
    else:
        ok = None
    if ok is None:
        raise ConfigError(f"{name} must be a whole number (e.g. {name}={example}), got {value!r}")
    return ok


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def real_number(value: Any, name: str, example: str = "0", *, finite: bool = True) -> float:
    """`value` as a float for a Python argument `name`, as YAML and the CLI read it: numbers (numpy's too) and numeric
    strings ("1e-4") pass; anything else (text, True, None; nan and inf unless `finite=False`, e.g. for a nodata
    value) is one ConfigError line naming it."""
    import math
    import numbers

    number: float | None = None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or (finite and not math.isfinite(number)):
        raise ConfigError(f"{name} must be a number (e.g. {name}={example}), got {value!r}")
    return number


def true_or_false(value: Any, name: str) -> bool:
    """`value` as a bool for a Python argument `name`, as YAML and the CLI read it: True/False, 1/0, and the text
    "true"/"false", "yes"/"no", "on"/"off", "1"/"0" (any case); anything else is one ConfigError line naming it
    (`bool("false")` is True: a flag given as text from a config file would otherwise turn on)."""
    import numbers

    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral) and int(value) in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{name} must be true or false (e.g. {name}=True), got {value!r}")


def _override_list(overrides: Any) -> list[str]:
    """`load_config`'s overrides as a list: one `key=value` string is one override (iterated, it was read letter by
    letter); anything but strings is refused in one line."""
    if overrides is None:
        return []
    if isinstance(overrides, str):
        return [overrides]
    if not isinstance(overrides, list | tuple):
        raise ConfigError(
            f"overrides must be a list of key=value strings (e.g. ['trainer.max_steps=100']), got "
            f"{type(overrides).__name__}"
        )
    bad = [o for o in overrides if not isinstance(o, str)]
    if bad:
        raise ConfigError(f"override {bad[0]!r} is not a key=value string (e.g. 'trainer.max_steps=100')")
    return list(overrides)


def from_mapping(schema: type[T], data: dict[str, Any], where: str) -> T:
    """A `schema` instance from a plain mapping (e.g. one section of a larger YAML), with `load_config`'s errors."""
    from omegaconf import OmegaConf

    return _finish(_merge(OmegaConf.structured(schema), data, schema, where), schema, where)


def _merge(cfg: Any, data: dict[str, Any], schema: type, where: str) -> Any:
    """Merge `data` into the structured config, turning OmegaConf's errors into one line naming key and place."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

    try:
        return OmegaConf.merge(cfg, text_lists(schema, data, where))  # layers: [4, 8] read as layers=4,8 (embed)
    except ConfigKeyError as exc:
        key = getattr(exc, "full_key", None) or str(exc).split("'")[1]
        raise ConfigError(unknown_key_message(str(key), schema, where, data)) from exc
    except ValidationError as exc:
        key = getattr(exc, "full_key", "?")
        msg = str(exc).strip().splitlines()[0]
        from geodino.config_lists import list_field

        if "is not a ListConfig" in msg and list_field(schema, str(key)):
            # YAML text for a list key (`asset_bands: red nir` or `red,nir`): OmegaConf's AnyNode words say nothing
            value: Any = data
            for part in re.split(r"[.\[\]]+", str(key)):
                if part:
                    value = (
                        value[int(part)]
                        if part.isdigit() and isinstance(value, list)
                        else (value.get(part) if isinstance(value, dict) else None)
                    )
            shown = f" ({value!r})" if isinstance(value, str) else ""
            raise ConfigError(
                f"config key {key!r} in {where} is a list but is given as text{shown}: write it in brackets, "
                f"{key.rsplit('.', 1)[-1]}: [a, b], or one '- item' per line"
            ) from exc
        words = value_words(msg, str(key), field_type(exc))
        raise ConfigError(f"config key {key!r} in {where} has a bad value: {words}") from exc
    except OmegaConfBaseException as exc:
        msg = str(exc).strip().splitlines()[0]
        raise ConfigError(f"config in {where} cannot be used: {msg}") from exc


def _finish(cfg: Any, schema: type[T], where: str) -> T:
    """The dataclass object of a merged config, validated (its `validate()` method, when it has one)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        obj = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", "?")
        place = f" in {where}" if where else ""
        raise ConfigError(f"config key {key!r}{place} is missing or invalid: {str(exc).splitlines()[0]}") from exc
    post = getattr(obj, "validate", None)
    if callable(post):
        post()
    return obj  # type: ignore[return-value]


def _nest(key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cur = out
    parts = key.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain nested dict of a config dataclass (for saving next to outputs and in checkpoints)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]


def save_config(cfg: Any, path: str | Path) -> None:
    """Write a config dataclass as YAML, so a run records exactly what it used."""
    from omegaconf import OmegaConf

    Path(path).write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))


def describe(schema: type) -> str:
    """Every dotted key of a schema with its default, one per line (the body of `--help`); a None default shows as
    the word for what the key does unset (`config_none`: `margin=overlap/4`), an empty dict as `{}`, and a list of
    config entries (data.sources, students, crop_sets) is followed by the keys of one entry as
    `key[i].field=default`."""
    import dataclasses
    import typing

    from omegaconf import OmegaConf

    flat: list[str] = []

    def entry_type(cls: Any, name: str) -> type | None:
        """The dataclass a list field of `cls` holds, if any."""
        hint = typing.get_type_hints(cls).get(name) if dataclasses.is_dataclass(cls) else None
        for arg in typing.get_args(hint) or ():
            for inner in typing.get_args(arg) or (arg,):
                if dataclasses.is_dataclass(inner):
                    return inner  # type: ignore[return-value]
        return None

    def walk(node: Any, prefix: str, cls: Any) -> None:
        for k, v in node.items():
            hints = typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else {}
            if isinstance(v, dict) and v and dataclasses.is_dataclass(hints.get(k)):
                walk(v, f"{prefix}{k}.", hints[k])
            elif isinstance(v, dict) and v:
                walk(v, f"{prefix}{k}.", None)
            else:
                item = entry_type(cls, k) if isinstance(v, list) else None
                shown = (none_word(cls, k) if v is None else None) or repr(v)  # `roi=off`, not `roi=None`
                if item is not None and v:  # distill's students: one line of dicts 275 columns wide before
                    shown = f"[{plural(len(v), 'entry', 'entries')}: {', '.join(_entry_name(e) for e in v)}]"
                flat.append(f"  {prefix}{k}={shown}")
                if item is not None:
                    walk(OmegaConf.to_container(OmegaConf.structured(item), resolve=False), f"{prefix}{k}[i].", item)

    walk(OmegaConf.to_container(OmegaConf.structured(schema), resolve=False), "", schema)
    return "\n".join(flat)


def _entry_name(entry: Any) -> str:
    """An entry of a config list as `--help` shows it: its `name` (a student's `vits`), else `{...}`."""
    return str(entry.get("name")) if isinstance(entry, dict) and entry.get("name") else "{...}"


def options_for(func: Callable[..., Any], settings: Any, **values: Any) -> dict[str, Any]:
    """Keyword arguments for `func`: each keyword-only parameter of `func` that `settings` (a config dataclass or
    an argparse Namespace) has an attribute of the same name for, then `values` on top (computed or renamed ones).

    Config sections and CLI options are named as the parameters of the function they feed, so they are passed on
    by name here instead of a `name=cfg.name` line per option at every call."""
    params = inspect.signature(func).parameters
    kwargs = {n: getattr(settings, n) for n, p in params.items() if p.kind is p.KEYWORD_ONLY and hasattr(settings, n)}
    kwargs.update(values)
    return kwargs
