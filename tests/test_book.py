"""The rendered book: it builds with warnings as errors, and every page renders offline in Chromium.

Screenshots of every page are saved to artifacts/screenshots/ for people to look at.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_notebooks import toc_chapters

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chapter_pages() -> list[str]:
    return ["book/intro.html", *(f"notebooks/{p.stem}.html" for p in toc_chapters())]


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    if shutil.which("npm") is None and not (ROOT / "book" / "vendor" / ".assets.json").exists():
        pytest.fail("npm is needed to vendor the book's JavaScript: install Node.js (e.g. `apt-get install npm`)")
    subprocess.run([sys.executable, str(ROOT / "book" / "tools.py"), "vendor"], check=True, cwd=ROOT)
    out = tmp_path_factory.mktemp("book")
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("jupyter-book")),
            "build",
            str(ROOT),
            "--path-output",
            str(out),
            "--warningiserror",
            "--keep-going",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 0, f"jupyter-book build failed:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
    return out / "_build" / "html"


@pytest.mark.slow
def test_book_builds_every_page(book):
    for page in chapter_pages():
        assert (book / page).is_file(), page
    for asset in (
        "widgets-setup.js",
        "require.js",
        "@jupyter-widgets/html-manager/dist/embed-amd.js",
        "mathjax/tex-mml-chtml.js",
    ):
        assert (book / "_static" / asset).is_file(), asset


@pytest.fixture(scope="module")
def server(book):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        pytest.fail(
            "Chromium not found: the rendered-page checks need it. Install it with "
            "`apt-get install chromium` (Debian/Ubuntu); .ci/run does this in CI."
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements.txt (playwright)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


def notebook_of(page: str) -> dict:
    if not page.startswith("notebooks/"):
        return {"cells": [], "metadata": {}}
    return json.loads((ROOT / page).with_suffix(".ipynb").read_text())


def notebook_has_widgets(page: str) -> bool:
    return bool(notebook_of(page)["metadata"].get("widgets"))


def page_has_math(page: str) -> bool:
    """Whether the chapter's markdown holds TeX ($...$), which MathJax must typeset."""
    cells = notebook_of(page)["cells"]
    return any("$" in "".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def stored_figures(page: str) -> int:
    """PNG outputs outside widget snapshots: each must become an <img> on the page."""
    return sum(
        "image/png" in out.get("data", {})
        for cell in notebook_of(page)["cells"]
        for out in cell.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" not in out.get("data", {})
    )


@pytest.mark.slow
@pytest.mark.parametrize("page", chapter_pages())
def test_page_renders_offline(page, server, browser):
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    failed, external, errors = [], [], []

    def route(r):
        if r.request.url.startswith(server) or r.request.url.startswith("data:"):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    tab.route("**/*", route)
    tab.on("requestfailed", lambda req: req.url.startswith(server) and failed.append(f"{req.url} {req.failure}"))
    tab.on("response", lambda resp: resp.status >= 400 and failed.append(f"{resp.url} HTTP {resp.status}"))
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(f"{server}/{page}", wait_until="networkidle")

    if page_has_math(page):
        tab.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20_000)
        tab.evaluate("() => MathJax.startup.promise")
    text = tab.inner_text("article")
    math = tab.locator("mjx-container").count()
    images = tab.evaluate(
        "() => Array.from(document.querySelectorAll('article img')).map(i => [i.src, i.complete && i.naturalWidth > 0])"
    )
    widgets = 0
    if notebook_has_widgets(page):  # sliders, progress bars, upload boxes: any rendered widget view
        tab.wait_for_selector(".jupyter-widgets", timeout=20_000)
        widgets = tab.locator(".jupyter-widgets").count()
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / f"{Path(page).stem}.png"), full_page=True)
    tab.close()

    assert not failed, f"failed local requests: {failed}"
    assert not external, f"the page asked for outside resources (it must render offline): {external}"
    assert not errors, f"JavaScript errors: {errors}"
    assert "\\(" not in text and "$$" not in text, "raw TeX left in the page: MathJax did not typeset it"
    if page_has_math(page):
        assert math > 0, "the page's TeX was not typeset by MathJax"
    assert len(images) >= stored_figures(page), f"{stored_figures(page)} figures stored, {len(images)} on the page"
    assert all(ok for _, ok in images), f"images that did not load: {[src for src, ok in images if not ok]}"
    if notebook_has_widgets(page):
        assert widgets > 0, "the saved widget state was not rendered"


