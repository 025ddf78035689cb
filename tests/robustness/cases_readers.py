"""Hostile files for the readers: KITTI .bin, PLY, LAS/LAZ (``read_points``) and video."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from tests.robustness.hostile import Case, overwritten, random_bytes, write

_POINTS = 1000


def _scan() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    return (rng.uniform(-40, 40, (_POINTS, 3)).astype(np.float32),
            rng.uniform(0, 1, _POINTS).astype(np.float32))


@functools.cache
def _las_bytes(suffix: str, version: str = "1.2") -> bytes:
    import tempfile

    import laspy

    points, intensity = _scan()
    header = laspy.LasHeader(point_format=3 if version == "1.2" else 6, version=version)
    header.scales, header.offsets = np.array([0.001] * 3), np.zeros(3)
    las = laspy.LasData(header)
    las.x, las.y, las.z = points[:, 0], points[:, 1], points[:, 2]
    las.intensity = (intensity * 65535).astype(np.uint16)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"scan{suffix}"
        las.write(str(path))
        return path.read_bytes()


@functools.cache
def _ply_bytes(binary: bool) -> bytes:
    import tempfile

    from edgeinfer.datasets import write_ply

    points, intensity = _scan()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scan.ply"
        write_ply(path, points, intensity=intensity, binary=binary)
        return path.read_bytes()


def _kitti_bytes() -> bytes:
    points, intensity = _scan()
    return np.concatenate([points, intensity[:, None]], axis=1).astype("<f4").tobytes()


def _read(name: str, data: bytes | None = None):
    def run(tmp: Path):
        from edgeinfer.datasets import read_points

        path = tmp / name if data is None else write(tmp, name, data)
        return read_points(path)

    return run


def _read_built(name: str, build, **kwargs):
    """Like ``_read`` with the bytes built when the case runs (laspy may be missing)."""

    def run(tmp: Path):
        from edgeinfer.datasets import read_points

        return read_points(write(tmp, name, build(**kwargs)))

    return run


REFUSED = "refused with a clear error"


def _refused_or(run, match: str):
    """For damage a format cannot detect: a clear error becomes the result ``REFUSED``."""
    import re

    def wrapped(tmp: Path):
        try:
            return run(tmp)
        except ValueError as exc:
            if re.search(match, str(exc)):
                return REFUSED
            raise

    return wrapped


def _refusal_or(check):
    return lambda result: (isinstance(result, str) and result == REFUSED) or (
        not isinstance(result, str) and check(result))


def _count_is(expected: int):
    return lambda result: result["points"].shape == (expected, 3)


def _las_with(suffix: str, offset: int, value: bytes, version: str = "1.2") -> bytes:
    data = bytearray(_las_bytes(suffix, version))
    data[offset : offset + len(value)] = value
    return bytes(data)


def _lying_vlrs() -> bytes:
    return b"LASF" + random_bytes(1, 5000)


def _kitti_with(value: float, row: int = 7) -> bytes:
    array = np.frombuffer(_kitti_bytes(), dtype="<f4").copy().reshape(-1, 4)
    array[row, 1] = value
    return array.tobytes()


def _ply_ascii_with(old: bytes, new: bytes) -> bytes:
    return _ply_bytes(False).replace(old, new, 1)


def _ply_nan() -> bytes:
    data = _ply_bytes(False)
    head, body = data.split(b"end_header\n", 1)
    lines = body.split(b"\n")
    values = lines[3].split()
    values[0] = b"nan"
    lines[3] = b" ".join(values)
    return head + b"end_header\n" + b"\n".join(lines)


def _reader_cases() -> list[Case]:
    kitti = _kitti_bytes()
    ply_bin = functools.partial(_ply_bytes, True)
    cases = [
        Case("read_points", "missing file", _read("absent.bin"), r"absent\.bin"),
        Case("read_points", "unknown suffix", _read("scan.xyz", b"1 2 3\n"), r"suffix.*\.xyz"),
        Case("read_points", "folder named .bin",
             lambda tmp: _read("d.bin")((tmp / "d.bin").mkdir() or tmp), r"d\.bin"),
        Case("read_points", "kitti good file", _read("ok.bin", kitti), check=_count_is(_POINTS)),
        Case("read_points", "kitti empty file", _read("empty.bin", b""), r"empty\.bin.*empty"),
        Case("read_points", "kitti cut mid-record", _read("cut.bin", kitti[:-5]),
             r"cut\.bin.*multiple of 16"),
        Case("read_points", "kitti random bytes", _read("junk.bin", random_bytes(2, 16 * 400)),
             r"junk\.bin.*(NaN|beyond)"),
        Case("read_points", "kitti NaN coordinate", _read("nan.bin", _kitti_with(np.nan)),
             r"nan\.bin.*record 7"),
        Case("read_points", "kitti inf coordinate", _read("inf.bin", _kitti_with(np.inf)),
             r"inf\.bin.*record 7"),
        Case("read_points", "kitti absurd coordinate", _read("far.bin", _kitti_with(3e9)),
             r"far\.bin.*beyond"),
        Case("read_points", "ply good binary", _read_built("ok.ply", ply_bin),
             check=_count_is(_POINTS)),
        Case("read_points", "ply random bytes", _read("junk.ply", random_bytes(3, 4000)),
             r"junk\.ply"),
        Case("read_points", "ply binary cut", _read_built("cut.ply", lambda: ply_bin()[:-7]),
             r"cut\.ply.*truncated"),
        Case("read_points", "ply header only", _read_built(
            "head.ply", lambda: ply_bin().split(b"end_header\n")[0]), r"head\.ply.*end_header"),
        Case("read_points", "ply ascii cut", _read_built(
            "cut_a.ply", lambda: _ply_bytes(False)[: len(_ply_bytes(False)) // 2]),
             r"cut_a\.ply.*truncated"),
        Case("read_points", "ply ascii NaN vertex", _read_built("nan.ply", _ply_nan),
             r"nan\.ply.*vertex 3"),
        Case("read_points", "ply ascii vertex count lies", _read_built(
            "lie.ply", _ply_ascii_with, old=b"element vertex 1000", new=b"element vertex 99999"),
             r"lie\.ply.*99999"),
        Case("read_points", "ply big-endian", _read_built(
            "be.ply", lambda: ply_bin().replace(b"binary_little_endian", b"binary_big_endian")),
             r"be\.ply.*big"),
    ]
    return cases + _las_cases()


def _las_cases() -> list[Case]:
    las = functools.partial(_las_bytes, ".las")
    laz = functools.partial(_las_bytes, ".laz")
    record = 34  # point format 3
    return [
        Case("read_points", "las good file", _read_built("ok.las", las), check=_count_is(_POINTS)),
        Case("read_points", "laz good file", _read_built("ok.laz", laz), check=_count_is(_POINTS)),
        Case("read_points", "las 1.4 good file", _read_built("ok14.las", _las_bytes,
                                                             suffix=".las", version="1.4"),
             check=_count_is(_POINTS)),
        Case("read_points", "las claims 3e9 VLRs (hang)", _read_built(
            "vlr.las", _las_with, suffix=".las", offset=100,
            value=np.uint32(2_983_967_548).tobytes()), r"vlr\.las.*variable-length records",
             child=True),
        Case("read_points", "las random bytes after LASF", _read_built("junk2.las", _lying_vlrs),
             r"junk2\.las", child=True),
        Case("read_points", "laz random bytes after LASF", _read_built("junk.laz", _lying_vlrs),
             r"junk\.laz", child=True),
        Case("read_points", "las random bytes", _read("junk.las", random_bytes(6, 5000)),
             r"junk\.las", child=True),
        Case("read_points", "las cut at a record boundary", _read_built(
            "cut.las", lambda: las()[: len(las()) - 10 * record]),
             r"cut\.las.*1000 points.*990 complete", child=True),
        Case("read_points", "las cut mid-record", _read_built(
            "cut2.las", lambda: las()[: len(las()) - 10 * record - 5]),
             r"cut2\.las.*1000 points", child=True),
        Case("read_points", "las cut inside the header", _read_built(
            "head.las", lambda: las()[:200]), r"head\.las", child=True),
        Case("read_points", "las point count lies", _read_built(
            "count.las", _las_with, suffix=".las", offset=107,
            value=np.uint32(4_000_000_000).tobytes()), r"count\.las.*4000000000", child=True),
        Case("read_points", "las point offset past the end", _read_built(
            "offset.las", _las_with, suffix=".las", offset=96,
            value=np.uint32(2**31).tobytes()), r"offset\.las.*offset", child=True),
        Case("read_points", "las unknown point format", _read_built(
            "fmt.las", _las_with, suffix=".las", offset=104, value=bytes([42])),
             r"fmt\.las.*point format", child=True),
        Case("read_points", "laz cut in half", _read_built(
            "cut.laz", lambda: laz()[: len(laz()) // 2]), r"cut\.laz", child=True),
        Case("read_points", "laz count lies", _read_built(
            "count.laz", _las_with, suffix=".laz", offset=107,
            value=np.uint32(4_000_000_000).tobytes()), r"count\.laz", child=True),
        # LAZ has no checksum: damage inside the point chunks may decode to other values; what
        # must hold is no crash or hang, and either a clear error or all promised points
        Case("read_points", "laz body overwritten", _refused_or(_read_built(
            "over.laz", lambda: overwritten(laz(), 9, 200, start=400)), r"over\.laz"),
             check=_refusal_or(_count_is(_POINTS)), child=True),
    ]


# -- video --------------------------------------------------------------------------------------

@functools.cache
def _video_bytes() -> bytes:
    import tempfile

    from edgeinfer.datasets import generate_motion_clip, write_video

    frames = np.concatenate([generate_motion_clip("right", 1, size=64)] * 3)
    with tempfile.TemporaryDirectory() as folder:
        return write_video(Path(folder) / "clip.avi", frames, fps=10.0, codec="MJPG").read_bytes()


def _read_video(name: str, build, **kwargs):
    def run(tmp: Path):
        from edgeinfer.datasets import read_video

        return read_video(write(tmp, name, build()), **kwargs)

    return run


def _video_cases() -> list[Case]:
    good = _video_bytes
    return [
        Case("read_video", "missing file",
             lambda tmp: __import__("edgeinfer.datasets").datasets.read_video(tmp / "no.mp4"),
             r"no\.mp4"),
        Case("read_video", "random bytes .mp4", _read_video("junk.mp4", lambda: random_bytes(
            7, 20000)), r"junk\.mp4", child=True),
        Case("read_video", "empty file", _read_video("empty.avi", lambda: b""), r"empty\.avi",
             child=True),
        Case("read_video", "cut in half", _read_video("cut.avi", lambda: good()[: len(good())
                                                                                // 2]),
             r"cut\.avi", child=True),
        Case("read_video", "frames overwritten", _refused_or(_read_video(
            "over.avi", lambda: overwritten(good(), 8, 3000, start=4000)), r"over\.avi"),
             check=_refusal_or(lambda frames: frames.shape[1:] == (64, 64, 3)), child=True),
        Case("read_video", "max_frames=0", _read_video("ok.avi", good, max_frames=0),
             r"max_frames"),
        Case("read_video", "on_error unknown", _read_video("ok.avi", good, on_error="ignore"),
             r"on_error"),
    ]


def cases() -> list[Case]:
    return _reader_cases() + _video_cases()
