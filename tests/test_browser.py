"""The live monitor widget, rendered for real: JupyterLab in Debian's chromium, driven by
Playwright. The notebook runs against the real Docker engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

import helpers

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                'import helpers\nfrom helpers import docker\nme = helpers.setup("01-containers")\n'
                "docker.cleanup()\n"
                'docker.run("course/web:v1", "busy", command=["sh", "-c", "while :; do :; done"])'
            ),
            nbformat.v4.new_code_cell('monitor = docker.monitor("busy", interval=0.5)\nmonitor'),
        ]
    )
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, tmp_path / "monitor.ipynb")
    port = helpers.free_port()
    env = {
        **os.environ,
        "COURSE_LEARNER": "pytest-browser",
        "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--allow-root",
            f"--ServerApp.root_dir={tmp_path}",
            "--LabApp.news_url=",
            "--ServerApp.disable_check_xsrf=True",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "server.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/api/status", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("JupyterLab did not start: " + (tmp_path / "server.log").read_text()[-2000:])
    try:
        yield url, tmp_path
    finally:
        server.terminate()
        server.wait(timeout=20)
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import helpers; from helpers import docker, _identity;"
                "_identity.chapter('01-containers'); docker.cleanup()",
            ],
            env={**env},
            check=False,
        )


def test_the_monitor_renders_and_stops_in_jupyterlab(jupyterlab: tuple[str, Path]) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    url, folder = jupyterlab
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/lab/tree/monitor.ipynb", wait_until="domcontentloaded")
        page.wait_for_selector(".jp-Notebook", timeout=60_000)
        page.wait_for_selector(
            ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000
        )
        plot = page.locator(".jp-OutputArea-output img").first
        for _attempt in range(3):  # a kernel still connecting can swallow the first Run All
            page.get_by_role("menuitem", name="Run").click()
            page.get_by_text("Run All Cells", exact=True).click()
            try:
                plot.wait_for(timeout=30_000)
                break
            except PlaywrightTimeout:
                page.keyboard.press("Escape")
        else:
            page.screenshot(path=str(folder / "failed.png"), full_page=True)
            pytest.fail(
                f"the monitor never rendered; screenshot: {folder / 'failed.png'}, "
                f"server log: {(folder / 'server.log').read_text()[-1500:]}"
            )
        stop = page.locator(".widget-button", has_text="Stop").first
        stop.wait_for(timeout=30_000)
        time.sleep(2.5)  # let a few samples arrive and redraw
        first = plot.get_attribute("src")
        time.sleep(1.5)
        assert plot.get_attribute("src") != first, "the plot redraws while the monitor runs"
        stop.click()
        status = page.locator(".widget-label", has_text="stopped after")
        status.wait_for(timeout=15_000)
        box = plot.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 100
        page.screenshot(path=str(folder / "monitor.png"), full_page=True)
        frozen = plot.get_attribute("src")
        time.sleep(1.5)
        assert plot.get_attribute("src") == frozen, "nothing redraws after Stop"
        browser.close()
