"""Typed helpers for reading configuration from the environment.

Every setting ClinicNet reads goes through one of these so that the variable
names, defaults and parsing rules live in one place (settings.py) and are easy
to document.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """An environment variable holds a value we cannot use."""


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def envint(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from exc


def envlist(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def envsecret(name: str, default: str = "") -> str:
    """Read a secret from NAME, or from the file named by NAME_FILE.

    The file form suits Docker and Kubernetes secrets, which are mounted as
    files so that the value never shows up in the process environment.
    """
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE points at {path!r}, which cannot be read: {exc}") from exc
    return os.environ.get(name, default)


def generated_secret(path: Path) -> str:
    """Return the secret stored at *path*, creating it on first use.

    Used for SECRET_KEY in the embedded set-up so that a fresh checkout runs
    without configuration yet sessions survive restarts.
    """
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(50)
    # Write then rename so that two processes starting together never read a
    # half-written key.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(value, encoding="utf-8")
    os.chmod(tmp, 0o600)
    if path.exists():
        tmp.unlink()
        return path.read_text(encoding="utf-8").strip()
    tmp.replace(path)
    return value
