"""Problems found in users' data: one record per problem, each naming its file."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# kind -> what the report calls it (and what the trainer does about it). Order = report order.
ISSUE_KINDS: dict[str, str] = {
    "xml_error": "annotation files that fail to parse (skipped)",
    "missing_image": "annotations whose image is missing (skipped)",
    "unreadable_image": "images that cannot be decoded (skipped)",
    "missing_annotation": "images without an annotation file (skipped)",
    "size_mismatch": "<size> disagrees with the image",
    "box_outside": "boxes reaching outside the image (clipped)",
    "degenerate_box": "degenerate boxes (dropped)",
    "bad_object": "objects without a name or readable coordinates (dropped)",
    "unknown_class": "objects of unknown classes (dropped)",
    "duplicate_file": "duplicate image files (same bytes; kept together in one split)",
}


@dataclass(frozen=True)
class Issue:
    """One problem. ``file``: the file at fault (annotation or image path); ``message``: what
    is wrong and what the trainer did about it; ``detail``: machine-readable extras."""

    kind: str
    file: str
    message: str
    detail: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ISSUE_KINDS:
            raise ValueError(f"unknown issue kind {self.kind!r}; expected one of {sorted(ISSUE_KINDS)}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["detail"] is None:
            del data["detail"]
        return data
