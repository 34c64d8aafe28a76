"""pip install --no-build-isolation ./python into a virtual environment,
against this build's libwitch (no package index), then a round trip with
the installed package from outside the source tree."""

import os
import shutil
import subprocess

import pytest

from conftest import HERE, PRELOAD, PYTHON, plain_env

SRC = os.path.join(HERE, "..")


def _have_pip():
    r = subprocess.run([PYTHON, "-m", "pip", "--version"],
                       capture_output=True)
    return r.returncode == 0


@pytest.mark.skipif(not os.environ.get("WITCH_BUILDDIR"),
                    reason="needs a build tree (make check)")
@pytest.mark.skipif(not _have_pip(), reason="pip not installed "
                    "(python3-pip)")
def test_pip_install_into_venv(tmp_path):
    build = os.environ["WITCH_BUILDDIR"]
    top = os.path.join(SRC, "..")
    # pip builds in the tree it is given: give it a copy (the source tree
    # may be read-only, as in make distcheck).
    tree = tmp_path / "python"
    shutil.copytree(SRC, tree, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", "_witch_cffi.*"))
    venv = tmp_path / "venv"
    subprocess.run([PYTHON, "-m", "venv", "--system-site-packages",
                    "--without-pip", str(venv)], check=True)
    vpy = str(venv / "bin" / "python")
    env = plain_env()
    for k in ("PYTHONPATH", "LD_LIBRARY_PATH"):
        env.pop(k, None)
    env["WITCH_INCLUDE_DIRS"] = os.pathsep.join(
        [os.path.join(top, "include"), os.path.join(build, "include")])
    env["WITCH_LIBRARY_DIRS"] = os.path.join(build, ".libs")
    env["PIP_NO_INDEX"] = "1"
    r = subprocess.run([vpy, "-m", "pip", "install", "-q",
                        "--no-build-isolation", "--no-index", str(tree)],
                       env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    code = ("import witch, os\n"
            "assert witch.__file__.startswith(os.environ['VENV']), "
            "witch.__file__\n"
            "s = witch.Server(port=0, daemon=True)\n"
            "s.register_endpoint('up', lambda d, c: d.upper())\n"
            "s.start()\n"
            "c = witch.Client(port=s.port)\n"
            "assert c.connect()\n"
            "print(c.send_and_receive({'endpoint': 'up', 'data': 'pip'}))\n"
            "c.close(); s.stop()\n")
    env["VENV"] = str(venv)
    if PRELOAD:
        env["LD_PRELOAD"] = PRELOAD
    r = subprocess.run([vpy, "-c", code], env=env, capture_output=True,
                       text=True, cwd=str(tmp_path), timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "PIP\n"
