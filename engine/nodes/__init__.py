"""A rig of several machines: each engine a node on a broker, and their coordinator."""
