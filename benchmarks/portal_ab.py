"""Workload ``portal-ab``: a sync call's round trip through procfound's portal, path against path.

The same job goes into the same warm portal (procfound's own, backend from ``PROCFOUND_BACKEND``)
by each way AnyIO offers and by the bridge's own, interleaved in rounds:

- the bridge as shipped (``call_in_portal``): the job is handed over without waiting, through
  the portal loop's AnyIO token (``token.backend_class.run_sync_soon``), to an idle worker task;
  the caller waits on a plain ``threading.Lock`` (the *Lock fast path*);
- the same Lock path, handed over by the loop's native thread-safe call instead
  (``loop.call_soon_threadsafe`` / ``TrioToken.run_sync_soon``), as the bridge did before #25;
- AnyIO's token path, ``anyio.from_thread.run(job, token=token)``: a task per call, the caller
  waits on a ``concurrent.futures.Future`` (asyncio) or a queue (trio);
- ``BlockingPortal.call`` on the same portal: a blocking hand-off, a task per call, a Future;
- from a caller's own asyncio loop: the bridge's ``acall_in_portal`` against AnyIO's
  ``BlockingPortal.call_async``.

Each job is a no-op coroutine, or ``procfound.async_run(["true"])`` (a whole sync ``run``). The
token-path jobs carry the same sync mark a twin sets, so only the crossing differs.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.from_thread

from benchmarks.harness import (
    Contender,
    Unavailable,
    Workload,
    bridge_backend,
    in_loop,
    procfound_attr,
    timed,
)


async def noop() -> None:
    pass


def _bridge() -> tuple[Any, Any]:
    """procfound's ``bridge.portal`` and ``bridge.sync`` modules, the portal started and warm."""
    try:
        from procfound.bridge import portal, sync
        from procfound.call.failures import SYNC_CALL
    except ImportError as exc:
        raise Unavailable(f"procfound.bridge: {exc}") from exc
    sync.call_in_portal(noop)
    if not hasattr(portal, "_token"):
        raise Unavailable("this procfound's portal has no AnyIO token")
    del SYNC_CALL
    return portal, sync


async def _marked(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """What a sync twin runs on the token path: the job under the sync mark."""
    from procfound.call.failures import SYNC_CALL

    mark = SYNC_CALL.set(True)
    try:
        return await fn(*args)
    finally:
        SYNC_CALL.reset(mark)


def workload(quick: bool) -> Workload:
    n = 200 if quick else 1000  # calls per sample (no-op calls or runs of `true`)
    true = shutil.which("true") or "/bin/true"
    backend = bridge_backend()

    def lock_path(job: str) -> float:
        _, sync = _bridge()
        if job == "noop":
            return timed(lambda: [sync.call_in_portal(noop) for _ in range(n)])
        run = procfound_attr("run")
        return timed(lambda: [run([true]) for _ in range(n)])

    def native_handoff(job: str) -> float:
        portal, sync = _bridge()
        native = portal._token.native_token
        call_soon = (
            native.call_soon_threadsafe
            if isinstance(native, asyncio.AbstractEventLoop)
            else native.run_sync_soon
        )
        async_run = procfound_attr("async_run")

        def one(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
            call = sync._Call()
            call_soon(portal._workers.start, sync._run_linked, (call, fn, args, {}))
            while not call.done.acquire(timeout=0.25):
                pass
            return call.outcome()

        if job == "noop":
            return timed(lambda: [one(noop) for _ in range(n)])
        return timed(lambda: [one(async_run, [true]) for _ in range(n)])

    def token_path(job: str) -> float:
        portal, _ = _bridge()
        token = portal._token
        run = anyio.from_thread.run
        if job == "noop":
            return timed(lambda: [run(_marked, noop, token=token) for _ in range(n)])
        async_run = procfound_attr("async_run")
        return timed(lambda: [run(_marked, async_run, [true], token=token) for _ in range(n)])

    def blocking_portal_call() -> float:
        portal, _ = _bridge()
        blocking = portal.get_portal()
        return timed(lambda: [blocking.call(_marked, noop) for _ in range(n)])

    def from_asyncio_loop(how: str) -> float:
        portal, sync = _bridge()
        blocking = portal.get_portal()
        if how == "acall_in_portal":

            async def work() -> None:
                for _ in range(n):
                    await sync.acall_in_portal(noop)

        else:
            if not hasattr(blocking, "call_async"):
                raise Unavailable("BlockingPortal.call_async needs anyio 4.16")

            async def work() -> None:
                for _ in range(n):
                    await blocking.call_async(_marked, noop)

        return in_loop("anyio[asyncio]", work)

    return Workload(
        name="portal-ab",
        title=(
            f"portal-ab: one sync call's round trip through procfound's portal [{backend}] "
            f"({n} calls per sample), time per call"
        ),
        unit="op",
        work=n,
        contenders=[
            Contender(
                "call_in_portal(no-op): token hand-off + Lock (shipped)",
                "procfound sync",
                lambda: lock_path("noop"),
                "baseline",
            ),
            Contender(
                "no-op: native call_soon hand-off + Lock (before #25)",
                "reference",
                lambda: native_handoff("noop"),
                "reference",
            ),
            Contender(
                "no-op: anyio.from_thread.run(token=portal token)",
                "anyio",
                lambda: token_path("noop"),
            ),
            Contender(
                "no-op: BlockingPortal.call on procfound's portal",
                "anyio",
                blocking_portal_call,
            ),
            Contender(
                "procfound.run([true]): token hand-off + Lock (shipped)",
                "procfound sync",
                lambda: lock_path("run"),
            ),
            Contender(
                "async_run([true]): native call_soon hand-off + Lock (before #25)",
                "reference",
                lambda: native_handoff("run"),
                "reference",
            ),
            Contender(
                "async_run([true]): anyio.from_thread.run(token=portal token)",
                "anyio",
                lambda: token_path("run"),
            ),
            Contender(
                "from an asyncio loop, no-op: acall_in_portal (shipped)",
                "procfound async",
                lambda: from_asyncio_loop("acall_in_portal"),
            ),
            Contender(
                "from an asyncio loop, no-op: BlockingPortal.call_async",
                "anyio",
                lambda: from_asyncio_loop("call_async"),
            ),
        ],
        note=(
            "The ratio of a row is against the no-op baseline; compare the `true` rows with "
            "each other (the hand-off is the same few microseconds on top of a whole run)."
        ),
    )
