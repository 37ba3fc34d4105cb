"""The proxy's message path, compiled: the same Python source, built into C extensions by Cython.

The modules every SIP message goes through (MODULES) are compiled as they are, with no type
declarations and no second copy of their code: the source stays the one truth, and a checkout
without a C compiler runs it as Python. Compiled, the message path costs about 45 % less CPU
(bench/README.md), which is what lets one process carry more calls a second.

`python -m hotpath.build` writes the extensions and a manifest with each source's SHA-256 under
build/hotpath/<interpreter>/. `install()`, called by the packages that hold them (sip, lbcore,
proxy) before their modules load, puts a finder first on sys.meta_path that loads a module's
extension only when the manifest's hash matches the source on disk now: an edited module runs
as Python until it is rebuilt, never a stale build of its old self.

LBPANEL_HOTPATH chooses: "auto" (the default: compiled where built and current, Python
elsewhere), "off" (Python throughout) or "required" (an import fails rather than fall back;
`make test` runs so, so the suite tests what production runs).
"""

import hashlib
import importlib.machinery
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = ("auto", "off", "required")

# What one SIP message goes through, from the datagram to the socket: parse, transaction,
# routing, selection, records, the wheel. The panel's and the prober's modules are not here.
MODULES = (
    "sip.message",
    "sip.headers",
    "sip.uri",
    "sip.responses",
    "sip.transaction",
    "lbcore.calls",
    "proxy.core",
    "proxy.routing",
    "proxy.selection",
    "proxy.transactions",
    "proxy.timers",
    "proxy.silence",
    "proxy.carriers",
    "proxy.accounting",
    "proxy.calllog",
    "proxy.ringwatch",
    "proxy.overload",
    "proxy.transport",
)


class HotPathError(ImportError):
    """LBPANEL_HOTPATH=required and a module cannot be loaded compiled."""


def build_dir():
    """Where this interpreter's extensions live: one folder per ABI, so two Pythons never mix."""
    tag = f"{sys.implementation.cache_tag}-{sys.platform}-{os.uname().machine}"
    return ROOT / "build" / "hotpath" / tag


def source_path(name):
    return ROOT.joinpath(*name.split(".")).with_suffix(".py")


def source_hash(name):
    return hashlib.sha256(source_path(name).read_bytes()).hexdigest()


def extension_path(name):
    *package, leaf = name.split(".")
    return build_dir().joinpath(*package, leaf + importlib.machinery.EXTENSION_SUFFIXES[0])


def mode(env=os.environ):
    value = env.get("LBPANEL_HOTPATH", "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"LBPANEL_HOTPATH must be one of {', '.join(MODES)}, got {value!r}")
    return value


def read_manifest():
    try:
        return json.loads((build_dir() / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


NOT_BUILT = "not built (make hotpath)"
STALE = "its source changed since the build (make hotpath)"


def survey(manifest):
    """For each module: None when its extension is built and current, else why it is not."""
    built = (manifest or {}).get("modules", {})
    out = {}
    for name in MODULES:
        if name not in built or not extension_path(name).exists():
            out[name] = NOT_BUILT
            continue
        try:
            current = built[name] == source_hash(name)
        except OSError:
            current = False
        out[name] = None if current else STALE
    return out


class Finder:
    """First on sys.meta_path: hands out the extension of a module whose build is current."""

    def __init__(self, current, why_not, required):
        self.current = current  # names whose extension matches the source
        self.why_not = why_not  # name -> why it runs as Python
        self.required = required

    def find_spec(self, fullname, path=None, target=None):
        if fullname in self.current:
            location = str(extension_path(fullname))
            loader = importlib.machinery.ExtensionFileLoader(fullname, location)
            return importlib.machinery.ModuleSpec(fullname, loader, origin=location)
        if self.required and fullname in self.why_not:
            raise HotPathError(f"LBPANEL_HOTPATH=required, but {fullname} cannot load compiled: {self.why_not[fullname]}")
        return None


_state = {"finder": None, "mode": None}


def install(env=os.environ):
    """Put the finder in place once per process; returns it (None with LBPANEL_HOTPATH=off)."""
    if _state["mode"] is not None:
        return _state["finder"]
    chosen = mode(env)
    _state["mode"] = chosen
    if chosen == "off":
        return None
    why_not = survey(read_manifest())
    early = [n for n in MODULES if n in sys.modules and why_not[n] is None]
    for name in early:
        why_not[name] = "imported before the hot path was installed"
    current = {n for n, why in why_not.items() if why is None}
    finder = Finder(current, {n: why for n, why in why_not.items() if why}, chosen == "required")
    if finder.required and early:
        raise HotPathError(
            f"LBPANEL_HOTPATH=required, but {', '.join(early)} {'was' if len(early) == 1 else 'were'} imported before it"
        )
    sys.meta_path.insert(0, finder)
    _state["finder"] = finder
    return finder


def status():
    """What this process runs, as one line for the log and the heartbeat: 'compiled', 'python
    (why)' or 'mixed: N of M compiled (first module: why)'."""
    loaded = {name: sys.modules.get(name) for name in MODULES}
    compiled = [n for n, m in loaded.items() if m is not None and _is_extension(m)]
    python = [n for n, m in loaded.items() if m is not None and not _is_extension(m)]
    if not python:
        return "compiled" if compiled else "not loaded"
    finder = _state["finder"]
    first = python[0]
    why = "LBPANEL_HOTPATH=off" if finder is None else finder.why_not.get(first, "loaded as Python")
    if not compiled:
        return f"python ({why})"
    return f"mixed: {len(compiled)} of {len(compiled) + len(python)} compiled ({first}: {why})"


def _is_extension(module):
    return isinstance(getattr(module, "__spec__", None) and module.__spec__.loader, importlib.machinery.ExtensionFileLoader)
