"""Load `gateway.yaml`: YAML with `${ENV}` interpolation, validated into `GatewayConfig`.

Every error names the file, the line and the key path, so an operator can fix it without guessing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .model import GatewayConfig

_M = TypeVar("_M", bound=BaseModel)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """A configuration file that cannot be used; `str()` is the operator-facing explanation."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    config = parse_config(text, str(path), os.environ if environ is None else environ)
    if config.base_dir is None:
        config = config.model_copy(update={"base_dir": str(path.resolve().parent)})
    return config


def parse_config(text: str, source: str, environ: Mapping[str, str]) -> GatewayConfig:
    return parse_model(text, source, GatewayConfig, environ)


def parse_model(text: str, source: str, model: type[_M], environ: Mapping[str, str] | None) -> _M:
    """YAML `text` validated into `model`; `${ENV}` references are filled from `environ` (None: no
    interpolation). Every problem names the file, line and key."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError([f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if root is None:
        data: Any = {}
    else:
        data = yaml.SafeLoader(text).get_single_data()
    if not isinstance(data, dict):
        raise ConfigError([f"{source}:1: the top level must be a mapping"])
    if environ is not None:
        problems: list[str] = []
        data = _interpolate(data, (), environ, problems, root, source)
        if problems:
            raise ConfigError(problems)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_describe(err, root, source) for err in exc.errors()]) from None


def _interpolate(
    value: Any, key_path: tuple[Any, ...], environ: Mapping[str, str], problems: list[str], root: Any, source: str
) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, (*key_path, k), environ, problems, root, source) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*key_path, i), environ, problems, root, source) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            line = _line_of(root, key_path)
            problems.append(
                f"{source}:{line}: {_dotted(key_path)}: environment variable {name} is not set "
                f"(use ${{{name}:-default}} for a default)"
            )
            return ""

        return _ENV_REF.sub(substitute, value)
    return value


def _describe(err: Any, root: Any, source: str) -> str:
    loc = tuple(part for part in err["loc"] if not _is_union_tag(part))
    # A bad `transport` value is reported on the transport line itself.
    line = _line_of(root, (*loc, "transport") if err["type"] == "union_tag_invalid" else loc)
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; `mcp-gateway config schema` lists the keys)"
    elif err["type"] == "union_tag_invalid":
        message = "transport must be one of streamable_http, sse, stdio"
    elif err["type"] == "union_tag_not_found":
        message = "missing `transport` (streamable_http, sse or stdio)"
    return f"{source}:{line}: {_dotted(loc) or '(top level)'}: {message}"


def line_of(root_text: str, loc: tuple[Any, ...]) -> int:
    """The line of the key path `loc` in a YAML document (for errors found after validation)."""
    return _line_of(yaml.compose(root_text, Loader=yaml.SafeLoader), loc)


def line_finder(root_text: str) -> Callable[[tuple[Any, ...]], int]:
    """`line_of` for many key paths of one document, which is parsed once (not once per path)."""
    root = yaml.compose(root_text, Loader=yaml.SafeLoader)
    return lambda loc: _line_of(root, loc)


def _is_union_tag(part: Any) -> bool:
    return part in ("streamable_http", "sse", "stdio")


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: Any, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the deepest YAML node along `loc` that exists."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
