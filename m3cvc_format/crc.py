"""CRC-32C (Castagnoli), as spec/m3v.md defines it: reflected polynomial 0x82F63B78,
initial value and final XOR 0xFFFFFFFF.  The check value of b"123456789" is 0xE3069283."""

from __future__ import annotations

__all__ = ["crc32c"]

_impl = None


def _pure_python(data: bytes, value: int = 0) -> int:
    table = _table()
    crc = value ^ 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


_TABLE: list[int] | None = None


def _table() -> list[int]:
    global _TABLE
    if _TABLE is None:
        table = []
        for n in range(256):
            c = n
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            table.append(c)
        _TABLE = table
    return _TABLE


def crc32c(data: bytes, value: int = 0) -> int:
    """CRC-32C of ``data``, continuing from ``value`` (the CRC of what came before)."""
    global _impl
    if _impl is None:
        try:  # C, ~1000x faster; google-crc32c imports in 2 ms (the crc32c package takes 30)
            import google_crc32c

            _impl = lambda data, value=0: google_crc32c.extend(value, bytes(data))
        except ImportError:  # pragma: no cover - the package is a dependency
            _impl = _pure_python
    return _impl(data, value)
