"""Property-based tests (hypothesis) of the code that reads what users and models hand us:
the VOC parser and box cleaning, box decoding with detection selection, and image conversion.

Runs are derandomised (the same examples every run, so CI is not flaky) and keep no example
database; raise ``max_examples`` locally to search harder.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import escape

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from models import PostprocessConfig, select_detections
from models.box_coder import decode
from runtime.images import ImageFormatError, to_bgr8
from trainer.cleaning import clean_objects
from trainer.voc_xml import Annotation, AnnotationError, parse_annotation_bytes

FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=150,
                suppress_health_check=[HealthCheck.too_slow])


# -- the VOC parser -------------------------------------------------------------------------

def _check_annotation(ann: Annotation) -> None:
    """What the rest of the trainer relies on from a parsed annotation."""
    assert ann.path == "fuzz.xml"
    if ann.size is not None:
        assert all(isinstance(v, int) and v >= 1 for v in ann.size)
    for obj in ann.objects:
        if obj.box is None:
            assert obj.problem
        else:
            assert len(obj.box) == 4 and all(math.isfinite(v) for v in obj.box)


def _check_cleaning(ann: Annotation, hw: tuple[int, int], known) -> None:
    objects, issues = clean_objects(ann, hw, known)
    h, w = hw
    boxes = objects.boxes
    assert boxes.dtype == np.float32 and boxes.shape == (len(objects.names), 4)
    assert np.isfinite(boxes).all()
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
    assert (boxes[:, 2] - boxes[:, 0] >= 1 - 1e-4).all() and (boxes[:, 3] - boxes[:, 1] >= 1 - 1e-4).all()
    assert all(n and n.lower() != "background" for n in objects.names)
    if known is not None:
        assert set(objects.names) <= known
    assert all(i.file == "fuzz.xml" for i in issues)


def parse(data: bytes):
    """The parser's contract: an Annotation, or AnnotationError and nothing else."""
    try:
        return parse_annotation_bytes(data, "fuzz.xml")
    except AnnotationError as exc:
        assert str(exc).startswith("fuzz.xml: ")
        return None


@FUZZ
@given(st.binary(max_size=3000))
def test_any_bytes_parse_or_raise_the_parsers_error(data):
    ann = parse(data)
    if ann is not None:
        _check_annotation(ann)


NUMBERISH = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**12, 10**12).map(str),
    st.sampled_from(["", " ", "nan", "-inf", "1e400", "0x10", "1,5", "١٢", "12px", "+3", " 7 "]),
    st.text(max_size=12),
)
FIELD_TEXT = st.one_of(st.text(max_size=20), st.sampled_from(["cat", "dog", "background", "", "Cat "]))


@st.composite
def voc_documents(draw) -> bytes:
    """VOC-shaped XML with arbitrary text in every field, fields left out, and sometimes an
    XML declaration naming an arbitrary encoding."""
    def field(tag: str, values) -> str:
        return "" if draw(st.booleans()) and draw(st.booleans()) else f"<{tag}>{escape(draw(values))}</{tag}>"

    parts = ["<annotation>", field("filename", FIELD_TEXT)]
    if draw(st.booleans()):
        parts.append(f"<size>{field('width', NUMBERISH)}{field('height', NUMBERISH)}</size>")
    for _ in range(draw(st.integers(0, 4))):
        box = "".join(field(t, NUMBERISH) for t in ("xmin", "ymin", "xmax", "ymax"))
        parts.append(f"<object>{field('name', FIELD_TEXT)}{field('difficult', FIELD_TEXT)}"
                     + (f"<bndbox>{box}</bndbox>" if draw(st.integers(0, 4)) else "") + "</object>")
    parts.append("</annotation>")
    text = "".join(parts)
    declaration = draw(st.one_of(st.just(""), st.sampled_from(["utf-8", "latin-1", "utf-16", "ascii"]),
                                 st.text(st.characters(min_codepoint=33, max_codepoint=126,
                                                       blacklist_characters="\"'<>&"), min_size=1, max_size=12)))
    if not declaration:
        return text.encode("utf-8")
    return f'<?xml version="1.0" encoding="{declaration}"?>{text}'.encode("utf-8")


@FUZZ
@given(voc_documents(), st.tuples(st.integers(1, 5000), st.integers(1, 5000)),
       st.one_of(st.none(), st.just(frozenset({"cat", "dog"}))))
def test_voc_shaped_documents_give_sane_boxes(data, hw, known):
    ann = parse(data)
    if ann is not None:
        _check_annotation(ann)
        _check_cleaning(ann, hw, known)


