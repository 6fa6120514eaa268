"""The class filter: a checkable list of the model's classes, each with its box colour."""

from __future__ import annotations

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QColor, QIcon, QPixmap
from PyQt5.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from ..overlay import class_color


def color_icon(name: str) -> QIcon:
    b, g, r = class_color(name)
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(r, g, b))
    return QIcon(pixmap)


class ClassFilterPanel(QWidget):
    hiddenChanged = pyqtSignal(list)  # names of the classes not to show

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.list = QListWidget(toolTip="Untick a class to hide its detections")
        show_all = QPushButton("All")
        show_none = QPushButton("None")
        show_all.clicked.connect(lambda: self._check_all(True))
        show_none.clicked.connect(lambda: self._check_all(False))
        buttons = QHBoxLayout()
        buttons.addWidget(show_all)
        buttons.addWidget(show_none)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self.list.itemChanged.connect(lambda _: self.hiddenChanged.emit(self.hidden()))

    def set_classes(self, names: list[str] | tuple[str, ...], hidden: list[str] | set[str] = ()) -> None:
        """Show ``names``; those in ``hidden`` unticked. No signal is emitted."""
        hidden = set(hidden)
        self.list.blockSignals(True)
        self.list.clear()
        for name in names:
            item = QListWidgetItem(color_icon(name), name)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Unchecked if name in hidden else Qt.Checked)
            self.list.addItem(item)
        self.list.blockSignals(False)

    def hidden(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())
                if self.list.item(i).checkState() != Qt.Checked]

    def set_checked(self, name: str, checked: bool) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).text() == name:
                self.list.item(i).setCheckState(Qt.Checked if checked else Qt.Unchecked)

    def _check_all(self, checked: bool) -> None:
        self.list.blockSignals(True)
        for i in range(self.list.count()):
            self.list.item(i).setCheckState(Qt.Checked if checked else Qt.Unchecked)
        self.list.blockSignals(False)
        self.hiddenChanged.emit(self.hidden())
