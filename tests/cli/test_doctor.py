"""What msprof doctor says to fix, without root: the one command that links
a system BCC into this environment, and no checkout script for a wheel."""
from conftest import REPO

from msprof.profiler import availability, system_setup


def test_the_bcc_fix_is_doctor_fix_or_one_command(monkeypatch):
    monkeypatch.setattr(availability, "find_system_bcc", lambda: "/usr/lib/python3/dist-packages/bcc")
    fix = availability._bcc_fix()
    pth, folder = system_setup.bcc_link_paths()
    assert fix.startswith("msprof doctor --fix (links /usr/lib/python3/dist-packages/bcc")
    assert (f"ln -sfn /usr/lib/python3/dist-packages/bcc {folder}/bcc && echo {folder} > {pth}"
            in fix)
    monkeypatch.setattr(availability, "find_system_bcc", lambda: None)
    assert availability._bcc_fix() == ("apt-get install python3-bpfcc bpfcc-tools, "
                                       "then msprof doctor --fix")


def test_a_checkout_is_told_from_an_installed_wheel():
    assert availability.checkout_root() == REPO        # this editable install
    for c in availability.checks():
        assert "setup.sh" not in c.fix, c
