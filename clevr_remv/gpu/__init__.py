"""GPUs and devices: which Cycles device renders and how workers are pinned to GPUs, whether a
Cycles kernel exists for a card and how to build a missing one, and the image comparisons that tell
two renders (devices, Blender versions) apart. Pure Python: only render/ loads Blender.
"""
