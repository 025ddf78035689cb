"""Synthetic video generators, TSN segment sampling and video files (OpenCV)."""

import re
import warnings

import cv2
import numpy as np
import pytest

from edgeinfer.datasets.segments import sample_segments
from edgeinfer.datasets.static_stream import generate_static_stream
from edgeinfer.datasets.video import MOTION_CLASSES, generate_motion_clip, make_motion_dataset
from edgeinfer.datasets.videoio import (
    CorruptFrameError,
    CorruptFrameWarning,
    VideoFileError,
    iter_video_frames,
    read_clip,
    read_video,
    video_info,
    write_video,
)

CODEC_MEAN_ABS_ERROR = 15.0  # grey levels: lossy mp4v / MJPG on small noisy frames


# --- motion clips ---------------------------------------------------------------------------


def test_motion_clip_shape_dtype_and_determinism():
    clip = generate_motion_clip("left", 7, frames=6, size=48)
    assert clip.shape == (6, 48, 48, 3) and clip.dtype == np.uint8
    np.testing.assert_array_equal(clip, generate_motion_clip(1, 7, frames=6, size=48))
    assert not np.array_equal(clip, generate_motion_clip("left", 8, frames=6, size=48))
    assert not np.array_equal(clip[0], clip[-1])  # it moves


def test_motion_dataset_is_balanced_shuffled_and_reproducible():
    clips, labels = make_motion_dataset(4, seed=3, frames=5, size=32)
    assert clips.shape == (36, 5, 32, 32, 3) and clips.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.shape == (36,)
    np.testing.assert_array_equal(np.bincount(labels, minlength=9), np.full(9, 4))
    assert not np.array_equal(labels, np.sort(labels))
    again_clips, again_labels = make_motion_dataset(4, seed=3, frames=5, size=32)
    np.testing.assert_array_equal(labels, again_labels)
    np.testing.assert_array_equal(clips, again_clips)


def _object_centroids(clips: np.ndarray) -> np.ndarray:
    """Per-frame (x, y) centroid of the moving object: pixels far from the clip's median frame.

    clips (N, T, S, S, 3) -> (N, T, 2). The background is static, so the per-pixel median over
    time is the background wherever the object spends fewer than half of the frames.
    """
    frames = clips.astype(np.float32)
    background = np.median(frames, axis=1, keepdims=True)
    mask = np.abs(frames - background).sum(axis=-1) > 60  # (N, T, S, S)
    size = clips.shape[2]
    grid = np.arange(size, dtype=np.float32)
    weight = mask.sum(axis=(2, 3)) + 1e-6
    x = (mask * grid[None, None, None, :]).sum(axis=(2, 3)) / weight
    y = (mask * grid[None, None, :, None]).sum(axis=(2, 3)) / weight
    return np.stack([x, y], axis=-1)


def _welch_t(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))


@pytest.mark.parametrize(("first", "second", "axis"), [("left", "right", 0), ("up", "down", 1)])
def test_single_frames_do_not_reveal_the_direction(first, second, axis):
    n = 100
    positions = {
        name: _object_centroids(
            np.stack([generate_motion_clip(name, seed, frames=8, size=64) for seed in range(n)])
        )[..., axis]  # (n, T)
        for name in (first, second)
    }
    a, b = positions[first], positions[second]
    # order-blind statistics agree: per-clip mean position (the same set of frames, reversed)
    # and the spread of single-frame positions
    assert abs(_welch_t(a.mean(axis=1), b.mean(axis=1))) < 3.5
    assert 0.8 < a.std() / b.std() < 1.25
    # the order gives the direction away: displacement from the first to the last frame
    assert _welch_t(a[:, -1] - a[:, 0], b[:, -1] - b[:, 0]) < -20


def test_motion_clip_rejects_bad_arguments():
    with pytest.raises(ValueError, match="label must be one of"):
        generate_motion_clip("sideways", 0)
    with pytest.raises(ValueError, match=r"label must be in \[0, 9\)"):
        generate_motion_clip(len(MOTION_CLASSES), 0)
    with pytest.raises(TypeError, match="label must be a class index"):
        generate_motion_clip(1.0, 0)
    with pytest.raises(ValueError, match="frames must be an int >= 2"):
        generate_motion_clip(0, 0, frames=1)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        make_motion_dataset(1, -1)
    with pytest.raises(ValueError, match="n_per_class must be an int >= 1"):
        make_motion_dataset(0, 0)


# --- static-camera stream -------------------------------------------------------------------


