"""A non-editable install works: the built wheel carries the package data the code reads at run time,
and the library only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_install(tmp_path_factory) -> tuple[Path, Path]:
    """(wheel file, --target folder it is installed into). Built from a copy of the sources so the
    build leaves nothing in the checkout; offline, with the environment's own setuptools."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src-copy"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(dist), str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("mediafm-*.whl")
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    return wheel, target


def _run_from(target: Path, *args: str) -> subprocess.CompletedProcess:
    # PYTHONPATH puts the installed wheel ahead of the checkout's editable install.
    env = {**os.environ, "PYTHONPATH": str(target)}
    return subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=300, cwd=target.parent)


def test_wheel_contains_package_data(wheel_install):
    wheel, _ = wheel_install
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in ("mediafm/encoders/imagenet_classes.txt", "mediafm/serve/static/index.html",
                 "mediafm/serve/static/app.js", "mediafm/py.typed"):
        assert data in names, data


def test_wheel_holds_the_library_only(wheel_install):
    """Every user installs the wheel: test helpers (mediafm_testing) and tests stay out of it."""
    wheel, _ = wheel_install
    dist_info = "-".join(wheel.name.split("-")[:2]) + ".dist-info/"  # mediafm-VERSION.dist-info/
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        top_level = z.read(dist_info + "top_level.txt").decode().split()
    assert not [n for n in names if "mediafm_testing" in n]
    outside = [n for n in names if not n.startswith(("mediafm/", dist_info))]
    assert not outside, outside
    assert top_level == ["mediafm"]


def test_installed_wheel_runs_the_cli_and_reads_its_data(wheel_install):
    _, target = wheel_install
    out = _run_from(target, sys.executable, "-c",
                    "import mediafm, mediafm.encoders.video_effnet as v; print(mediafm.__file__); "
                    "print(len(v.imagenet_class_names()))")
    assert out.returncode == 0, out.stderr
    where, n = out.stdout.split()
    assert Path(where).is_relative_to(target) and int(n) == 1000
    cli = _run_from(target, str(target / "bin" / "mediafm"), "encoders")
    assert cli.returncode == 0, cli.stderr
    assert "effnet-lite0" in cli.stdout and "minilm-l6" in cli.stdout
