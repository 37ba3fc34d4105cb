"""The compiled message path: loaded only where the build matches the source, said where not.

The copies run in a subprocess on a copy of sip/ and hotpath/ with this build's sip extensions,
so editing the copy's source never touches the tree the suite runs from.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hotpath

SIP = [name for name in hotpath.MODULES if name.startswith("sip.")]


def needs_build():
    why = {name: w for name, w in hotpath.survey(hotpath.read_manifest()).items() if w}
    if why:
        pytest.fail(f"the hot path is not built or not current ({why}): run `make hotpath`")


def test_the_suite_runs_what_production_runs():
    """`make test` sets LBPANEL_HOTPATH=required: every module of the message path is compiled."""
    if os.environ.get("LBPANEL_HOTPATH") != "required":
        pytest.skip("only under make test (LBPANEL_HOTPATH=required)")
    import importlib

    for name in hotpath.MODULES:
        importlib.import_module(name)
    assert hotpath.status() == "compiled"


@pytest.fixture
def copy(tmp_path):
    """A tree of hotpath/ and sip/ with this build's sip extensions and a manifest for them."""
    needs_build()
    root = hotpath.ROOT
    shutil.copytree(root / "hotpath", tmp_path / "hotpath", ignore=shutil.ignore_patterns("tests", "__pycache__"))
    shutil.copytree(root / "sip", tmp_path / "sip", ignore=shutil.ignore_patterns("tests", "__pycache__"))
    out = tmp_path / hotpath.build_dir().relative_to(root)
    (out / "sip").mkdir(parents=True)
    for name in SIP:
        shutil.copy(hotpath.extension_path(name), out / "sip")
    manifest = hotpath.read_manifest()
    manifest["modules"] = {name: manifest["modules"][name] for name in SIP}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def run(root, code, mode="auto"):
    env = {**os.environ, "PYTHONPATH": str(root), "LBPANEL_HOTPATH": mode}
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=60)


REPORT = (
    f"import {', '.join(SIP)}, hotpath; "
    "print(hotpath.status()); print(sip.uri.__file__); "
    "print(sip.message.parse_message(b'OPTIONS sip:a SIP/2.0\\r\\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\\r\\n\\r\\n').method)"
)


def test_a_current_build_is_loaded(copy):
    out = run(copy, REPORT)
    assert out.returncode == 0, out.stderr
    status, uri_file, method = out.stdout.splitlines()
    assert status == "compiled"
    assert uri_file.endswith(hotpath.importlib.machinery.EXTENSION_SUFFIXES[0])
    assert uri_file.startswith(str(copy / "build" / "hotpath"))
    assert method == "b'OPTIONS'"


def test_an_edited_module_runs_its_source_not_the_stale_build(copy):
    uri = copy / "sip" / "uri.py"
    uri.write_text(uri.read_text() + "\nEDITED = True\n")
    out = run(copy, REPORT + "; print(sip.uri.EDITED)")
    assert out.returncode == 0, out.stderr
    status, uri_file, method, edited = out.stdout.splitlines()
    assert uri_file == str(uri)
    assert edited == "True"
    assert status == f"mixed: {len(SIP) - 1} of {len(SIP)} compiled (sip.uri: {hotpath.STALE})"
    assert method == "b'OPTIONS'"  # the others still compiled, and they work with the Python one


def test_required_refuses_a_stale_module_by_name(copy):
    uri = copy / "sip" / "uri.py"
    uri.write_text(uri.read_text() + "\n")
    out = run(copy, "import sip.uri", mode="required")
    assert out.returncode != 0
    assert f"LBPANEL_HOTPATH=required, but sip.uri cannot load compiled: {hotpath.STALE}" in out.stderr


def test_without_a_build_it_runs_as_python_and_says_why(copy):
    shutil.rmtree(copy / "build")
    out = run(copy, REPORT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == f"python ({hotpath.NOT_BUILT})"
    out = run(copy, REPORT, mode="off")
    assert out.stdout.splitlines()[0] == "python (LBPANEL_HOTPATH=off)"


def test_a_half_written_build_is_not_current(copy):
    (copy / hotpath.build_dir().relative_to(hotpath.ROOT) / "manifest.json").unlink()
    out = run(copy, REPORT)
    assert out.stdout.splitlines()[0] == f"python ({hotpath.NOT_BUILT})"


def test_an_unknown_mode_names_the_variable():
    with pytest.raises(ValueError, match="LBPANEL_HOTPATH must be one of auto, off, required, got 'fast'"):
        hotpath.mode({"LBPANEL_HOTPATH": "fast"})


def test_building_again_when_current_builds_nothing():
    needs_build()
    before = {name: hotpath.extension_path(name).stat().st_mtime_ns for name in hotpath.MODULES}
    out = subprocess.run([sys.executable, "-m", "hotpath.build"], cwd=hotpath.ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("hot path: up to date")
    assert before == {name: hotpath.extension_path(name).stat().st_mtime_ns for name in hotpath.MODULES}


def test_every_module_is_a_source_file_of_the_tree():
    for name in hotpath.MODULES:
        assert hotpath.source_path(name).is_file(), name
    assert Path(hotpath.__file__).parent == hotpath.ROOT / "hotpath"
