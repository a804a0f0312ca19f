"""Find the photos inside an upload: collage tiles, the photo in a phone screenshot, a photo
pasted on a larger picture. Each is checked as an upload of its own (service.crops).

PDQ hashes the whole canvas, so a photo that fills a quarter of a collage is as far from
its listed hash as an unrelated picture. What such uploads share is geometry: the photo is
an axis-aligned rectangle whose four sides are straight lines of strong contrast (against
a gutter, a white margin, a neighbouring tile or the busy picture it was pasted on) or the
upload's own edges. `panel_boxes` finds those rectangles:

1. on a copy of at most crops.HASH_SIDE pixels, a pixel is on a horizontal line when
   the rows two apart around it differ by more than STEP levels in some channel (a
   blended, resampled edge row still counts; a photo pasted on a picture as bright as
   it still differs in colour), likewise for vertical lines;
2. candidate lines are the rows and columns with the most such pixels (at most
   MAX_LINES each, plus the upload's edges);
3. a rectangle between two candidate rows and two candidate columns is a panel when each
   of its sides is a line over at least SUPPORT of its length, it is no smaller than
   MIN_SIDE of the upload's sides and it is not the whole upload;
4. at most MAX_PANELS are kept, near-duplicates dropped: the cells of a regular grid,
   then rectangles at least LARGE_SIDE of each side, then smaller ones (a landscape
   photo pasted at half the width of a portrait picture); within each, those no line
   crosses whole (else they are most likely two panels, found on their own) before
   crossed ones (a photo's own horizon crosses it too), best supported first;
5. and at most MAX_GROWN of them grown along their sides' lines, which run on past a
   side found inside the photo (a light sky against a white margin).

The caller trims each panel's uniform bars and snaps its sides onto the upload's edges
at full resolution (service.media.regions, service.media.snap).

Pure numpy over an RGB array; a natural photo's own rectangles (windows, doors, frames on
a wall) can pass too and only cost their hash: each panel is checked, never trusted.
"""

from __future__ import annotations

import numpy as np

from service.media.borders import Box

STEP = 20  # grey levels between the rows (columns) on either side of a line
MAX_LINES = 8  # candidate rows and columns kept per direction, besides the edges
MIN_LINE_SHARE = 0.12  # a candidate line is strong over at least this share of the upload
SUPPORT = 0.55  # share of a panel's side that must be strong
MIN_SIDE = 0.12  # a panel's width and height, as shares of the upload's
# Panels with a side under LARGE_SIDE of the upload's (a landscape photo pasted at half
# the width of a portrait picture is 15-18 % of its height) come after all larger ones:
# a busy picture has many small well-supported rectangles that would crowd out tiles.
LARGE_SIDE = 0.2
MAX_AREA = 0.85  # a panel covers less than this share of the upload (else it is the upload)
MAX_PANELS = 10
# Besides them, at most MAX_GROWN panels grown along their sides' lines (`_grown`), which
# run on past a side found inside the photo; GAP pixels without a line end a side.
MAX_GROWN, GAP = 4, 3
# A regular collage: lines within GRID_SLACK of a side's thirds or halves, each strong
# over GRID_SUPPORT of the whole side, cut it into cells (found before the rectangles).
GRID_SLACK, GRID_SUPPORT = 0.03, 0.5
SPLIT = 0.75  # a line strong over this share of a panel splits it in two (a gutter)
UNIFORM_LEVELS, UNIFORM_SHARE = 16, 0.95  # a uniform row (grey levels, share)
NEAR = 3  # candidate lines closer than this (pixels of the grey copy) are one
OVERLAP = 0.8  # panels sharing more than this (intersection over union) are one


def _strong(colour: np.ndarray) -> np.ndarray:
    """(h + 1, w) booleans: is there a horizontal line between rows y - 1 and y at x
    (row 0 and row h are the upload's own edges, always lines). `colour` is (h, w, 3):
    a photo pasted on a picture of the same brightness still differs in some channel."""
    height = colour.shape[0]
    lines = np.arange(height + 1)
    # row y-2 against row y+1: a boundary blended over a row by resampling still counts
    above = colour[np.clip(lines - 2, 0, height - 1)]
    below = colour[np.clip(lines + 1, 0, height - 1)]
    strong = np.abs(below - above).max(axis=2) > STEP
    strong[0] = strong[height] = True
    return np.asarray(strong, dtype=bool)


def _uniform_edges(grey: np.ndarray) -> list[int]:
    """Where runs of nearly uniform rows (gutters, margins, the white around a photo in a
    screenshot) begin and end: lines a panel side is likely on, however busy the photo.
    Judged on every fourth pixel of a row, which is plenty for a share of 95 %."""
    sample = grey[:, ::4]
    median = np.median(sample, axis=1, keepdims=True)
    uniform = (np.abs(sample - median) <= UNIFORM_LEVELS).mean(axis=1) >= UNIFORM_SHARE
    change = np.flatnonzero(uniform[1:] != uniform[:-1]) + 1
    return change.tolist()


