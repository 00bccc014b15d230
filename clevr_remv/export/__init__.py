"""Exports of a rendered dataset for other code bases: RefCOCO (REFER API), gRefCOCO (G_REFER API)
and COCO instances."""

from clevr_remv.export.coco import export_coco
from clevr_remv.export.grefcoco import export_grefcoco
from clevr_remv.export.refcoco import export_refcoco

__all__ = ["export_coco", "export_grefcoco", "export_refcoco"]
