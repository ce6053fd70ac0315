"""A non-editable install must still find templates/, runtime_c/ and targets/."""
from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_wheel_carries_the_c_assets(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path)], check=True, cwd=tmp_path)
    wheel = next(tmp_path.glob("edgecompile-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("edgecompile/_data/templates/model.c.j2", "edgecompile/_data/runtime_c/ec_fixed.h",
                   "edgecompile/_data/runtime_c/ec_conv2d.c", "edgecompile/_data/targets/qemu-m4/target.toml",
                   "edgecompile/_data/targets/common/ec_platform.h", "edgecompile/cli.py",
                   "edgecompile/targets/__init__.py", "edgecompile/targets/qemu.py"):  # the package, not the data
        assert needed in names, needed
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    assert "Requires-Dist: pyelftools" in zipfile.ZipFile(wheel).read(metadata).decode()  # edgecompile.targets.elf
    # and the installed package looks there: extract it and ask resources where things are
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import edgecompile.resources as r, edgecompile.targets as t;"
            "print(r.resource_dir('templates')); print(t.targets_root())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, cwd=tmp_path).stdout.split()
    assert out[0] == str(site / "edgecompile" / "_data" / "templates")
    assert out[1] == str(site / "edgecompile" / "_data" / "targets")
