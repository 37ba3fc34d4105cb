"""Shared bits of the atheris harnesses: recording findings without stopping the fuzzer.

A harness calls `found(kind, data, exc=None)` for anything that breaks a rule. The first input
of each distinct signature (kind + exception type + the innermost project frame) is written to
$FUZZ_OUT (default /tmp/fuzz-<harness>/found/), and one line is printed. With FUZZ_RAISE=1 the
finding is raised instead, so libFuzzer stops (and -minimize_crash=1 can shrink the input).
"""

import hashlib
import os
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RAISE = os.environ.get("FUZZ_RAISE") == "1"
_seen = {}


class Finding(Exception):
    pass


def project_frames(exc):
    """(file:line function) of the frames inside the project, innermost last."""
    out = []
    for fr in traceback.extract_tb(exc.__traceback__):
        path = Path(fr.filename)
        try:
            rel = path.resolve().relative_to(ROOT)
        except ValueError:
            continue
        if rel.parts and rel.parts[0] in ("fuzz", ".venv"):
            continue
        out.append(f"{rel}:{fr.lineno} {fr.name}")
    return out


def signature(kind, exc=None):
    if exc is None:
        return kind
    frames = project_frames(exc)
    return f"{kind} {type(exc).__name__} @ {frames[-1] if frames else '?'}"


def out_dir(harness):
    d = Path(os.environ.get("FUZZ_OUT") or f"/tmp/fuzz-{harness}/found")
    d.mkdir(parents=True, exist_ok=True)
    return d


def found(harness, kind, data, exc=None, detail=""):
    sig = signature(kind, exc)
    if RAISE:
        raise Finding(f"{sig} {detail}") from exc
    n = _seen.get(sig, 0)
    _seen[sig] = n + 1
    if n:
        # keep the shortest input per signature
        path = out_dir(harness) / (hashlib.sha1(sig.encode()).hexdigest()[:12] + ".bin")
        if path.exists() and len(data) < path.stat().st_size:
            path.write_bytes(data)
        return
    d = out_dir(harness)
    name = hashlib.sha1(sig.encode()).hexdigest()[:12]
    (d / f"{name}.bin").write_bytes(data)
    tb = "".join(traceback.format_exception(exc)) if exc is not None else ""
    (d / f"{name}.txt").write_text(f"{sig}\n{detail}\n\n{tb}")
    print(f"\n#FINDING {sig} {detail[:200]} -> {d / name}.bin", file=sys.stderr, flush=True)


def default_args(argv, **defaults):
    """libFuzzer flags the caller did not give (e.g. -max_len)."""
    given = {a.split("=", 1)[0].lstrip("-") for a in argv[1:] if a.startswith("-")}
    extra = [f"-{k}={v}" for k, v in defaults.items() if k not in given]
    return [argv[0], *extra, *argv[1:]]


def seed_corpus(argv, seeds):
    """Fill the corpus directory named in argv (libFuzzer's first non-flag argument) with `seeds()`
    when it is empty, so a first run starts from real SIP rather than from nothing."""
    corpus = [a for a in argv[1:] if not a.startswith("-")]
    if not corpus:
        return
    d = Path(corpus[0])
    d.mkdir(parents=True, exist_ok=True)
    if not any(d.iterdir()):
        for i, s in enumerate(seeds()):
            (d / f"seed-{i:02d}").write_bytes(s)
