"""msprof installs as one distribution whose modules all live under msprof."""
import subprocess
import sys
import zipfile

from conftest import REPO, run_msprof


def test_wheel_holds_only_the_msprof_namespace(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(REPO)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("msprof-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"msprof", next(t for t in tops if t.endswith(".dist-info"))}
    for sub in ("runtime", "probes", "profiler", "analysis", "cli"):
        assert any(n.startswith(f"msprof/{sub}/") for n in names), sub
    assert any(n.startswith("msprof/runtime/_usdt") and n.endswith(".so") for n in names)
    assert "msprof/probes/trace.c" in names and "msprof/probes/CATALOG.md" in names
    assert "msprof/cli/reporters/html/page.py" in names     # the HTML report, a subpackage


def test_console_script_lists_the_commands():
    r = run_msprof("--help")
    assert r.returncode == 0
    for command in ("run", "report", "doctor", "collect"):
        assert command in r.stdout


def test_doctor_says_ready_here(ebpf_ready):
    r = run_msprof("doctor")
    assert r.returncode == 0, r.stdout
    assert "eBPF backend: ready" in r.stdout


def test_doctor_without_bpf_privileges_says_what_to_fix():
    from conftest import MSPROF

    r = subprocess.run(["setpriv", "--inh-caps=-all", "--bounding-set=-bpf,-perfmon,-sys_admin",
                        MSPROF, "doctor"], capture_output=True, text=True,
                       env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1
    assert "eBPF backend: unavailable" in r.stdout
    assert "sudo msprof run" in r.stdout