def _longest_runs(strong: np.ndarray) -> np.ndarray:
    """The longest run of consecutive strong pixels in each row: a panel's side is one
    long run, a texture's strong pixels are many short ones."""
    counts = np.cumsum(strong, axis=1, dtype=np.int32)
    reset = np.maximum.accumulate(np.where(strong, 0, counts), axis=1)
    return np.asarray((counts - reset).max(axis=1))


def _candidates(strong: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """Rows worth trying as panel sides: the edges, the boundaries of uniform runs of rows
    (at most MAX_LINES) and the MAX_LINES rows with the longest runs of strong pixels (at
    least MIN_LINE_SHARE of the row), longest first, none within NEAR rows of another."""
    share = _longest_runs(strong) / strong.shape[1]
    kept = [0, len(share) - 1]
    for row in _uniform_edges(grey)[:MAX_LINES]:
        if all(abs(row - k) > NEAR for k in kept):
            kept.append(row)
    order = np.argsort(-share[1:-1], kind="stable") + 1
    limit = len(kept) + MAX_LINES
    for row in order[share[order] >= MIN_LINE_SHARE]:
        if all(abs(int(row) - k) > NEAR for k in kept):
            kept.append(int(row))
            if len(kept) == limit:
                break
    return np.array(sorted(kept))


def _supports(strong: np.ndarray, lines: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """(len(lines), len(cuts), len(cuts)): the strong share of line i between cuts a < b,
    the best of the line and its two neighbours (an edge falls between the copy's rows)."""
    lo, hi = cuts[:, None], np.minimum(cuts[None, :], strong.shape[1])
    length = np.maximum(hi - lo, 1)
    best = np.zeros((len(lines), len(cuts), len(cuts)))
    for offset in (-1, 0, 1):
        rows = strong[np.clip(lines + offset, 0, len(strong) - 1)]
        prefix = np.concatenate(
            [np.zeros((len(lines), 1)), np.cumsum(rows, axis=1, dtype=np.float64)], axis=1
        )
        best = np.maximum(best, (prefix[:, hi] - prefix[:, lo]) / length)
    return best


def _grid_cuts(strong: np.ndarray, n: int) -> list[int] | None:
    """Where an n-way split of the upload along this direction falls, when each of its
    n - 1 lines (searched within GRID_SLACK of k / n of the side, gutters move them) is
    strong over at least GRID_SUPPORT of the whole side; None otherwise."""
    length = len(strong) - 1
    share = strong.mean(axis=1)
    slack = max(2, round(GRID_SLACK * length))
    cuts = [0]
    for k in range(1, n):
        centre = round(k * length / n)
        window = share[centre - slack : centre + slack + 1]
        best = int(window.argmax())
        if window[best] < GRID_SUPPORT:
            return None
        cuts.append(centre - slack + best)
    return [*cuts, length]


def _grid_cells(rows_strong: np.ndarray, cols_strong: np.ndarray) -> list[Box]:
    """The cells of a regular collage (3 x 3, else 2 x 2; also 1 x n and n x 1 strips):
    tiles whose dividing lines cross the whole upload, as collage apps lay them out.
    A cell may keep a gutter's sliver; the caller trims uniform bars."""
    for n in (3, 2):
        ys, xs = _grid_cuts(rows_strong, n), _grid_cuts(cols_strong, n)
        if ys is None and xs is None:
            continue
        ys = ys or [0, len(rows_strong) - 1]
        xs = xs or [0, len(cols_strong) - 1]
        return [
            (xs[j], ys[i], xs[j + 1], ys[i + 1])
            for i in range(len(ys) - 1)
            for j in range(len(xs) - 1)
        ]
    return []


def panel_boxes(rgb: np.ndarray) -> list[Box]:
    """The panels of an upload (h, w, 3): boxes (left, top, right, bottom) in its
    coordinates, the cells of a regular grid first (when lines cross the whole upload at
    thirds or halves), then the rectangles best supported, at most MAX_PANELS."""
    height, width = rgb.shape[:2]
    if height < 32 or width < 32:
        return []
    colour = rgb.astype(np.int16)
    grey = colour.mean(axis=2, dtype=np.float32)
    rows_strong = _strong(colour)  # (h + 1, w)
    cols_strong = _strong(colour.transpose(1, 0, 2))  # (w + 1, h)
    ys = _candidates(rows_strong, grey)
    xs = _candidates(cols_strong, grey.T)
    h_support = _supports(rows_strong, ys, xs)  # [row i, x a, x b]
    v_support = _supports(cols_strong, xs, ys)  # [column j, y a, y b]
    # every rectangle at once: axes (top i1, bottom i2, left j1, right j2)
    top = h_support[:, None, :, :]
    bottom = h_support[None, :, :, :]
    left = v_support.transpose(1, 2, 0)[:, :, :, None]  # [i1, i2, j1]
    right = v_support.transpose(1, 2, 0)[:, :, None, :]  # [i1, i2, j2]
    worst = np.minimum(np.minimum(top, bottom), np.minimum(left, right))
    heights = (ys[None, :] - ys[:, None])[:, :, None, None]
    widths = (xs[None, :] - xs[:, None])[None, None, :, :]
    ok = (worst >= SUPPORT) & (heights >= MIN_SIDE * height) & (widths >= MIN_SIDE * width)
    ok &= heights * widths < MAX_AREA * width * height
    # a line strong over SPLIT of the rectangle crosses it whole: most likely two panels,
    # each found on its own, but also a photo with a straight edge of its own (a horizon,
    # a table's edge), so such rectangles come after the uncrossed ones rather than never.
    # Candidate lines are more than NEAR apart, so the lines strictly between two others
    # are inside.
    between_rows = _between(np.cumsum(h_support >= SPLIT, axis=0))  # [i1, i2, j1, j2]
    between_cols = _between(np.cumsum(v_support >= SPLIT, axis=0))  # [j1, j2, i1, i2]
    crossed = (between_rows > 0) | (between_cols.transpose(2, 3, 0, 1) > 0)
    small = (heights < LARGE_SIDE * height) | (widths < LARGE_SIDE * width)
    found = [
        (
            bool(small[i1, i2, j1, j2]),
            bool(crossed[i1, i2, j1, j2]),
            float(worst[i1, i2, j1, j2]),
            (int(xs[j1]), int(ys[i1]), int(xs[j2]), int(ys[i2])),
        )
        for i1, i2, j1, j2 in zip(*np.nonzero(ok), strict=True)
    ]
    found.sort(key=lambda f: (f[0], f[1], -f[2], -(f[3][2] - f[3][0]) * (f[3][3] - f[3][1])))
    kept: list[Box] = _grid_cells(rows_strong, cols_strong)[:MAX_PANELS]
    for _, _, _, box in found:
        if all(_iou(box, k) <= OVERLAP for k in kept):
            kept.append(box)
        if len(kept) == MAX_PANELS:
            break
    grown = [_grown(box, rows_strong, cols_strong) for box in kept]
    extra = [g for g in dict.fromkeys(grown) if g not in kept][:MAX_GROWN]
    return kept + extra


def _run_around(line: np.ndarray, lo: int, hi: int) -> tuple[int, int]:
    """The run of strong pixels of `line` (the best of a line and its neighbours, as
    booleans) reaching from lo and hi outwards, gaps of up to GAP pixels bridged."""
    start, end = lo, hi
    while start > 0 and line[max(0, start - GAP) : start].any():
        start -= 1
    while end < len(line) and line[end : end + GAP].any():
        end += 1
    return start, end


def _grown(box: Box, rows_strong: np.ndarray, cols_strong: np.ndarray) -> Box:
    """`box` with its top and bottom moved out as far as both its left and right sides
    go on being lines (and its left and right likewise): a photo whose sky or margin is
    as light as the white around it has sides running past the line found inside it."""
    left, top, right, bottom = box

    def side(strong: np.ndarray, at: int) -> np.ndarray:
        near = strong[max(0, at - 1) : at + 2]
        return np.asarray(near.any(axis=0))

    up_l, down_l = _run_around(side(cols_strong, left), top, bottom)
    up_r, down_r = _run_around(side(cols_strong, right), top, bottom)
    left_t, right_t = _run_around(side(rows_strong, top), left, right)
    left_b, right_b = _run_around(side(rows_strong, bottom), left, right)
    return (
        max(left_t, left_b),
        max(up_l, up_r),
        min(right_t, right_b),
        min(down_l, down_r),
    )


def _between(crossing: np.ndarray) -> np.ndarray:
    """From `crossing[k, a, b]` (lines 0..k that cross span a..b whole), how many lines
    strictly between k1 and k2 do: [k1, k2, a, b]."""
    inner: np.ndarray = crossing[None, :-1] - crossing[:, None]  # [k1, k2 - 1]
    empty = np.zeros((len(crossing), 1, *crossing.shape[1:]), dtype=inner.dtype)
    return np.concatenate([empty, inner], axis=1)


def _iou(a: Box, b: Box) -> float:
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0
