"""The window's actions, menus and keyboard shortcuts, from one table.

Each row names the window method it calls, so adding an action is one line here and one
method there (no chain of ifs over action names).
"""

from __future__ import annotations

from dataclasses import dataclass

from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import QAction, QMainWindow, QToolBar


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    shortcut: str | None
    menu: str
    slot: str  # a MainWindow method; checkable actions pass their new state
    checkable: bool = False
    toolbar: bool = False
    tip: str = ""


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open_video", "Open &video…", "Ctrl+O", "&File", "choose_video", toolbar=True),
    ActionSpec("open_images", "Open &images…", "Ctrl+I", "&File", "choose_images"),
    ActionSpec("open_folder", "Open image &folder…", "Ctrl+Shift+I", "&File", "choose_image_folder"),
    ActionSpec("open_stream", "Open &stream…", "Ctrl+U", "&File", "choose_stream", toolbar=True,
               tip="rtsp://, http://, https:// URL"),
    ActionSpec("close_source", "&Close source", "Ctrl+W", "&File", "close_source"),
    ActionSpec("snapshot", "Snapshot", "Ctrl+S", "&File", "snapshot", toolbar=True,
               tip="PNG of the annotated frame, plus the clean frame and a VOC XML of its detections"),
    ActionSpec("record", "&Record", "Ctrl+R", "&File", "set_recording", checkable=True, toolbar=True,
               tip="Record the annotated stream to MP4"),
    ActionSpec("export", "&Export detections…", "Ctrl+E", "&File", "export_detections",
               tip="Detections of this run as JSON Lines (as `main.py detect --json`) or CSV"),
    ActionSpec("output_dir", "Output &folder…", None, "&File", "choose_output_dir",
               tip="Where snapshots and recordings go"),
    ActionSpec("quit", "&Quit", "Ctrl+Q", "&File", "close"),
    ActionSpec("play_pause", "&Play / pause", "Space", "&Playback", "toggle_play", toolbar=True),
    ActionSpec("step", "&Step one frame", ".", "&Playback", "step_frame", toolbar=True),
    ActionSpec("back", "Back 5 s", "Left", "&Playback", "seek_back"),
    ActionSpec("forward", "Forward 5 s", "Right", "&Playback", "seek_forward"),
    ActionSpec("realtime", "&Real time", "Ctrl+T", "&Playback", "set_realtime", checkable=True,
               tip="Play files at their own FPS (off: as fast as possible, no frame lost)"),
    ActionSpec("conf_down", "Confidence −0.05", "[", "&Detection", "conf_down"),
    ActionSpec("conf_up", "Confidence +0.05", "]", "&Detection", "conf_up"),
    ActionSpec("open_model", "Load &model file…", "Ctrl+M", "&Detection", "choose_model_file"),
    ActionSpec("refresh_models", "Refresh model list", None, "&Detection", "refresh_models"),
    ActionSpec("training", "&Fine-tune…", "Ctrl+Shift+F", "&Training", "set_training_visible",
               checkable=True, toolbar=True, tip="Fine-tune a model on a labelled folder"),
    ActionSpec("fullscreen", "&Full screen", "F11", "&View", "set_fullscreen", checkable=True),
    ActionSpec("shortcuts", "&Keyboard shortcuts", "F1", "&Help", "show_shortcuts"),
)


def build_actions(window: QMainWindow, toolbar: QToolBar) -> dict[str, QAction]:
    """Create every action, put it in its menu (and the toolbar), connect it to its slot."""
    menus: dict = {}
    actions: dict[str, QAction] = {}
    for spec in ACTIONS:
        action = QAction(spec.text, window)
        action.setObjectName(spec.name)
        if spec.shortcut:
            action.setShortcut(QKeySequence(spec.shortcut))
        action.setToolTip(f"{spec.tip} ({spec.shortcut})" if spec.tip and spec.shortcut else spec.tip or spec.text)
        action.setStatusTip(spec.tip)
        action.setCheckable(spec.checkable)
        slot = getattr(window, spec.slot)
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


def shortcut_table() -> str:
    """The shortcuts as an HTML table (Help > Keyboard shortcuts, and the README)."""
    rows = "".join(f"<tr><td><b>{s.shortcut}</b></td><td>{s.text.replace('&', '')}</td></tr>"
                   for s in ACTIONS if s.shortcut)
    return f"<table cellspacing='6'>{rows}</table>"
