"""Typed configs from YAML and `key.sub=value` overrides. Unknown or mistyped keys are errors.

The dataclasses are the single source of defaults; YAML and CLI flags only fill them in.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from surrogate.errors import InputError

T = TypeVar("T")


Keys = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where a config's values came from: its file, and the `--set` overrides by key path, so
    that an error blames the override that set a bad value, not the file."""

    file: str = "config"
    overrides: tuple[tuple[Keys, str], ...] = ()

    def of(self, keys: Keys) -> str:
        """The source of the value at `keys`: the last override that set it or a section above it, else the file."""
        sets = [text for k, text in self.overrides if keys[: len(k)] == k]
        return f"--set {sets[-1]}" if sets else self.file

    def of_section(self, keys: Keys) -> str:
        """The sources of a section's values, for an error about the section as a whole."""
        sets = [f"--set {text}" for k, text in self.overrides if keys[: len(k)] == k or k[: len(keys)] == keys]
        if not sets:
            return self.file
        return " ".join(sets) if self.file == "config" else f"{self.file} with {' '.join(sets)}"


def dotted(keys: Keys) -> str:
    """('data', 'fields', '[0]') -> 'data.fields[0]'."""
    return "".join(k if k.startswith("[") or i == 0 else f".{k}" for i, k in enumerate(keys))


def _bad(origin: Origin, keys: Keys, message: str) -> InputError:
    where = origin.of(keys)
    return InputError(f"{where}: {dotted(keys)}: {message}" if keys else f"{where}: {message}")


def _coerce(value: Any, tp: Any, keys: Keys, origin: Origin) -> Any:
    origin_type = typing.get_origin(tp)
    if origin_type in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for opt in options:
            if opt is type(None):
                continue
            try:
                return _coerce(value, opt, keys, origin)
            except InputError as e:
                errors.append(e)
        raise errors[0]
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise _bad(origin, keys, f"expected a mapping of {tp.__name__} keys, got {value!r}")
        return _build(tp, value, keys, origin)
    if origin_type in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _bad(origin, keys, f"expected a list, got {value!r} ({type(value).__name__})")
        (item,) = typing.get_args(tp)[:1] or (Any,)
        items = [_coerce(v, item, (*keys, f"[{i}]"), origin) for i, v in enumerate(value)]
        return tuple(items) if origin_type is tuple else items
    if origin_type is dict or tp is dict:
        if not isinstance(value, dict):
            raise _bad(origin, keys, f"expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise _bad(origin, keys, f"expected true/false, got {value!r} ({type(value).__name__})")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(origin, keys, f"expected an integer, got {value!r} ({type(value).__name__})")
        return value
    if tp is float:
        if isinstance(value, str):
            # YAML 1.1 reads `1e-3` (no dot) as a string; accept what is plainly a number.
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(origin, keys, f"expected a number, got {value!r} ({type(value).__name__})")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _bad(origin, keys, f"expected a string, got {value!r} ({type(value).__name__})")
        return value
    raise TypeError(f"config type {tp!r} at {dotted(keys)} is not supported")


def _build(cls: type[T], data: dict[str, Any], keys: Keys, origin: Origin) -> T:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        where = origin.of((*keys, unknown[0]))
        section = f"{dotted(keys)}: " if keys else ""
        raise InputError(f"{where}: {section}unknown key(s) {unknown}; known keys are {sorted(known)}")
    kwargs = {k: _coerce(v, hints[k], (*keys, k), origin) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except InputError as e:
        raise InputError(f"{origin.of_section(keys)}: {e}") from None


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config", origin: Origin | None = None) -> T:
    """Build dataclass `cls` from `data`; an error names the source (`where`, or the file or
    `--set` override of `origin`) and the key path of the bad entry."""
    return _build(cls, data, (), origin or Origin(where))


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise InputError(f"--set {text!r}: expected key.sub=value")
    key, raw = text.split("=", 1)
    try:
        return key.strip().split("."), yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise InputError(f"--set {text!r}: the value is not valid YAML ({str(e).splitlines()[0]})") from None


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """`cls` from a YAML file (if given) with `key.sub=value` overrides applied on top."""
    data, origin = raw_config(path, overrides)
    return from_dict(cls, data, origin=origin)


def peek_model_name(path: str | Path | None, overrides: list[str] | None = None) -> str | None:
    """`model.name` of a config before it is typed (it decides which config class applies)."""
    model = raw_config(path, overrides)[0].get("model")
    return model.get("name") if isinstance(model, dict) else None


def raw_config(path: str | Path | None, overrides: list[str] | None) -> tuple[dict[str, Any], Origin]:
    """The config's plain data, the file's with the overrides applied, and where each came from."""
    data: dict[str, Any] = {}
    file = "config"
    if path is not None:
        path = Path(path)
        file = str(path)
        if not path.is_file():
            raise InputError(f"{path}: no such config file")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise InputError(f"{path}: not valid YAML ({e})") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected a mapping at the top level")
    sets = []
    for text in overrides or []:
        keys, value = _parse_override(text)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise InputError(f"--set {text}: {k!r} is not a section")
        node[keys[-1]] = value
        sets.append((tuple(keys), text))
    return data, Origin(file, tuple(sets))


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as plain lists/dicts/scalars (for YAML, JSON and checkpoints)."""

    def plain(v: Any) -> Any:
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))
