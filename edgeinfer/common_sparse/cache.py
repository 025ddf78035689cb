"""A small per-tensor cache of kernel maps keyed by a frozen dataclass (never by strings).

A sparse tensor holds one ``KernelMapCache``; every layer asking for the same
``(tensor_stride, stride, kernel_size, dilation, transposed)`` gets the map built once.
The cache object is owned by its tensor: there is no module-level cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .kernel_map import KernelMap

__all__ = ["KernelMapCache", "KernelMapKey"]


def _check_ints(name: str, value: tuple[int, ...]) -> None:
    if (
        not isinstance(value, tuple)
        or not 1 <= len(value) <= 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    ):
        raise ValueError(
            f"KernelMapKey.{name} must be a tuple of 1..3 ints >= 1 (one per spatial axis); "
            f"got {value!r}"
        )


@dataclass(frozen=True)
class KernelMapKey:
    """What identifies a kernel map of one coordinate set (all tuples have one int per axis).

    ``tensor_stride`` is the stride of the input coordinates; ``stride`` the conv stride
    (all ones for sub-manifold maps); ``transposed`` marks an upsampling (transposed) map.
    """

    tensor_stride: tuple[int, ...]
    stride: tuple[int, ...]
    kernel_size: tuple[int, ...]
    dilation: tuple[int, ...]
    transposed: bool = False

    def __post_init__(self) -> None:
        for name in ("tensor_stride", "stride", "kernel_size", "dilation"):
            _check_ints(name, getattr(self, name))
        tuples = (self.tensor_stride, self.stride, self.kernel_size, self.dilation)
        if len({len(value) for value in tuples}) != 1:
            raise ValueError(
                "KernelMapKey tuples must all have one entry per spatial axis; got "
                f"tensor_stride={self.tensor_stride}, stride={self.stride}, "
                f"kernel_size={self.kernel_size}, dilation={self.dilation}"
            )
        if not isinstance(self.transposed, bool):
            raise TypeError(f"KernelMapKey.transposed must be a bool; got {self.transposed!r}")


class KernelMapCache:
    """Kernel maps of one coordinate set, by ``KernelMapKey``. Hits return the same object."""

    def __init__(self) -> None:
        self._maps: dict[KernelMapKey, KernelMap] = {}

    def __len__(self) -> int:
        return len(self._maps)

    def __contains__(self, key: object) -> bool:
        return key in self._maps

    def get(self, key: KernelMapKey) -> KernelMap | None:
        """The cached map for ``key``, or ``None``."""
        return self._maps.get(_checked_key(key))

    def put(self, key: KernelMapKey, kernel_map: KernelMap) -> None:
        """Store ``kernel_map`` under ``key`` (replacing any previous one).

        Raises:
            TypeError: ``key`` is not a ``KernelMapKey`` or the value not a ``KernelMap``.
        """
        if not isinstance(kernel_map, KernelMap):
            raise TypeError(
                f"KernelMapCache stores KernelMap values; got {type(kernel_map).__name__}"
            )
        self._maps[_checked_key(key)] = kernel_map

    def get_or_build(self, key: KernelMapKey, build: Callable[[], KernelMap]) -> KernelMap:
        """The cached map for ``key``; on a miss call ``build()``, store and return its result."""
        found = self.get(key)
        if found is None:
            found = build()
            self.put(key, found)
        return found


def _checked_key(key: object) -> KernelMapKey:
    if not isinstance(key, KernelMapKey):
        raise TypeError(
            f"KernelMapCache keys must be KernelMapKey (a frozen dataclass); got "
            f"{type(key).__name__} {key!r}"
        )
    return key
