"""Tiled inference (runtime.tiling): the grid covers the frame with equal overlapping tiles,
tile boxes land in the frame's coordinates, boxes cut by an inner tile edge are dropped, and
the predictor runs every view of every frame in one batch."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.tiling import EDGE, MAX_TILE_BOX, TileGrid, View, merge_batch, merge_views


def test_parse():
    assert TileGrid.parse("3x3") == TileGrid(3, 3)
    assert TileGrid.parse(" 2X3 ") == TileGrid(2, 3)
    assert all(TileGrid.parse(t) is None for t in (None, "", "off", "none", "1x1"))
    with pytest.raises(ValueError, match="ROWSxCOLS such as 2x2"):
        TileGrid.parse("three")
    with pytest.raises(ValueError, match="from 1x2 to 6x6"):
        TileGrid.parse("9x9")
    assert str(TileGrid(2, 2)) == "2x2" and TileGrid(3, 3).views_per_frame == 10


@pytest.mark.parametrize("grid, size", [(TileGrid(2, 2), (576, 768)), (TileGrid(3, 3), (576, 768)),
                                        (TileGrid(2, 3, 0.0), (101, 299)), (TileGrid(3, 2, 0.4), (720, 1280))])
def test_views_cover_the_frame_with_equal_overlapping_tiles(grid, size):
    h, w = size
    views = grid.views(h, w)
    assert views[0] == View(0, 0, w, h) and len(views) == grid.views_per_frame
    tiles = views[1:]
    assert len({(v.width, v.height) for v in tiles}) == 1, "equal tiles: one scale for all"
    covered = np.zeros((h, w), bool)
    for v in tiles:
        assert 0 <= v.x and v.x + v.width <= w and 0 <= v.y and v.y + v.height <= h
        covered[v.y:v.y + v.height, v.x:v.x + v.width] = True
    assert covered.all()
    first, second = tiles[0], tiles[1]
    assert second.x - first.x <= first.width * (1 - grid.overlap) + 1, "neighbours overlap as asked"
    # the edges that lie inside the frame are the ones that can cut an object
    assert tiles[0].interior == (False, False, grid.cols > 1, grid.rows > 1)
    assert tiles[-1].interior == (grid.cols > 1, grid.rows > 1, False, False)


def test_tile_boxes_land_in_frame_coordinates_and_cut_ones_are_dropped():
    h, w = 400, 800
    views = [View(0, 0, w, h), View(400, 0, 400, 200, interior=(True, False, False, True))]
    corners = np.array([[[0.1, 0.1, 0.2, 0.2], [0.5, 0.5, 0.6, 0.6]],           # full frame: unchanged
                        [[0.25, 0.25, 0.5, 0.75],                                # inside the tile
                         [-0.05, 0.3, 0.2, 0.6]]], np.float32)                   # cut by its left (inner) edge
    probs = np.array([[[0.1, 0.9], [0.2, 0.8]], [[0.3, 0.7], [0.1, 0.9]]], np.float32)
    merged, merged_probs = merge_views(corners, probs, views, h, w)
    assert merged.shape == (4, 4) and merged_probs.shape == (4, 2)
    np.testing.assert_allclose(merged[:2], corners[0])
    # tile pixels (100, 50)-(200, 150) + offset (400, 0) -> frame (500, 50)-(600, 150)
    np.testing.assert_allclose(merged[2], [500 / w, 50 / h, 600 / w, 150 / h], rtol=1e-6)
    np.testing.assert_allclose(merged_probs[:3], [[0.1, 0.9], [0.2, 0.8], [0.3, 0.7]])
    np.testing.assert_allclose(merged_probs[3], [1.0, 0.0]), "the cut box is background"
    # a box near an edge of the frame itself is kept: nothing lies beyond that edge
    edge_box = np.array([[[0.0, 0.0, 0.5, 0.5]]], np.float32)
    _, kept = merge_views(edge_box, np.array([[[0.1, 0.9]]], np.float32),
                          [View(0, 0, 400, 200, interior=(False, False, True, True))], h, w)
    assert kept[0, 1] == pytest.approx(0.9)
    assert EDGE < 0.05
    # a box larger than half a tile is the full view's to find (a part of a large animal
    # filling a tile is not that animal)
    tile = [View(0, 0, 400, 200, interior=(False, False, True, True))]
    big = np.array([[[0.1, 0.1, 0.1 + MAX_TILE_BOX + 0.05, 0.3], [0.1, 0.1, 0.4, 0.4]]], np.float32)
    _, kept = merge_views(big, np.array([[[0.1, 0.9], [0.1, 0.9]]], np.float32), tile, h, w)
    np.testing.assert_allclose(kept[:, 1], [0.0, 0.9])


@pytest.fixture(scope="module")
def predictor():
    from models import build_model, seed_spec
    from runtime.predictor import Predictor

    return Predictor(build_model(seed_spec(["dog", "cat"], alpha=0.25)), engine="keras")


def test_the_predictor_runs_every_view_in_one_batch(predictor):
    calls = []
    infer = predictor._infer

    def counting(batch):
        calls.append(batch.shape[0])
        return infer(batch)

    predictor.swap_engine(predictor.engine, counting)
    try:
        frames = [np.random.default_rng(i).integers(0, 255, (240, 320, 3), dtype=np.uint8) for i in range(2)]
        predictor.set_thresholds(conf=0.01)
        plain = predictor.run(frames, keep_raw=True)
        predictor.tiles = "3x3"
        tiled = predictor.run(frames, keep_raw=True)
        assert calls == [2, 20], "one call for 2 frames x (full frame + 9 tiles)"
        n = plain.raw[0].corners.shape[0]
        assert tiled.raw[0].corners.shape == (10 * n, 4) and tiled.raw[0].image_size == (240, 320)
        np.testing.assert_allclose(tiled.raw[0].corners[:n], plain.raw[0].corners, atol=1e-5)
        for detections in tiled.detections:
            assert len(detections) and detections.image_size == (240, 320)
            assert (detections.boxes >= 0).all() and (detections.boxes[:, [0, 2]] <= 320).all()
        assert predictor.select(tiled.raw[0]).boxes.shape[1] == 4, "a tiled frame can be re-selected"
        with pytest.raises(ValueError, match="tiled inference needs the frames themselves"):
            predictor.run(frames, sizes=[(240, 320)] * 2)
    finally:
        predictor.tiles = None
        predictor.set_thresholds(conf=0.5)
        predictor.swap_engine(predictor.engine, infer)


def test_a_batch_of_frames_is_merged_frame_by_frame():
    """Rows of two frames of different sizes, 5 views each (2x2): each frame gets its own
    views' rows, scaled to its own size."""
    grid = TileGrid(2, 2)
    sizes = [(100, 200), (300, 300)]
    views = [grid.views(h, w) for h, w in sizes]
    n, classes = 3, 2
    corners = np.tile(np.array([0.4, 0.4, 0.6, 0.6], np.float32), (10, n, 1))  # a small box mid-view
    probs = np.zeros((10, n, classes + 1), np.float32)
    probs[:, :, 1] = np.repeat(np.arange(10, dtype=np.float32)[:, None] / 10, n, axis=1)  # row id as score
    merged_corners, merged_probs = merge_batch(corners, probs, views, sizes)
    assert merged_corners.shape == (2, 5 * n, 4) and merged_probs.shape == (2, 5 * n, 3)
    assert np.allclose(np.unique(merged_probs[0, :, 1]), np.arange(5) / 10)
    assert np.allclose(np.unique(merged_probs[1, :, 1]), np.arange(5, 10) / 10)
    for f, (h, w) in enumerate(sizes):
        alone = merge_views(corners[5 * f:5 * f + 5], probs[5 * f:5 * f + 5], views[f], h, w)
        assert np.array_equal(merged_corners[f], alone[0]) and np.array_equal(merged_probs[f], alone[1])
    with pytest.raises(ValueError, match="2 frames of 5 views"):
        merge_batch(corners[:9], probs[:9], views, sizes)
