"""Services: long-running children (``ManagedProcess``), their handle and readiness probes.

May import: the call layer, the bridge, the engine, ``procfound.errors`` and ``procfound.result``.
Never the consumers (CLI, pytest plugin).
"""
