"""Sample-data generators and real-format readers (scans, videos, text).

Imports no engine. Not built yet: each engine's issue adds its generators here.
"""

__all__: list[str] = []
