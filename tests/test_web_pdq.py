"""The browser's PDQ (service/web/static/pdq.js) agrees with the service's Python hasher:
run in Node on pixels Pillow decoded, over the ThreatExchange vectors and natural photos,
within PDQ's port tolerance (10 bits for quality >= 80) and with the same quality."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from loadtests.pdq_js_agreement import (
    PORT_TOLERANCE_BITS,
    PORT_TOLERANCE_MIN_QUALITY,
    Agreement,
    compare,
    fixture_files,
    hex_distance,
    photo_files,
)
from tests.browser import need_program
from tests.support import encode

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node() -> str:
    return need_program("node", "nodejs")


def assert_port_agreement(rows: list[Agreement]) -> None:
    assert rows
    for row in rows:
        assert abs(row.python_quality - row.js_quality) <= 1, row
        if row.python_quality >= PORT_TOLERANCE_MIN_QUALITY:
            assert row.distance <= PORT_TOLERANCE_BITS, row


def test_vectors_agree_with_the_python_hasher(node: str) -> None:
    files = fixture_files()
    assert len(files) == 24  # every vector image once: a lost fixture would shrink the test
    assert_port_agreement(compare(files, node))


def test_photos_agree_with_the_python_hasher(node: str) -> None:
    # The photos every install has (the Debian wallpapers are large and slow to decode;
    # `python -m loadtests.pdq_js_agreement` covers them).
    files = photo_files(max_side=640, sources=("scikit-image", "PyWavelets"))
    assert len(files) >= 15
    rows = compare(files, node)
    assert sum(r.python_quality >= PORT_TOLERANCE_MIN_QUALITY for r in rows) >= 10
    assert_port_agreement(rows)


def test_different_photos_are_far_apart_and_edits_stay_close(node: str) -> None:
    """Guards against a JS hash that agrees by being constant or ignoring the pixels."""
    astronaut = skimage.data.astronaut()
    files = {
        "astronaut": encode(astronaut),
        "astronaut-darker": encode((astronaut * 0.8).astype(np.uint8)),
        "coffee": encode(skimage.data.coffee()),
    }
    rows = {r.name: r for r in compare(files, node)}
    assert all(r.distance <= PORT_TOLERANCE_BITS for r in rows.values())
    original = rows["astronaut"].js_hash
    assert hex_distance(original, rows["astronaut-darker"].js_hash) <= 16
    assert hex_distance(original, rows["coffee"].js_hash) >= 80
    assert original.count("0") < 40 and len(original) == 64
