"""Writing an export so that it is whole or absent: never half a folder, never over one.

The products are written into a hidden folder inside the output folder and renamed into
place only once all of them are complete and on disk (fsynced, then a rename within one
file system: a power cut leaves the whole export or none of it). A product
that exists already is refused before anything is written, so a second export of the
same take never mixes with the first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from engine.durable import fsync_path
from engine.export.errors import ExportError


@contextmanager
def staged(output: Path, names: Sequence[str]) -> Iterator[Path]:
    """A hidden folder in `output` to write the products `names` into; when the block
    ends without an error they move into `output`. The hidden folder goes either way, and
    on an error so do the folders made for it (`output` itself, if it was not there)."""
    output = Path(output)
    for name in names:
        if (output / name).exists():
            raise ExportError(f"{output / name} exists already: remove it, or export to "
                              "another folder")
    made = [folder for folder in (output, *output.parents) if not folder.exists()]
    output.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=output))
    try:
        yield staging
        for path in sorted(staging.rglob("*"), reverse=True):  # files before their folders
            fsync_path(path)
        for name in names:
            os.replace(staging / name, output / name)
        fsync_path(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in made:  # the folders made for it, deepest first, while empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    shutil.rmtree(staging, ignore_errors=True)


def link_or_copy(source: Path, target: Path) -> None:
    """Put the file `source` at `target`: a hard link where both are on one file system
    (no space, no time: a take's files are final and never change), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
