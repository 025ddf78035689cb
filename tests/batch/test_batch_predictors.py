"""The engines' predictors against their references: the model called directly."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from edgeinfer.datasets import generate_scene
from edgeinfer.nlp import Embedder, SpAttenConfig
from edgeinfer.nlp import load_pretrained as load_text
from edgeinfer.pointcloud import Segmenter, predict_points
from edgeinfer.pointcloud import load_pretrained as load_points
from edgeinfer.pointcloud.train import voxelize_scan
from edgeinfer.video import GateConfig, StreamingRunner, VideoClassifier
from edgeinfer.video import load_pretrained as load_video
from edgeinfer.video.predict import segment_middles
from tests.batch.batch_files import documents, videos

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def scan():
    return generate_scene(3, beams=8)


def test_segmenter_equals_predict_points_and_softmax(scan):
    model, info = load_points()
    labels, scores = Segmenter(threads=1).segment(scan.points, scan.intensity)
    expected = predict_points(model, scan.points, scan.intensity, info.input)
    np.testing.assert_array_equal(labels, expected)
    sample = voxelize_scan(scan.points, scan.intensity, info.input)
    from edgeinfer.pointcloud import sparse_collate

    with torch.no_grad():
        logits = model(sparse_collate([(sample.coords, sample.feats)])).feats
    best = torch.softmax(logits, dim=1).max(dim=1).values[sample.inverse].numpy()
    np.testing.assert_allclose(scores, best, rtol=1e-6)
    assert labels.dtype == np.int32 and scores.dtype == np.float32


def test_segmenter_keeps_a_row_per_point_and_marks_non_finite(scan):
    points = scan.points.copy()
    intensity = scan.intensity.copy()
    points[5] = np.nan
    intensity[9] = np.inf
    segmenter = Segmenter()
    labels, scores = segmenter.segment(points, intensity)
    assert len(labels) == len(points)
    assert labels[5] == labels[9] == -1 and np.isnan(scores[[5, 9]]).all()
    keep = np.ones(len(points), bool)
    keep[[5, 9]] = False
    alone, _ = segmenter.segment(points[keep], intensity[keep])
    np.testing.assert_array_equal(labels[keep], alone)


def test_segmenter_refuses_bad_points():
    with pytest.raises(ValueError, match=r"points must be an \(N, 3\)"):
        Segmenter().segment(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="intensity must be"):
        Segmenter().segment(np.zeros((4, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="threads"):
        Segmenter(threads=0)


def test_predictors_pickle_small_and_load_where_called(scan):
    segmenter = Segmenter()
    first = segmenter.segment(scan.points, scan.intensity)
    data = pickle.dumps(segmenter)  # after loading: the weights are not shipped
    assert len(data) < 2000
    copy = pickle.loads(data)
    assert copy._loaded is None
    np.testing.assert_array_equal(copy.segment(scan.points, scan.intensity)[0], first[0])
    assert len(pickle.dumps(Embedder(spatten=SpAttenConfig()))) < 2000


def test_segmenter_batch_protocol(scan):
    segmenter = Segmenter()
    other = generate_scene(4, beams=8)
    out = segmenter({"points": [scan.points, other.points],
                     "intensity": [scan.intensity, None]})
    np.testing.assert_array_equal(out["labels"][0],
                                  segmenter.segment(scan.points, scan.intensity)[0])
    np.testing.assert_array_equal(out["labels"][1], segmenter.segment(other.points)[0])
    with pytest.raises(TypeError, match="'points' column"):
        segmenter([scan.points])


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    from edgeinfer.datasets import read_video

    return read_video(videos(tmp_path_factory.mktemp("v"), count=1)[0])


def _prepared(frames, info):
    from edgeinfer.video.skip import frame_to_tensor

    return [torch.nn.functional.interpolate(frame_to_tensor(f), size=info.input.size,
                                            mode="area") for f in frames]


def test_clip_mode_equals_the_model_on_sampled_segments(frames):
    model, info = load_video("tsm")
    classifier = VideoClassifier("tsm", clip_length=6)
    rows = classifier.classify(frames)
    assert [(r.first, r.last) for r in rows] == [(0, 5), (6, 11), (12, 15)]
    for row in rows:
        window = frames[row.first: row.last + 1]
        chosen = segment_middles(len(window), model.config.n_segment)
        with torch.no_grad():
            logits = model(torch.cat(_prepared(window[chosen], info)))[0]
        probability = torch.softmax(logits, 0)
        assert row.label == int(probability.argmax())
        assert row.score == pytest.approx(float(probability.max()), rel=1e-6)


def test_segment_middles_spreads_and_repeats():
    np.testing.assert_array_equal(segment_middles(16, 8), [1, 3, 5, 7, 9, 11, 13, 15])
    np.testing.assert_array_equal(segment_middles(3, 8), [0, 0, 0, 1, 1, 2, 2, 2])


def test_stream_mode_equals_the_streaming_runner(frames):
    model, info = load_video("tsm", shift="causal")
    runner = StreamingRunner(model)
    expected = []
    with torch.no_grad():
        for tensor in _prepared(frames, info):
            expected.append(int(runner.step(tensor).argmax()))
    rows = VideoClassifier("tsm", mode="stream").classify(frames)
    assert [r.label for r in rows] == expected and not any(r.skipped for r in rows)
    gated = VideoClassifier("tsm", mode="stream", gate=GateConfig(threshold=0)).classify(frames)
    assert [r.label for r in gated] == expected  # threshold 0 runs every frame


def test_video_classifier_refuses_bad_settings():
    with pytest.raises(ValueError, match="mode must be one of"):
        VideoClassifier(mode="batch")
    with pytest.raises(ValueError, match="gate is for mode='stream'"):
        VideoClassifier(gate=GateConfig())
    with pytest.raises(ValueError, match="frame 0 must be uint8"):
        VideoClassifier().classify(np.zeros((2, 8, 8, 3), np.float32))


def test_embedder_equals_the_encoder():
    docs = documents(6)
    encoder, _ = load_text("all-MiniLM-L6-v2", spatten=SpAttenConfig())
    expected = encoder.encode(docs, batch_size=3)
    embedder = Embedder(spatten=SpAttenConfig(), batch_size=4)
    np.testing.assert_array_equal(embedder.embed(docs), expected)
    out = embedder({"id": np.array(["a", "b"]), "text": np.array(docs[:2])})
    np.testing.assert_array_equal(out["id"], ["a", "b"])
    np.testing.assert_array_equal(out["embedding"], expected[:2])
    with pytest.raises(TypeError, match="not one str"):
        embedder.embed("one text")


def test_video_batch_protocol_keeps_other_columns(frames):
    classifier = VideoClassifier("tsm", mode="stream")
    out = classifier({"frames": [frames], "name": ["a"]})
    rows = classifier.classify(frames)
    assert out["name"] == ["a"]
    np.testing.assert_array_equal(out["labels"][0], [r.label for r in rows])
    np.testing.assert_array_equal(out["skipped"][0], [r.skipped for r in rows])
