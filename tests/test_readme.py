"""The README's firmware example is a real program: built against `make lib` and run."""
from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from edgecompile import simulate
from edgecompile.export import ExportSettings, export
from conftest import ROOT, require_tool

ARM_M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]


def readme_main() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- firmware-main:[^>]*-->\n```c\n(.*?)\n```", text, re.S)
    assert match, "README.md has lost its firmware example"
    return match.group(1) + "\n"


@pytest.mark.slow
def test_readme_firmware_main_links_against_the_library_and_classifies(digits_lenet, tmp_path):
    require_tool("gcc", "make", "arm-none-eabi-gcc")
    out = tmp_path / "out"
    result = export(ExportSettings(digits_lenet["model"], out, digits_lenet["calib"], vectors=8))
    assert result.name == "lenet_digits"  # the name the example uses, from the file name
    image = np.load(digits_lenet["test_x"])[0].astype(np.float32)
    (tmp_path / "main.c").write_text(readme_main())
    values = ", ".join(f"{float(v)!r}f" for v in image.reshape(-1))  # exact: float32 in a double
    (tmp_path / "camera.c").write_text(
        f"static const float frame[{image.size}] = {{{values}}};\n"
        "void camera_read(float *pixels) { for (int i = 0; i < (int)(sizeof frame / sizeof frame[0]); i++) "
        "pixels[i] = frame[i]; }\n")
    subprocess.run(["make", "-s", "-C", str(out), "lib"], check=True, capture_output=True)
    library = out / "build" / "host" / "liblenet_digits.a"
    flags = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", f"-I{out / 'src'}", f"-I{out / 'runtime'}"]
    subprocess.run(["gcc", *flags, "main.c", "camera.c", str(library), "-lm", "-o", "app"], cwd=tmp_path, check=True)
    printed = subprocess.run([str(tmp_path / "app")], capture_output=True, text=True, check=True).stdout

    graph = result.compiled.graph
    scores = simulate.run_integer(graph, simulate.quantize_input(graph, image[None])).reshape(-1)
    best = int(np.argmax(scores))
    assert printed.startswith(f"digit {best} (score {scores[best]} / 2^")

    # the same program and library build for a Cortex-M4 (the target's own flags)
    subprocess.run(["make", "-s", "-C", str(out), "TARGET=qemu-m4", "lib"], check=True, capture_output=True)
    m4_lib = out / "build" / "qemu-m4" / "liblenet_digits.a"
    symbols = subprocess.run(["arm-none-eabi-nm", str(m4_lib)], capture_output=True, text=True, check=True).stdout
    assert re.search(r" T lenet_digits_run$", symbols, re.M)
    subprocess.run(["arm-none-eabi-gcc", *ARM_M4, *flags, "-c", "main.c", "-o", "main.o"], cwd=tmp_path, check=True)
