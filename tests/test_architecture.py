"""The house's rules, checked on the source (docs/architecture.md draws the house; CONTRIBUTING.md says
where new code goes): a root that keeps only the entry points and what every layer shares, one
name for one thing, imports that run one way, and Blender imported by render/ alone."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "clevr_remv"
ROOT_MODULES = {"__init__.py", "cli.py", "contract.py", "config.py", "outputs.py", "timing.py"}
BLENDER_MODULES = {"bpy", "bmesh", "mathutils", "OpenEXR", "Imath"}  # pip's bpy brings the first three


def _modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the package (a package by its __init__.py)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function, as `import_module("...")` too:
    for `from a import b`, both `a` and `a.b` (b may be a module)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value)
    return names


def _module_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {name: {m for m in _imported(path) if m in modules and m != name} for name, path in modules.items()}
    # cli.py registers every module under commands/ by name (importlib), an import all the same.
    graph["clevr_remv.cli"] |= {m for m in modules if m.startswith("clevr_remv.commands.")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    # A package's __init__ importing its own submodules is not a cycle between files that matter.
    return [c for c in cycles if not any(b.startswith(a + ".") for a, b in zip(c, c[1:]))]


def test_no_module_imports_one_that_imports_it_back() -> None:
    """Arrows run one way: no cycle of any length between the package's modules (lazy imports
    inside functions count; package __init__ re-exports are followed like any module)."""
    assert _cycles(_module_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    """The negative control: the check above would see a store module importing a command."""
    graph = _module_graph()
    graph["clevr_remv.store.shard"] |= {"clevr_remv.commands.verify"}
    assert _cycles(graph)


# The floors of the house, bottom up (docs/architecture.md, "Rooms and floors"): a module imports
# from its own floor or below, never from above. The root's lazy `clevr_remv.RefDataset` is the
# one arrow down from the top, by design.
FLOORS = [
    {"contract.py", "outputs.py", "timing.py"},              # shared by every layer
    {"config.py", "scene", "truth"},                         # what a scene is, before and after its pixels
    {"store"},                                               # the files: shards, refs, plan, manifest
    {"gpu", "render", "expressions", "stats"},               # the parts of production, and counting
    {"produce", "runners"},                                  # a dataset produced, shard by shard
    {"data", "lightfield", "evaluation", "export", "show"},  # a dataset used
    {"model"},                                               # a model trained on it (torch, optional)
    {"cli.py", "commands"},                                  # the command line
]


def _room(module: str) -> str:
    """`clevr_remv.store.shard` -> "store", `clevr_remv.config` -> "config.py"."""
    first = module.split(".")[1]
    return first if (PACKAGE / first).is_dir() else f"{first}.py"


def _floor(module: str) -> int:
    room = _room(module)
    return next(i for i, rooms in enumerate(FLOORS) if room in rooms)


def _upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() if a != "clevr_remv"
                  for b in targets if b != "clevr_remv" and _floor(b) > _floor(a))


def test_every_room_is_on_one_floor() -> None:
    rooms = {_room(m) for m in _modules() if m != "clevr_remv"}
    assert rooms == set().union(*FLOORS)


def test_imports_never_go_up_a_floor() -> None:
    assert _upward_imports(_module_graph()) == []


def test_the_floor_check_sees_an_upward_import() -> None:
    graph = _module_graph()
    graph["clevr_remv.store.shard"] |= {"clevr_remv.data.dataset"}
    assert _upward_imports(graph) == ["clevr_remv.store.shard -> clevr_remv.data.dataset"]


def test_the_contract_module_imports_no_command_store_or_renderer() -> None:
    assert {m for m in _imported(PACKAGE / "contract.py") if m.startswith("clevr_remv")} == set()
    for path in (PACKAGE / "commands").glob("*.py"):
        assert "clevr_remv.cli" not in _imported(path), path


def test_the_root_keeps_the_entry_points_and_what_every_layer_shares() -> None:
    """Everything else lives in a folder named for its concern."""
    assert {p.name for p in PACKAGE.glob("*.py")} == ROOT_MODULES
    assert len(ROOT_MODULES) <= 8


def _blender_importers() -> list[str]:
    return sorted(name for name, path in _modules().items()
                  if {m.split(".")[0] for m in _imported(path)} & BLENDER_MODULES)


def test_only_render_imports_blender() -> None:
    """So that everything but `render` runs on a Python without pip's bpy (3.10, 3.12, ...)."""
    outside = [m for m in _blender_importers() if not m.startswith("clevr_remv.render.")]
    assert outside == []
    assert "clevr_remv.render.renderer" in _blender_importers()  # the check sees the real importers


def _stems() -> list[tuple[str, Path]]:
    """(name, file) for every module outside commands/, whose modules are named for their command."""
    return [(p.stem, p) for p in PACKAGE.rglob("*.py")
            if p.name != "__init__.py" and "commands" not in p.relative_to(PACKAGE).parts]


def test_no_name_stands_for_two_things() -> None:
    """No two modules share a name, and no module is named like a folder (amodal.py beside
    render/amodal.py, shards.py beside store/shard.py were such pairs)."""
    counts = Counter(stem for stem, _ in _stems())
    assert [stem for stem, n in counts.items() if n > 1] == []
    folders = {p.name for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"}
    singular = {name.rstrip("s") for name in folders}
    assert sorted(stem for stem, _ in _stems() if stem in folders or stem.rstrip("s") in singular) == []


@pytest.mark.parametrize("room", sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"))
def test_every_room_says_what_it_holds(room: str) -> None:
    """A folder's __init__.py opens with a docstring: what a newcomer reads first."""
    init = PACKAGE / room / "__init__.py"
    assert init.is_file(), f"{room}/ has no __init__.py"
    assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), f"{room}/__init__.py has no docstring"
