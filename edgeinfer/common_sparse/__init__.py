"""The sparse core every engine shares: coordinates, hashing, kernel maps, gather/scatter.

Not built yet: the point-cloud engine's issue builds it. Engines import from here, never from
each other; this package imports no engine.
"""

__all__: list[str] = []
