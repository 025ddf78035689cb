"""Every registered point-cloud model passes the same tests (timm style), on tiny widths."""

import pytest
import torch

from edgeinfer.pointcloud import PointTensor, SparseTensor, create_model, list_models
from edgeinfer.pointcloud.models import MODEL_INPUTS, UNetConfig, point_rows
from tests.common_sparse.reference import random_coords
from tests.pointcloud.pc_tolerances import CONV_ATOL

MODELS = list_models()
IN_CHANNELS, CLASSES = 4, 5


def _tiny(name, seed=0):
    torch.manual_seed(seed)
    return create_model(name, IN_CHANNELS, CLASSES, width=0.125, blocks=1)


def _voxels(n=400, seed=0):
    coords = random_coords(n, 3, 24, batches=2, seed=seed, low=-9).to(torch.int32)
    feats = torch.randn(len(coords), IN_CHANNELS, generator=torch.Generator().manual_seed(seed))
    return SparseTensor(feats, coords)


def _points(n=600, seed=0):
    gen = torch.Generator().manual_seed(seed)
    xyz = torch.rand(n, 3, generator=gen) * 30 - 12  # voxel units, negative ones included
    batch = torch.randint(0, 2, (n, 1), generator=gen).to(xyz.dtype)
    return PointTensor(torch.randn(n, IN_CHANNELS, generator=gen), torch.cat([batch, xyz], 1))


def _input(name, seed=0):
    return _voxels(seed=seed) if MODEL_INPUTS[name] == "SparseTensor" else _points(seed=seed)


def _logits(output):
    return output.feats if isinstance(output, SparseTensor) else output


def _permuted(inputs, perm):
    if isinstance(inputs, SparseTensor):
        return SparseTensor(inputs.feats[perm], inputs.coords[perm])
    return PointTensor(inputs.feats[perm], inputs.coords[perm])


def _empty(name):
    if MODEL_INPUTS[name] == "SparseTensor":
        return SparseTensor(torch.zeros(0, IN_CHANNELS), torch.zeros(0, 4, dtype=torch.int32))
    return PointTensor(torch.zeros(0, IN_CHANNELS), torch.zeros(0, 4))


def test_registry_lists_both_models():
    assert MODELS == ["minkunet", "spvcnn"]
    assert set(MODEL_INPUTS) == set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_forward_shapes_and_sites(name):
    model, inputs = _tiny(name), _input(name)
    out = model(inputs)
    assert _logits(out).shape == (len(inputs), CLASSES)
    if isinstance(out, SparseTensor):
        assert torch.equal(out.coords, inputs.coords) and out.stride == (1, 1, 1)
    assert bool(torch.isfinite(_logits(out)).all())


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_bit_identical_at_one_and_two_threads(name, training):
    model, inputs = _tiny(name), _input(name)
    model.train(training)
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with torch.no_grad():
                results.append(_logits(model(inputs)))
    finally:
        torch.set_num_threads(before)
    if not training:
        assert torch.equal(results[0], results[1])
    else:  # torch's BatchNorm batch statistics reduce in a thread-dependent order
        torch.testing.assert_close(results[0], results[1], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_input_row_order_does_not_change_results(name):
    model, inputs = _tiny(name).eval(), _input(name, seed=3)
    perm = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = _logits(model(inputs))[perm]
        shuffled = _logits(model(_permuted(inputs, perm)))
    if name == "minkunet":  # fixed-order sums everywhere: bitwise
        assert torch.equal(shuffled, reference)
    else:  # voxel means add points in input order: equal to rounding
        torch.testing.assert_close(shuffled, reference, atol=CONV_ATOL, rtol=1e-4)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_empty_input_gives_empty_output(name, training):
    model = _tiny(name).train(training)
    out = _logits(model(_empty(name)))
    assert out.shape == (0, CLASSES)


@pytest.mark.parametrize("name", MODELS)
def test_a_few_training_steps_reduce_the_loss_on_a_fixed_batch(name):
    model, inputs = _tiny(name, seed=2), _input(name, seed=2)
    labels = torch.randint(0, CLASSES, (len(inputs),), generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(_logits(model(inputs)), labels)
        loss.backward()
        losses.append(float(loss.detach()))
        if len(losses) == 1:
            missing = [n for n, p in model.named_parameters() if p.grad is None]
            assert not missing, f"no gradient reaches {missing}"
        optimizer.step()
    assert losses[-1] < 0.9 * losses[0], losses


@pytest.mark.parametrize("name", MODELS)
def test_width_scales_channels_and_blocks_add_layers(name):
    small = create_model(name, IN_CHANNELS, CLASSES, width=0.25, blocks=1)
    wide = create_model(name, IN_CHANNELS, CLASSES, width=0.5, blocks=1)
    deep = create_model(name, IN_CHANNELS, CLASSES, width=0.25, blocks=2)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(small) < count(wide) and count(small) < count(deep)
    assert small.config.stage_channels() == (8, 8, 16, 32, 64, 64, 32, 24, 24)


def test_unknown_model_lists_close_matches():
    with pytest.raises(ValueError, match=r"unknown point-cloud model 'minkunt'; did you mean "
                                         r"'minkunet'\? available: minkunet, spvcnn"):
        create_model("minkunt", 4, 6)
    with pytest.raises(ValueError, match="available: minkunet, spvcnn"):
        create_model("resnet", 4, 6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 0}, "width must be a finite number > 0"),
        ({"blocks": 0}, "blocks must be an int >= 1"),
        ({"channels": (8, 8)}, "channels must be 9 ints >= 1"),
    ],
)
def test_bad_config_is_rejected_with_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_model("minkunet", 4, 6, **kwargs)
    with pytest.raises(ValueError, match="in_channels must be an int >= 1; got 0"):
        UNetConfig(0, 6)
    with pytest.raises(TypeError, match="unexpected keyword"):
        create_model("spvcnn", 4, 6, depth=3)


