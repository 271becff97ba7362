"""The capture controller: gate, camera handles and their life cycle, takes, monitor, stats."""
