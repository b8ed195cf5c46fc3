"""The call layer: one public call's options, stop policy, invocation and failure mapping.

It turns what a caller passed into a checked :class:`~procfound.engine.spawn.SpawnRequest` and a
:class:`~procfound.engine.kill.StopPolicy` before anything runs, and turns the engine's
outcomes (spawn failures, exit codes, timeouts, undecodable output) into procfound errors, once.
It starts sessions and runs them to their end (``sessions``), holds a pipeline's per-stage
plumbing (``stages``) and the process side of the streams (``chunks``: the pump; ``batches``:
bytes into lines), so the public modules above only bind arguments and shape results.

May import: ``procfound.errors``, ``procfound.result``, ``procfound.usage`` and
``procfound.engine``. Never the bridge, the services or the consumers.
"""
