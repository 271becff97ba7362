"""A progress bar for the CLI's long jobs (assembling a take, recover, verify, export).

Drawn with tqdm on stderr, and only when stderr is a terminal: a pipe, a file or a log
gets nothing, so stdout (a --json answer) and scripts stay clean. The job reports through
the callback it is handed, `progress(fraction)` with fraction 0..1 (the engine's
`progress` parameters, engine/recording/progress.py), from any thread. The bar appears
at the first report, so a job with nothing to do draws none.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator

from tqdm import tqdm

BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}"


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Callable[[float], None]]:
    """Yield the callback a job reports its fraction done to; a bar drawn is closed, left
    on screen at its last figure, when the block ends."""
    if not sys.stderr.isatty():
        yield lambda _fraction: None
        return
    bars: list[tqdm] = []  # the bar, once the first report has drawn it
    lock = threading.Lock()

    def report(fraction: float) -> None:
        with lock:
            if not bars:
                bars.append(tqdm(total=1.0, desc=description, bar_format=BAR_FORMAT,
                                 file=sys.stderr, dynamic_ncols=True))
            bars[0].update(min(max(fraction, 0.0), 1.0) - bars[0].n)

    try:
        yield report
    finally:
        with lock:
            for bar in bars:
                bar.close()
