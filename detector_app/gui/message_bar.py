"""A message strip above the video: errors and warnings the user must see, without a modal
dialog (the stream keeps running while it is shown)."""

from __future__ import annotations

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

# level -> (background, text colour)
STYLES = {
    "error": ("#f8d7da", "#721c24"),
    "warning": ("#fff3cd", "#856404"),
    "info": ("#d1ecf1", "#0c5460"),
}


class MessageBar(QFrame):
    closed = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._label = QLabel()
        self._label.setWordWrap(True)
        self._label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Hide this message (Esc)")
        close.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self._label, 1)
        layout.addWidget(close, 0, Qt.AlignTop)
        self.level = ""
        self.history: list[tuple[str, str]] = []
        self.hide()

    def show_message(self, text: str, level: str = "error") -> None:
        background, colour = STYLES.get(level, STYLES["info"])
        self.setStyleSheet(f"MessageBar {{ background: {background}; border: 1px solid {colour}; }}"
                           f" QLabel {{ color: {colour}; }}")
        self._label.setText(text)
        self.level = level
        self.history = [*self.history[-49:], (level, text)]
        self.show()

    def text(self) -> str:
        return self._label.text() if self.isVisible() else ""

    def dismiss(self) -> None:
        self.hide()
        self.closed.emit()
