"""Exports and the HTML report refuse to write through a planted link: a
profile is often exported as root, and a link where the output goes
(``trace.json -> /etc/...``) would have root overwrite its target."""
import pytest

import profiles
from conftest import run_msprof


@pytest.fixture
def profile(tmp_path):
    return profiles.reference(tmp_path / "p")


def test_an_export_file_that_is_a_link_is_refused(profile, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "trace.json"
    link.symlink_to(victim)
    r = run_msprof("export", profile, "--to", "chrome", "-o", link, "--force")
    assert r.returncode != 0 and "symbolic link" in r.stderr and "Traceback" not in r.stderr
    assert victim.read_text() == "precious"


def test_a_link_inside_an_export_directory_is_refused(profile, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = tmp_path / "tables"
    out.mkdir()
    (out / "kernels.parquet").symlink_to(victim)
    r = run_msprof("export", profile, "--to", "parquet", "-o", out, "--force")
    assert r.returncode != 0 and "symbolic link" in r.stderr
    assert victim.read_text() == "precious"


def test_an_html_report_that_is_a_link_is_refused(profile, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "report.html"
    link.symlink_to(victim)
    r = run_msprof("report", profile, "--html", link)
    assert r.returncode != 0 and "symbolic link" in r.stderr
    assert victim.read_text() == "precious"


def test_a_plain_path_still_exports(profile, tmp_path):
    r = run_msprof("export", profile, "--to", "chrome", "-o", tmp_path / "t.json")
    assert r.returncode == 0, r.stderr
