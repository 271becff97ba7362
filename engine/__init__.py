"""Sync-capture engine: one process per camera, frame-count gating, shared-memory rings.

This package never imports Qt; it runs headless from the `recorder-engine` CLI.
"""

__version__ = "0.1.0"
