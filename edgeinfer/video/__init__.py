"""Video engine: temporal redundancy (temporal shift, streaming TSM, frame and pixel skipping).

Not built yet.
"""

__all__: list[str] = []
