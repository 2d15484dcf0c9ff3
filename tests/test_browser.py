"""The explorers in a real browser: JupyterLab on localhost, driven by headless Chromium.

For each chapter with an explorer, a copy of the notebook with smoke parameters is
opened in JupyterLab, all its cells are run from the Run menu, and the test checks
that the explorer's sliders are rendered, moves one with the keyboard and checks that
the figure on the page changes (screenshots of the explorer's image before and after
differ). The screenshots stay in the test's temporary folder.

Needs Debian's ``chromium`` (or ``MATSED_CHROMIUM`` naming a Chromium binary) and
Playwright's Python package; skipped without them, failed without them where
``MATSED_REQUIRE_BROWSER`` is set (``.ci/run`` sets it). Playwright's own browser
downloads are never used: it is pointed at the system binary.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from matsed_lite.course.notebook import DATA_SEED
from matsed_lite.data.desed_lite import generate_desed_lite

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("MATSED_CHROMIUM") or next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)

# notebook -> (slider moved, number of sliders the explorer shows)
CHAPTERS = {
    "02_relative_positional_attention": ("query frame", 3),
    "03_block_masking": ("seed", 3),
    "06_global_local_fusion": ("lambda", 1),
    "07_psds_evaluation": ("threshold", 1),
}
RUN_TIMEOUT_S = 480  # all cells of every chapter at the smoke preset, run side by side


def _missing(reason: str):
    """Skip, or fail where MATSED_REQUIRE_BROWSER is set (.ci/run sets it)."""
    if os.environ.get("MATSED_REQUIRE_BROWSER"):
        pytest.fail(f"{reason}; MATSED_REQUIRE_BROWSER is set, so the browser test must run")
    pytest.skip(reason)


def _sync_playwright():
    if CHROMIUM is None:
        _missing("no Chromium (apt-get install chromium, or set MATSED_CHROMIUM to its binary)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright; its browser "
                 "downloads are not needed)")
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings_dir: Path) -> None:
    """JupyterLab user settings for the test: every cell kept in the page (no
    windowing), no news or update pop-ups."""
    tracker = settings_dir / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text('{"windowingMode": "none"}')
    notes = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notes.parent.mkdir(parents=True, exist_ok=True)
    notes.write_text('{"fetchNews": "false", "checkForUpdates": false}')


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 with a random token; shut down at the end."""
    _sync_playwright()
    base = tmp_path_factory.mktemp("browser_lab")
    root = base / "root"
    root.mkdir()
    _write_settings(base / "settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               JUPYTER_CONFIG_DIR=str(base / "config"), JUPYTER_RUNTIME_DIR=str(base / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(base / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
               IPYTHONDIR=str(base / "ipython"), MPLBACKEND="Agg")
    log = open(base / "jupyter.log", "wb")
    # The kernel spec "python3" runs `python`, which jupyter_client resolves to the
    # server's own interpreter: the kernel uses this environment.
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)

    def stop():
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop()
                pytest.fail(f"JupyterLab did not start; log:\n{(base / 'jupyter.log').read_text()}")
            time.sleep(0.5)
    # The notebooks run side by side: the data must exist before they start, or four
    # kernels would generate into one folder at once.
    generate_desed_lite(base / "data", "smoke", seed=DATA_SEED, progress=False)
    yield {"url": url, "token": token, "root": root, "data": base / "data", "log": base / "jupyter.log"}
    stop()


@pytest.fixture(scope="module")
def browser(lab):
    with _sync_playwright()() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


def _smoke_copy(name: str, dest: Path, data: Path, out: Path) -> None:
    """The chapter with a cell setting smoke parameters after its parameters cell."""
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(
        "# Parameters (tests/test_browser.py)\n"
        f'PRESET = "smoke"\nDATA_ROOT = {str(data)!r}\nOUT_DIR = {str(out)!r}\nSEED = 0\n'))
    nbformat.write(nb, dest)


PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
PROMPTS_JS = f"""() => Array.from(document.querySelectorAll(
    '{PANEL} .jp-CodeCell .jp-InputArea-prompt')).map(e => e.textContent.trim())"""
KERNEL_IDLE_JS = """() => {
    const bar = document.querySelector('#jp-main-statusbar');
    return bar !== null && / [|] Idle/.test(bar.innerText) && !/No Kernel/.test(bar.innerText);
}"""


def _prompts(page) -> list[str]:
    return page.evaluate(PROMPTS_JS)


def _start_run_all(page) -> None:
    """Run > Run All Cells, once the kernel is connected and idle."""
    # The toolbar's indicator says "idle" before any kernel exists; the status bar
    # names the kernel and its state once it is connected.
    page.wait_for_function(KERNEL_IDLE_JS, timeout=120_000)
    for _attempt in range(3):  # a click while the page is still settling can be lost
        page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
        for _ in range(20):
            if any(p != "[ ]:" for p in _prompts(page)):
                return
            time.sleep(0.5)
    pytest.fail(f"Run > Run All Cells started no cell; prompts {_prompts(page)}")


