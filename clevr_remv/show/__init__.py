"""`clevr-remv show`: one scene as a picture (picture.py) or a self-contained HTML viewer (viewer.py).

data.py reads a scene's views and sentences once; outline.py turns masks into polygons that
both outputs draw.
"""

from clevr_remv.show.gather import SceneViews, Sentence, load_scene

__all__ = ["SceneViews", "Sentence", "load_scene"]
