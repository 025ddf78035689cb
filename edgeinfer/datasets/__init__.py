"""Sample-data generators and real-format readers (scans, videos, text).

Imports no engine. Scans: ``generate_scene`` ray-casts a deterministic synthetic street
(ground, buildings, cars, trees, poles, pedestrians) into a labelled ``LidarScan``;
``read_points`` reads KITTI ``.bin``, PLY and LAS/LAZ files (LAS/LAZ through the optional
laspy, imported only when such a file is read). Text: ``read_lee_corpus`` and
``read_polarity_sentences`` read the English test corpora shipped in the gensim wheel (the
``data`` extra) without importing gensim.
"""

from .layout import build_layout
from .ply import PLY_FORMATS
from .pointio import (
    POINT_SUFFIXES,
    read_kitti_bin,
    read_las,
    read_ply,
    read_points,
    write_kitti_bin,
    write_ply,
)
from .primitives import Boxes, Cylinders, Ground, SceneLayout, Spheres
from .raycast import RayHits, cast_rays
from .scan import SCENE_CLASSES, LidarScan
from .scenes import SensorConfig, beam_directions, generate_scene, scan_layout
from .text import POLARITY_LABELS, gensim_test_data_dir, read_lee_corpus, read_polarity_sentences

__all__ = [
    "PLY_FORMATS",
    "POINT_SUFFIXES",
    "POLARITY_LABELS",
    "SCENE_CLASSES",
    "Boxes",
    "Cylinders",
    "Ground",
    "LidarScan",
    "RayHits",
    "SceneLayout",
    "SensorConfig",
    "Spheres",
    "beam_directions",
    "build_layout",
    "cast_rays",
    "generate_scene",
    "gensim_test_data_dir",
    "read_kitti_bin",
    "read_las",
    "read_lee_corpus",
    "read_ply",
    "read_points",
    "read_polarity_sentences",
    "scan_layout",
    "write_kitti_bin",
    "write_ply",
]
