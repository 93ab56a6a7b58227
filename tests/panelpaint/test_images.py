"""Safe image opening: allowed formats decode to RGB, bad files give a clear ImageError."""
import io

import numpy as np
import pytest
from PIL import Image

from panelpaint.images import ImageError, check_image, normalize_mode, open_image


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "WEBP"])
def test_allowed_formats_decode_to_rgb(fmt, tmp_path):
    img = Image.new("RGB", (40, 30), (10, 200, 30))
    path = tmp_path / f"page.{fmt.lower()}"
    path.write_bytes(encode(img, fmt))
    out = open_image(path)
    assert out.mode == "RGB" and out.size == (40, 30)
    assert np.abs(np.asarray(out, int) - [10, 200, 30]).max() < 8


def test_disallowed_format_is_refused_even_if_pillow_reads_it():
    data = encode(Image.new("RGB", (8, 8)), "BMP")
    with pytest.raises(ImageError, match="not a recognised image.*PNG, JPEG, TIFF, WEBP"):
        open_image(data, name="page.bmp")


def test_renamed_non_image_names_the_file(tmp_path):
    path = tmp_path / "page01.png"
    path.write_bytes(b"%PDF-1.4\n" + b"x" * 200)
    with pytest.raises(ImageError, match=r"^page01\.png: not a recognised image"):
        open_image(path)


def test_truncated_file_is_an_error_not_a_grey_page():
    data = encode(Image.effect_noise((300, 300), 64).convert("RGB"), "PNG")
    with pytest.raises(ImageError, match="corrupt or truncated"):
        open_image(data[: len(data) // 2], name="cut.png")


def test_truncated_jpeg_is_an_error():
    data = encode(Image.effect_noise((300, 300), 64).convert("RGB"), "JPEG")
    with pytest.raises(ImageError, match="cut.jpg: corrupt or truncated"):
        open_image(data[: len(data) // 2], name="cut.jpg")


def test_empty_file():
    with pytest.raises(ImageError, match="empty"):
        open_image(b"", name="zero.png")


def test_pixel_bomb_is_refused_before_decoding():
    # A 2000x2000 PNG of one colour is a few kB; with a 1 Mpx limit it must be refused from its header.
    data = encode(Image.new("L", (2000, 2000), 255), "PNG")
    assert len(data) < 20_000
    with pytest.raises(ImageError, match="bomb.png: 4,000,000 pixels is too large.* at most 1,000,000 "):
        open_image(data, name="bomb.png", max_pixels=1_000_000)
    assert open_image(data, max_pixels=5_000_000).size == (2000, 2000)


def test_pillow_guard_is_kept_on_at_the_limit():
    # Between 1x and 2x the limit Pillow only warns; that warning must still refuse the image.
    data = encode(Image.new("L", (1500, 1500), 255), "PNG")
    with pytest.raises(ImageError, match="too large"):
        open_image(data, max_pixels=1_000_000)
    assert Image.MAX_IMAGE_PIXELS == 1_000_000


@pytest.mark.parametrize("side", [1200, 5000])  # Pillow warns between 1x and 2x the limit, raises above
def test_pixel_bomb_message_names_one_limit_in_our_words(side):
    data = encode(Image.new("L", (side, side), 255), "PNG")
    with pytest.raises(ImageError) as caught:
        open_image(data, name="page.png", max_pixels=1_000_000)
    message = caught.value.message
    assert message == (f"page.png: {side * side:,} pixels is too large: this service accepts at most "
                       "1,000,000 pixels an image (PANELPAINT_MAX_IMAGE_PIXELS)")
    assert "2,000,000" not in message and "2000000" not in message  # Pillow's own threshold
    assert "DOS" not in message and "exceeds limit" not in message  # Pillow's own wording
    with pytest.raises(ImageError, match=r"^page\.png: .* at most 1,000,000 pixels"):
        check_image(data, name="page.png", max_pixels=1_000_000)


def test_modes_are_normalised():
    cmyk = Image.new("CMYK", (4, 4), (0, 0, 0, 0))
    assert normalize_mode(cmyk).getpixel((0, 0)) == (255, 255, 255)
    grey16 = Image.fromarray(np.full((4, 4), 65535, np.uint16))
    assert normalize_mode(grey16).getpixel((0, 0)) == (255, 255, 255)
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red -> white paper
    assert normalize_mode(rgba).getpixel((0, 0)) == (255, 255, 255)
    half = Image.new("LA", (4, 4), (0, 128))
    assert normalize_mode(half).getpixel((0, 0))[0] in (127, 128)
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 255] + [0] * 765)
    assert normalize_mode(pal).getpixel((0, 0)) == (0, 0, 255)


def test_sixteen_bit_png_roundtrip():
    arr = np.full((6, 6), 32768, np.uint16)
    out = open_image(encode(Image.fromarray(arr), "PNG"))
    assert out.mode == "RGB" and abs(out.getpixel((0, 0))[0] - 128) <= 1


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), (255, 255, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    out = open_image(encode(img, "JPEG", exif=exif.tobytes()))
    assert out.size == (20, 40)


def test_check_image_gives_the_upright_size_open_image_gives_from_a_file(tmp_path):
    img = Image.new("RGB", (40, 30), (10, 200, 30))
    exif = img.getexif()
    exif[0x0112] = 6  # rotated 90 degrees: width and height swap once upright
    path = tmp_path / "turned.jpg"
    img.save(path, "JPEG", exif=exif)
    assert check_image(path) == open_image(path).size == (30, 40)
    assert check_image(path.read_bytes(), name="x.jpg") == (30, 40)
    with pytest.raises(ImageError, match="^turned.jpg: corrupt or truncated"):
        (tmp_path / "cut.jpg").write_bytes(path.read_bytes()[:300])
        check_image(tmp_path / "cut.jpg", name="turned.jpg")
