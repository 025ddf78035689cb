"""The search space: configs, validation with clear errors, genomes, sampling."""

import numpy as np
import pytest

from edgeinfer.nlp.hat import SearchSpace, SubConfig

MINILM = SearchSpace.scaled(hidden=384, layers=6, ffn=1536, heads=12)


def test_default_space_of_minilm():
    assert MINILM.embed_dims == (128, 192, 256, 320, 384)
    assert MINILM.layer_counts == (1, 2, 3, 4, 5, 6)
    assert MINILM.ffn_dims == (256, 512, 768, 1024, 1280, 1536)
    assert MINILM.head_counts == (2, 4, 6, 8, 10, 12)
    assert MINILM.head_dim == 32
    assert MINILM.largest() == SubConfig(384, (1536,) * 6, (12,) * 6)
    assert MINILM.smallest() == SubConfig(128, (256,), (2,))


def test_uniform_scaling_picks_the_nearest_choice_everywhere():
    half = MINILM.uniform(0.5)
    assert half == SubConfig(192, (768,) * 6, (6,) * 6)
    assert MINILM.uniform(1.0) == MINILM.largest()
    assert MINILM.uniform(0.5, layers=2).layers == 2
    with pytest.raises(ValueError, match=r"ratio must be in \(0, 1\]; got 0"):
        MINILM.uniform(0)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        (SubConfig(100, (256,), (2,)), r"config.embed_dim=100 is outside .* \[128, 192"),
        (SubConfig(128, (256,) * 7, (2,) * 7), r"7 layers, outside .* \[1, 2, 3, 4, 5, 6\]"),
        (SubConfig(128, (256, 300), (2, 2)), r"config.ffn_dims\[1\]=300 is outside"),
        (SubConfig(128, (256,), (3,)), r"config.heads\[0\]=3 is outside .* \[2, 4, 6"),
    ],
)
def test_configs_outside_the_space_are_rejected_by_field(config, match):
    with pytest.raises(ValueError, match=match):
        MINILM.check(config)


def test_subconfig_validation():
    with pytest.raises(ValueError, match=r"one FFN width and one head count per layer; got 2"):
        SubConfig(128, (256, 256), (2,))
    with pytest.raises(ValueError, match="positive ints"):
        SubConfig(128, (0,), (2,))
    with pytest.raises(TypeError, match="non-empty sequence"):
        SubConfig(128, 256, (2,))
    with pytest.raises(TypeError, match="must be a SubConfig"):
        MINILM.check({"embed_dim": 128})
    config = SubConfig(256, (512, 1024), (4, 8))
    assert SubConfig.from_dict(config.to_dict()) == config and config.layers == 2


def test_space_validation():
    with pytest.raises(ValueError, match=r"multiples of head_dim=32 .* got \[100\]"):
        SearchSpace((100, 128), (1,), (64,), (2,), head_dim=32)
    with pytest.raises(TypeError, match="non-empty sequence"):
        SearchSpace((), (1,), (64,), (2,), head_dim=32)


def test_genomes_round_trip_and_samples_stay_inside():
    rng = np.random.default_rng(0)
    for _ in range(200):
        genome = MINILM.random_genome(rng)
        config = MINILM.decode(genome)
        assert MINILM.check(config) is config
        assert MINILM.decode(MINILM.encode(config)) == config
    sampled = {MINILM.sample(rng).layers for _ in range(200)}
    assert sampled == set(MINILM.layer_counts)
    with pytest.raises(ValueError, match="a genome of this space has 14 genes; got 3"):
        MINILM.decode((128, 1, 256))
