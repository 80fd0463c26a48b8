"""Assemble a Cloud-Optimized GeoTIFF from tiles that are already compressed.

GDAL's COG driver decodes and re-encodes every tile of its source. lucr's map tiles are
encoded once, while the single pass streams them (full resolution, plus a 2x overview
taken from the same chunks); coarser overviews are built by GDAL from the small 2x file.
This module then writes the COG layout of the GDAL COG specification
(https://gdal.org/drivers/raster/cog.html): a BigTIFF whose IFDs all come first (full
resolution, then overviews from large to small), followed by the tile data from the
smallest overview to the full resolution, each level in row-major order. Tiles are
copied byte for byte; the tags that describe them (structure, GeoTIFF keys, GDAL
metadata and nodata) are copied from the GDAL-written sources.
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile

TILE_OFFSETS, TILE_BYTE_COUNTS, NEW_SUBFILE_TYPE = 324, 325, 254
#: Tags describing the pixels of a level (copied for every level; 320 is the colour map).
STRUCTURE_TAGS = (256, 257, 258, 259, 262, 277, 284, 317, 320, 322, 323, 338, 339, 42113)
#: Georeferencing and dataset metadata (copied to the full-resolution IFD only).
DATASET_TAGS = (33550, 33922, 34264, 34735, 34736, 34737, 42112)
LONG8 = 16


@dataclass
class Level:
    """One resolution level: its tags (raw TIFF values) and where its tiles lie.

    Tiles lie in ``path``, or, when ``sources`` is given, tile ``k`` in ``sources[source_of_tile[k]]``
    (a level assembled from the part files of a distributed run, :func:`read_tile_parts`).
    """

    path: str
    tags: dict[int, tuple[int, int, bytes]] = field(default_factory=dict)  # code -> (type, count, raw value)
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    byte_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    sources: list[str] | None = None
    source_of_tile: np.ndarray | None = None


def read_levels(path: str | Path, dataset_tags: bool) -> list[Level]:
    """Every IFD of a tiled GeoTIFF (main image, then its internal overviews) as ``Level``s.

    Also checks that the file holds every tile its IFDs point to: GDAL reports a write
    that fails when a dataset is closed (e.g. the disk filled up) only on stderr, so a
    file lucr wrote is verified here before its tiles are copied. An incomplete file
    raises ``OSError`` (EIO).
    """
    try:
        levels = _read_levels(path, dataset_tags)
    except (tifffile.TiffFileError, IndexError, struct.error, ValueError, EOFError) as exc:
        raise OSError(errno.EIO, f"the GeoTIFF written is unreadable ({exc})", str(path)) from None
    if not levels:
        raise OSError(errno.EIO, "the GeoTIFF written holds no image (its directory was not written)", str(path))
    size = os.path.getsize(path)
    for level in levels:
        end = int((level.offsets + level.byte_counts).max(initial=0))
        if end > size:
            raise OSError(errno.EIO, f"the GeoTIFF written is incomplete (tiles up to byte {end:,}, file of {size:,} bytes)", str(path))
    return levels


def _read_levels(path: str | Path, dataset_tags: bool) -> list[Level]:
    levels = []
    with tifffile.TiffFile(path) as tif, open(path, "rb") as raw:
        if tif.byteorder != "<":
            raise ValueError(f"{path}: only little-endian TIFF is supported")
        for i, page in enumerate(tif.pages):
            wanted = STRUCTURE_TAGS + (DATASET_TAGS if dataset_tags and i == 0 else ())
            tags = {}
            for tag in page.tags.values():
                if tag.code in wanted:
                    raw.seek(tag.valueoffset)
                    tags[tag.code] = (int(tag.dtype), int(tag.count), raw.read(tag.valuebytecount))
            levels.append(Level(str(path), tags, np.asarray(page.dataoffsets, np.uint64), np.asarray(page.databytecounts, np.uint64)))
    return levels


def _tag_int(level: Level, code: int) -> int:
    """A SHORT or LONG tag's (first) value."""
    typ, _, raw = level.tags[code]
    return int.from_bytes(raw[:4] if typ == 4 else raw[:2], "little")


