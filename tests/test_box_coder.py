import numpy as np

from models import centers_to_corners, corners_to_centers, decode, decode_ops, encode, pairwise_iou

VAR = (0.1, 0.1, 0.2, 0.2)


def _random_boxes(rng, n):
    xy = rng.uniform(0, 0.8, (n, 2))
    wh = rng.uniform(0.01, 0.5, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


def test_encode_decode_round_trip():
    rng = np.random.default_rng(0)
    gt = _random_boxes(rng, 500)
    priors = corners_to_centers(_random_boxes(rng, 500))
    back = decode(encode(gt, priors, VAR), priors, VAR)
    np.testing.assert_allclose(back, gt, atol=1e-5)


def test_encode_known_values():
    priors = np.array([[0.5, 0.5, 0.2, 0.4]])
    gt = np.array([[0.45, 0.3, 0.65, 0.5]])  # centre (0.55, 0.4), size (0.2, 0.2)
    t = encode(gt, priors, VAR)[0]
    np.testing.assert_allclose(t, [0.05 / 0.2 / 0.1, -0.1 / 0.4 / 0.1, 0.0, np.log(0.5) / 0.2], rtol=1e-5)


def test_decode_ops_matches_numpy():
    rng = np.random.default_rng(1)
    priors = corners_to_centers(_random_boxes(rng, 64))
    deltas = rng.normal(0, 2, (3, 64, 4)).astype(np.float32)
    from keras import ops

    out = ops.convert_to_numpy(decode_ops(ops.convert_to_tensor(deltas), priors, VAR))
    np.testing.assert_allclose(out, decode(deltas, priors, VAR), rtol=1e-5, atol=1e-6)


def test_decode_extreme_deltas_stay_finite():
    priors = np.array([[0.5, 0.5, 0.1, 0.1]], np.float32)
    out = decode(np.array([[[0, 0, 1e6, -1e6]]], np.float32), priors, VAR)
    assert np.all(np.isfinite(out))


def test_format_conversions_invert():
    rng = np.random.default_rng(2)
    b = _random_boxes(rng, 10)
    np.testing.assert_allclose(centers_to_corners(corners_to_centers(b)), b, atol=1e-6)


def test_pairwise_iou_cases():
    a = np.array([[0, 0, 2, 2], [0, 0, 0, 0]], np.float32)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]], np.float32)
    iou = pairwise_iou(a, b)
    np.testing.assert_allclose(iou[0], [1 / 7, 1.0, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(iou[1], [0, 0, 0])  # zero-area box: no NaN