def test_static_stream_events_are_the_frames_that_change():
    frames, events = generate_static_stream(2, frames=120, size=(60, 80), event_rate=0.03)
    assert frames.shape == (120, 60, 80, 3) and frames.dtype == np.uint8
    assert events.dtype == bool and events.shape == (120,) and not events[0]
    assert 0 < events.sum() < 100
    change = np.abs(np.diff(frames.astype(np.int16), axis=0)).max(axis=-1)  # (T-1, H, W)
    big = (change > 30).sum(axis=(1, 2))  # pixels changed beyond sensor noise
    assert np.all(big[events[1:]] > 0) and np.all(big[~events[1:]] == 0)
    again = generate_static_stream(2, frames=120, size=(60, 80), event_rate=0.03)
    np.testing.assert_array_equal(frames, again[0])


def test_static_stream_without_events_or_noise_is_constant():
    frames, events = generate_static_stream(0, frames=10, size=(32, 48), event_rate=0.0, noise=0)
    assert not events.any()
    assert np.all(frames == frames[0])


def test_static_stream_rejects_bad_arguments():
    with pytest.raises(TypeError, match="size must be a"):
        generate_static_stream(0, size=240)
    with pytest.raises(ValueError, match="event_rate must be in"):
        generate_static_stream(0, event_rate=2.0)
    with pytest.raises(ValueError, match="noise must be"):
        generate_static_stream(0, noise=-1.0)


# --- segment sampling -----------------------------------------------------------------------


def test_center_segments():
    np.testing.assert_array_equal(sample_segments(80, 8), np.arange(5, 80, 10))
    np.testing.assert_array_equal(sample_segments(8, 8), np.arange(8))
    np.testing.assert_array_equal(sample_segments(1, 3), [0, 0, 0])
    np.testing.assert_array_equal(sample_segments(3, 8), [0, 0, 0, 1, 1, 2, 2, 2])
    assert sample_segments(10, 1).tolist() == [5]
    assert sample_segments(10, 3).dtype == np.int64


@pytest.mark.parametrize(("num_frames", "n_segment"), [(100, 8), (9, 8), (3, 8), (1, 4), (7, 7)])
def test_random_segments_stay_in_their_span_and_are_reproducible(num_frames, n_segment):
    span = num_frames / n_segment
    for seed in range(20):
        indices = sample_segments(num_frames, n_segment, mode="random", rng=seed)
        assert indices.shape == (n_segment,) and np.all(np.diff(indices) >= 0)
        k = np.arange(n_segment)
        assert np.all(indices >= np.floor(k * span)) and np.all(indices < (k + 1) * span)
        assert np.all((indices >= 0) & (indices < num_frames))
    gen = np.random.default_rng(4)
    np.testing.assert_array_equal(
        sample_segments(100, 8, mode="random", rng=gen),
        sample_segments(100, 8, mode="random", rng=np.random.default_rng(4)),
    )


def test_segment_sampling_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_frames must be an int >= 1"):
        sample_segments(0, 8)
    with pytest.raises(ValueError, match="needs rng"):
        sample_segments(10, 4, mode="random")
    with pytest.raises(ValueError, match="mode must be one of"):
        sample_segments(10, 4, mode="middle")
    with pytest.raises(TypeError, match="rng must be"):
        sample_segments(10, 4, mode="random", rng="seed")


# --- video files ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return generate_motion_clip("rotate_cw", 0, frames=12, size=48)


@pytest.mark.parametrize(("suffix", "codec"), [(".mp4", "mp4v"), (".avi", "MJPG")])
def test_write_read_round_trip(tmp_path, clip, suffix, codec):
    path = write_video(tmp_path / f"clip{suffix}", clip, fps=12.0, codec=codec)
    info = video_info(path)
    assert (info.frames, info.size, info.fps) == (12, (48, 48), 12.0)
    frames = read_video(path)
    assert frames.shape == clip.shape and frames.dtype == np.uint8
    assert np.abs(frames.astype(np.float32) - clip).mean() < CODEC_MEAN_ABS_ERROR
    assert len(list(iter_video_frames(path))) == 12
    np.testing.assert_array_equal(read_video(path, max_frames=5), frames[:5])


def test_read_clip_samples_segments_and_resizes(tmp_path, clip):
    path = write_video(tmp_path / "clip.avi", clip, codec="MJPG")
    frames = read_video(path)
    np.testing.assert_array_equal(read_clip(path, 4), frames[sample_segments(12, 4)])
    short = read_clip(path, 16, size=(24, 32))  # more segments than frames: frames repeat
    assert short.shape == (16, 24, 32, 3) and short.dtype == np.uint8
    random = read_clip(path, 4, mode="random", rng=1)
    np.testing.assert_array_equal(random, frames[sample_segments(12, 4, mode="random", rng=1)])


