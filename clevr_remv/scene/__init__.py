"""What a scene is, before any pixel: the closed CLEVR vocabulary, the scene description (pure data,
JSON), the layout sampler, the light-field rig's camera maths and the per-view seeds.

Everything here is plain Python and NumPy and decides the pixels (produce/provenance.py
fingerprints it): a scene is a pure function of (master seed, split, index).
"""
