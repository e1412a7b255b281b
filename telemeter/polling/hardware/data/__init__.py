"""Data files (no code): a package so that setuptools ships them."""
