"""Valheim world metadata files: the 1.0 ``_main.<N>.fwl2`` and the legacy ``<World>.fwl``.

Both are ``int32 byteLength`` followed by a ``ZPackage`` written by ``World.SaveWorldFWLData``;
which fields the package holds depends on the world version stored first
(``World.LoadWorld``; Valheim-SeedLab's "seeds and world files" reference, checked there on
real saves):

=====================  ===========================================  ==================
field                  encoding                                     present from
=====================  ===========================================  ==================
version                int32                                        always
name, seed text        ``BinaryWriter`` string (7-bit length, UTF-8)  always
seed                   int32                                        always
uid                    int64                                        always
worldgen version       int32                                        world version 26
needsDB                bool (one byte)                              30
starting global keys   int32 count + strings                        32
player history         int32 count + 4 strings each                 41
=====================  ===========================================  ==================

Valheim 1.0 (world version 41) keeps each world in a folder, ``worlds_local/<World>/``; a world
that was created but never played is a lone ``_main.0.fwl2``. Older games wrote
``worlds_local/<World>.fwl`` next to a ``.db``; 1.0 still loads that layout (and migrates it on the
first save). Everything little-endian. The writer and the reader here are exact inverses, so a
file the game wrote reads and writes back byte for byte.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

WORLD_VERSION = 41  # Version.c_WorldVersion in 1.0.15/1.0.16 (World.DeepNorth)
LEGACY_WORLD_VERSION = 29  # what pre-chunked games wrote for years; loads on every 0.150+ server
MAIN_FILE_NAME = "_main.0.fwl2"  # save number 0: a new, never-saved world

_V_WORLDGEN = 26
_V_NEEDS_DB = 30
_V_GLOBAL_KEYS = 32
_V_PLAYER_HISTORY = 41


@dataclass
class WorldMeta:
    """The contents of a ``.fwl`` / ``.fwl2`` file (``World``'s persisted fields)."""

    name: str
    seed_name: str
    seed: int
    uid: int
    worldgen_version: int = 2
    needs_db: bool = False
    starting_global_keys: list[str] = field(default_factory=list)
    # CrossNetworkUserInfo: platform user id, display name, server-assigned name, PlayFab id.
    player_history: list[tuple[str, str, str, str]] = field(default_factory=list)
    version: int = WORLD_VERSION


class FwlError(ValueError):
    """The bytes are not a world metadata file this module understands."""


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    n = len(data)
    out = bytearray()
    while True:  # BinaryWriter.Write7BitEncodedInt
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            break
    return bytes(out) + data


def encode(meta: WorldMeta) -> bytes:
    """The file bytes for ``meta`` (length prefix included), laid out for ``meta.version``."""
    v = meta.version
    body = bytearray(struct.pack("<i", v))
    body += _string(meta.name)
    body += _string(meta.seed_name)
    body += struct.pack("<iq", meta.seed, meta.uid)
    if v >= _V_WORLDGEN:
        body += struct.pack("<i", meta.worldgen_version)
    if v >= _V_NEEDS_DB:
        body += struct.pack("<?", meta.needs_db)
    if v >= _V_GLOBAL_KEYS:
        body += struct.pack("<i", len(meta.starting_global_keys))
        for key in meta.starting_global_keys:
            body += _string(key)
    if v >= _V_PLAYER_HISTORY:
        body += struct.pack("<i", len(meta.player_history))
        for info in meta.player_history:
            for part in info:
                body += _string(part)
    return struct.pack("<i", len(body)) + bytes(body)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise FwlError(f"truncated at byte {self.pos} (wanted {n} more)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> int:
        (value,) = struct.unpack(fmt, self.take(struct.calcsize(fmt)))
        return int(value)

    def boolean(self) -> bool:
        byte = self.take(1)[0]
        if byte > 1:
            raise FwlError(f"bool byte {byte} at {self.pos - 1}")
        return byte == 1

    def string(self) -> str:
        n = shift = 0
        while True:
            byte = self.take(1)[0]
            n |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
            if shift > 28:
                raise FwlError("bad string length")
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FwlError(f"string is not UTF-8: {exc}") from exc


def decode(data: bytes) -> WorldMeta:
    """Parse file bytes; strict: the length prefix must match and nothing may be left over."""
    outer = _Reader(data)
    length = outer.unpack("<i")
    body = outer.take(length)
    if outer.pos != len(data):
        raise FwlError(f"{len(data) - outer.pos} bytes after the package")
    r = _Reader(body)
    version = r.unpack("<i")
    if not 1 <= version <= 1000:
        raise FwlError(f"implausible world version {version}")
    meta = WorldMeta(name=r.string(), seed_name=r.string(), seed=r.unpack("<i"),
                     uid=r.unpack("<q"), worldgen_version=0, version=version)
    if version >= _V_WORLDGEN:
        meta.worldgen_version = r.unpack("<i")
    if version >= _V_NEEDS_DB:
        meta.needs_db = r.boolean()
    if version >= _V_GLOBAL_KEYS:
        meta.starting_global_keys = [r.string() for _ in range(_count(r))]
    if version >= _V_PLAYER_HISTORY:
        meta.player_history = [(r.string(), r.string(), r.string(), r.string())
                               for _ in range(_count(r))]
    if r.pos != len(body):
        raise FwlError(f"{len(body) - r.pos} unread bytes in the package")
    return meta


def _count(r: _Reader) -> int:
    n = r.unpack("<i")
    if n < 0 or n > len(r.data):
        raise FwlError(f"bad list length {n}")
    return n


def read(path: Path) -> WorldMeta:
    """Read a ``.fwl`` or ``.fwl2`` file."""
    return decode(Path(path).read_bytes())


def write(path: Path, meta: WorldMeta) -> None:
    """Write ``meta`` to ``path`` (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(meta))


def main_path(worlds_root: Path, world_name: str) -> Path:
    """Where Valheim 1.0 keeps a new world's metadata: ``<root>/<World>/_main.0.fwl2``."""
    return Path(worlds_root) / world_name / MAIN_FILE_NAME


def legacy_path(worlds_root: Path, world_name: str) -> Path:
    """Where pre-1.0 games kept it: ``<root>/<World>.fwl`` (1.0 still loads it)."""
    return Path(worlds_root) / f"{world_name}.fwl"
