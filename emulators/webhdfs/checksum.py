"""HDFS's MD5-of-MD5-of-CRC32C file checksum, so GETFILECHECKSUM answers with the real layout (§4.5)."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

BYTES_PER_CRC = 512


def _table() -> list[int]:
    poly = 0x82F63B78  # CRC32C (Castagnoli), reflected
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _table()


def crc32c(data: bytes) -> int:
    """Pure-Python CRC32C; slow, but the emulator only checksums small test files."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def file_checksum(path: Path, block_size: int) -> dict:
    """The ``FileChecksum`` JSON object: hex of int32 bytesPerCRC | int64 crcPerBlock | md5[16]."""
    block_md5s = []
    with path.open("rb") as fh:
        while block := fh.read(block_size):
            crcs = b"".join(struct.pack(">I", crc32c(block[i:i + BYTES_PER_CRC]))
                            for i in range(0, len(block), BYTES_PER_CRC))
            block_md5s.append(hashlib.md5(crcs).digest())
    # DFSClient reports crcPerBlock only for files spanning more than one block
    crc_per_block = block_size // BYTES_PER_CRC if len(block_md5s) > 1 else 0
    md5 = hashlib.md5(b"".join(block_md5s)).digest()
    raw = struct.pack(">iq", BYTES_PER_CRC, crc_per_block) + md5
    return {"algorithm": f"MD5-of-{crc_per_block}MD5-of-{BYTES_PER_CRC}CRC32C", "bytes": raw.hex(),
            "length": len(raw)}
