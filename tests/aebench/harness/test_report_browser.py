"""The report page in a real headless browser (Chromium from Debian packages, driven by
Playwright): it loads from disk with no console errors, the table is there, every image
loads and every video points at a file that exists and plays (duration > 0). A screenshot
is written as a test artefact (``$AEBENCH_TEST_ARTIFACTS``, default ``test-artifacts/``).

Skipped when Chromium or Playwright is absent, unless ``AEBENCH_REQUIRE_BROWSER=1`` (set by
``.ci/run``, which installs both), where their absence is a failure."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from aebench.harness.cli import main
from aebench.registry import REGISTERED as METHODS
from tests.aebench.harness.fake_method import toy_protocol

REPO_ROOT = Path(__file__).resolve().parents[3]

#: resolves once every <video> has its metadata (or an error): [{src, duration, error}]
VIDEOS_JS = """() => Promise.all([...document.querySelectorAll('video')].map(v => new Promise(done => {
  const report = () => done({src: v.currentSrc || v.src, duration: v.duration, error: v.error ? v.error.code : null});
  if (v.readyState >= 1 || v.error) return report();
  v.addEventListener('loadedmetadata', report, {once: true});
  v.addEventListener('error', report, {once: true});
  v.load();
})))"""


def chromium() -> str:
    path = os.environ.get("AEBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        if os.environ.get("AEBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail(
                "AEBENCH_REQUIRE_BROWSER=1 but Chromium or Playwright is missing (apt-get install chromium; pip install -e '.[dev]')"
            )
        pytest.skip("no Chromium (apt-get install chromium) or Playwright: the browser test of the report is skipped")
    return path


def test_report_page_in_headless_chromium(tmp_path, monkeypatch):
    exe = chromium()
    from playwright.sync_api import sync_playwright

    monkeypatch.setitem(METHODS, "noisy_gt", "tests.aebench.harness.fake_method:NoisyGT")
    path, runs, out = toy_protocol(tmp_path), tmp_path / "runs", tmp_path / "report"
    # hostile names (a driving-audio file and a row label): they must reach the page as text, never as markup
    import numpy as np
    import yaml
    from scipy.io import wavfile

    voice = tmp_path / 'a"onerror="alert(4).wav'
    wavfile.write(voice, 16000, (3000 * np.sin(np.arange(16000) / 7)).astype(np.int16))
    spec = yaml.safe_load(path.read_text())
    spec["rows"][0]["label"] = 'A<img src=x onerror="alert(5)">'
    spec["grid"]["audio"] = ["self", str(voice)]
    path.write_text(yaml.safe_dump(spec))
    runner = CliRunner()
    assert runner.invoke(main, ["run", f"protocol={path}", "--runs", str(runs)]).exit_code == 0
    res = runner.invoke(main, ["report", str(path), "--runs", str(runs), "--out", str(out)])
    assert res.exit_code == 0, res.output

    problems = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=["--autoplay-policy=no-user-gesture-required"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("dialog", lambda d: (problems.append(f"script ran: {d.message}"), d.dismiss()))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
        page.goto((out / "index.html").as_uri(), wait_until="load")
        videos = page.evaluate(VIDEOS_JS)
        images = page.evaluate("() => [...document.images].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth])")
        table = page.inner_text("table")
        artefacts = Path(os.environ.get("AEBENCH_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts"))
        artefacts.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(artefacts / "report_page.png"), full_page=True)
        browser.close()

    assert problems == []
    assert "PSNR [self] (ours)" in table and 'A<img src=x onerror="alert(5)">' in table  # shown as text
    assert images and all(width for _, width in images), images
    assert videos, "the page has no side-by-side video"
    for v in videos:
        assert v["error"] is None and v["duration"] > 0, v
        assert Path(v["src"].removeprefix("file://")).exists()
    assert (artefacts / "report_page.png").stat().st_size > 0