@FUZZ
@given(st.data())
def test_mutated_valid_annotations(data):
    """A valid file with bytes changed, inserted or removed (a damaged copy)."""
    from tests.trainer_helpers import voc_xml

    base = bytearray(voc_xml("a.jpg", (100, 80), [("cat", (5, 5, 50, 40)), ("dog", (-3, 10, 120, 70))]).encode())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(base)))
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "flip" and at < len(base):
            base[at] = data.draw(st.integers(0, 255))
        elif action == "insert":
            base[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del base[at:at + data.draw(st.integers(1, 8))]
    ann = parse(bytes(base))
    if ann is not None:
        _check_annotation(ann)
        _check_cleaning(ann, (80, 100), frozenset({"cat", "dog"}))


# -- decoding and selection ----------------------------------------------------------------

WILD_FLOATS = st.floats(width=32, allow_nan=True, allow_infinity=True)
PROBS = st.one_of(st.floats(0, 1, width=32), st.just(float("nan")))


@st.composite
def network_outputs(draw):
    n = draw(st.integers(1, 60))
    classes = draw(st.integers(1, 4))
    deltas = draw(hnp.arrays(np.float32, (n, 4), elements=st.one_of(st.floats(-5, 5, width=32), WILD_FLOATS)))
    centres = draw(hnp.arrays(np.float32, (n, 2), elements=st.floats(0, 1, width=32)))
    sizes = draw(hnp.arrays(np.float32, (n, 2), elements=st.floats(2 ** -10, 1.5, width=32)))
    probs = draw(hnp.arrays(np.float32, (n, classes + 1), elements=PROBS))
    config = PostprocessConfig(
        conf_threshold=draw(st.floats(0, 0.99)), iou_threshold=draw(st.floats(0.01, 1.0)),
        top_k=draw(st.integers(1, 80)), max_detections=draw(st.integers(1, 50)))
    size = (draw(st.integers(1, 4000)), draw(st.integers(1, 4000)))
    return deltas, np.concatenate([centres, sizes], axis=1), probs, config, size


@FUZZ
@given(network_outputs())
def test_decoded_detections_are_finite_inside_the_frame_and_sorted(outputs):
    deltas, priors, probs, config, (h, w) = outputs
    names = [f"c{i}" for i in range(probs.shape[1] - 1)]
    with np.errstate(all="ignore"):  # overflow to inf is part of what is being tested
        corners = decode(deltas, priors, (0.1, 0.1, 0.2, 0.2))
        dets = select_detections(corners, probs, config, names, (h, w))
    assert len(dets) <= config.max_detections
    assert np.isfinite(dets.boxes).all() and np.isfinite(dets.scores).all()
    assert (dets.boxes[:, [0, 2]] >= 0).all() and (dets.boxes[:, [0, 2]] <= w).all()
    assert (dets.boxes[:, [1, 3]] >= 0).all() and (dets.boxes[:, [1, 3]] <= h).all()
    assert (dets.boxes[:, 2] >= dets.boxes[:, 0]).all() and (dets.boxes[:, 3] >= dets.boxes[:, 1]).all()
    assert (np.diff(dets.scores) <= 0).all(), "best score first"
    assert (dets.scores > config.conf_threshold).all()
    assert ((dets.class_ids >= 0) & (dets.class_ids < len(names))).all()
    assert dets.image_size == (h, w)


@FUZZ
@given(network_outputs())
def test_a_class_mask_only_ever_removes_detections(outputs):
    deltas, priors, probs, config, size = outputs
    names = [f"c{i}" for i in range(probs.shape[1] - 1)]
    mask = np.zeros(len(names), bool)
    mask[0] = True
    with np.errstate(all="ignore"):
        corners = decode(deltas, priors, (0.1, 0.1, 0.2, 0.2))
        dets = select_detections(corners, probs, config, names, size, mask)
    assert set(dets.class_ids.tolist()) <= {0}


# -- image conversion ----------------------------------------------------------------------

IMAGE_DTYPES = st.sampled_from([np.uint8, np.uint16, np.int8, np.int32, np.int64, np.float16, np.float32,
                                np.float64, np.bool_])


@FUZZ
@given(hnp.arrays(IMAGE_DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6)))
def test_any_decoded_array_becomes_bgr8_or_a_clear_error(image):
    try:
        with np.errstate(all="ignore"):
            out = to_bgr8(image)
    except ImageFormatError as exc:
        assert str(exc)
        return
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert out.shape[:2] == image.shape[:2] and out.flags["C_CONTIGUOUS"]
