"""Services: long-running children (``ManagedProcess``), their handle, readiness waits and groups.

``managed`` is the public class, a facade over the child's owner in the engine
(:mod:`procfound.engine.owner`), with its parts ``reading`` (the reads and ``await_ready``) and
``talking`` (``write``, ``expect``...); ``handle`` the child as ``Popen`` showed it; ``waits``
the wait functions (``wait_for_process_output``, ``wait_for_port``...); ``probes`` the readiness
wait and its public entry points, with the probe kinds in ``probe_kinds`` and ``http_probe`` and
the custom check in ``check``; ``group`` the ServiceGroup the pytest plugin is made of;
``wording`` the owner's errors in procfound's words; ``registry`` the stop at interpreter exit.

May import: the call layer, the bridge, the engine, ``procfound.errors``, ``procfound.result``
and ``procfound.usage``. Never the consumers (CLI, pytest plugin). Within: ``probes`` and its
parts never import ``managed`` (``managed`` and ``reading`` call into them; ``waits`` and
``group`` sit above).
"""
