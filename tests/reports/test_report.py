"""`report` end to end on a small real run: files, terminal output, a partial run, and the
HTML page rendered in headless Chromium."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from benchmark.cli import main
from reports.build import build_report
from reports.html import markdown_to_html

pytestmark = pytest.mark.slow

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def test_report_writes_every_format(run_dir: Path, capsys: pytest.CaptureFixture) -> None:
    out = run_dir / "report"
    assert main(["report", str(run_dir), "--metric", "fid", "--metric", "artifact_rate"]) == 0
    printed = capsys.readouterr().out
    assert "Robustness thresholds:" in printed
    assert "| corruption | gan | seeds | onset (fid) | onset (artifact_rate) |" in printed
    for name in ("thresholds.md", "thresholds.csv", "thresholds.tex", "metrics.md",
                 "metrics.csv", "metrics-by-epoch.md", "report.html"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"severity-fid-gaussian.png", "severity-fid-gaussian.svg"} <= figures
    assert "mosaic-gaussian.png" in figures


def test_report_of_a_partial_run_names_the_missing_cells(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(run_dir, partial)
    with sqlite3.connect(partial / "results.sqlite") as db:
        (cell_id,) = db.execute(
            "SELECT id FROM cells WHERE severity = 0.5 AND seed = 1 AND gan = 'vanilla'"
        ).fetchone()
        tables = ("metrics", "artifact_rates", "data_artifact_rates", "history")
        for table in (*tables, "epoch_metrics", "epoch_artifact_rates"):
            db.execute(f"DELETE FROM {table} WHERE cell_id = ?", (cell_id,))
        db.execute("DELETE FROM cells WHERE id = ?", (cell_id,))
    report = build_report(partial, tmp_path / "out", formats=("md",))
    assert "Cells not done (1): gaussian-0.5-vanilla-s1 (not run)" in report.text
    assert "| gaussian | vanilla | 2 |" in report.text  # still decided, on what there is


def test_report_rejects_unknown_metric_and_format(
    run_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["report", str(run_dir), "--metric", "fdi"]) == 2
    assert "error: --metric 'fdi' is unknown; accepted: fid, kid" in capsys.readouterr().err
    assert main(["report", str(run_dir), "--format", "md,pdf"]) == 2
    assert "error: --format 'pdf' is unknown; accepted: md, csv" in capsys.readouterr().err
    assert main(["report", str(run_dir), "--tolerance", "fid"]) == 2
    assert "is not METRIC=NUMBER" in capsys.readouterr().err


def test_markdown_tables_become_html_tables() -> None:
    page = markdown_to_html("| a | b |\n|---|---|\n| 1 | <2> |\n\nA note.\n")
    assert page == (
        "<table><thead><tr><th>a</th><th>b</th></tr></thead>"
        "<tbody><tr><td>1</td><td>&lt;2&gt;</td></tr></tbody></table>\n<p>A note.</p>"
    )


@pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="headless Chromium not installed (Debian packages chromium and chromium-driver; "
    ".ci/run installs them)",
)
def test_report_html_renders_in_chromium_with_every_image(run_dir: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    build_report(run_dir, run_dir / "report-html", formats=("html",))
    page = run_dir / "report-html" / "report.html"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(page.as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])"
        )
        headers = driver.execute_script(
            "return Array.from(document.querySelectorAll('th')).map(th => th.textContent)"
        )
        title = driver.title
    finally:
        driver.quit()
    assert title == "reported: robustness report"
    assert len(images) >= 4
    assert all(complete and width > 0 for _, complete, width in images), images
    assert "onset (fid)" in headers and "onset (artifact_rate)" in headers


@pytest.mark.parametrize("alpha", ["0", "1.5"])
def test_report_rejects_alpha_outside_the_unit_interval(
    run_dir: Path, capsys: pytest.CaptureFixture, alpha: str
) -> None:
    assert main(["report", str(run_dir), "--alpha", alpha]) == 2
    assert f"error: --alpha must lie in (0, 1), got {float(alpha)!r}" in capsys.readouterr().err
