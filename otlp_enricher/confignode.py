"""Validating a YAML configuration: typed getters that report every problem with its key path.

Every problem is collected, each as ``key.path: expected …, got …``; unknown keys are errors;
``${env:NAME}`` and ``${env:NAME:-default}`` are expanded in every string value after the YAML is
parsed, as plain text (a value that is wholly one variable becomes a number or boolean only when it
is spelled as one; it is never parsed as YAML, so ``@``, ``{`` or ``null`` stay text). No problem
message echoes a value under a secret-bearing key (``password``, ``token``, ``auth``, ``headers``,
``hash_key`` …) or the userinfo of a URL: those are described by kind only. Components parse their
own section with a :class:`ConfigNode`; :mod:`otlp_enricher.config` puts the sections together.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml

_ENV_PATTERN = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class ConfigError(ValueError):
    """The configuration is invalid; ``problems`` lists every problem with its key path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A ``host:port`` to listen on or connect to."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def expand_env(value: Any, path: str, environ: Mapping[str, str], errors: list[str]) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            errors.append(f"{path or '<root>'}: environment variable {name} is not set and has no default")
            return ""

        expanded = _ENV_PATTERN.sub(substitute, value)
        if expanded != value and _ENV_PATTERN.fullmatch(value):
            return _scalar(expanded)
        return expanded
    if isinstance(value, dict):
        return {key: expand_env(item, join_path(path, str(key)), environ, errors) for key, item in value.items()}
    if isinstance(value, list):
        return [expand_env(item, f"{path}[{index}]", environ, errors) for index, item in enumerate(value)]
    return value


_INTEGER = re.compile(r"[-+]?[0-9]+")


_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?")


_SECRET_KEY = re.compile(r"password|passwd|token|secret|auth|headers|hash_key|api[_-]?key|credential|cookie", re.I)


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s'\"]+@")


def _scalar(text: str) -> Any:
    """An environment value that is a whole config value: a number or boolean when spelled as one
    (so ``max_lines: ${env:N}`` works), otherwise the text itself, never YAML-parsed."""
    if _INTEGER.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return {"true": True, "false": False}.get(text, text)


