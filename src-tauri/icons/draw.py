"""Draws the app icons (a light house on an orange rounded square) as RGBA
PNG files with zlib alone: python3 icons/draw.py, from src-tauri/."""

import struct
import zlib


def pixel(u, v):
    """Returns the RGBA colour at (u, v), both in 0..1 from the top left."""
    radius = 0.18
    cx = min(max(u, radius), 1 - radius)
    cy = min(max(v, radius), 1 - radius)
    if (u - cx) ** 2 + (v - cy) ** 2 > radius * radius:
        return (0, 0, 0, 0)
    roof = 0.22 <= v <= 0.5 and abs(u - 0.5) <= (v - 0.22) * 1.1
    walls = 0.5 <= v <= 0.8 and 0.3 <= u <= 0.7
    door = 0.62 <= v <= 0.8 and 0.45 <= u <= 0.55
    if (roof or walls) and not door:
        return (255, 236, 214, 255)
    return (224, 96, 32, 255)


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(size, path):
    rows = []
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            row += bytes(pixel((x + 0.5) / size, (y + 0.5) / size))
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as file:
        file.write(data)


if __name__ == "__main__":
    write_png(32, "icons/32x32.png")
    write_png(128, "icons/128x128.png")
    write_png(512, "icons/icon.png")
