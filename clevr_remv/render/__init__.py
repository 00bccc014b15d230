"""The Blender backend: the only package that imports `bpy`.

Import it lazily (`from clevr_remv.render.renderer import BlenderRenderer`) so that the rest
of the package, and its tests, never load Blender.
"""
