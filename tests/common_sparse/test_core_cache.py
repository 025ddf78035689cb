"""KernelMapCache: frozen keys, a hit is the same map a miss builds."""

import pytest
import torch

from edgeinfer.common_sparse import (
    KernelMapCache,
    KernelMapKey,
    build_strided_map,
    build_submanifold_map,
    transpose_kernel_map,
)
from tests.common_sparse.reference import map_triples, random_coords

SUBM = KernelMapKey(tensor_stride=(1, 1, 1), stride=(1, 1, 1), kernel_size=(3, 3, 3),
                    dilation=(1, 1, 1))
DOWN = KernelMapKey((1, 1, 1), (2, 2, 2), (2, 2, 2), (1, 1, 1))
UP = KernelMapKey((1, 1, 1), (2, 2, 2), (2, 2, 2), (1, 1, 1), transposed=True)


def test_cache_hit_equals_cache_miss_and_builds_once():
    coords = random_coords(200, 3, 10, seed=1)
    cache, calls = KernelMapCache(), []

    def build():
        calls.append(1)
        return build_submanifold_map(coords, 3)

    first = cache.get_or_build(SUBM, build)
    second = cache.get_or_build(SUBM, build)
    assert second is first and len(calls) == 1
    assert map_triples(second) == map_triples(build_submanifold_map(coords, 3))


def test_keys_that_differ_in_any_field_do_not_collide():
    coords = random_coords(100, 3, 8, seed=2)
    cache = KernelMapCache()
    down, _ = build_strided_map(coords, 2, 2)
    cache.put(DOWN, down)
    cache.put(UP, transpose_kernel_map(down))
    cache.put(SUBM, build_submanifold_map(coords, 3))
    assert len(cache) == 3 and DOWN in cache and UP in cache
    assert cache.get(UP).transposed and not cache.get(DOWN).transposed
    assert KernelMapKey((1, 1, 1), (2, 2, 2), (2, 2, 2), (1, 1, 1)) == DOWN
    assert cache.get(KernelMapKey((2, 2, 2), (1, 1, 1), (3, 3, 3), (1, 1, 1))) is None


def test_keys_are_validated_and_strings_are_rejected():
    with pytest.raises(ValueError, match="one entry per spatial axis"):
        KernelMapKey((1, 1), (1, 1, 1), (3, 3, 3), (1, 1, 1))
    with pytest.raises(ValueError, match=r"kernel_size must be a tuple of 1\.\.3 ints >= 1"):
        KernelMapKey((1,), (1,), (0,), (1,))
    with pytest.raises(TypeError, match="keys must be KernelMapKey"):
        KernelMapCache().get("k3s1")
    with pytest.raises(TypeError, match="stores KernelMap values"):
        KernelMapCache().put(SUBM, torch.zeros(1))
    with pytest.raises(AttributeError):
        SUBM.stride = (2, 2, 2)  # frozen
