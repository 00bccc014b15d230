"""clevr-remv: generate CLEVR-Remv, a light-field dataset for referring expression segmentation."""

__version__ = "0.1.0"
