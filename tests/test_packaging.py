"""What a non-editable install gets: the wheel built from this checkout, installed on its own,
runs `digest demo`. An editable install finds a package folder that pyproject.toml leaves out;
a wheel lacks it and `digest` fails on its first import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of a copy of the checkout (a build in place would leave build/ behind), built
    once for this module's tests."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in ("digest", "templates"):
        shutil.copytree(ROOT / name, src / name, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    dist = tmp_path / "dist"
    # No index, no isolated build environment: nothing is fetched, setuptools is the test extra's.
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(src)], check=True, env=env, capture_output=True)
    (built,) = dist.glob("digest-*.whl")
    return built


def test_the_wheel_holds_every_module_template_and_sample(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {p.relative_to(ROOT).as_posix() for p in (ROOT / "digest").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    wanted |= {"digest/templates/" + p.relative_to(ROOT / "templates").as_posix()
               for p in (ROOT / "templates").rglob("*") if p.is_file()}
    assert {"digest/cli/__init__.py", "digest/rank/ranker.py", "digest/store/__init__.py",
            "digest/samples/config.toml", "digest/templates/digest.mjml"} <= wanted
    assert wanted - names == set()


def test_the_installed_wheel_runs_the_demo(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--target", str(site), str(wheel)], check=True, capture_output=True)
    # The installed copy comes first on the path, ahead of this checkout's editable install;
    # the run starts in an empty folder so the checkout is not the current directory either.
    run = tmp_path / "run"
    run.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import digest.cli; print(digest.cli.__file__)"],
                           cwd=run, env=env, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(site)
    demo = subprocess.run([sys.executable, "-m", "digest", "demo", "--dir", "d", "--no-serve"],
                          cwd=run, env=env, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr
    assert len(list((run / "d" / "outbox").rglob("*.eml"))) == 3
