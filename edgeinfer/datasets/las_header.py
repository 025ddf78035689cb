"""Check a LAS/LAZ header against the file before laspy reads it.

laspy trusts the header: a file of random bytes after ``LASF`` that claims three billion
variable-length records makes it loop for minutes while memory grows, and a LAS file cut at a
record boundary reads as fewer points than the header promises with only a log line. So the
reader parses the fixed header itself (ASPRS LAS 1.0-1.4: every offset below is from that
specification) and checks that everything the header promises fits in the file, in bounded
time and memory, before laspy sees the file.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LasHeader", "check_las_header"]

_MIN_HEADER = 227  # LAS 1.0-1.2 header size; 1.3 adds 8 bytes, 1.4 another 140
_VLR_HEADER = 54
_EVLR_HEADER = 60
# smallest point record of each point data format (LAS 1.4 table 7 and the earlier formats)
_RECORD_MIN = (20, 28, 26, 34, 57, 63, 30, 36, 38, 59, 67)
# LAZ: a point of the smallest format compressed to well under a byte is rare; a header that
# promises more than this many decompressed bytes per byte of file is refused as corrupt
# (the decompressor would otherwise allocate what the header claims).
MAX_LAZ_RATIO = 200


@dataclass(frozen=True)
class LasHeader:
    """What the fixed LAS header promises: version, point format, record size and count."""

    version: tuple[int, int]
    point_format: int
    record_length: int
    point_count: int
    offset_to_points: int
    compressed: bool


def _fail(source: Path, problem: str) -> ValueError:
    return ValueError(f"{source}: not a readable LAS/LAZ file: {problem}")


def _unpack(data: bytes, fmt: str, offset: int) -> tuple:
    return struct.unpack_from("<" + fmt, data, offset)


def check_las_header(path: str | os.PathLike[str]) -> LasHeader:
    """Parse and check the header of the LAS/LAZ file at ``path``; reads at most the header
    and the variable-length record headers.

    Raises:
        ValueError: a bad signature or version, a header, VLR, EVLR or point block that does
            not fit in the file, an unknown point format, or (uncompressed LAS) fewer point
            bytes than the header's point count needs. The message names the file, what the
            header promised and what the file holds.
    """
    source = Path(path)
    size = source.stat().st_size
    with source.open("rb") as handle:
        head = handle.read(375)
        if len(head) < _MIN_HEADER or head[:4] != b"LASF":
            raise _fail(source, f"it must start with 'LASF' and a header of at least "
                                f"{_MIN_HEADER} bytes; got a {size}-byte file starting "
                                f"{head[:4]!r}")
        major, minor = head[24], head[25]
        if major != 1 or minor > 4:
            raise _fail(source, f"version {major}.{minor}; supported are 1.0 to 1.4")
        header_size, offset, vlr_count = _unpack(head, "HII", 94)
        format_byte, record_length, legacy_count = _unpack(head, "BHI", 104)
        needed = {3: 235, 4: 375}.get(minor, _MIN_HEADER)
        if header_size < needed or header_size > offset or offset > size:
            raise _fail(source, f"header size {header_size} and point offset {offset} must "
                                f"satisfy {needed} <= header size <= offset <= file size {size}")
        _check_vlrs(handle, source, header_size, offset, vlr_count)
        point_format = format_byte & 0x3F
        if point_format >= len(_RECORD_MIN) or record_length < _RECORD_MIN[point_format]:
            raise _fail(source, f"point format {point_format} with {record_length}-byte records;"
                                f" formats 0-{len(_RECORD_MIN) - 1} with at least their minimum "
                                "record size are supported")
        count = legacy_count
        if minor == 4:
            evlr_start, evlr_count, count64 = _unpack(head, "QIQ", 235)
            count = count64 or legacy_count
            _check_evlrs(handle, source, size, evlr_start, evlr_count)
    compressed = bool(format_byte & 0x80) or source.suffix.lower() == ".laz"
    header = LasHeader((major, minor), point_format, record_length, count, offset, compressed)
    _check_point_block(source, header, size)
    return header


def _check_vlrs(handle, source: Path, header_size: int, offset: int, count: int) -> None:
    room = offset - header_size
    if count * _VLR_HEADER > room:
        raise _fail(source, f"the header claims {count} variable-length records, but only "
                            f"{room} bytes lie between the header and the points "
                            f"(at most {room // _VLR_HEADER} records)")
    position = header_size
    for index in range(count):
        handle.seek(position + 52)
        (length,) = struct.unpack("<H", handle.read(2))
        position += _VLR_HEADER + length
        if position > offset:
            raise _fail(source, f"variable-length record {index} ends at byte {position}, past "
                                f"the start of the points at {offset}")


def _check_evlrs(handle, source: Path, size: int, start: int, count: int) -> None:
    if count == 0:
        return
    position = start
    for index in range(count):
        if position + _EVLR_HEADER > size:
            raise _fail(source, f"extended VLR {index} of {count} starts at byte {position}, "
                                f"past the end of the {size}-byte file")
        handle.seek(position + 20)
        (length,) = struct.unpack("<Q", handle.read(8))
        position += _EVLR_HEADER + length


def _check_point_block(source: Path, header: LasHeader, size: int) -> None:
    available = size - header.offset_to_points
    promised = header.point_count * header.record_length
    if header.compressed:
        if promised > MAX_LAZ_RATIO * max(available, 1) and promised > 1 << 20:
            raise _fail(source, f"the header promises {header.point_count} points "
                                f"({promised} bytes decompressed) from {available} compressed "
                                f"bytes, over {MAX_LAZ_RATIO}x: the header is corrupt")
        return
    if promised > available:
        found = available // header.record_length
        raise _fail(source, f"the header promises {header.point_count} points of "
                            f"{header.record_length} bytes, the file holds {found} complete "
                            f"records ({available} bytes after the header): it is truncated")
