"""Every way df_gmr is installed carries the C spawn hook, or runs without.

An sdist built from this checkout, the wheel built from that sdist (what
``pip install df-gmr`` from an sdist does), and the wheel installed: its
files, then a Python that imports it and spawns.  The editable install
(devstack's ``setup_develop``) is tests/devstack/test_devstack_plugin.py.
Offline: no index, the build tools of this environment.
"""

from __future__ import annotations

import glob
import os
import shutil
import tarfile
import zipfile

import pytest

from tests import compiled
from tests.daemons import child_env
from tests.daemons import run_python

SKIPPED = shutil.ignore_patterns(
    ".git", ".tox", ".venv", "build", "dist", "*.egg-info", "__pycache__",
    "*.so", ".mypy_cache", ".ruff_cache", "results")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Build an sdist from a copy of the checkout, then a wheel from it."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    shutil.copytree(compiled.SOURCE_ROOT, source, ignore=SKIPPED)
    out = root / "out"
    out.mkdir()
    run_python(f"from setuptools import build_meta\n"
               f"build_meta.build_sdist({str(out)!r})",
               env=dict(child_env(), PYTHONPATH=""), timeout=120,
               cwd=str(source))
    (sdist,) = glob.glob(str(out / "*.tar.gz"))
    with tarfile.open(sdist) as archive:
        archive.extractall(root / "unpacked", filter="data")
    (unpacked,) = glob.glob(str(root / "unpacked" / "*"))
    run_python("-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
               "--no-build-isolation", "--wheel-dir", str(out), unpacked,
               env=dict(child_env(), PYTHONPATH=""), timeout=180)
    (wheel,) = glob.glob(str(out / "*.whl"))
    target = root / "site"
    run_python("-m", "pip", "install", "--quiet", "--no-deps",
               "--no-index", "--target", str(target), wheel,
               env=dict(child_env(), PYTHONPATH=""), timeout=120)
    return {"sdist": sdist, "wheel": wheel, "site": str(target),
            "root": str(root)}


def test_the_sdist_carries_the_c_source(built: dict[str, str]) -> None:
    with tarfile.open(built["sdist"]) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames()
                 if "/" in name}
    assert {"df_gmr/_sites.c", "setup.py", "df_gmr_autostart.pth"} <= names


def test_the_wheel_from_the_sdist_carries_the_built_hook(
        built: dict[str, str]) -> None:
    reason = compiled.why_not_built()
    if reason:
        pytest.skip(f"the C spawn hook: {reason}")
    with zipfile.ZipFile(built["wheel"]) as archive:
        names = archive.namelist()
    assert [name for name in names if name.startswith("df_gmr/_sites.")
            and name.endswith(".so")], names
    assert "df_gmr/_sites.c" not in names  # the source stays in the sdist
    assert "df_gmr_autostart.pth" in names


def probe_site(site: str) -> list[str]:
    """Import df_gmr from ``site``, spawn once; say where, how, whence."""
    probe = ("import eventlet\n"
             "eventlet.monkey_patch()\n"
             "import df_gmr, os\n"
             "from df_gmr import greenlets, speedups\n"
             "greenlets.install()\n"
             "green = eventlet.spawn(eventlet.sleep, 0)\n"
             "site = greenlets.tracked_with_sites()[green]\n"
             "print(os.path.dirname(df_gmr.__file__))\n"
             "print(speedups.used.header())\n"
             "print(site[0].co_name)\n")
    # Not from this checkout: -c puts the working directory first.
    result = run_python(probe, env=dict(child_env(), PYTHONPATH=site),
                        cwd=site)
    return result.stdout.splitlines()


def test_without_a_compiler_the_wheel_installs_the_python_hook(
        built: dict[str, str]) -> None:
    root = built["root"]
    out, site = os.path.join(root, "plain"), os.path.join(root, "plain-site")
    with tarfile.open(built["sdist"]) as archive:  # no earlier build in it
        archive.extractall(os.path.join(root, "plain-src"), filter="data")
    (unpacked,) = glob.glob(os.path.join(root, "plain-src", "*"))
    env = dict(child_env(), PYTHONPATH="", CC="false")
    run_python("-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
               "--no-build-isolation", "--wheel-dir", out, unpacked,
               env=env, timeout=180)
    (wheel,) = glob.glob(os.path.join(out, "*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert not [name for name in names if name.endswith(".so")], names
    run_python("-m", "pip", "install", "--quiet", "--no-deps",
               "--no-index", "--target", site, wheel, env=env, timeout=120)
    assert probe_site(site) == [
        os.path.join(site, "df_gmr"),
        "{'c': [], 'why_not': 'df_gmr._sites was not built for this "
        "Python'}", "<module>"]


def test_the_installed_wheel_spawns_with_the_c_hook(
        built: dict[str, str]) -> None:
    reason = compiled.why_not_built()
    if reason:
        pytest.skip(f"the C spawn hook: {reason}")
    assert probe_site(built["site"]) == [
        os.path.join(built["site"], "df_gmr"),
        "{'c': ['spawn hook', 'stack walk']}", "<module>"]