def test_missing_garbage_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape("nope.mp4")):
        read_video(tmp_path / "nope.mp4")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    with pytest.raises(VideoFileError, match=re.escape("garbage.mp4: OpenCV cannot open")):
        read_video(garbage)
    empty = tmp_path / "empty.avi"  # a valid container holding zero frames
    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 32)).release()
    assert video_info(empty).frames == 0
    with pytest.raises(
        VideoFileError, match=re.escape("empty.avi: the video holds no decodable frame")
    ):
        read_video(empty)
    with pytest.raises(VideoFileError, match=re.escape("empty.avi")):
        read_clip(empty, 4)


def test_truncated_files(tmp_path, clip):
    mp4 = write_video(tmp_path / "clip.mp4", clip)
    cut = tmp_path / "cut.mp4"  # OpenCV's mp4 keeps its index at the end: a cut file won't open
    cut.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    with pytest.raises(VideoFileError, match=re.escape("cut.mp4: OpenCV cannot open")):
        read_video(cut)
    avi = write_video(tmp_path / "clip.avi", clip, codec="MJPG")
    cut_avi = tmp_path / "cut.avi"
    cut_avi.write_bytes(avi.read_bytes()[: avi.stat().st_size // 2])
    with pytest.raises(
        CorruptFrameError, match=r"cut.avi: the stream ends after \d+ of the 12"
    ) as err:
        read_video(cut_avi)
    assert err.value.truncated and 0 < err.value.index < 12
    with pytest.warns(CorruptFrameWarning, match="truncated"):
        partial = read_video(cut_avi, on_error="skip")
    assert len(partial) == err.value.index
    # the frame the cut went through may decode with garbage (OpenCV reports no error for a
    # partial JPEG); the frames before it are intact
    np.testing.assert_array_equal(partial[:-1], read_video(avi)[: len(partial) - 1])


def _jpeg_starts(data: bytes) -> list[int]:
    return [i for i in range(len(data) - 2) if data[i : i + 3] == b"\xff\xd8\xff"]


def test_corrupt_frame_mid_stream(tmp_path, clip):
    avi = write_video(tmp_path / "clip.avi", clip, codec="MJPG")
    data = bytearray(avi.read_bytes())
    starts = _jpeg_starts(bytes(data))
    assert len(starts) == 12  # one JPEG per frame in an MJPG .avi
    data[starts[5] : starts[6] - 16] = bytes(starts[6] - 16 - starts[5])  # wipe frame 5's JPEG
    bad = tmp_path / "bad.avi"
    bad.write_bytes(bytes(data))
    with pytest.raises(
        CorruptFrameError, match=re.escape("bad.avi: frame 5 could not be decoded")
    ) as err:
        read_video(bad)
    assert err.value.index == 5 and not err.value.truncated
    with pytest.raises(CorruptFrameError, match="frame 5"):
        list(iter_video_frames(bad))
    with pytest.warns(CorruptFrameWarning, match="frame 5"):
        frames = read_video(bad, on_error="skip")
    good = read_video(avi)
    np.testing.assert_array_equal(frames, np.delete(good, 5, axis=0))


def test_write_video_rejects_bad_input(tmp_path, clip):
    with pytest.raises(TypeError, match="frames must be uint8"):
        write_video(tmp_path / "a.mp4", clip.astype(np.float32))
    with pytest.raises(ValueError, match=r"frames must have shape \(T, H, W, 3\)"):
        write_video(tmp_path / "a.mp4", clip[..., 0])
    with pytest.raises(ValueError, match="codec must be one of"):
        write_video(tmp_path / "a.mp4", clip, codec="H264")
    with pytest.raises(VideoFileError, match="cannot write"):
        write_video(tmp_path / "missing" / "a.avi", clip, codec="MJPG")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_video(write_video(tmp_path / "ok.avi", clip, codec="MJPG")).shape[0] == 12


def test_a_damaged_mp4_gets_our_error_and_no_libav_line_on_stderr(tmp_path):
    """OpenCV's libav would print "moov atom not found" to the process's stderr (below
    Python: only a child process can see it)."""
    import os
    import subprocess
    import sys

    bad = tmp_path / "cut.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 12)
    code = ("import cv2\nfrom edgeinfer.datasets import read_video\ntry:\n"
            f"    read_video({str(bad)!r})\nexcept Exception as error:\n"
            "    print(type(error).__name__)\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={k: v for k, v in os.environ.items()
                                            if k != "OPENCV_FFMPEG_LOGLEVEL"})  # fmt: skip
    assert done.stdout.strip() == "VideoFileError"
    assert "moov" not in done.stderr and done.stderr.strip() == "", done.stderr
