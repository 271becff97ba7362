"""Lock-step capture: control block, frame rings, camera processes and their controller."""
