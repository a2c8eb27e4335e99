"""Storage options for an object-store lake: the one place they are read from configuration.

A lake on S3, GCS or Azure needs deltalake *storage options* (endpoint, region, credentials). They
come from one source everywhere -- the trading process's logger and its shipper, the ``risk-lake``
command, the Dagster code location (its sensors, schedules and run workers), maintenance and the
query API: the environment variable ``$RISK_STORAGE_OPTIONS``, a JSON object such as
``{"aws_region": "eu-west-1", "aws_access_key_id": "...", "aws_secret_access_key": "..."}``.

Why an environment variable: credentials come from a secret store into a process's environment, and
from there every child process (the shipper, a Dagster run worker) inherits them without their ever
appearing on a command line, in a config file, in Dagster's run configuration or in a Delta commit.
For the same reason, nothing here ever puts a value into an error message: a malformed entry is
named by its key only.

This module is imported by trading processes: it depends on the standard library alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Final

STORAGE_OPTIONS_ENV: Final = "RISK_STORAGE_OPTIONS"
"""The environment variable holding the lake's storage options as a JSON object."""

_SCALARS: Final = (str, bool, int, float)


def _as_text(value: object) -> str:
    # deltalake takes strings only; JSON's true/false and numbers are accepted as their usual spelling.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_storage_options(text: str, *, source: str = STORAGE_OPTIONS_ENV) -> dict[str, str]:
    """A JSON object of storage options as ``{key: str}``; ``ValueError`` naming ``source`` if malformed."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        # The decoder's message quotes no input, only a position: safe to pass on.
        raise ValueError(f"{source} is not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{source} must be a JSON object of storage options, got a JSON {type(raw).__name__}")
    bad = sorted(key for key, value in raw.items() if not isinstance(value, _SCALARS))
    if bad:
        raise ValueError(f"{source}: storage options must be strings, numbers or booleans: {', '.join(bad)}")
    return {str(key): _as_text(value) for key, value in raw.items()}


def storage_options_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """``$RISK_STORAGE_OPTIONS`` parsed, or ``None`` when it is unset or empty."""
    text = (os.environ if environ is None else environ).get(STORAGE_OPTIONS_ENV, "")
    return parse_storage_options(text) if text.strip() else None


def parse_option_flags(pairs: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings (the command line's ``--storage-option``) as a dict; later keys win."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            # The argument is not echoed: it may be a secret typed in the wrong place.
            raise ValueError("--storage-option takes KEY=VALUE; one argument has no '=' or no key")
        options[key.strip()] = value
    return options
