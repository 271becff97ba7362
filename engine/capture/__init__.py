"""Lock-step capture: the shared control block, frame rings, camera processes and their controller."""