PAD_PAGE = "notebooks/15_shipping_the_model.html"


@pytest.fixture(scope="module")
def pad(server, browser):
    """Chapter 15's page with its digit pad's model loaded, and every URL the page asked for."""
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    requested, errors = [], []
    tab.on("request", lambda req: requested.append(req.url))
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(f"{server}/{PAD_PAGE}", wait_until="networkidle")
    assert not any(url.endswith(".wasm") for url in requested), "the runtime loads only when the pad is in view"
    tab.locator(".digit-pad").scroll_into_view_if_needed()
    tab.wait_for_function("() => window.DigitPad && window.DigitPad.ready", timeout=20_000)
    tab.evaluate("() => DigitPad.ready")
    assert tab.evaluate("() => document.querySelector('.digit-pad').dataset.ready") == "true", "model not loaded"
    assert not errors, f"JavaScript errors: {errors}"
    yield tab, requested
    tab.close()


def pad_answer(tab) -> str:
    """The digit the pad shows once it has finished classifying ("" for none)."""
    tab.wait_for_function("() => document.querySelector('.digit-pad').dataset.state === 'done'", timeout=20_000)
    return tab.evaluate("() => document.querySelector('.digit-pad').dataset.prediction")


def draw(tab, strokes) -> str:
    """Draw strokes (lists of points on the 280 x 280 pad) with the mouse; return the digit the pad shows."""
    tab.click(".digit-pad-clear")
    box = tab.locator(".digit-pad-canvas").bounding_box()
    scale = box["width"] / 280
    for stroke in strokes:
        x, y = stroke[0]
        tab.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        tab.mouse.down()
        for x, y in stroke[1:]:
            tab.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=4)
        tab.mouse.up()
    return pad_answer(tab)


@pytest.mark.slow
def test_the_digit_pad_reads_digits_drawn_with_the_mouse(pad):
    import math

    tab, _ = pad
    zero = [[(140 + 55 * math.sin(t / 20 * math.pi), 140 - 85 * math.cos(t / 20 * math.pi)) for t in range(41)]]
    drawn = {
        "1": [[(145, 45), (140, 140), (135, 235)]],
        "0": zero,
        "7": [[(75, 55), (205, 55), (150, 145), (115, 235)]],
    }
    read = {digit: draw(tab, strokes) for digit, strokes in drawn.items()}
    tab.click(".digit-pad-clear")  # as you draw: an answer shows before the button is released
    box = tab.locator(".digit-pad-canvas").bounding_box()
    tab.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.15)
    tab.mouse.down()
    tab.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.85, steps=10)
    tab.wait_for_function("() => document.querySelector('.digit-pad').dataset.prediction !== ''", timeout=20_000)
    tab.mouse.up()
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.check(".digit-pad-toggle input")  # show what the network sees: the last digit, 28 x 28
    assert tab.locator(".digit-pad-seen").is_visible()
    ink = tab.evaluate(
        "() => Array.from(document.querySelector('.digit-pad-seen').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data).filter((v, i) => i % 4 === 0 && v > 128).length"
    )
    assert 20 <= ink < 300, f"the 28x28 preview shows {ink} bright pixels"
    tab.locator(".digit-pad").screenshot(path=str(SHOTS / "digit-pad.png"))
    tab.evaluate("() => { document.documentElement.dataset.theme = 'dark'; }")
    tab.locator(".digit-pad").screenshot(path=str(SHOTS / "digit-pad-dark.png"))
    tab.evaluate("() => { document.documentElement.dataset.theme = 'light'; }")
    tab.uncheck(".digit-pad-toggle input")
    assert read == {digit: digit for digit in drawn}, f"drawn -> read: {read}"
    tab.click(".digit-pad-clear")
    assert tab.evaluate("() => document.querySelector('.digit-pad').dataset.prediction") == ""


