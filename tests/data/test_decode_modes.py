"""Every image mode Pillow reads decodes to the right floats: each against a reference conversion."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from archkit.data import load_image_file

S = 8  # square test images loaded at their own size: no resampling, so values compare exactly


def _load(path, channels=1, size=S):
    return load_image_file(path, size, channels=channels).numpy()


def _png16(path, arr):
    """A 16-bit PNG (grey, RGB or RGBA) written by hand: Pillow cannot write 16-bit RGB."""
    h, w = arr.shape[:2]
    c = 1 if arr.ndim == 2 else arr.shape[2]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )
    return path


def _ramp16():
    return np.linspace(0, 65535, S * S).round().astype(np.uint16).reshape(S, S)


def test_16bit_grey_png_keeps_its_range(tmp_path):
    ramp = _ramp16()
    Image.fromarray(ramp).save(tmp_path / "g.png")  # Pillow writes I;16
    assert Image.open(tmp_path / "g.png").mode == "I;16"
    x = _load(tmp_path / "g.png")[0]
    np.testing.assert_allclose(x, ramp / 65535.0, atol=1e-6)
    assert (x >= 0.999).mean() < 0.05  # the old reader saturated 99.6 % of this ramp to 1.0


def test_16bit_big_endian_grey(tmp_path):
    ramp = _ramp16()
    Image.frombytes("I;16B", (S, S), ramp.astype(">u2").tobytes()).save(tmp_path / "b.tif")
    assert Image.open(tmp_path / "b.tif").mode == "I;16B"
    np.testing.assert_allclose(_load(tmp_path / "b.tif")[0], ramp / 65535.0, atol=1e-6)


def test_16bit_rgb_png_as_pillow_reads_it(tmp_path):
    ramp = _ramp16()
    rgb = np.stack([ramp, ramp // 2, 65535 - ramp], -1)
    x = _load(_png16(tmp_path / "c.png", rgb), channels=3).transpose(1, 2, 0)
    np.testing.assert_allclose(x, rgb / 65535.0, atol=1 / 255)


def test_int32_and_float_modes(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    ramp = _ramp16()
    tifffile.imwrite(tmp_path / "i.tif", ramp.astype(np.int32))
    tifffile.imwrite(tmp_path / "f.tif", (ramp / 65535.0 * 1.5 - 0.25).astype(np.float32))
    assert Image.open(tmp_path / "i.tif").mode == "I" and Image.open(tmp_path / "f.tif").mode == "F"
    np.testing.assert_allclose(_load(tmp_path / "i.tif")[0], ramp / 65535.0, atol=1e-6)  # I: 16-bit data
    ref = np.clip(ramp / 65535.0 * 1.5 - 0.25, 0, 1)  # F: intensities, clipped
    np.testing.assert_allclose(_load(tmp_path / "f.tif")[0], ref, atol=1e-6)


def _rgba():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (S, S, 4)).astype(np.uint8)
    a[0, :, 3] = 0  # one fully transparent row, black underneath
    a[0, :, :3] = 0
    return a


def test_rgba_composited_on_white_before_resize(tmp_path):
    a = _rgba()
    Image.fromarray(a, "RGBA").save(tmp_path / "t.png")
    alpha = a[..., 3:] / 255.0
    ref = a[..., :3] / 255.0 * alpha + 1.0 * (1 - alpha)
    np.testing.assert_allclose(_load(tmp_path / "t.png", 3).transpose(1, 2, 0), ref, atol=1.01 / 255)
    clear = np.zeros((16, 16, 4), np.uint8)  # fully transparent, black underneath
    Image.fromarray(clear, "RGBA").save(tmp_path / "clear.png")
    assert _load(tmp_path / "clear.png", 3, size=16).min() == 1.0  # white at its own size
    assert _load(tmp_path / "clear.png", 3, size=5).min() == 1.0  # and resized (was black)


def test_la_and_palette_transparency(tmp_path):
    a = _rgba()
    grey, alpha = a[..., 0], a[..., 3]
    Image.fromarray(np.stack([grey, alpha], -1), "LA").save(tmp_path / "la.png")
    ref = grey / 255.0 * (alpha / 255.0) + (1 - alpha / 255.0)
    np.testing.assert_allclose(_load(tmp_path / "la.png")[0], ref, atol=1.01 / 255)
    p = Image.fromarray((np.arange(S * S) % 4).astype(np.uint8).reshape(S, S), "P")
    p.putpalette([10, 20, 30, 200, 100, 50, 0, 0, 0, 255, 255, 0] + [0] * (256 * 3 - 12))
    p.info["transparency"] = 2
    p.save(tmp_path / "p.png", transparency=2)
    colours = np.array([[10, 20, 30], [200, 100, 50], [255, 255, 255], [255, 255, 0]]) / 255.0
    ref = colours[np.asarray(p)]
    np.testing.assert_allclose(_load(tmp_path / "p.png", 3).transpose(1, 2, 0), ref, atol=1e-6)


def test_cmyk(tmp_path):
    cmyk = np.random.default_rng(1).integers(0, 256, (S, S, 4)).astype(np.uint8)
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "c.tif")
    c, k = cmyk[..., :3] / 255.0, cmyk[..., 3:] / 255.0
    np.testing.assert_allclose(_load(tmp_path / "c.tif", 3).transpose(1, 2, 0), (1 - c) * (1 - k), atol=1.01 / 255)


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((S, S), np.uint8)
    arr[0, 0] = 255  # a white top-left pixel; orientation 6 = the camera was turned 90 degrees
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(tmp_path / "o.png", exif=exif)
    x = _load(tmp_path / "o.png")[0]
    np.testing.assert_array_equal(x, np.rot90(arr, -1) / 255.0)
