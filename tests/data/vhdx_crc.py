"""CRC-32C (Castagnoli) as MS-VHDX uses it, for the scripts in tests/data: table-driven,
reflected, init/xorout 0xFFFFFFFF; `reseal` writes the checksum of a structure whose
checksum field is bytes 4..8 (headers, region tables, log entries)."""
import struct

_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ (0x82F63B78 if _c & 1 else 0)
    _TABLE.append(_c)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def reseal(b, off, size):
    """Checksum of `b[off:off+size]` with its field at off+4 taken as zero, stored there."""
    struct.pack_into('<I', b, off + 4, 0)
    struct.pack_into('<I', b, off + 4, crc32c(bytes(b[off:off + size])))


assert crc32c(b'123456789') == 0xE3069283
