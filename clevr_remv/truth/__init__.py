"""Ground truth computed from the renders and the scene description: visible pixel counts and the
hidden-object rule, amodal footprints, the referent's visible fraction (occlusion) and the depth
rounding that makes depth maps compress. Plain NumPy, no Blender.
"""
