"""The bridge: sync code calling the async engine through one process-wide AnyIO portal.

``portal`` owns the portal thread and the calls into it; ``sync`` generates each public sync twin
from its coroutine function.

May import: ``procfound.errors`` and AnyIO. Never the engine: sessions register their own exit and
fork hooks with the portal, so the bridge knows nothing about children.
"""
