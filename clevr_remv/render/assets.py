"""Procedural shapes and materials, built once per worker and shared by every scene.

Nothing is loaded from a .blend file: a bevelled cube, a smooth UV sphere and a cylinder
with flat caps, all of unit half-extent so an object's scale is its size; two material
recipes (matte rubber, shiny metal) per colour.
"""

from __future__ import annotations

import bmesh
import bpy

from clevr_remv.scene.vocabulary import COLORS, srgb_to_linear

GROUND_COLOR = (0.36, 0.36, 0.36)  # linear; CLEVR's light-grey floor
CUBE_BEVEL = 0.08  # of the unit half-extent: rounded edges catch highlights as in CLEVR
SEGMENTS = 48


def _cube(bm: bmesh.types.BMesh) -> None:
    bmesh.ops.create_cube(bm, size=2.0)
    bmesh.ops.bevel(bm, geom=list(bm.edges), offset=CUBE_BEVEL, segments=3, affect="EDGES", profile=0.5)
    for face in bm.faces:
        # The six big faces stay flat, the bevel strips shade smoothly.
        face.smooth = max(abs(c) for c in face.normal) < 0.999


def _sphere(bm: bmesh.types.BMesh) -> None:
    bmesh.ops.create_uvsphere(bm, u_segments=SEGMENTS, v_segments=SEGMENTS // 2, radius=1.0)
    for face in bm.faces:
        face.smooth = True


def _cylinder(bm: bmesh.types.BMesh) -> None:
    bmesh.ops.create_cone(bm, cap_ends=True, segments=SEGMENTS, radius1=1.0, radius2=1.0, depth=2.0)
    for face in bm.faces:
        face.smooth = abs(face.normal.z) < 0.5


SHAPE_BUILDERS = {"cube": _cube, "sphere": _sphere, "cylinder": _cylinder}


def make_mesh(shape: str) -> bpy.types.Mesh:
    mesh = bpy.data.meshes.new(f"shape-{shape}")
    bm = bmesh.new()
    SHAPE_BUILDERS[shape](bm)
    bm.to_mesh(mesh)
    bm.free()
    mesh.materials.append(None)  # one slot, filled per object (the mesh is shared)
    return mesh


def ensure_node_tree(datablock: bpy.types.Material | bpy.types.World) -> None:
    """Give a new material or world its default node tree.

    Blender 5.x creates it with the datablock (and deprecates `use_nodes`); 4.5 creates it
    when `use_nodes` is switched on.
    """
    if datablock.node_tree is None:
        datablock.use_nodes = True


def _principled(name: str, color: tuple[float, float, float], metallic: float, roughness: float) -> bpy.types.Material:
    material = bpy.data.materials.new(name)
    ensure_node_tree(material)
    bsdf = material.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*color, 1.0)
    bsdf.inputs["Metallic"].default_value = metallic
    bsdf.inputs["Roughness"].default_value = roughness
    return material


def make_material(material: str, color: str) -> bpy.types.Material:
    linear = srgb_to_linear(COLORS[color])
    if material == "metal":
        return _principled(f"{material}-{color}", linear, metallic=1.0, roughness=0.25)
    return _principled(f"{material}-{color}", linear, metallic=0.0, roughness=0.75)


def make_ground_material() -> bpy.types.Material:
    return _principled("ground", GROUND_COLOR, metallic=0.0, roughness=0.9)


class AssetLibrary:
    """Meshes and materials created on first use and reused by every later scene.

    Reuse keeps a long-running worker's memory flat: only objects and lights are created
    and removed per scene.
    """

    def __init__(self) -> None:
        self._meshes: dict[str, bpy.types.Mesh] = {}
        self._materials: dict[tuple[str, str], bpy.types.Material] = {}

    def mesh(self, shape: str) -> bpy.types.Mesh:
        if shape not in self._meshes:
            self._meshes[shape] = make_mesh(shape)
        return self._meshes[shape]

    def material(self, material: str, color: str) -> bpy.types.Material:
        key = (material, color)
        if key not in self._materials:
            self._materials[key] = make_material(material, color)
        return self._materials[key]