def test_wrong_inputs_name_the_expected_input():
    minkunet, spvcnn = _tiny("minkunet"), _tiny("spvcnn")
    with pytest.raises(TypeError, match="MinkUNet expects a SparseTensor"):
        minkunet(_points())
    with pytest.raises(ValueError, match="in_channels=4; got a SparseTensor with 3"):
        minkunet(SparseTensor(torch.ones(2, 3), torch.tensor([[0, 0, 0, 0], [0, 1, 0, 0]])))
    with pytest.raises(TypeError, match="SPVCNN expects a PointTensor"):
        spvcnn(_voxels())
    with pytest.raises(TypeError, match=r"PointTensor.coords must be a floating tensor \(N, 4\)"):
        PointTensor(torch.ones(2, 4), torch.ones(2, 3))
    with pytest.raises(ValueError, match="finite with batch column >= 0"):
        PointTensor(torch.ones(1, 4), torch.tensor([[0.0, float("nan"), 0, 0]]))


def test_point_rows_find_each_points_voxel_at_every_stride():
    points = _points(seed=5)
    voxels, inverse = points.voxelize()
    assert torch.equal(point_rows(voxels, points), inverse)
    coarse = SparseTensor(torch.zeros(0, 1), torch.zeros(0, 4, dtype=torch.int32), 4)
    with pytest.raises(ValueError, match="fall in no voxel of the stride-4 tensor"):
        point_rows(coarse, points)


def test_eval_batchnorm_folds_into_the_conv_before_it():
    from edgeinfer.pointcloud import nn as spnn

    torch.manual_seed(0)
    conv, norm = spnn.Conv3d(IN_CHANNELS, 6, 3, bias=True), spnn.BatchNorm(6)
    with torch.no_grad():
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)
    inputs = _voxels()
    assert norm.folded(conv.kernel, conv.bias) is None  # training: batch statistics
    norm.eval()
    folded = norm.folded(conv.kernel, conv.bias)
    expected = norm(conv(inputs)).feats
    torch.testing.assert_close(conv(inputs, folded=folded).feats, expected, atol=1e-5, rtol=1e-5)


def test_the_kept_fold_follows_every_change_of_its_inputs():
    from edgeinfer.pointcloud import nn as spnn

    torch.manual_seed(0)
    conv, norm = spnn.Conv3d(IN_CHANNELS, 6, 3, bias=True), spnn.BatchNorm(6)
    norm.eval()

    def fresh():  # the fold computed from scratch
        return norm._fold(conv.kernel, conv.bias)

    with torch.no_grad():
        first = norm.folded(conv.kernel, conv.bias)
        assert norm.folded(conv.kernel, conv.bias) is first  # kept while nothing changes
        changes = [
            lambda: norm.running_mean.add_(0.5),  # in place
            lambda: norm.running_var.mul_(2.0),
            lambda: conv.kernel.mul_(0.5),
            lambda: norm.load_state_dict({**norm.state_dict(), "weight": torch.full((6,), 3.0)}),
            lambda: setattr(conv.bias, "data", conv.bias.data + 1.0),  # new storage
        ]
        for change in changes:
            before = norm.folded(conv.kernel, conv.bias)
            change()
            after = norm.folded(conv.kernel, conv.bias)
            assert not torch.equal(after[1], before[1]) or not torch.equal(after[0], before[0])
            for got, want in zip(after, fresh(), strict=True):
                assert torch.equal(got, want)
        norm.double(), conv.double()
        assert norm.folded(conv.kernel, conv.bias)[0].dtype == torch.float64
    kernel = conv.kernel.detach().clone().requires_grad_(True)
    assert norm.folded(kernel, conv.bias)[0].requires_grad  # with autograd: never the kept one


@pytest.mark.parametrize("name", MODELS)
def test_folded_eval_forward_equals_the_layer_by_layer_forward(name, monkeypatch):
    from edgeinfer.pointcloud.nn import BatchNorm

    model, inputs = _tiny(name).eval(), _input(name, seed=5)
    for module in model.modules():  # non-trivial statistics, so folding has work to do
        if isinstance(module, BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    feats_before = inputs.feats.clone()
    with torch.no_grad():
        folded = _logits(model(inputs))
        monkeypatch.setattr(BatchNorm, "folded", lambda self, kernel, bias: None)
        layered = _logits(model(inputs))
    torch.testing.assert_close(folded, layered, atol=1e-5, rtol=1e-4)
    assert not torch.equal(folded, torch.zeros_like(folded))
    assert torch.equal(inputs.feats, feats_before)  # in-place ReLU never touches the input
