"""The values of the CLI's options: durations, ``--port``/``--http``/``--path``, ``--env``,
``--cwd``, and the stop policy the containment options make.

Each ``*_option``/``seconds``-style function is an argparse ``type=``: it returns the value or
raises ``argparse.ArgumentTypeError``, so that a bad value is a usage error (exit 2) before
anything runs. The probes' own argument checks are the library's, through the public API.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import idna

from procfound import StopPolicy, ValidationError, check_probes, stop_policy

__all__ = [
    "containment",
    "directory",
    "env_pair",
    "finite_seconds",
    "http_option",
    "path_option",
    "policy_of",
    "port_option",
    "seconds",
]


def seconds(text: str) -> float:
    """A duration option: a number of seconds, 0 or more; ``inf`` means no limit."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def finite_seconds(text: str) -> float:
    """A duration that must end (a grace period that never ends would never escalate)."""
    value = seconds(text)
    if math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds, got {text!r}")
    return value


def policy_of(args: argparse.Namespace) -> StopPolicy:
    """The command's stop policy, checked whole by the library's own :func:`stop_policy` (one
    rule for the API and the CLI). The CLI's default level is the whole tree, unless
    PROCFOUND_CONTAIN says otherwise."""
    return stop_policy(
        args.stop_signal,
        StopPolicy().kill_grace if args.kill_grace is None else args.kill_grace,
        args.contain,
        default_contain="tree",
    )


def containment(args: argparse.Namespace) -> dict[str, Any]:
    """The stop policy as the API's keywords."""
    policy: StopPolicy = args.policy
    return {
        "stop_signal": policy.stop_signal,
        "kill_grace": policy.kill_grace,
        "contain": policy.contain,
    }


def port_option(text: str) -> tuple[str, int]:
    """``--port``: ``PORT`` (on 127.0.0.1), ``HOST:PORT`` or ``[IPV6]:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host = "127.0.0.1"
    elif ":" in host or "[" in host or "]" in host:
        # Only an IPv6 address has a ":" in it, and it must be in brackets, whole: "[::1"
        # or "[::1]x:80" is not a host with a port.
        inner = host[1:-1]
        if not (host.startswith("[") and host.endswith("]")) or "[" in inner or "]" in inner:
            raise argparse.ArgumentTypeError(
                f"write an IPv6 host in brackets ([::1]:PORT), got {text!r}"
            )
    # Checked here rather than by check_probes, which takes an int: ASCII digits only (int()
    # takes "٣" and " 8"), and no more than five (int() refuses thousands of them).
    number = int(port) if port.isascii() and port.isdigit() and len(port) <= 5 else 0
    if not 1 <= number <= 65535:
        within = f" (in {text!r})" if sep else ""
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {port!r}{within}")
    try:
        checked = check_probes(port=(host, number)).port
        assert checked is not None  # a port was given
        _check_resolvable(checked[0])
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(f"{exc.message} (in {text!r})") from None
    return checked


def _check_resolvable(host: str) -> None:
    """A host the resolver can be asked about: ASCII, or a valid IDNA 2008 name.

    AnyIO encodes a non-ASCII host name this way before it looks it up; doing it here makes a
    name it cannot encode ("😀", an undecodable byte from argv) a usage error before the
    command starts, instead of an error once it runs.
    """
    if host.isascii():
        return
    try:
        idna.encode(host, uts46=True)
    except UnicodeError as exc:  # idna.IDNAError is one
        raise ValidationError(
            f"host {host!r} is not a valid host name: {exc}", code="INVALID_ARGUMENT"
        ) from None


def http_option(text: str) -> str:
    """``--http``: an http:// URL (checked here, so a bad one is a usage error)."""
    try:
        host = check_probes(http=text).http_host  # the message never shows the URL: a password
        assert host is not None  # a URL was given
        _check_resolvable(host)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    return text


def path_option(text: str) -> str:
    try:
        check_probes(path=text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    return text


def env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def directory(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("expected a directory, got an empty string")
    return text
