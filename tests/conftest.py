"""Test set-up: quiet TensorFlow, offscreen Qt, and shared fixtures."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_XCB_GL_INTEGRATION", "none")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(256 * 2**20))  # as main.py sets it
if "DETECTOR_CACHE_DIR" not in os.environ:  # converted-model cache: keep tests out of ~/.cache
    import tempfile

    os.environ["DETECTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="detector-test-cache-")

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout; tests that need it skip with a reason when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (clone the project beside its shared/ folder to run this)")
    return SHARED


@pytest.fixture(scope="session")
def tiny_seed_model():
    """A small randomly initialised seed-layout model (alpha 0.25), built once per session."""
    from models import build_model, seed_spec

    return build_model(seed_spec(["dog", "cat", "person"], alpha=0.25))
