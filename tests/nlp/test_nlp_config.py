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
        ({"score_queries": 0}, ValueError, "score_queries must be an int >= 1"),
        ({"token_schedule": [0.5, 1.0]}, TypeError, "token_schedule must be None or a tuple"),
        ({"token_schedule": (0.5, 0.9)}, ValueError, r"ending with 1.0"),
        ({"token_schedule": (0.0, 1.0)}, ValueError, r"exponents in \(0, 1\]"),
        ({"token_schedule": (0.8, 0.5, 1.0)}, ValueError, "non-decreasing"),
        (
            {"prune_layers": (1, 2), "token_schedule": (0.3, 0.6, 1.0)},
            ValueError,
            "one exponent per pruning layer",
        ),
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
    assert ratios[0] is None and ratios[4:] == [None, None]  # default: layers 1 .. n // 2
    assert [round(r, 6) for r in ratios[1:4]] == [round(0.25 ** (j / 3), 6) for j in (1, 2, 3)]
    assert math.isclose(ratios[3], 0.25)
    assert [p.head_count for p in plans][1:5] == [10, 8, 7, 6]  # heads: 1 .. n - 2
    assert [p.score_tokens for p in plans] == [True] * 4 + [False] * 2


def test_default_pruning_layers_scale_with_depth():
    for n_layers, expected in ((12, [1, 2, 3, 4, 5, 6]), (2, [1]), (1, [])):
        plans = plan_layers(SpAttenConfig(), n_layers=n_layers, n_heads=4)
        assert [i for i, p in enumerate(plans) if p.token_ratio is not None] == expected


def test_token_schedule_shapes_the_cascade_and_lands_on_the_keep_ratio():
    config = SpAttenConfig(token_keep=0.25, prune_layers=(0, 2), token_schedule=(0.5, 1.0))
    ratios = [p.token_ratio for p in plan_layers(config, n_layers=4, n_heads=2)]
    assert ratios == [0.5, None, 0.25, None]
    with pytest.raises(ValueError, match=r"prunes at \(1, 2\) but token_schedule=\(1.0,\)"):
        plan_layers(SpAttenConfig(token_schedule=(1.0,)), n_layers=4, n_heads=2)


def test_keep_ratio_one_plans_no_pruning_and_no_scoring():
    plans = plan_layers(SpAttenConfig(token_keep=1.0, head_keep=1.0), n_layers=6, n_heads=12)
    assert all(p.token_ratio is None and p.head_count is None for p in plans)
    assert not any(p.score_tokens or p.score_heads for p in plans)


def test_pruning_layer_beyond_the_model_is_rejected():
    with pytest.raises(ValueError, match=r"prune_layers must index layers in \[0, 6\)"):
        plan_layers(SpAttenConfig(prune_layers=(2, 6)), n_layers=6, n_heads=12)
