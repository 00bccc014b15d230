"""Build hook: ship the repository's `templates/` inside the package as `clevr_remv/templates/`.

`templates/` stays at the repository root, where users edit it, and holds the only copy in git:
no symlink (Windows checkouts often lack them) and nothing to keep in sync. Wheels (and so
every non-editable install) get a copy made here; an editable install reads the checkout's
folder directly (`clevr_remv.expressions.templates.default_template_dir`). Everything else about
the package is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TEMPLATES = Path("templates")


class BuildPyWithTemplates(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "clevr_remv" / "templates"
        self.mkpath(str(target))
        for source in sorted(TEMPLATES.glob("*.json")):
            self.copy_file(str(source), str(target / source.name))


setup(cmdclass={"build_py": BuildPyWithTemplates})
