"""Compile the message path: `python -m hotpath.build` (the Makefile's `hotpath` target).

Cython translates each module of hotpath.MODULES to C as it is (no declarations; Python's
semantics kept: annotations are not read as C types), the C compiler builds the extensions into
build/hotpath/<interpreter>/, and a manifest records the SHA-256 of each source as it was read.
Nothing is rebuilt when the manifest already matches every source. Needs Cython, setuptools and
a C compiler with Python's headers; without them it says which is missing and exits 1, and the
proxy runs the Python source.
"""

import json
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

import hotpath

DIRECTIVES = {"language_level": 3, "binding": True, "annotation_typing": False}


def missing_tools():
    problems = []
    try:
        import Cython  # noqa: F401, PLC0415 -- a build-time tool, checked only when building
    except ImportError:
        problems.append("Cython is not installed (pip install -r requirements.txt)")
    if not Path(sysconfig.get_paths()["include"], "Python.h").exists():
        problems.append("Python's headers are missing (Debian: apt-get install python3-dev)")
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        problems.append(f"no C compiler {cc!r} (Debian: apt-get install gcc)")
    return problems


def build(force=False, jobs=None):
    out = hotpath.build_dir()
    manifest = hotpath.read_manifest()
    if not force and manifest and all(why is None for why in hotpath.survey(manifest).values()):
        print(f"hot path: up to date ({len(hotpath.MODULES)} modules in {out.relative_to(hotpath.ROOT)})")
        return 0
    problems = missing_tools()
    if problems:
        print("hot path: not built, the proxy will run as Python: " + "; ".join(problems), file=sys.stderr)
        return 1
    # what is compiled is what was hashed: read each source once, build from that copy
    from Cython.Build import cythonize  # noqa: PLC0415 -- see missing_tools()
    from setuptools import Distribution, Extension  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="hotpath-") as tmp:
        tmp = Path(tmp)
        hashes = {}
        extensions = []
        for name in hotpath.MODULES:
            data = hotpath.source_path(name).read_bytes()
            copy = tmp.joinpath("src", *name.split(".")).with_suffix(".py")
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(data)
            hashes[name] = hotpath.hashlib.sha256(data).hexdigest()
            extensions.append(Extension(name, [str(copy)]))
        jobs = jobs or os.cpu_count() or 1
        modules = cythonize(extensions, compiler_directives=DIRECTIVES, nthreads=jobs, quiet=True, build_dir=str(tmp / "c"))
        dist = Distribution({"name": "lbpanel-hotpath", "ext_modules": modules})
        cmd = dist.get_command_obj("build_ext")
        cmd.build_lib = str(out)
        cmd.build_temp = str(tmp / "obj")
        cmd.parallel = jobs
        cmd.force = True
        cmd.ensure_finalized()
        (out / "manifest.json").unlink(missing_ok=True)  # a half-written build is never "current"
        cmd.run()
    manifest = {"python": sys.version.split()[0], "modules": hashes}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"hot path: built {len(hashes)} modules in {out.relative_to(hotpath.ROOT)}")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    return build(force="--force" in argv)


if __name__ == "__main__":
    sys.exit(main())
