"""Live views rendered for real: JupyterLab in Debian's chromium, driven by Playwright. The
monitor runs against the real Docker engine, the pod map against the real cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest

import helpers

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "web", "image": "course/web:v1"}],
            },
        },
    },
}


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
    pod_map = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                'import helpers\nfrom helpers import k8s\nme = helpers.setup("04-deployments")\n'
                f"ns = k8s.namespace()\nk8s.apply({DEPLOYMENT!r}, ns)"
            ),
            nbformat.v4.new_code_cell("pod_map = k8s.pod_map(ns)\npod_map"),
            nbformat.v4.new_code_cell('import time\ntime.sleep(3)\nk8s.scale("web", 3, ns)'),
        ],
        metadata=notebook.metadata,
    )
    nbformat.write(pod_map, tmp_path / "pod_map.ipynb")
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
                "import helpers; from helpers import docker, k8s, _identity;"
                "_identity.chapter('01-containers'); docker.cleanup();"
                "k8s.delete_namespace(k8s.namespace('04-deployments'), wait_until_gone=False)",
            ],
            env={**env},
            check=False,
        )


@contextmanager
def lab_page(url: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

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
        yield browser.new_page(viewport={"width": 1280, "height": 900})
        browser.close()


def answer_dialogs(page: Any) -> list[str]:
    """What JupyterLab's open dialogs say, each answered with its default button (a server slow
    to answer while the lessons run beside it can open one: it blocks every click)."""
    said = []
    for dialog in page.locator(".jp-Dialog").all():
        said.append(" ".join(dialog.inner_text().split())[:200])
        dialog.locator(".jp-Dialog-button.jp-mod-accept").first.click(timeout=10_000)
    return said


def run_all_until_a_picture(page: Any, url: str, folder: Path, notebook: str) -> Any:
    """Open the notebook, Run All, and return the live view's picture once it shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(f"{url}/lab/tree/{notebook}", wait_until="domcontentloaded")
    # JupyterLab's first load and the kernel's start: slow while the lessons run beside this
    page.wait_for_selector(".jp-Notebook", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    plot = page.locator(".jp-OutputArea-output img").first
    dialogs = []
    for _attempt in range(3):  # a kernel still connecting can swallow the first Run All
        dialogs += answer_dialogs(page)
        page.get_by_role("menuitem", name="Run").click()
        page.get_by_text("Run All Cells", exact=True).click()
        try:
            plot.wait_for(timeout=30_000)
            return plot
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    page.screenshot(path=str(folder / "failed.png"), full_page=True)
    pytest.fail(
        f"{notebook}: the live view never rendered; screenshot: {folder / 'failed.png'}, "
        f"dialogs: {dialogs}, server log: {(folder / 'server.log').read_text()[-1500:]}"
    )


def stop_and_check_it_stays_still(page: Any, plot: Any, folder: Path, name: str) -> None:
    page.locator(".widget-button", has_text="Stop").first.click()
    page.locator(".widget-label", has_text="stopped after").wait_for(timeout=30_000)
    box = plot.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    frozen = plot.get_attribute("src")
    time.sleep(1.5)
    assert plot.get_attribute("src") == frozen, "nothing redraws after Stop"


def test_the_monitor_renders_and_stops_in_jupyterlab(jupyterlab: tuple[str, Path]) -> None:
    url, folder = jupyterlab
    with lab_page(url) as page:
        plot = run_all_until_a_picture(page, url, folder, "monitor.ipynb")
        page.locator(".widget-button", has_text="Stop").first.wait_for(timeout=30_000)
        time.sleep(2.5)  # let a few samples arrive and redraw
        first = plot.get_attribute("src")
        time.sleep(1.5)
        assert plot.get_attribute("src") != first, "the plot redraws while the monitor runs"
        stop_and_check_it_stays_still(page, plot, folder, "monitor")


@pytest.mark.cluster
def test_the_pod_map_follows_a_scale_up_in_jupyterlab(jupyterlab: tuple[str, Path]) -> None:
    url, folder = jupyterlab
    with lab_page(url) as page:
        plot = run_all_until_a_picture(page, url, folder, "pod_map.ipynb")
        first = plot.get_attribute("src")
        deadline = time.monotonic() + 60
        while plot.get_attribute("src") == first and time.monotonic() < deadline:
            time.sleep(0.5)  # the map redraws when the watch brings the new pods
        assert plot.get_attribute("src") != first, "the pod map never changed as pods came"
        page.wait_for_selector(
            ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000
        )
        stop_and_check_it_stays_still(page, plot, folder, "pod_map")
