"""--listen tls: and the --tls-* options: what runproxy accepts, and the one-line refusals that
name the file at fault."""

import subprocess
import sys
from pathlib import Path

import pytest

from proxy.cli import tls_config
from proxy.transport import parse_listen

ROOT = Path(__file__).resolve().parents[2]


def _options(**kw):
    return {"tls_cert": None, "tls_key": None, "tls_ca": None, "tls_verify": None, "tls_handshake_timeout": None, **kw}


def test_it_parses_a_tls_listener():
    assert parse_listen("tls:0.0.0.0:5061") == ("tls", "0.0.0.0", 5061)
    with pytest.raises(ValueError, match="protocol must be udp, tcp or tls"):
        parse_listen("sctp:127.0.0.1:5060")
    for port in ("\u0665\u0660\u0666\u0661", "\u00b2"):  # int() reads the first as 5061, refuses the second
        with pytest.raises(ValueError, match="expected proto:host:port"):
            parse_listen("tls:0.0.0.0:" + port)


def test_it_builds_verifying_contexts_from_the_files(pki):
    config = tls_config(_options(tls_cert=str(pki.proxy[0]), tls_key=str(pki.proxy[1]), tls_ca=str(pki.ca)), [])
    assert config.server is not None and config.verify
    assert config.client.check_hostname and config.client.verify_mode.name == "CERT_REQUIRED"


def test_verification_can_be_turned_off_only_explicitly(pki, monkeypatch):
    monkeypatch.setenv("LBPANEL_TLS_VERIFY", "off")
    config = tls_config(_options(tls_cert=str(pki.proxy[0]), tls_key=str(pki.proxy[1]), tls_ca=str(pki.ca)), [])
    assert not config.verify and not config.client.check_hostname
    monkeypatch.setenv("LBPANEL_TLS_VERIFY", "maybe")
    with pytest.raises(ValueError, match="LBPANEL_TLS_VERIFY='maybe': expected on or off"):
        tls_config(_options(), [])
    monkeypatch.delenv("LBPANEL_TLS_VERIFY")
    assert tls_config(_options(), []) is None  # no certificate, no tls listener: nothing to set up


@pytest.mark.parametrize(
    "which, message",
    [
        ("missing_cert", "TLS certificate file {missing}: not found"),
        ("key_as_cert", "{key} holds no PEM certificate"),
        ("wrong_key", "{otherkey} is not a PEM private key for this certificate"),
        ("missing_ca", "TLS CA file {missing}: not found"),
        ("no_cert", "listen tls:127.0.0.1:5061 needs a certificate and key (--tls-cert, --tls-key)"),
    ],
)
def test_it_refuses_unusable_files_naming_them(pki, tmp_path, which, message):
    cert, key = str(pki.proxy[0]), str(pki.proxy[1])
    missing, otherkey = str(tmp_path / "nope.pem"), str(pki.server[1])
    opts = {
        "missing_cert": _options(tls_cert=missing, tls_key=key),
        "key_as_cert": _options(tls_cert=key, tls_key=key),
        "wrong_key": _options(tls_cert=cert, tls_key=otherkey),
        "missing_ca": _options(tls_cert=cert, tls_key=key, tls_ca=missing),
        "no_cert": _options(),
    }[which]
    with pytest.raises(ValueError) as err:
        tls_config(opts, [("tls", "127.0.0.1", 5061)])
    assert message.format(missing=missing, key=key, otherkey=otherkey) in str(err.value)
    assert "\n" not in str(err.value)


def test_runproxy_refuses_to_start_with_a_bad_key_and_names_it(pki, tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    proc = subprocess.run(
        [sys.executable, "manage.py", "runproxy", "--listen", "tls:127.0.0.1:5061"]
        + ["--tls-cert", str(pki.proxy[0]), "--tls-key", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(bad) in lines[0], proc.stderr


def test_the_proxy_serves_sip_on_its_tls_listener(pki, redis_url):
    import os
    import signal
    import socket
    import ssl

    from proxy.tests.harness import port_block
    from proxy.tests.test_command_line import _wait_line

    port = next(port_block())
    args = ["--listen", f"udp:127.0.0.1:{port}", "--listen", f"tls:127.0.0.1:{port}", "--redis-url", redis_url]
    args += ["--node-name", "cli-tls", "--tls-cert", str(pki.proxy[0]), "--tls-key", str(pki.proxy[1])]
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy", *args],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert f"tls:127.0.0.1:{port}" in _wait_line(proc, "proxy ready")
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s,
        ):
            me = s.getsockname()[1]
            s.sendall(
                (
                    f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:{me};branch=z9hG4bKtls{me}\r\n"
                    f"From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1:{port}>\r\nCall-ID: tls-{me}\r\nCSeq: 1 OPTIONS\r\n"
                    "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                ).encode()
            )
            assert s.recv(4096).split(b"\r\n")[0] == b"SIP/2.0 200 OK"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
