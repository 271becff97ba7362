"""Supervision of the cameras: health, restarts, and the state that survives restarts."""
