"""Exports of recordings as the Recording panel shows them: a progress bar per export
under way and what the last one gave (its output, with Open folder and Copy path, or its
error), all from the engine's export events, whichever client started the export.

The panel sits in a narrow dock and an output path has no space to wrap at, so the
message offers a line break after every "/" (a zero-width space): the whole path stays
readable without widening the dock.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QProgressBar, QVBoxLayout, QWidget

from engine.wire import commands as cmd
from engine.wire.events import ExportFinished, ExportProgress
from recorder_gui.engine_link import EngineLink
from recorder_gui.notice_bar import NoticeBar

FORMAT_TITLES = {"freemocap": "FreeMoCap", "skellycam": "SkellyCam", "anipose": "Anipose",
                 "nwb": "NWB", "mkv": "MKV"}
BREAK_HINT = "\u200b"  # zero-width space: where a word-wrapped label may break a line


def format_title(to: str) -> str:
    """How the GUI names an export format (the engine's name when it has no title here)."""
    return FORMAT_TITLES.get(to, to)


def wrappable(path: str) -> str:
    """The path with a line-break opportunity after every separator."""
    return path.replace("/", "/" + BREAK_HINT)


class ExportStatus(QWidget):
    """The exports under way and the outcome of the last one to end."""

    def __init__(
        self, link: EngineLink, parent: QWidget | None = None, *,
        open_folder: Callable[[Path], object],
    ) -> None:
        super().__init__(parent)
        self.link = link
        self._open_folder = open_folder
        self.bars: dict[tuple[str, str], QProgressBar] = {}  # (folder, format) -> its bar
        self.message = ""  # the outcome as the user reads it (without the break hints)
        self.outcome = NoticeBar(actions_below=True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._bars_layout = QVBoxLayout()
        layout.addLayout(self._bars_layout)
        layout.addWidget(self.outcome)
        link.export_progress.connect(self._on_progress)
        link.export_finished.connect(self._on_finished)
        link.disconnected.connect(self._on_engine_gone)

    def start(self, folder: Path, to: str) -> bool:
        """Ask the engine to export a recording; a refusal shows as the outcome."""
        answer, refusal = self.link.try_command(cmd.Export(folder=str(folder), to=to))
        if answer is None:
            self._show_outcome("error", f"Could not export {folder.name} to "
                                        f"{format_title(to)}: {refusal}")
            return False
        self._bar(answer["folder"], to)
        return True

    def _bar(self, folder: str, to: str) -> QProgressBar:
        bar = self.bars.get((folder, to))
        if bar is None:
            bar = QProgressBar()
            bar.setRange(0, 100)
            bar.setValue(0)  # a new bar has none, and shows no text until it has
            bar.setFormat(f"Exporting {Path(folder).name} to {format_title(to)}: %p%")
            bar.setToolTip(folder)
            self._bars_layout.addWidget(bar)
            bar.show()  # at once, not when the event loop next runs: an export can be quick
            self.bars[(folder, to)] = bar
        return bar

    def _on_progress(self, event: ExportProgress) -> None:
        self._bar(event.folder, event.to).setValue(round(100 * event.fraction))

    def _on_finished(self, event: ExportFinished) -> None:
        self._drop_bar(event.folder, event.to)
        name, title = Path(event.folder).name, format_title(event.to)
        if event.error is not None or event.output is None:
            self._show_outcome("error", f"Could not export {name} to {title}: {event.error}")
            return
        output = Path(event.output)
        folder = output if output.is_dir() else output.parent
        self._show_outcome("info", f"Exported {name} to {title}: {output}", [
            ("Open folder", lambda: self._open_folder(folder)),
            ("Copy path", lambda: QGuiApplication.clipboard().setText(str(output)))])

    def _drop_bar(self, folder: str, to: str) -> None:
        bar = self.bars.pop((folder, to), None)
        if bar is not None:
            self._bars_layout.removeWidget(bar)
            bar.deleteLater()

    def _on_engine_gone(self, _reason: str) -> None:
        """An export runs in the engine: it ended with it."""
        if not self.bars:
            return
        names = ", ".join(f"{Path(folder).name} to {format_title(to)}" for folder, to in self.bars)
        for folder, to in list(self.bars):
            self._drop_bar(folder, to)
        self._show_outcome("error", f"The engine stopped while exporting {names}; "
                                    "export again once it runs.")

    def _show_outcome(self, level: str, text: str,
                      actions: list[tuple[str, Callable[[], object]]] | None = None) -> None:
        self.message = text
        self.outcome.show_notice(level, wrappable(text), actions or [])
