"""The bundle's one executable: the GUI, or with --engine the `recorder-engine` CLI.

One executable (not one per entry point) keeps a single copy of Python, Qt and the codecs
in the bundle. Camera, writer and sensor processes are spawned from it too, so
freeze_support() runs first, before any import: a spawned child runs its target there
and exits, never reaching the GUI.
"""

import multiprocessing
import sys


def main() -> int:
    multiprocessing.freeze_support()
    from engine.client import FROZEN_ENGINE_FLAG

    if sys.argv[1:2] == [FROZEN_ENGINE_FLAG]:
        from engine.cli import main as engine_main

        return engine_main(sys.argv[2:])
    from recorder_gui.app import main as gui_main

    return gui_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
