"""clevr-remv: generate CLEVR-Remv, a light-field dataset for referring expression segmentation."""

__version__ = "0.3.0"


def __getattr__(name: str):
    """`clevr_remv.RefDataset` on first use, so `import clevr_remv` does not import h5py."""
    if name == "RefDataset":
        from clevr_remv.data.dataset import RefDataset

        return RefDataset
    raise AttributeError(f"module 'clevr_remv' has no attribute {name!r}")
