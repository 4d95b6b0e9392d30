"""The HTML report in a real browser (headless Chromium): it loads, shows every section and
every image, makes no network request, and a screenshot is taken.

How "no network request" is checked: Chromium is driven through its DevTools protocol over a
pipe (``--remote-debugging-pipe``: JSON messages on file descriptors 3 and 4, no port and no
extra package). With the Network domain enabled, the browser reports every request it starts
(``Network.requestWillBeSent``), including ``file:`` and ``data:`` URLs, before any policy or
network layer can block or fail it. The report passes if every URL it requested is ``file:``
(the page) or ``data:`` (its images). A control page that references an ``http:`` image and an
``https:`` stylesheet is loaded through the same harness and must show those requests, so the
check is known to be able to fail.

The screenshot is taken the plain way, ``chromium --headless --screenshot=FILE
--window-size=W,H`` with H the page height measured in the first run.

Skipped, with the reason, when ``chromium`` is not on PATH (``.ci/run`` installs Debian's
package).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not on PATH (Debian: apt-get install chromium)")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run")
SECTIONS = ["verdict", "summary", "reliability", "smooth", "bits", "classwise",
            "recalibration", "recommendation", "bins", "classes", "settings"]
PAGE_STATE = """JSON.stringify({
  title: document.title,
  sections: [...document.querySelectorAll('section')].map(s => s.id),
  verdict: document.querySelectorAll('#verdict li').length,
  tables: document.querySelectorAll('table').length,
  height: document.documentElement.scrollHeight,
  images: [...document.images].map(i => ({complete: i.complete, width: i.naturalWidth,
                                          height: i.naturalHeight, shown: i.clientWidth,
                                          alt: i.alt, scheme: i.src.split(':')[0]})),
})"""


class DevTools:
    """Chromium driven over ``--remote-debugging-pipe`` (NUL-terminated JSON messages)."""

    def __init__(self, profile: Path) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def descriptors() -> None:  # in the child: its fd 3 reads commands, fd 4 writes
            r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.process = subprocess.Popen(
            [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=descriptors)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_child], [], [],
                                        max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, event: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            self.events.append(self._receive(deadline))

    def load(self, url: str) -> dict[str, Any]:
        """Open ``url`` in a new tab with network events on; returns the page's state."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target,
                                                      "flatten": True})["sessionId"]
        self.call("Network.enable", session=session)
        self.call("Page.enable", session=session)
        self.call("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired")
        state = self.call("Runtime.evaluate", {"expression": PAGE_STATE,
                                               "returnByValue": True}, session=session)
        return json.loads(state["result"]["value"])

    def requested(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.call("Browser.close", timeout=10)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_child)
        os.close(self._from_child)


def _browse(path: Path, profile: Path) -> tuple[dict[str, Any], list[str]]:
    browser = DevTools(profile)
    try:
        state = browser.load(path.resolve().as_uri())
        return state, browser.requested()
    finally:
        browser.close()


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory) -> Path:
    """The demo's report (an over-confident network on the digits, temperature-scaled)."""
    pytest.importorskip("sklearn", reason="the demo needs scikit-learn (the [demo] extra)")
    pytest.importorskip("matplotlib", reason="the HTML report needs matplotlib ([plot])")
    from trueprob.demo import train_demo_model, write_demo_report

    out = tmp_path_factory.mktemp("demo")
    made = write_demo_report(train_demo_model(seed=0), out, n_replicates=100)
    assert made.html
    return made.path


def test_report_loads_with_every_section_and_image_and_no_network(demo_report, tmp_path):
    state, urls = _browse(demo_report, tmp_path / "profile")
    assert state["sections"] == SECTIONS
    assert state["title"] == f"trueprob report — {demo_report.parent / 'test.npz'}"
    assert state["verdict"] >= 3 and state["tables"] >= 6
    images = state["images"]
    assert len(images) == 8
    for image in images:
        assert image["scheme"] == "data" and image["complete"], image
        assert image["width"] > 100 and image["height"] > 100 and image["shown"] > 100, image
        assert image["alt"]
    schemes = {url.split(":", 1)[0] for url in urls}
    assert schemes <= {"file", "data"}, [u for u in urls if not u.startswith(("file:",
                                                                              "data:"))]
    assert urls[0] == demo_report.resolve().as_uri()
    assert sum(u.startswith("data:image/svg+xml") for u in urls) == 8


def test_the_harness_sees_network_requests(tmp_path):
    control = tmp_path / "control.html"
    control.write_text('<!doctype html><html><head><link rel="stylesheet" '
                       'href="https://example.invalid/style.css"></head><body>'
                       '<img src="http://127.0.0.1:9/pixel.png" alt="x"></body></html>')
    _, urls = _browse(control, tmp_path / "profile")
    assert "https://example.invalid/style.css" in urls
    assert "http://127.0.0.1:9/pixel.png" in urls


def test_screenshot_of_the_report(demo_report, tmp_path):
    pil = pytest.importorskip("PIL.Image", reason="pillow reads the screenshot")
    state, _ = _browse(demo_report, tmp_path / "profile")
    height = int(state["height"])
    shot = Path(os.environ.get("TRUEPROB_SCREENSHOT", tmp_path / "report.png"))
    run = subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / 'profile2'}", "--hide-scrollbars",
         f"--screenshot={shot}", f"--window-size=1200,{height}", demo_report.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    with pil.open(shot) as image:
        assert image.size == (1200, height)
        pixels = np.asarray(image.convert("L"))
    assert height > 3000  # the whole page: verdict, diagrams and tables
    # not blank: dark text and figure ink on a white page
    assert (pixels < 100).mean() > 0.002 and (pixels > 250).mean() > 0.5
