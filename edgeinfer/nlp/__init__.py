"""NLP engine: token redundancy (SpAtten-style pruning and quantisation, HAT-style search).

Not built yet.
"""

__all__: list[str] = []