def read_tile_parts(template: str | Path, parts: list[tuple[int, int, str]], dataset_tags: bool) -> Level:
    """The level of ``template`` (an empty tiled GeoTIFF: its tags) whose tiles lie in part files.

    ``parts`` are ``(row_off, col_off, path)``: tiled GeoTIFFs with the template's tile size
    and encoding, each holding the window at that offset (a multiple of the tile size), as
    the workers of a distributed run write them without a lock (:class:`lucr.export.TilePartsWriter`).
    """
    level = read_levels(template, dataset_tags=dataset_tags)[0]
    width, height, tw, th = (_tag_int(level, c) for c in (256, 257, 322, 323))
    n_x, n_y = -(-width // tw), -(-height // th)
    offsets = np.zeros(n_x * n_y, np.uint64)
    counts = np.zeros(n_x * n_y, np.uint64)
    source = np.full(n_x * n_y, -1, np.int64)
    sources = []
    for row_off, col_off, path in parts:
        if row_off % th or col_off % tw:
            raise ValueError(f"{path}: part at ({row_off}, {col_off}) is not aligned to {tw}x{th} tiles")
        part = read_levels(path, dataset_tags=False)[0]
        part_x = -(-_tag_int(part, 256) // tw)
        local = np.arange(len(part.offsets))
        ty, tx = np.divmod(local, part_x)
        index = (row_off // th + ty) * n_x + (col_off // tw + tx)
        offsets[index], counts[index], source[index] = part.offsets, part.byte_counts, len(sources)
        sources.append(str(path))
    if (source < 0).any():
        raise ValueError(f"{template}: {int((source < 0).sum())} tile(s) missing from the parts")
    return Level(str(template), level.tags, offsets, counts, sources, source)


def _entries(level: Level, is_overview: bool, tile_offsets: np.ndarray) -> list[tuple[int, int, int, bytes]]:
    entries = [(code, typ, count, value) for code, (typ, count, value) in level.tags.items()]
    if is_overview:
        entries.append((NEW_SUBFILE_TYPE, 4, 1, struct.pack("<I", 1)))  # reduced-resolution image
    entries.append((TILE_OFFSETS, LONG8, len(tile_offsets), tile_offsets.astype("<u8").tobytes()))
    entries.append((TILE_BYTE_COUNTS, LONG8, len(level.byte_counts), level.byte_counts.astype("<u8").tobytes()))
    return sorted(entries)


def _ifd_size(level: Level, is_overview: bool) -> int:
    entries = _entries(level, is_overview, level.offsets)
    out_of_line = sum(len(v) + (len(v) & 1) for *_, v in entries if len(v) > 8)
    return 8 + 20 * len(entries) + 8 + out_of_line


def _ifd_bytes(level: Level, is_overview: bool, tile_offsets: np.ndarray, at: int, next_ifd: int) -> bytes:
    entries = _entries(level, is_overview, tile_offsets)
    head = bytearray(struct.pack("<Q", len(entries)))
    tail = bytearray()
    values_at = at + 8 + 20 * len(entries) + 8
    for code, typ, count, value in entries:
        head += struct.pack("<HHQ", code, typ, count)
        if len(value) <= 8:
            head += value.ljust(8, b"\0")
        else:
            head += struct.pack("<Q", values_at + len(tail))
            tail += value + (b"\0" if len(value) & 1 else b"")
    head += struct.pack("<Q", next_ifd)
    return bytes(head + tail)


def write_cog(levels: list[Level], dst: str | Path, copy_buffer: int = 1 << 22) -> None:
    """Write ``levels`` (full resolution first, then overviews from large to small) as a COG.

    Empty (sparse) tiles keep offset and byte count 0.
    """
    sizes = [_ifd_size(lv, i > 0) for i, lv in enumerate(levels)]
    ifd_at = list(np.cumsum([16] + sizes[:-1]))
    pos = 16 + sum(sizes)
    new_offsets: list[np.ndarray] = [np.zeros(0, np.uint64)] * len(levels)
    for i in reversed(range(len(levels))):  # smallest overview's data first
        counts = levels[i].byte_counts
        ends = pos + np.cumsum(counts, dtype=np.uint64)
        new_offsets[i] = np.where(counts > 0, ends - counts, 0).astype(np.uint64)
        pos = int(ends[-1]) if len(ends) else pos
    with open(dst, "wb") as out:
        out.write(b"II" + struct.pack("<HHHQ", 43, 8, 0, 16))
        for i, level in enumerate(levels):
            next_ifd = int(ifd_at[i + 1]) if i + 1 < len(levels) else 0
            out.write(_ifd_bytes(level, i > 0, new_offsets[i], int(ifd_at[i]), next_ifd))
        for i in reversed(range(len(levels))):
            level = levels[i]
            if level.sources is None:
                with open(level.path, "rb") as src:
                    _copy_tiles(src, out, level.offsets.tolist(), level.byte_counts.tolist())
                continue
            # tiles from part files: consecutive runs of one source are copied together
            change = np.flatnonzero(np.diff(level.source_of_tile)) + 1
            for a, b in zip(np.r_[0, change], np.r_[change, len(level.source_of_tile)]):
                with open(level.sources[int(level.source_of_tile[a])], "rb") as src:
                    _copy_tiles(src, out, level.offsets[a:b].tolist(), level.byte_counts[a:b].tolist())


def _copy_tiles(src, out, offsets: list[int], counts: list[int]) -> None:
    """Append the tiles ``src[offset:offset + count]`` to ``out``, in order.

    The copy runs in the kernel (``copy_file_range``) where the file system allows it,
    else through a buffer; both write at ``out``'s file position.
    """
    out.flush()
    src_fd, dst_fd = src.fileno(), out.fileno()
    in_kernel = hasattr(os, "copy_file_range")
    for offset, count in zip(offsets, counts):
        done = 0
        while done < count:
            if in_kernel:
                try:
                    n = os.copy_file_range(src_fd, dst_fd, count - done, offset + done)
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                        raise
                    in_kernel = False
                    continue
            else:
                n = os.write(dst_fd, os.pread(src_fd, count - done, offset + done))
            if n == 0:
                raise OSError(f"{src.name}: unexpected end of file at byte {offset + done}")
            done += n
