"""The documentation site builds with `mkdocs build --strict`."""

import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    site = tmp_path / "site"
    assert (site / "api" / "index.html").exists()
    # The home page: the theme, and the pictures it shows are in the site.
    home = (site / "index.html").read_text()
    assert "material" in home.lower()
    pictures = re.findall(r'<img[^>]+src="([^"]+)"', home)
    assert {os.path.basename(p) for p in pictures} >= {
        "augmentations.jpg",
        "digits_neighbours.png",
        "report_curves.png",
    }
    for picture in pictures:
        assert (site / picture).stat().st_size > 1000, picture
    assert "1.86×" in home and "52.9%" in home  # the headline figures
    shutil.rmtree(site)


def test_readme_pictures_exist():
    with open(os.path.join(ROOT, "README.md")) as readme:
        pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme.read())
    assert len(pictures) >= 3
    for picture in pictures:
        assert os.path.getsize(os.path.join(ROOT, picture)) > 1000, picture
