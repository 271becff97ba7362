"""The one error type of the recording package."""


class RecordingError(RuntimeError):
    """A recording file cannot be written or read; the message names the file and the reason."""
