"""bench.pedestrians runs end to end on a generated clip (its figures are printed, not asserted)."""

from __future__ import annotations

import json

import pytest

from bench import pedestrians
from tests.media import force_class, write_video


def test_counts_frames_with_a_person_per_grid_and_threshold(tmp_path, capsys):
    from models import build_model, seed_spec
    from models.model_file import save_model

    model = save_model(force_class(build_model(seed_spec(["person", "dog"], alpha=0.25)), "person", logit=6.0),
                       tmp_path / "person.keras")
    video = write_video(tmp_path / "walk.avi", frames=12, size=(160, 120))
    out = tmp_path / "rows.json"
    assert pedestrians.main(["--model", str(model), "--video", str(video), "--every", "4", "--tiles", "off,2x2",
                             "--conf", "0.3,0.999", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["tiles"], r["conf"]) for r in rows] == [("off", 0.3), ("off", 0.999), ("2x2", 0.3), ("2x2", 0.999)]
    assert all(r["frames"] == 3 for r in rows), "frames 0, 4 and 8"
    assert rows[0]["frames_with_person"] == 3 and rows[1]["person_boxes"] == 0, "the threshold applies"
    assert 0 < rows[0]["median_height_px"] <= 120 and rows[1]["median_height_px"] is None
    assert "a person boxed in 3/3 frames" in capsys.readouterr().out


def test_a_model_without_people_and_a_missing_clip_are_refused(tmp_path):
    from models import build_model, seed_spec
    from models.model_file import save_model

    model = save_model(build_model(seed_spec(["dog"], alpha=0.25)), tmp_path / "dog.keras")
    video = write_video(tmp_path / "walk.avi", frames=2, size=(64, 48))
    assert pedestrians.main(["--model", str(model), "--video", str(video)]) == 2
    with pytest.raises(SystemExit, match="cannot be opened"):
        pedestrians.main(["--model", str(model), "--video", str(tmp_path / "missing.avi")])
