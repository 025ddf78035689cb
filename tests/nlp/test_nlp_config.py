"""SpAttenConfig validation and the progressive per-layer schedule."""

import math

import pytest

from edgeinfer.nlp import SpAttenConfig, plan_layers


@pytest.mark.parametrize("field", ["token_keep", "head_keep"])
@pytest.mark.parametrize("value", [0.0, -0.1, 1.5, float("nan")])
def test_keep_ratios_outside_unit_interval_are_rejected(field, value):
    with pytest.raises(ValueError, match=rf"{field} must be in \(0, 1\]"):
        SpAttenConfig(**{field: value})


@pytest.mark.parametrize("value", ["0.5", True, None])
def test_keep_ratio_of_wrong_type_is_rejected(value):
    with pytest.raises(TypeError, match="token_keep must be a float"):
        SpAttenConfig(token_keep=value)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"prune_layers": [1, 2]}, TypeError, "prune_layers must be None or a tuple"),
        ({"prune_layers": (2, 1)}, ValueError, "distinct, ascending"),
        ({"head_prune_layers": (-1,)}, ValueError, "non-negative"),
        ({"token_mode": "random"}, ValueError, "token_mode must be one of"),
        ({"token_threshold": -1.0}, ValueError, "token_threshold must be finite"),
        ({"score_stride": 0}, ValueError, "score_stride must be an int >= 1"),
    ],
)
def test_bad_fields_are_rejected_with_the_field_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        SpAttenConfig(**kwargs)


def test_config_is_frozen():
    config = SpAttenConfig()
    with pytest.raises(AttributeError):
        config.token_keep = 0.1


def test_schedule_is_geometric_and_lands_on_the_keep_ratio():
    plans = plan_layers(SpAttenConfig(token_keep=0.25, head_keep=0.5), n_layers=6, n_heads=12)
    ratios = [p.token_ratio for p in plans]
    assert ratios[0] is None and ratios[5] is None  # default: not the first nor the last layer
    assert [round(r, 6) for r in ratios[1:5]] == [round(0.25 ** (j / 4), 6) for j in range(1, 5)]
    assert math.isclose(ratios[4], 0.25)
    assert [p.head_count for p in plans][1:5] == [10, 8, 7, 6]
    assert [p.score_tokens for p in plans] == [True] * 5 + [False]


def test_keep_ratio_one_plans_no_pruning_and_no_scoring():
    plans = plan_layers(SpAttenConfig(token_keep=1.0, head_keep=1.0), n_layers=6, n_heads=12)
    assert all(p.token_ratio is None and p.head_count is None for p in plans)
    assert not any(p.score_tokens or p.score_heads for p in plans)


def test_pruning_layer_beyond_the_model_is_rejected():
    with pytest.raises(ValueError, match=r"prune_layers must index layers in \[0, 6\)"):
        plan_layers(SpAttenConfig(prune_layers=(2, 6)), n_layers=6, n_heads=12)
