"""Workload ``portal``: what a sync call over an AnyIO blocking portal costs (reference rows)."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable

from anyio.from_thread import start_blocking_portal

from benchmarks.harness import Contender, Unavailable, Workload, timed


async def noop() -> None:
    pass


def _echo(inbox: int, outbox: int) -> None:
    """The helper thread of the ping-pong: answer each byte on ``inbox`` with one on ``outbox``.

    It ends at end of file on ``inbox`` (or on an error) and then closes ``outbox``, so the
    other side sees end of file instead of waiting forever.
    """
    try:
        while os.read(inbox, 1):
            os.write(outbox, b"o")
    finally:
        os.close(outbox)


def procfound_call_in_portal() -> Callable[[Callable[[], Awaitable[None]]], None]:
    """Return ``procfound.bridge.sync.call_in_portal``, or raise `Unavailable`."""
    try:
        module = importlib.import_module("procfound.bridge.sync")
        call: Callable[[Callable[[], Awaitable[None]]], None] = module.call_in_portal
    except (ImportError, AttributeError) as exc:
        raise Unavailable(f"procfound.bridge.sync.call_in_portal not importable: {exc}") from exc
    return call


def procfound_backend() -> str:
    """The backend of procfound's portal, as procfound picks it (env ``PROCFOUND_BACKEND``)."""
    return os.environ.get("PROCFOUND_BACKEND", "asyncio").strip().lower() or "asyncio"


def workload(quick: bool) -> Workload:
    cmd = [shutil.which("true") or "/bin/true"]
    n = 100 if quick else 500

    def spawn() -> float:
        return timed(lambda: [subprocess.run(cmd, capture_output=True) for _ in range(n)])

    def warm_call(backend: str) -> float:
        with start_blocking_portal(backend) as portal:
            portal.call(noop)
            start = time.perf_counter()
            for _ in range(n):
                portal.call(noop)
            return time.perf_counter() - start

    def thread_hop() -> float:
        """Physical reference: one byte to a helper thread and one back over pipes, per op."""
        ping_r, ping_w = os.pipe()
        to_close = [ping_r]
        helper: threading.Thread | None = None
        try:
            pong_r, pong_w = os.pipe()
            to_close.append(pong_r)
            helper = threading.Thread(target=_echo, args=(ping_r, pong_w), daemon=True)
            try:
                helper.start()
            except BaseException:
                if helper.ident is None:  # not started: pong_w is still ours to close
                    helper = None
                    os.close(pong_w)
                raise

            def hop() -> None:
                os.write(ping_w, b"i")
                if not os.read(pong_r, 1):
                    raise AssertionError("the ping-pong helper thread ended early")

            def work() -> None:
                for _ in range(n):
                    hop()

            hop()  # the thread is running and warm before the clock starts
            return timed(work)
        finally:
            os.close(ping_w)  # end of file for the helper, which then closes pong_w
            if helper is not None:
                helper.join()
            for fd in to_close:
                os.close(fd)

    def procfound_call() -> float:
        call_in_portal = procfound_call_in_portal()

        def work() -> None:
            for _ in range(n):
                call_in_portal(noop)

        call_in_portal(noop)  # the portal is started and warm before the clock starts
        return timed(work)

    def start_stop(backend: str) -> float:
        def work() -> None:
            for _ in range(n):
                with start_blocking_portal(backend):
                    pass

        return timed(work)

    return Workload(
        name="portal",
        title=f"portal: AnyIO blocking portal costs ({n} per sample), time per operation",
        unit="op",
        work=n,
        contenders=[
            Contender("subprocess.run([true]) for scale", "stdlib", spawn, "baseline"),
            Contender(
                "warm portal.call(no-op coroutine) [asyncio]",
                "reference",
                lambda: warm_call("asyncio"),
                "reference",
            ),
            Contender(
                "warm portal.call(no-op coroutine) [trio]",
                "reference",
                lambda: warm_call("trio"),
                "reference",
            ),
            Contender(
                "pipe ping-pong between two threads (physical thread hop)",
                "reference",
                thread_hop,
                "reference",
            ),
            Contender(
                "procfound sync call of a no-op coroutine (call_in_portal) "
                f"[{procfound_backend()}]",
                "procfound sync",
                procfound_call,
            ),
            Contender(
                "start_blocking_portal start + stop [asyncio]",
                "reference",
                lambda: start_stop("asyncio"),
                "reference",
            ),
            Contender(
                "start_blocking_portal start + stop [trio]",
                "reference",
                lambda: start_stop("trio"),
                "reference",
            ),
        ],
        note="A sync procfound call costs its async core plus about one warm portal call.",
    )