@pytest.mark.slow
def test_the_digit_pad_takes_a_finger(server, browser):
    """A "1" drawn with touch events, as on a phone: the page must not scroll instead."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    tab = context.new_page()
    tab.goto(f"{server}/{PAD_PAGE}", wait_until="networkidle")
    canvas = tab.locator(".digit-pad-canvas")
    canvas.scroll_into_view_if_needed()
    tab.wait_for_function("() => window.DigitPad && window.DigitPad.ready", timeout=20_000)
    tab.evaluate("() => DigitPad.ready")
    box = canvas.bounding_box()
    scroll = tab.evaluate("() => window.scrollY")
    cdp = context.new_cdp_session(tab)
    x = box["x"] + box["width"] / 2
    points = [(x, box["y"] + box["height"] * f) for f in (0.15, 0.35, 0.55, 0.75, 0.85)]
    cdp.send(
        "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": points[0][0], "y": points[0][1]}]}
    )
    for px, py in points[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": px, "y": py}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    read = pad_answer(tab)
    moved = tab.evaluate("() => window.scrollY") - scroll  # before the screenshot, which scrolls to the pad
    tab.locator(".digit-pad").screenshot(path=str(SHOTS / "digit-pad-phone.png"))
    context.close()
    assert read == "1" and moved == 0, f"read {read!r}, the page scrolled by {moved}"


@pytest.mark.slow
def test_the_pads_preprocessing_gives_pythons_28x28_pixels(pad):
    """The JavaScript port of mnist_course.preprocess.mnist_image, on the generated "photos" of chapter 10."""
    import base64
    import io

    import numpy as np

    from mnist_course.preprocess import mnist_image
    from mnist_course.sample_digits import make_samples

    tab, _ = pad
    samples = [s for s in make_samples(4, seed=5) if s.image.mode in ("L", "RGB")][:24]
    assert len(samples) >= 20
    worst = 0.0
    for sample in samples:
        png = io.BytesIO()
        sample.image.convert("RGB").save(png, format="PNG")
        js = tab.evaluate(
            """async (url) => {
                const img = new Image();
                img.src = url;
                await img.decode();
                const canvas = document.createElement("canvas");
                canvas.width = img.width;
                canvas.height = img.height;
                const ctx = canvas.getContext("2d");
                ctx.drawImage(img, 0, 0);
                const rgba = ctx.getImageData(0, 0, img.width, img.height).data;
                return Array.from(DigitPad.mnistImage(rgba, img.width, img.height));
            }""",
            "data:image/png;base64," + base64.b64encode(png.getvalue()).decode(),
        )
        python = mnist_image(sample.image.convert("RGB"))[0]
        worst = max(worst, float(np.abs(np.array(js, dtype=np.float32).reshape(28, 28) - python).max()))
    print(f"{len(samples)} images: largest difference between the JavaScript and Python pixels {worst:.2e}")
    assert worst < 1e-3, f"the JavaScript preprocessing differs from mnist_image by up to {worst:.3f}"


@pytest.mark.slow
def test_the_pad_page_asks_only_its_own_origin(pad, server):
    _, requested = pad
    assert any(url.endswith("lenet5.onnx") for url in requested)
    assert any(url.endswith(".wasm") for url in requested)
    others = [u for u in requested if not u.startswith((server, "data:", "blob:"))]
    assert not others, f"requests off the page's origin: {others}"
