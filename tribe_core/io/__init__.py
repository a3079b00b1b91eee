"""File helpers: atomic writes, Zarr stores, NIfTI/GIFTI."""
