"""Config and profile errors that name the file, the key and the reason.

For the agent and the collector only (imports pydantic and PyYAML).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


UNION_TAG = "union:"  # prefix of the tags of tagged unions in config models (left out of key paths)


class ConfigError(ValueError):
    """A configuration file is unreadable or invalid; the message says where and why."""


def _key_path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def format_validation_error(source: str, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        # validators and the member tags of tagged unions ("union:...") are not keys of the file
        loc = [p for p in error["loc"] if not str(p).startswith(("function-", UNION_TAG))]
        message = error["msg"]
        if error["type"] not in ("missing", "extra_forbidden") and "input" in error:
            message += f" (got {error['input']!r})"
        if error["type"] == "extra_forbidden":
            message = "unknown key (not part of the schema; check the spelling)"
        lines.append(f"{source}: {_key_path(loc)}: {message}")
    return "\n".join(lines)


def load_yaml_text(text: str, source: str) -> Any:
    """Parse YAML, turning syntax errors into a :class:`ConfigError` with line and column."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: {where}invalid YAML: {problem}") from None


def read_yaml_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return load_yaml_text(text, str(path))


def validate_document(data: Any, model: type[Model], source: str, what: str) -> Model:
    """Validate a parsed YAML document; every error names ``source``, the key and the reason."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {what} is a mapping of keys, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None


def load_document(path: Path, model: type[Model], what: str) -> Model:
    return validate_document(read_yaml_file(path), model, str(path), what)
