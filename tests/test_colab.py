"""Colab: the notebooks' install cell keeps Colab's torch, and every notebook names the
repository given once in pyproject.toml ([project.urls] Repository).

The install test plays Colab offline: a fresh venv that already "holds" torch and
torchaudio (this environment's site-packages, minus matsed-lite, made visible to it by
a .pth file: pip treats them as installed and, being outside the venv, never removes
them), into which the wheel built from this work tree is installed with `--no-index`
(a requirement torch does not meet would have to be downloaded, and fails). Then
torch's and torchaudio's versions and files must be unchanged, and chapter 00's first
code cells (set-up, parameters, start, data) run there with `google.colab` faked, the
install magic recorded instead of run. No registry download; about a minute.
"""
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
SLUG = REPOSITORY.removeprefix("https://github.com/")


def _first_cells(nb: Path) -> tuple[str, str]:
    cells = json.loads(nb.read_text())["cells"]
    return "".join(cells[0]["source"]), "".join(cells[1]["source"])


def test_the_repository_address_is_a_github_repository():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPOSITORY), REPOSITORY


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_badge_and_install_cell_use_the_repository_address(nb):
    title, setup = _first_cells(nb)
    badge = f"https://colab.research.google.com/github/{SLUG}/blob/main/notebooks/{nb.name}"
    assert re.findall(r"colab\.research\.google\.com/github/[^)\s\"]+", title) == [badge[8:]]
    assert re.findall(r"git\+https://github\.com/[^@\s\"]+", setup) == [f"git+{REPOSITORY}"]
    assert 'if "google.colab" in sys.modules:' in setup  # elsewhere nothing is installed


# -- the install itself -------------------------------------------------------------

PROBE = """
import json, sys, torch, torchaudio
from importlib.metadata import version
print(json.dumps({m.__name__: [version(m.__name__), m.__file__] for m in (torch, torchaudio)}))
"""

# Run chapter 00's first code cells as Colab would: google.colab imported, IPython magics
# turned into calls; the %pip line is recorded (the wheel is already installed).
CELLS = """
import json, sys, types
from IPython.core.inputtransformer2 import TransformerManager
sys.modules["google"] = types.ModuleType("google")
sys.modules["google.colab"] = types.ModuleType("google.colab")
magics = []
class Shell:
    def run_line_magic(self, name, line):
        magics.append(f"%{name} {line}")
nb, out = sys.argv[1], sys.argv[2]
code = [c for c in json.load(open(nb))["cells"] if c["cell_type"] == "code"][:4]
env = {"get_ipython": lambda: Shell(), "__name__": "__main__"}
for i, cell in enumerate(code):
    exec(TransformerManager().transform_cell("".join(cell["source"])), env)
    if i == 1:  # what papermill would inject after the parameters cell
        env.update(PRESET="smoke", DATA_ROOT=out + "/data", OUT_DIR=out + "/build")
import matsed_lite
print(json.dumps({"magics": magics, "package": matsed_lite.__file__,
                  "clips": sum(s["clips"] for s in env["summary"].values())}))
"""


def _site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


@pytest.mark.colab
def test_wheel_installs_beside_colabs_torch_and_chapter_00_starts(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("IPython")
    here = _site_packages(Path(sys.executable))
    # "Colab's" packages: everything installed here except matsed-lite itself
    colab = tmp_path / "colab_site"
    colab.mkdir()
    for entry in here.iterdir():
        name = entry.name.lower()
        if name.startswith(("matsed_lite", "__editable__", "_matsed")) or name.endswith(".pth"):
            continue
        (colab / entry.name).symlink_to(entry)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels), str(ROOT)], check=True, timeout=300)
    (wheel,) = wheels.glob("matsed_lite-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    (_site_packages(python) / "colab_packages.pth").write_text(f"{colab}\n")
    # pip sees no index, no find-links and no config: nothing it could upgrade from
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PYTHONPATH="", MPLBACKEND="Agg")
    # the venv's own old setuptools (ensurepip's) would hide "Colab's" (torch needs >= 77)
    subprocess.run([str(python), "-m", "pip", "uninstall", "-q", "-y", "setuptools"],
                   env=env, check=True, timeout=120)

    def probe():
        out = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True,
                             env=env, check=True)
        return json.loads(out.stdout)

    before = probe()
    assert all(str(colab) in f for _, f in before.values()), before
    mtimes = {m: os.stat(Path(f).resolve()).st_mtime_ns for m, (_, f) in before.items()}
    install = subprocess.run([str(python), "-m", "pip", "install", str(wheel)],
                             capture_output=True, text=True, env=env, timeout=300)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    collected = re.findall(r"Installing collected packages: (.*)", install.stdout)
    assert collected and collected[0].strip() == "matsed-lite", install.stdout[-2000:]
    after = probe()
    assert after == before, (before, after)
    assert mtimes == {m: os.stat(Path(f).resolve()).st_mtime_ns for m, (_, f) in after.items()}
    assert not list(_site_packages(python).glob("torch*")), "torch was installed into the venv"

    nb = ROOT / "notebooks" / "00_sound_event_detection_and_data.ipynb"
    ran = subprocess.run([str(python), "-c", CELLS, str(nb), str(tmp_path / "run")],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    assert result["package"].startswith(str(_site_packages(python)))  # the wheel, not the tree
    assert result["magics"] == [f'%pip install -q "matsed-lite @ git+{REPOSITORY}@main"']
    assert result["clips"] > 0