def _wait_all_ran(page, deadline: float) -> None:
    """Wait until every code cell has run; fail naming the error if one stopped the run."""
    stalled = 0
    while True:
        prompts = _prompts(page)
        done = [p for p in prompts if p[1:-2].strip().isdigit()]
        if prompts and len(done) == len(prompts):
            return
        # Run All stops at an error: no cell queued or running, some never ran.
        stalled = stalled + 1 if not any("*" in p for p in prompts) else 0
        if stalled >= 5 or time.monotonic() > deadline:
            errors = page.locator(f"{PANEL} .jp-OutputArea-output",
                                  has_text="Traceback").all_inner_texts()
            pytest.fail(f"{len(done)} of {len(prompts)} cells ran; prompts {prompts}; "
                        f"errors: {errors[:1] or 'none shown'}")
        time.sleep(1)


@pytest.fixture(scope="module")
def runs(lab, browser, request):
    """Every selected chapter opened in its own page (own JupyterLab workspace) and
    started with Run All at once: the kernels run side by side, so the module takes
    about as long as the slowest chapter where there are cores for them."""
    selected = {item.callspec.params["name"] for item in request.session.items
                if item.originalname == "test_explorer_reacts_in_jupyterlab"}
    started, pages = time.monotonic(), {}
    for name in (n for n in CHAPTERS if n in selected):
        out = lab["root"].parent / "out" / name
        _smoke_copy(name, lab["root"] / f"{name}.ipynb", lab["data"], out)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # Four kernels share two cores: Playwright's 30 s default is too tight for a
        # busy machine (one timeout in seven runs here), so every wait gets 90 s.
        page.set_default_timeout(90_000)
        page.goto(f"{lab['url']}/lab/workspaces/{name[:2]}/tree/{name}.ipynb"
                  f"?reset&token={lab['token']}")
        pages[name] = page
    for name, page in pages.items():
        page.locator(f"{PANEL} .jp-Notebook").wait_for(timeout=120_000)
        _start_run_all(page)
    yield {"pages": pages, "deadline": started + RUN_TIMEOUT_S}
    for page in pages.values():
        page.close()


@pytest.mark.timeout(RUN_TIMEOUT_S + 120)
@pytest.mark.parametrize("name", list(CHAPTERS), ids=[n[:2] for n in CHAPTERS])
def test_explorer_reacts_in_jupyterlab(name, runs, tmp_path):
    page = runs["pages"][name]
    try:
        _check_explorer(name, page, runs["deadline"], tmp_path)
    except BaseException:
        page.screenshot(path=tmp_path / f"{name[:2]}_failure.png", full_page=True)
        raise


def _screenshot(image, path, tries: int = 5) -> bytes:
    """A screenshot of the explorer's image; if a late redraw swaps the <img> while it is
    taken ("not attached to the DOM"), the locator finds the new one and tries again."""
    for attempt in range(tries):
        try:
            return image.screenshot(path=path)
        except Exception as exc:  # playwright's Error; its module is imported lazily
            if "not attached" not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(1.0)


def _check_explorer(name, page, deadline, tmp_path):
    slider_label, n_sliders = CHAPTERS[name]
    _wait_all_ran(page, deadline)

    # The explorer: a VBox holding the sliders and an Output showing the figure.
    explorer = page.locator(f"{PANEL} .jp-OutputArea-output .widget-vbox",
                            has=page.locator(".widget-slider")).first
    explorer.scroll_into_view_if_needed(timeout=90_000)
    sliders = explorer.locator(".widget-slider")
    assert sliders.count() == n_sliders, f"{sliders.count()} sliders rendered, expected {n_sliders}"
    for i in range(n_sliders):
        assert sliders.nth(i).is_visible()
    image = explorer.locator(".widget-output img").first
    image.wait_for(timeout=90_000)
    page.screenshot(path=tmp_path / f"{name[:2]}_page_before.png")
    before_png = _screenshot(image, tmp_path / f"{name[:2]}_before.png")
    before_src = image.get_attribute("src")

    # Two presses of an arrow key on the focused slider handle (left if it sits at its maximum).
    slider = sliders.filter(has_text=slider_label).first
    readout = moved_to = slider.locator(".widget-readout").inner_text()
    slider.locator(".noUi-handle").first.focus()
    for key in ("ArrowRight", "ArrowLeft"):
        page.keyboard.press(key)
        page.keyboard.press(key)
        moved_to = slider.locator(".widget-readout").inner_text()
        if moved_to != readout:
            break
    assert moved_to != readout, f"the {slider_label!r} slider did not move from {readout}"
    # The kernel redraws and the Output shows a new PNG (in a new <img>), once per key
    # press: wait until the picture has changed and then stopped changing (1.5 s without a
    # new src), up to 60 s; if none comes, the comparison below fails, saying so.
    last, steady_since = before_src, None
    for _ in range(120):
        src = image.get_attribute("src")
        if src != last:
            last, steady_since = src, time.monotonic()
        elif last != before_src and time.monotonic() - steady_since > 1.5:
            break
        time.sleep(0.5)
    time.sleep(0.5)  # let the new image decode and lay out
    after_png = _screenshot(image, tmp_path / f"{name[:2]}_after.png")
    page.screenshot(path=tmp_path / f"{name[:2]}_page_after.png")
    assert after_png != before_png, (
        f"moving {slider_label!r} from {readout} to {moved_to} did not change the figure; "
        f"screenshots in {tmp_path}")
