"""Rig files: the cameras of a workstation and its recording options, in TOML.

A rig file is written by hand, so loading it checks everything before any process
starts and every error names the file, the line (when it can be found) and the key:
`rig.toml:14: cameras[1].fps: must be a number in (0, 1000], got "fast"`.
Paths in a rig file may start with "~"; relative ones are taken from the file's folder.

The package: `schema` declares the option sections (dataclass fields with `option()`
metadata) and checks tables; `model` is the Rig and builds it from checked data;
`load` reads a file; `save` writes a rig back into its file keeping the comments;
`problem` turns what is wrong into messages with file, line and key.
"""

from engine.rig.load import load_rig
from engine.rig.model import (
    DEFAULT_RIG_NAME,
    DEMO_RIG_FILE,
    Rig,
    demo_camera_settings,
    demo_rig,
    rig_from_dict,
    rig_summary,
)
from engine.rig.problem import RigError, RigWarning
from engine.rig.save import save_rig
from engine.rig.schema import DeviceOptions, RecordingOptions, default_output_dir

__all__ = [
    "DEFAULT_RIG_NAME", "DEMO_RIG_FILE", "DeviceOptions", "RecordingOptions", "Rig", "RigError",
    "RigWarning", "default_output_dir", "demo_camera_settings", "demo_rig", "load_rig",
    "rig_from_dict", "rig_summary", "save_rig",
]
