"""Turning a scene description into Blender objects: the static world once, the scene per scene.

The ground, world light, camera and render settings live as long as the worker; each
scene only adds its objects and lights (linked to the shared meshes and materials) and
removes them again, so building is cheap and memory does not grow.
"""

from __future__ import annotations

import math

import bpy
import numpy as np
from mathutils import Matrix

from clevr_remv.render.assets import (
    AssetLibrary,
    ensure_node_tree,
    make_ground_material,
)
from clevr_remv.scene.description import Light, Scene, SceneObject
from clevr_remv.scene.rig import OPENCV_TO_BLENDER, look_at_rotation
from clevr_remv.scene.vocabulary import half_height

GROUND_SIZE = 200.0
WORLD_COLOR = (0.05, 0.05, 0.05)  # faint ambient so shadows are not black
SCENE_COLLECTION = "clevr-scene"


def reset_blender() -> bpy.types.Scene:
    """Start from an empty file: no default cube, lamp or camera."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


def build_static_world(scene: bpy.types.Scene) -> bpy.types.Object:
    """Ground plane, world background and the one camera that every view moves."""
    ground_mesh = bpy.data.meshes.new("ground")
    half = GROUND_SIZE / 2
    ground_mesh.from_pydata([(-half, -half, 0), (half, -half, 0), (half, half, 0), (-half, half, 0)], [], [(0, 1, 2, 3)])
    ground = bpy.data.objects.new("ground", ground_mesh)
    ground.data.materials.append(make_ground_material())
    scene.collection.objects.link(ground)

    world = bpy.data.worlds.new("world")
    ensure_node_tree(world)
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (*WORLD_COLOR, 1.0)
    scene.world = world

    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    camera.data.sensor_fit = "AUTO"
    camera.data.clip_start = 0.1
    camera.data.clip_end = 1000.0
    scene.collection.objects.link(camera)
    scene.camera = camera

    collection = bpy.data.collections.new(SCENE_COLLECTION)
    scene.collection.children.link(collection)
    return camera


def aim_matrix(position: tuple[float, float, float], target: tuple[float, float, float]) -> Matrix:
    """matrix_world of a Blender camera or light (which look down -Z) aimed at target."""
    m = np.eye(4)
    m[:3, :3] = look_at_rotation(position, target)
    m[:3, 3] = position
    return Matrix((m @ OPENCV_TO_BLENDER).tolist())


def _add_object(collection: bpy.types.Collection, obj: SceneObject, assets: AssetLibrary) -> None:
    blender_obj = bpy.data.objects.new(f"object-{obj.id}", assets.mesh(obj.shape))
    scale = half_height(obj.shape, obj.size)
    blender_obj.scale = (scale, scale, scale)
    blender_obj.location = obj.position
    blender_obj.rotation_euler = (0.0, 0.0, math.radians(obj.rotation))
    blender_obj.pass_index = obj.id
    collection.objects.link(blender_obj)
    # Object-level material slot: the mesh is shared, the material is per object.
    blender_obj.material_slots[0].link = "OBJECT"
    blender_obj.material_slots[0].material = assets.material(obj.material, obj.color)


def _add_light(collection: bpy.types.Collection, light: Light, target: tuple[float, float, float]) -> None:
    data = bpy.data.lights.new(f"light-{light.name}", "AREA")
    data.energy = light.energy
    data.size = light.size
    blender_light = bpy.data.objects.new(f"light-{light.name}", data)
    blender_light.matrix_world = aim_matrix(light.position, target)
    collection.objects.link(blender_light)


def clear_scene_objects() -> None:
    """Remove the previous scene's objects and light data (meshes and materials are kept)."""
    collection = bpy.data.collections[SCENE_COLLECTION]
    for obj in list(collection.objects):
        light_data = obj.data if obj.type == "LIGHT" else None
        bpy.data.objects.remove(obj, do_unlink=True)
        if light_data is not None:
            bpy.data.lights.remove(light_data)


def build_scene(scene: Scene, assets: AssetLibrary) -> None:
    clear_scene_objects()
    collection = bpy.data.collections[SCENE_COLLECTION]
    for obj in scene.objects:
        _add_object(collection, obj, assets)
    for light in scene.lights:
        _add_light(collection, light, scene.rig.look_at)
