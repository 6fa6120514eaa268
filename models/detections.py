"""The result of detecting objects in one frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Detections in one frame, best score first.

    - ``boxes``: float32 (N, 4), pixel x1, y1, x2, y2 in the original frame.
    - ``scores``: float32 (N,), class confidence in [0, 1].
    - ``class_ids``: int32 (N,), index into ``class_names`` (background is never reported).
    - ``class_names``: every class the model knows, in model order.
    - ``image_size``: (height, width) of the frame the boxes refer to.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: tuple[str, ...]
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        n = len(self.scores)
        if self.boxes.shape != (n, 4) or self.class_ids.shape != (n,):
            raise ValueError(
                f"Detections: boxes must be (N, 4) and class_ids (N,) with N={n} scores; "
                f"got boxes {self.boxes.shape}, class_ids {self.class_ids.shape}"
            )

    @classmethod
    def empty(cls, class_names: Iterable[str], image_size: tuple[int, int]) -> "Detections":
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            class_ids=np.zeros((0,), np.int32),
            class_names=tuple(class_names),
            image_size=tuple(image_size),  # type: ignore[arg-type]
        )

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @property
    def names(self) -> list[str]:
        """Class name of each detection."""
        return [self.class_names[i] for i in self.class_ids]

    def select(self, mask_or_index: np.ndarray) -> "Detections":
        """A subset, by boolean mask or index array (order as given)."""
        return Detections(
            boxes=self.boxes[mask_or_index],
            scores=self.scores[mask_or_index],
            class_ids=self.class_ids[mask_or_index],
            class_names=self.class_names,
            image_size=self.image_size,
        )

    def filter(
        self, min_score: float | None = None, classes: Iterable[str] | None = None
    ) -> "Detections":
        """Keep detections with score >= ``min_score`` and a class name in ``classes``."""
        mask = np.ones(len(self), dtype=bool)
        if min_score is not None:
            mask &= self.scores >= min_score
        if classes is not None:
            wanted = {self.class_names.index(c) for c in classes if c in self.class_names}
            mask &= np.isin(self.class_ids, list(wanted))
        return self.select(mask)

    def to_records(self, decimals: int = 2) -> list[dict[str, Any]]:
        """JSON-ready list: ``[{"class": "dog", "score": 0.91, "box": [x1, y1, x2, y2]}]``."""
        return [
            {
                "class": self.class_names[int(c)],
                "score": round(float(s), 4),
                "box": [round(float(v), decimals) for v in b],
            }
            for b, s, c in zip(self.boxes, self.scores, self.class_ids)
        ]
