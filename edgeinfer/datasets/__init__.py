"""Sample-data generators and real-format readers (scans, videos, text).

Imports no engine. Scans: ``generate_scene`` ray-casts a deterministic synthetic street
(ground, buildings, cars, trees, poles, pedestrians) into a labelled ``LidarScan``;
``read_points`` reads KITTI ``.bin``, PLY and LAS/LAZ files (LAS/LAZ through the optional
laspy, imported only when such a file is read). Text: ``read_lee_corpus`` and
``read_polarity_sentences`` read the English test corpora shipped in the gensim wheel (the
``data`` extra) without importing gensim. Video: ``make_motion_dataset`` draws clips whose
class only frame order reveals, ``generate_static_stream`` a static camera with occasional
events; ``read_video``/``read_clip`` read any file OpenCV opens (cv2 loads on first use).
"""

from .layout import build_layout
from .ply import PLY_FORMATS
from .pointio import (
    POINT_SUFFIXES,
    read_kitti_bin,
    read_las,
    read_las_data,
    read_ply,
    read_points,
    write_kitti_bin,
    write_ply,
)
from .primitives import Boxes, Cylinders, Ground, SceneLayout, Spheres
from .raycast import RayHits, cast_rays
from .scan import SCENE_CLASSES, LidarScan
from .scenes import SensorConfig, beam_directions, generate_scene, scan_layout
from .segments import SEGMENT_MODES, sample_segments
from .static_stream import generate_static_stream
from .text import (
    POLARITY_LABELS,
    gensim_test_data_dir,
    read_lee_corpus,
    read_lee_human_similarity,
    read_polarity_sentences,
)
from .video import MOTION_CLASSES, generate_motion_clip, make_motion_dataset
from .videoio import (
    ON_ERROR,
    VIDEO_CODECS,
    CorruptFrameError,
    CorruptFrameWarning,
    VideoFileError,
    VideoInfo,
    VideoWriter,
    iter_video_frames,
    read_clip,
    read_video,
    video_info,
    write_video,
)

__all__ = [
    "MOTION_CLASSES",
    "ON_ERROR",
    "PLY_FORMATS",
    "POINT_SUFFIXES",
    "POLARITY_LABELS",
    "SCENE_CLASSES",
    "SEGMENT_MODES",
    "VIDEO_CODECS",
    "Boxes",
    "CorruptFrameError",
    "CorruptFrameWarning",
    "Cylinders",
    "Ground",
    "LidarScan",
    "RayHits",
    "SceneLayout",
    "SensorConfig",
    "Spheres",
    "VideoFileError",
    "VideoInfo",
    "VideoWriter",
    "beam_directions",
    "build_layout",
    "cast_rays",
    "generate_motion_clip",
    "generate_scene",
    "generate_static_stream",
    "gensim_test_data_dir",
    "iter_video_frames",
    "make_motion_dataset",
    "read_clip",
    "read_kitti_bin",
    "read_las",
    "read_las_data",
    "read_lee_corpus",
    "read_lee_human_similarity",
    "read_ply",
    "read_points",
    "read_polarity_sentences",
    "read_video",
    "sample_segments",
    "scan_layout",
    "video_info",
    "write_kitti_bin",
    "write_ply",
    "write_video",
]
