"""The window's actions, menus and keyboard shortcuts, from one table.

The table itself is ``main_window.ACTIONS``: each row holds the window method it calls (an
unbound method, so a renamed or missing one fails at import, not on a click), so adding an
action is one row and one method (no chain of ifs over action names).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import QAction, QMainWindow, QToolBar


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    shortcut: str | None
    menu: str
    slot: Callable[..., object]  # a MainWindow method (unbound); checkable ones get their new state
    checkable: bool = False
    toolbar: bool = False
    tip: str = ""


def build_actions(window: QMainWindow, toolbar: QToolBar, specs: Sequence[ActionSpec]) -> dict[str, QAction]:
    """Create every action, put it in its menu (and the toolbar), connect it to its slot."""
    menus: dict = {}
    actions: dict[str, QAction] = {}
    for spec in specs:
        action = QAction(spec.text, window)
        action.setObjectName(spec.name)
        if spec.shortcut:
            action.setShortcut(QKeySequence(spec.shortcut))
        action.setToolTip(f"{spec.tip} ({spec.shortcut})" if spec.tip and spec.shortcut else spec.tip or spec.text)
        action.setStatusTip(spec.tip)
        action.setCheckable(spec.checkable)
        slot = functools.partial(spec.slot, window)  # bound to this window
        if spec.checkable:
            action.toggled.connect(slot)
        else:
            action.triggered.connect(lambda _checked=False, slot=slot: slot())
        if spec.menu not in menus:
            menus[spec.menu] = window.menuBar().addMenu(spec.menu)
        menus[spec.menu].addAction(action)
        if spec.toolbar:
            toolbar.addAction(action)
        window.addAction(action)  # shortcuts work with the menu bar hidden (full screen)
        actions[spec.name] = action
    return actions


def shortcut_table(specs: Sequence[ActionSpec]) -> str:
    """The shortcuts as an HTML table (Help > Keyboard shortcuts, and the README)."""
    rows = "".join(f"<tr><td><b>{s.shortcut}</b></td><td>{s.text.replace('&', '')}</td></tr>"
                   for s in specs if s.shortcut)
    return f"<table cellspacing='6'>{rows}</table>"