def yaml_problem(error: yaml.YAMLError) -> str:
    """The problem and its line/column, without PyYAML's snippet of the line (it may hold a secret)."""
    problem = getattr(error, "problem", None) or type(error).__name__
    mark = getattr(error, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(problem)


def is_secret_path(path: str) -> bool:
    """Whether a config key path names a value that must never be echoed (credentials, headers)."""
    return bool(_SECRET_KEY.search(path))


def describe(path: str, value: Any) -> str:
    """``value`` for a problem message: its kind only under a secret-bearing key, URL userinfo hidden."""
    if is_secret_path(path):
        return f"{kind_of(value)} (value not shown)"
    return _USERINFO.sub(r"\1***@", repr(value))


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


T = TypeVar("T")
Choice = TypeVar("Choice", bound=str)


class ConfigNode:
    """A mapping being validated: typed getters that record problems instead of raising."""

    def __init__(self, data: Any, path: str, errors: list[str]) -> None:
        self.path = path
        self._errors = errors
        self._used: set[str] = set()
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.error(path, f"expected a mapping, got {kind_of(data)}")
            data = {}
        self._data: dict[str, Any] = data

    def error(self, path: str, message: str) -> None:
        self._errors.append(f"{path or '<root>'}: {message}")

    def has(self, key: str) -> bool:
        return key in self._data

    def names(self) -> list[str]:
        return [str(key) for key in self._data]

    def raw(self, key: str) -> Any:
        self._used.add(key)
        return self._data.get(key)

    def child(self, key: str) -> ConfigNode:
        return ConfigNode(self.raw(key), join_path(self.path, key), self._errors)

    def _typed(self, key: str, default: T, check: Callable[[Any], T | None], expected: str) -> T:
        value = self.raw(key)
        if value is None:
            return default
        checked = check(value)
        if checked is None:
            path = join_path(self.path, key)
            self.error(path, f"expected {expected}, got {describe(path, value)}")
            return default
        return checked

    def string(self, key: str, default: str = "", choices: tuple[str, ...] = ()) -> str:
        def check(value: Any) -> str | None:
            if not isinstance(value, str) or (choices and value not in choices):
                return None
            return value

        expected = "one of " + ", ".join(choices) if choices else "a string"
        return self._typed(key, default, check, expected)

    def choice(self, key: str, default: Choice, choices: tuple[Choice, ...]) -> Choice:
        """One of a closed set of words (typed as its ``Literal``)."""

        def check(value: Any) -> Choice | None:
            return next((choice for choice in choices if choice == value), None)

        return self._typed(key, default, check, "one of " + ", ".join(choices))

    def required_string(self, key: str) -> str:
        if self.raw(key) is None:
            self.error(join_path(self.path, key), "is required")
            return ""
        return self.string(key)

    def number(self, key: str, default: float, minimum: float = 0.0, maximum: float = math.inf) -> float:
        def check(value: Any) -> float | None:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                return None
            return float(value) if minimum <= value <= maximum else None

        bounds = f"a number from {minimum:g}" + (f" to {maximum:g}" if math.isfinite(maximum) else " up")
        return self._typed(key, default, check, bounds)

    def optional_number(self, key: str, minimum: float = 0.0, maximum: float = math.inf) -> float | None:
        return None if self.raw(key) is None else self.number(key, 0.0, minimum, maximum)

    def integer(self, key: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        def check(value: Any) -> int | None:
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                return None
            return None if maximum is not None and value > maximum else value

        expected = f"a whole number from {minimum} up" if maximum is None else f"a whole number {minimum}–{maximum}"
        return self._typed(key, default, check, expected)

    def duration(self, key: str, default_s: float, minimum_s: float = 0.0) -> float:
        """A Collector duration (``"30s"``, ``"1m30s"``, ``"500ms"``) or a number of seconds."""

        def check(value: Any) -> float | None:
            seconds = parse_duration(value)
            return seconds if seconds is not None and seconds >= minimum_s else None

        return self._typed(key, default_s, check, f"a duration such as 30s or 1m, from {minimum_s:g}s up")

    def boolean(self, key: str, default: bool) -> bool:
        return self._typed(key, default, lambda v: v if isinstance(v, bool) else None, "true or false")

    def endpoint(self, key: str, default: str) -> Endpoint:
        raw = self.raw(key)
        value = default if raw is None else raw
        parsed = parse_endpoint(value) if isinstance(value, str) else None
        if parsed is None:
            path = join_path(self.path, key)
            self.error(path, f"expected host:port, got {describe(path, value)}")
            return parse_endpoint(default) or Endpoint("127.0.0.1", 0)
        return parsed

    def string_list(self, key: str) -> tuple[str, ...]:
        value = self.raw(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        path = join_path(self.path, key)
        self.error(path, f"expected a string or a list of strings, got {describe(path, value)}")
        return ()

    def string_map(self, key: str) -> dict[str, str]:
        value = self.raw(key)
        if value is None:
            return {}
        path = join_path(self.path, key)
        if isinstance(value, dict):
            wrong = [str(k) for k, v in value.items() if not isinstance(v, str)]
            if not wrong:
                return {str(k): v for k, v in value.items()}
            for name in wrong:
                self.error(f"{path}.{name}", f"expected a string, got {describe(path, value[name])}")
            return {}
        self.error(path, f"expected a mapping of strings to strings, got {describe(path, value)}")
        return {}

    def list_of_nodes(self, key: str) -> list[ConfigNode]:
        value = self.raw(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(join_path(self.path, key), f"expected a list, got {kind_of(value)}")
            return []
        return [ConfigNode(item, f"{join_path(self.path, key)}[{i}]", self._errors) for i, item in enumerate(value)]

    def done(self, *nested: str) -> None:
        """Report keys nobody asked for; ``nested`` are keys whose children were checked elsewhere."""
        for key in self._data:
            if key not in self._used and key not in nested:
                self.error(join_path(self.path, str(key)), "unknown key")


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(value: Any) -> float | None:
    """Seconds of a Go-style duration string or a plain number; ``None`` when malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) and value >= 0 else None
    if not isinstance(value, str) or not value:
        return None
    text, total, position = value.strip(), 0.0, 0
    if text == "0":
        return 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    return total if position == len(text) and position else None


def parse_endpoint(value: str) -> Endpoint | None:
    """``host:port`` or ``[v6]:port`` → :class:`Endpoint`; ``None`` when malformed."""
    match = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d{1,5})|([^:\s\[\]]*):(\d{1,5})", value.strip())
    if not match:
        return None
    host = match.group(1) or match.group(3) or "0.0.0.0"
    port = int(match.group(2) or match.group(4))
    return Endpoint(host, port) if port <= 65535 else None
