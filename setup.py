"""Packaging hook: ship the top-level C assets inside the package.

templates/, runtime_c/ and targets/ live at the top of the repository (the
user's layout), but an installed package has no repository around it.  The
build step copies them into edgecompile/_data/, where
edgecompile.resources finds them after a non-editable `pip install .`.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ASSET_DIRS = ("templates", "runtime_c", "targets")


class BuildPyWithAssets(build_py):
    def run(self):
        super().run()
        root = Path(__file__).resolve().parent
        dest = Path(self.build_lib) / "edgecompile" / "_data"
        for name in ASSET_DIRS:
            src = root / name
            if src.is_dir():
                shutil.copytree(src, dest / name, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.o", "*.so"))


setup(cmdclass={"build_py": BuildPyWithAssets})
