"""The bridge: sync code calling the async engine through one process-wide AnyIO portal.

``portal`` owns the portal thread and the calls into it; ``sync`` generates each public sync twin
from its coroutine function.

Layering (imports point down: consumers -> public API -> services -> bridge -> call -> engine):
the bridge may import ``procfound.errors``, ``procfound.lifecycle``, the call layer
(``procfound.call``: the sync mark its twins set, the trace context they carry over) and AnyIO.
Never the engine, and nothing above it (services, public API, consumers). The engine does not
import the bridge either: each registers its own exit stage in :mod:`procfound.lifecycle`
(the portal stops first, then the engine closes what is still open) and its own fork hook, so
the bridge knows nothing about children.
"""
