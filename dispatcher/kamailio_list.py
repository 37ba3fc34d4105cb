"""Kamailio's dispatcher.list format: `setid destination [flags [priority [attrs]]]`.

Pure text in and out, no database: the importer in services.py applies what this parses.
"""

from dataclasses import dataclass, field

from dispatcher.ping_attrs import ping_attrs
from sip.errors import SipSyntaxError
from sip.uri import parse_wire_uri

INT_ATTRS = ("weight", "rweight", "maxload")
# The database's integer columns: a number past them is the line's error, not the database's.
INT_MAX = 2**31 - 1


@dataclass
class ListEntry:
    lineno: int
    setid: int
    uri: str
    flags: int = 0
    priority: int = 0
    attrs: str = ""
    values: dict = field(default_factory=dict)  # weight, rweight, duid, maxload, socket when present


@dataclass
class LineError:
    lineno: int
    text: str
    message: str

    def __str__(self):
        return f"line {self.lineno}: {self.message}: {self.text!r}"


class DispatcherListError(ValueError):
    def __init__(self, errors):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def parse_attrs(attrs):
    """'weight=50;duid=ast1' -> ordered [(key, value)], value None for a bare key."""
    pairs = []
    for item in attrs.split(";"):
        item = item.strip()
        if not item:
            continue
        key, eq, value = item.partition("=")
        pairs.append((key.strip(), value.strip() if eq else None))
    return pairs


def attr_values(attrs):
    """The attributes we act on, validated; raises ValueError naming the attribute."""
    values = {}
    for key, value in parse_attrs(attrs):
        lower = key.lower()
        if lower in INT_ATTRS:
            if value is None or not value.isdigit():
                raise ValueError(f"{lower} must be a whole number, got {value!r}")
            number = int(value)
            if number > INT_MAX:
                raise ValueError(f"{lower} must be at most {INT_MAX}, got {value}")
            if lower == "rweight" and not 1 <= number <= 100:
                raise ValueError(f"rweight must be 1-100, got {number}")
            values[lower] = number
        elif lower in ("duid", "socket"):
            if not value:
                raise ValueError(f"{lower} needs a value")
            values[lower] = value
    ping_attrs(attrs)  # ping_from and socket reach the wire: refused here, with the line
    return values


def _int(text, what):
    try:
        return int(text, 0) if text.lower().startswith(("0x", "-0x")) else int(text)
    except ValueError:
        raise ValueError(f"{what} must be a number (decimal or 0x hex), got {text!r}") from None


def parse_line(lineno, line):
    text = line.split("#", 1)[0].strip()
    if not text:
        return None
    parts = text.split(None, 4)
    if len(parts) < 2:
        raise ValueError("a line needs at least a set id and a destination URI")
    setid = _int(parts[0], "set id")
    if not 0 <= setid <= INT_MAX:
        raise ValueError(f"set id must be 0 to {INT_MAX}, got {parts[0]}")
    try:
        parse_wire_uri(parts[1])
    except SipSyntaxError as exc:
        raise ValueError(f"destination {parts[1]!r} is not a valid SIP URI ({exc})") from None
    entry = ListEntry(lineno=lineno, setid=setid, uri=parts[1])
    if len(parts) > 2:
        entry.flags = _int(parts[2], "flags")
        if not 0 <= entry.flags <= INT_MAX:
            raise ValueError(f"flags must be 0 to {INT_MAX}, got {parts[2]}")
    if len(parts) > 3:
        entry.priority = _int(parts[3], "priority")
        if not -INT_MAX - 1 <= entry.priority <= INT_MAX:
            raise ValueError(f"priority must be {-INT_MAX - 1} to {INT_MAX}, got {parts[3]}")
    if len(parts) > 4:
        entry.attrs = parts[4].strip()
        entry.values = attr_values(entry.attrs)
    return entry


def parse_list(text):
    """All entries, or DispatcherListError listing every bad line (so nothing half-imports)."""
    entries, errors = [], []
    seen_uri, seen_duid = {}, {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        try:
            entry = parse_line(lineno, line)
        except ValueError as exc:
            errors.append(LineError(lineno, line.strip(), str(exc)))
            continue
        if entry is None:
            continue
        key = (entry.setid, entry.uri)
        if key in seen_uri:
            errors.append(LineError(lineno, line.strip(), f"{entry.uri} is already in set {entry.setid} on line {seen_uri[key]}"))
            continue
        seen_uri[key] = lineno
        duid = entry.values.get("duid")
        if duid:
            if (entry.setid, duid) in seen_duid:
                errors.append(
                    LineError(
                        lineno,
                        line.strip(),
                        f"duid {duid!r} is already used in set {entry.setid} on line {seen_duid[(entry.setid, duid)]}",
                    )
                )
                continue
            seen_duid[(entry.setid, duid)] = lineno
        entries.append(entry)
    if errors:
        raise DispatcherListError(errors)
    return entries


ATTRS_WITH_FIELDS = ("weight", "rweight", "duid", "maxload")  # kept in their own columns, written back by compose_attrs


def without_field_attrs(raw):
    """The attrs string without the attributes that have their own fields (what the form shows)."""
    return ";".join(
        key if value is None else f"{key}={value}" for key, value in parse_attrs(raw) if key.lower() not in ATTRS_WITH_FIELDS
    )


def compose_attrs(raw, *, weight, rweight, duid, maxload):
    """The attrs string with our fields' current values, keeping unknown attributes and their order."""
    current = {"weight": weight, "rweight": rweight, "duid": duid, "maxload": maxload}
    out, done = [], set()
    for key, value in parse_attrs(raw):
        lower = key.lower()
        if lower in current:
            done.add(lower)
            new = current[lower]
            if new in (0, "", None):
                continue
            out.append(f"{key}={new}")
        else:
            out.append(key if value is None else f"{key}={value}")
    for key in ATTRS_WITH_FIELDS:
        if key not in done and current[key] not in (0, "", None):
            out.append(f"{key}={current[key]}")
    return ";".join(out)


def format_line(setid, uri, flags, priority, attrs):
    line = f"{setid} {uri} {flags} {priority}"
    return f"{line} {attrs}" if attrs else line
