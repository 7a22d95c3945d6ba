"""cover.py: the square PNG per routine (title and areas)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from voicecoach.phone.cover import COVER_SIZE_PX, _AREA_MARKS, cover_png, routine_areas, routine_cover_png
from voicecoach.model import Area
from voicecoach.script import parse_routine


def image(data: bytes) -> Image.Image:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(io.BytesIO(data)).convert("RGB")


def mark_pixel(img: Image.Image, area: Area) -> tuple[int, int, int]:
    """The pixel at the centre of an area's first mark on the drawn face (full-size layout)."""
    mx, my, _, _ = _AREA_MARKS[area][0]
    return img.getpixel((round(700 + mx * 230), round(430 + my * 300)))


def test_cover_is_a_square_rgb_png_of_the_podcast_size():
    img = image(cover_png("Morning wake-up", areas=[Area.BROWS, Area.CHEEKS]))
    assert img.size == (COVER_SIZE_PX, COVER_SIZE_PX) == (1400, 1400)  # Apple's minimum


def test_same_input_same_bytes_and_each_input_matters():
    a = cover_png("Morning wake-up", areas=[Area.BROWS])
    assert a == cover_png("Morning wake-up", areas=[Area.BROWS])
    assert a != cover_png("Evening wind-down", areas=[Area.BROWS])
    assert a != cover_png("Morning wake-up", areas=[Area.BROWS, Area.JAW])


def test_worked_areas_are_marked_on_the_face():
    worked = image(cover_png("R", areas=[Area.CHEEKS, Area.JAW]))
    assert mark_pixel(worked, Area.CHEEKS) == mark_pixel(worked, Area.JAW)  # both marked alike
    assert mark_pixel(worked, Area.CHEEKS) != mark_pixel(worked, Area.BROWS)  # brows: plain face
    assert mark_pixel(worked, Area.BROWS) == mark_pixel(worked, Area.EYES)


def test_title_is_drawn_in_the_lower_band():
    plain = image(cover_png("", areas=[Area.BROWS]))
    titled = image(cover_png("Brows", areas=[Area.BROWS]))
    band = (0, 930, 1400, 1100)
    assert plain.crop(band).getcolors() is not None and len(plain.crop(band).getcolors()) == 1
    assert len(titled.crop(band).getcolors(maxcolors=100000)) > 1  # white letters, antialiased


@pytest.mark.parametrize("title", ["", "x" * 300, "Word " * 80, "Évening jaw – ünïcode"])
def test_any_title_fits(title):
    assert image(cover_png(title, areas=list(Area))).size == (1400, 1400)


def test_smaller_sizes_work():
    assert image(cover_png("Morning", areas=[Area.FACE], size_px=300)).size == (300, 300)


def test_routine_areas_in_order_of_first_use_and_routine_cover():
    routine = parse_routine(
        "routine: R\nsteps:\n"
        "  - say: Hello.\n"
        "  - massage: Jaw\n    area: jaw\n"
        "  - repeat: 2\n    steps:\n      - exercise: Brow lift\n        area: brows\n"
        "  - massage: Jaw again\n    area: jaw\n"
    )
    assert routine_areas(routine) == (Area.JAW, Area.BROWS)
    assert routine_cover_png(routine) == cover_png("R", areas=[Area.JAW, Area.BROWS])
