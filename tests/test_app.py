"""End to end in a real headless browser: Debian's chromium driven by Playwright."""
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import app_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="no chromium browser installed")]
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory):
    # the same run offered twice: the page lists both names, each job runs the one chosen
    with app_server([tiny_run, tiny_run], tmp_path_factory.mktemp("app_log")) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        yield b
        b.close()


def _song(path: Path, seconds=4.0, sr=44100) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.2 * np.sin(2 * np.pi * 440 * t)[:, None] * np.ones((1, 2))
    sf.write(path, x.astype(np.float32), sr)
    return path


def _upload_and_wait(page, url, files):
    page.goto(url)
    page.set_input_files("#file", files)
    page.click("#go")


def test_upload_separate_listen_and_download(server, browser, tmp_path):
    page = browser.new_page()
    _upload_and_wait(page, server["url"], str(_song(tmp_path / "my song.wav")))
    page.wait_for_selector("#result", state="visible", timeout=120_000)
    assert page.locator("#stage").inner_text() == "Done."
    # the spectrogram image loads after the result shows (a second request): wait for it, then check it
    page.wait_for_function("(() => { const img = document.getElementById('spectrogram');"
                           " return img.complete && img.naturalWidth > 0; })()", timeout=30_000)
    for stem in ("vocals", "accompaniment"):
        with page.expect_download() as info:
            page.click(f"#dl-{stem}")
        saved = tmp_path / f"{stem}.wav"
        info.value.save_as(saved)
        assert info.value.suggested_filename == f"my song - {stem}.wav"
        data, sr = sf.read(saved, always_2d=True)
        assert sr == 44100 and data.shape == (int(4.0 * 44100), 2)
    page.close()


def test_non_audio_too_big_and_too_long_are_rejected(server, browser, tmp_path):
    page = browser.new_page()
    (tmp_path / "notes.mp3").write_text("this is not a song\n" * 100)
    _upload_and_wait(page, server["url"], str(tmp_path / "notes.mp3"))
    page.wait_for_function("document.getElementById('error').textContent.length > 0", timeout=30_000)
    assert "not audio" in page.locator("#error").inner_text()
    big = tmp_path / "big.wav"
    sf.write(big, np.zeros((400_000, 2), np.float32), 44100)          # 3.2 MB > 1 MB
    _upload_and_wait(page, server["url"], str(big))
    page.wait_for_function("document.getElementById('error').textContent.includes('larger')", timeout=30_000)
    long = _song(tmp_path / "long.flac", seconds=20, sr=8000)            # 20 s > 0.25 min
    _upload_and_wait(page, server["url"], str(long))
    page.wait_for_function("document.getElementById('error').textContent.includes('limit')", timeout=30_000)
    page.close()


def test_concurrent_uploads_and_hostile_names(server, browser, tmp_path):
    song = _song(tmp_path / "a.wav", seconds=3.0).read_bytes()
    pages = [browser.new_page() for _ in range(2)]
    names = ["../../../../tmp/escape.wav", "second.wav"]
    for page, name in zip(pages, names):
        _upload_and_wait(page, server["url"], {"name": name, "mimeType": "audio/wav", "buffer": song})
    for page in pages:
        page.wait_for_selector("#result", state="visible", timeout=120_000)
    assert pages[0].get_attribute("#dl-vocals", "download") == "escape - vocals.wav"
    assert not Path("/tmp/escape.wav").exists()
    jobs = [p for p in server["work_dir"].iterdir()]
    assert all(re.fullmatch(r"[0-9a-f]{32}", p.name) for p in jobs)
    assert all(not (p / "upload.wav").exists() for p in jobs)                # uploads are deleted
    for page in pages:
        page.close()


def test_unknown_job_and_traversal_urls(server, browser):
    page = browser.new_page()
    for url in ("api/jobs/0123", "api/jobs/" + "a" * 32 + "/vocals.wav", "api/jobs/" + "a" * 32 + "/..%2F..%2Fetc%2Fpasswd"):
        response = page.goto(server["url"] + url)
        assert response.status == 404
    page.close()


def test_wiener_choice_is_offered_sent_and_checked(server, browser, tmp_path):
    page = browser.new_page()
    page.goto(server["url"])
    options = page.eval_on_selector_all("#wiener option", "os => os.map(o => o.value)")
    assert options == ["0", "1", "2", "3"]
    page.select_option("#wiener", "1")
    page.set_input_files("#file", str(_song(tmp_path / "w.wav", 3.0)))
    page.click("#go")
    page.wait_for_selector("#result", state="visible", timeout=120_000)
    import urllib.error
    import urllib.request
    request = urllib.request.Request(server["url"] + "api/jobs?wiener=9", data=b"x", method="POST",
                                     headers={"Content-Type": "multipart/form-data; boundary=b"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400 and b"wiener" in refused.value.read()


def test_model_choice_is_offered_sent_and_checked(server, browser, tmp_path):
    import json
    import urllib.error
    import urllib.request
    page = browser.new_page()
    page.goto(server["url"])
    options = page.eval_on_selector_all("#model option", "os => os.map(o => o.value)")
    assert options == ["run", "run (2)"]
    page.select_option("#wiener", "3")
    page.select_option("#model", "run (2)")            # its own default post-filter is selected
    assert page.eval_on_selector("#wiener", "s => s.value") == "0"
    with page.expect_response(lambda r: "api/jobs?" in r.url) as created:
        page.set_input_files("#file", str(_song(tmp_path / "m.wav", 3.0)))
        page.click("#go")
    job = created.value.json()
    page.wait_for_selector("#result", state="visible", timeout=120_000)
    with urllib.request.urlopen(server["url"] + "api/jobs/" + job["id"], timeout=30) as response:
        assert json.loads(response.read())["model"] == "run (2)"
    request = urllib.request.Request(server["url"] + "api/jobs?model=..%2Fetc", data=b"x", method="POST",
                                     headers={"Content-Type": "multipart/form-data; boundary=b"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400 and b"model must be one of" in refused.value.read()


# Last: it stops the module's server.
def test_shutdown_removes_temporary_files(server):
    proc = server["proc"]
    proc.send_signal(signal.SIGTERM)          # as a service manager stops it
    proc.wait(timeout=30)
    assert not server["work_dir"].exists()
