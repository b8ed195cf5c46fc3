"""The engine: spawn a child in its own process group, move its bytes, wait for it, kill its tree.

Nothing here knows procfound's public names, defaults or messages; ``procfound.run`` and friends
translate requests into :class:`SpawnRequest` and engine outcomes into results and errors.
"""
