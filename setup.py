"""Kept for tools that still call `setup.py`; everything is declared in pyproject.toml."""

import setuptools

setuptools.setup()
