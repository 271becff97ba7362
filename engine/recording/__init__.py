"""Recording: per-camera MKV files, timestamps, manifest and sync report in one folder.

Layout of a recording folder (the contract the rest of the engine and the GUI rely on):
recording.json, README.txt, <camera_id>.mkv, timestamps/<camera_id>.csv, sync_report.json.
"""
