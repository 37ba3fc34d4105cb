"""A kernel-side Call-ID hash for `runproxy --processes N`: an SO_REUSEPORT group whose BPF program
reads each datagram's Call-ID and picks the worker, so no reader process handles it first.

Plain SO_REUSEPORT spreads by source address and would pin a carrier trunk (one address, one port)
to one worker. This program hashes the Call-ID instead, so a transaction and its dialog (INVITE,
retransmissions, CANCEL, ACK, BYE) reach the worker that holds their state, whoever sends them.

Written by hand as eBPF instructions and loaded with the bpf(2) system call: there is no clang on
a production box, libbpf has no Python binding we could pin, and the program is about a hundred
instructions. bpf_loop() calls it once a byte; it is a small state machine:

  line feed → the letters of "call-id" in any case, or the compact "i" → blanks and a colon
  (anything else: another header, such as In-Reply-To) → blanks → the value, hashed up to CR,
  LF, space or tab (a Call-ID holds none of them), and no further than HASH_MAX bytes.

Bytes in the socket buffer's linear part are read in place; past it (a NIC that leaves the
payload in pages) they are copied out one at a time. Where no Call-ID turns up in the first
SCAN_LIMIT bytes (or at all), the datagram goes to the spill socket, one slot past the workers:
its owner hashes it in Python with `call_id_hash` and forwards it to the right worker, so a call
is never split between two workers by where its Call-ID sits.

The hash is DJB2 with XOR over 32 bits, the same in both places: `call_id_hash` is its reference.
"""

import ctypes
import errno
import os
import platform
import socket
import struct

SO_ATTACH_REUSEPORT_EBPF = 52  # asm-generic/socket.h
SCAN_LIMIT = 8192  # payload bytes walked for a Call-ID: what a datagram without one costs the kernel at most
# Bytes of a Call-ID value hashed. Real ones are 20-60 bytes; the bound is for the spill, whose
# owner hashes in Python: a 60 KB Call-ID cost it 5 ms there, an attacker's lever on a whole core.
HASH_MAX = 256

_NR_BPF = {"x86_64": 321, "aarch64": 280}
_BPF_MAP_CREATE, _BPF_MAP_UPDATE_ELEM, _BPF_PROG_LOAD, _BPF_BTF_LOAD = 0, 2, 5, 18
_MAP_REUSEPORT_SOCKARRAY = 20
_PROG_SK_REUSEPORT = 21
_HELPER_SK_SELECT_REUSEPORT = 82
_SK_PASS = 1
_ATTR_SIZE = 128
_LOAD_ATTEMPTS = 5


def call_id_hash(value):
    """The program's hash of a Call-ID value (the bytes after the colon, without leading spaces)."""
    h = 5381
    for b in value[:HASH_MAX]:
        if b in b"\r\n \t":
            break
        h = ((h * 33) & 0xFFFFFFFF) ^ b
    return h


def _btf():
    """The smallest BTF the kernel asks of a program with a callback: its two functions, typed
    `int f(void)` (linux/btf.h; static functions are not checked against their prototype)."""
    names = b"\0int\0main\0byte\0"
    types = b"".join(
        (
            struct.pack("<IIII", 1, 1 << 24, 4, (1 << 24) | 32),  # 1: int (BTF_KIND_INT, signed, 32 bits)
            struct.pack("<III", 0, 13 << 24, 1),  # 2: int (void) (BTF_KIND_FUNC_PROTO)
            struct.pack("<III", 5, 12 << 24, 2),  # 3: main (BTF_KIND_FUNC, static)
            struct.pack("<III", 10, 12 << 24, 2),  # 4: byte
        )
    )
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(names))
    return header + types + names


_BTF = _btf()
_BTF_MAIN, _BTF_CALLBACK = 3, 4


class Unavailable(Exception):
    """The kernel will not run the program here (no CAP_BPF, an old kernel, another architecture)."""


def _syscall():
    nr = _NR_BPF.get(platform.machine())
    if nr is None:
        raise Unavailable(f"no bpf(2) number known for {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)

    def bpf(cmd, attr):
        buf = ctypes.create_string_buffer(attr, _ATTR_SIZE)
        fd = libc.syscall(nr, cmd, buf, _ATTR_SIZE)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return fd

    return bpf


def _insn(code, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _ld_imm64(dst, imm, src=0):
    return _insn(0x18, dst, src, 0, imm & 0xFFFFFFFF) + _insn(0, imm=(imm >> 32) & 0xFFFFFFFF)


class _Asm:
    """Just enough of an assembler for the program below: labels and jumps to them."""

    def __init__(self):
        self.code = []  # (bytes, label to jump to or None)
        self.labels = {}

    def at(self, name):
        self.labels[name] = len(self.code)

    def put(self, raw, target=None):
        for i in range(0, len(raw), 8):
            self.code.append((raw[i : i + 8], target if i == 0 else None))

    def _patch(self, pc, raw, target):
        code, regs, off, imm = struct.unpack("<BBhi", raw)
        if code == 0x18:  # ld_imm64 of a subprogram (BPF_PSEUDO_FUNC): the offset goes in imm
            return struct.pack("<BBhi", code, regs, off, self.labels[target] - pc - 1)
        return struct.pack("<BBhi", code, regs, self.labels[target] - pc - 1, imm)

    def op(self, code, dst=0, src=0, off=0, imm=0):
        self.put(_insn(code, dst, src, off, imm))

    def jump(self, code, dst, target, src=0, imm=0):
        self.put(_insn(code, dst, src, 0, imm), target)

    def assemble(self):
        out = []
        for pc, (raw, target) in enumerate(self.code):
            if target is not None:
                raw = self._patch(pc, raw, target)
            out.append(raw)
        return b"".join(out)


# opcodes (linux/bpf.h, linux/bpf_common.h)
_MOV64_X, _MOV64_K, _ADD64_K, _ADD64_X, _OR64_K, _LSH64_K, _RSH64_X = 0xBF, 0xB7, 0x07, 0x0F, 0x47, 0x67, 0x7F
_MOV32_K, _MUL32_K, _XOR32_X, _MOD32_K, _OR32_K, _AND64_K = 0xB4, 0x24, 0xAC, 0x94, 0x44, 0x57
_LDX_B, _LDX_DW, _ST_W, _ST_DW, _STX_W, _STX_DW = 0x71, 0x79, 0x62, 0x7A, 0x63, 0x7B
_JA, _JEQ_K, _JNE_K, _JNE_X, _JGT_K, _JGT_X, _CALL, _EXIT = 0x05, 0x15, 0x55, 0x5D, 0x25, 0x2D, 0x85, 0x95
_SUB64_X = 0x1F
_R0, _R1, _R2, _R3, _R4, _R5, _R6, _R7, _R8, _R9, _R10 = range(11)
_UDP_HEADER = 8
_HELPER_LOOP = 181
_OFFSET_MASK = 0x3FFF  # SCAN_LIMIT rounded up to a mask
# the callback's state, on the program's stack at r10 + _C
_C, _C_CTX, _C_DATA, _C_END, _C_STATE, _C_HASH, _C_BYTE, _C_START = -64, 0, 8, 16, 24, 32, 40, 48
# states: looking for a line feed, the name's letters (_NAME + letters matched), then its colon,
# the blanks after it, the value, found
_SEARCH, _COLON, _BLANK, _VALUE, _FOUND, _NAME = 0, 1, 2, 3, 4, 16
_NAME_BYTES = int.from_bytes(b"call-id", "little")
_HELPER_SKB_LOAD_BYTES = 26  # sk_reuseport_load_bytes() for this program type


def program(workers, map_fd):
    """The eBPF instructions, and where the callback starts: Call-ID hash % workers, or slot
    `workers` (the spill) when not found.

    The bytes are walked by bpf_loop(): its callback is verified once for any offset, where a
    plain loop is verified once per offset and per state and the verifier gives up at a few
    hundred bytes. The callback's state lives on the program's stack (`_C_*` below)."""
    a = _Asm()
    a.op(_MOV64_X, _R6, _R1)  # r6 = ctx (struct sk_reuseport_md)
    a.op(_STX_DW, _R10, _R6, _C + _C_CTX)
    a.op(_LDX_DW, _R1, _R6, 0)  # data: the UDP header
    a.op(_ADD64_K, _R1, imm=_UDP_HEADER)
    a.op(_STX_DW, _R10, _R1, _C + _C_DATA)
    a.op(_LDX_DW, _R1, _R6, 8)  # data_end of the linear part
    a.op(_STX_DW, _R10, _R1, _C + _C_END)
    a.op(_ST_DW, _R10, 0, _C + _C_STATE, _SEARCH)
    a.op(_ST_DW, _R10, 0, _C + _C_HASH, 5381)
    a.op(_ST_DW, _R10, 0, _C + _C_START, 0)
    a.op(_MOV64_K, _R1, imm=SCAN_LIMIT)
    a.put(_ld_imm64(_R2, 0, src=4), "byte")  # BPF_PSEUDO_FUNC: the callback
    a.op(_MOV64_X, _R3, _R10)
    a.op(_ADD64_K, _R3, imm=_C)
    a.op(_MOV64_K, _R4, imm=0)
    a.op(_CALL, imm=_HELPER_LOOP)
    a.op(_LDX_DW, _R1, _R10, _C + _C_STATE)
    a.jump(_JNE_K, _R1, "spill", imm=_FOUND)
    a.op(_LDX_DW, _R5, _R10, _C + _C_HASH)
    a.op(_MOD32_K, _R5, imm=workers)
    a.op(_STX_W, _R10, _R5, -4)
    a.jump(_JA, 0, "select")
    a.at("spill")
    a.op(_ST_W, _R10, 0, -4, workers)
    a.at("select")
    a.op(_MOV64_X, _R1, _R6)
    a.put(_ld_imm64(_R2, map_fd, src=1))  # BPF_PSEUDO_MAP_FD
    a.op(_MOV64_X, _R3, _R10)
    a.op(_ADD64_K, _R3, imm=-4)
    a.op(_MOV64_K, _R4, imm=0)
    a.op(_CALL, imm=_HELPER_SK_SELECT_REUSEPORT)
    # a slot with no socket (its worker gone: the proxy is stopping) falls back to the kernel's hash
    a.op(_MOV64_K, _R0, imm=_SK_PASS)
    a.op(_EXIT)

    # the callback: r1 = offset in the payload, r2 = the state; returns 0 to go on, 1 to stop
    a.at("byte")
    a.op(_AND64_K, _R1, imm=_OFFSET_MASK)  # bounded, for the verifier's packet arithmetic
    a.op(_MOV64_X, _R6, _R2)
    a.op(_MOV64_X, _R7, _R1)
    a.op(_MOV64_X, _R9, _R1)  # r9 = the offset, for the whole callback
    a.op(_LDX_DW, _R2, _R6, _C_DATA)
    a.op(_ADD64_X, _R2, _R1)  # r2 = this byte
    a.op(_LDX_DW, _R8, _R6, _C_END)
    a.op(_MOV64_X, _R3, _R2)
    a.op(_ADD64_K, _R3, imm=1)
    a.jump(_JGT_X, _R3, "copy", src=_R8)
    a.op(_LDX_B, _R4, _R2, 0)  # r4 = the byte, in the linear part
    a.jump(_JA, 0, "have")
    a.at("copy")  # past the linear part (a NIC that leaves the payload in pages): copy it out
    a.op(_LDX_DW, _R1, _R6, _C_CTX)
    a.op(_MOV64_X, _R2, _R7)
    a.op(_ADD64_K, _R2, imm=_UDP_HEADER)
    a.op(_MOV64_X, _R3, _R6)
    a.op(_ADD64_K, _R3, imm=_C_BYTE)
    a.op(_MOV64_K, _R4, imm=1)
    a.op(_CALL, imm=_HELPER_SKB_LOAD_BYTES)
    a.jump(_JNE_K, _R0, "stop", imm=0)  # past the end: no Call-ID
    a.op(_LDX_B, _R4, _R6, _C_BYTE)
    a.at("have")
    a.op(_LDX_DW, _R7, _R6, _C_STATE)
    a.jump(_JEQ_K, _R7, "search", imm=_SEARCH)
    a.jump(_JEQ_K, _R7, "colon", imm=_COLON)
    a.jump(_JEQ_K, _R7, "blank", imm=_BLANK)
    a.jump(_JEQ_K, _R7, "value", imm=_VALUE)

    # _NAME + k: after a line feed, k letters of "call-id" matched
    a.op(_MOV64_X, _R1, _R4)
    a.op(_OR64_K, _R1, imm=0x20)  # lower case
    a.jump(_JNE_K, _R7, "letter", imm=_NAME)
    a.jump(_JNE_K, _R1, "letter", imm=ord("i"))
    a.op(_ST_DW, _R6, 0, _C_STATE, _COLON)  # compact form "i"
    a.jump(_JA, 0, "next")
    a.at("letter")
    a.op(_MOV64_X, _R2, _R7)
    a.op(_ADD64_K, _R2, imm=-_NAME)
    a.op(_LSH64_K, _R2, imm=3)
    a.put(_ld_imm64(_R3, _NAME_BYTES))
    a.op(_RSH64_X, _R3, _R2)
    a.op(_AND64_K, _R3, imm=0xFF)  # the letter expected
    a.jump(_JNE_X, _R1, "search", src=_R3)
    a.op(_ADD64_K, _R7, imm=1)
    a.jump(_JNE_K, _R7, "matched", imm=_NAME + len(b"call-id"))
    a.op(_MOV64_K, _R7, imm=_COLON)
    a.at("matched")
    a.op(_STX_DW, _R6, _R7, _C_STATE)
    a.jump(_JA, 0, "next")

    a.at("value")  # the value, hashed up to CR, LF, space or tab
    for stop in b"\r\n \t":
        a.jump(_JEQ_K, _R4, "found", imm=stop)
    a.op(_MOV64_X, _R1, _R9)
    a.op(_LDX_DW, _R2, _R6, _C_START)
    a.op(_SUB64_X, _R1, _R2)
    a.jump(_JGT_K, _R1, "found", imm=HASH_MAX - 1)  # HASH_MAX bytes hashed: enough
    a.op(_LDX_DW, _R5, _R6, _C_HASH)
    a.op(_MUL32_K, _R5, imm=33)
    a.op(_XOR32_X, _R5, _R4)
    a.op(_STX_DW, _R6, _R5, _C_HASH)
    a.jump(_JA, 0, "next")
    a.at("found")
    a.op(_ST_DW, _R6, 0, _C_STATE, _FOUND)
    a.jump(_JA, 0, "stop")

    a.at("blank")  # spaces after the colon
    a.jump(_JEQ_K, _R4, "next", imm=ord(" "))
    a.jump(_JEQ_K, _R4, "next", imm=ord("\t"))
    a.op(_ST_DW, _R6, 0, _C_STATE, _VALUE)
    a.op(_STX_DW, _R6, _R9, _C_START)
    a.jump(_JA, 0, "value")

    a.at("colon")  # after the name: spaces, then the colon
    a.jump(_JEQ_K, _R4, "next", imm=ord(" "))
    a.jump(_JEQ_K, _R4, "next", imm=ord("\t"))
    a.jump(_JNE_K, _R4, "search", imm=ord(":"))  # another header that starts the same way (In-Reply-To)
    a.op(_ST_DW, _R6, 0, _C_STATE, _BLANK)
    a.jump(_JA, 0, "next")

    a.at("search")  # waiting for a line feed
    a.op(_ST_DW, _R6, 0, _C_STATE, _SEARCH)
    a.jump(_JNE_K, _R4, "next", imm=ord("\n"))
    a.op(_ST_DW, _R6, 0, _C_STATE, _NAME)
    a.at("next")
    a.op(_MOV64_K, _R0, imm=0)
    a.op(_EXIT)
    a.at("stop")
    a.op(_MOV64_K, _R0, imm=1)
    a.op(_EXIT)
    return a.assemble(), a.labels["byte"]


class CallIdGroup:
    """`workers` + 1 UDP sockets bound to one address with SO_REUSEPORT, steered by the program:
    socket i for worker i, the last for the spill. Built before the fork; each worker keeps its own."""

    def __init__(self, host, port, workers):
        bpf = _syscall()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # SO_REUSEPORT lets sockets of one user share a port; the kernel refuses ours today only
        # because the program is attached before the bind. The port must be free, whatever holds it.
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, port))
        self.socks = []
        try:
            map_fd = bpf(_BPF_MAP_CREATE, struct.pack("<IIIII", _MAP_REUSEPORT_SOCKARRAY, 4, 8, workers + 1, 0))
        except OSError as exc:
            raise Unavailable(f"cannot create the socket map: {exc.strerror}") from None
        prog_fd = None
        try:
            insns, callback_at = program(workers, map_fd)
            prog_fd = self._load(bpf, insns, callback_at)
            for i in range(workers + 1):
                s = socket.socket(family, socket.SOCK_DGRAM)
                self.socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if i == 0:  # before the bind: the group is steered from its first datagram
                    s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, prog_fd)
                s.bind((host, port))
                key, value = ctypes.c_uint32(i), ctypes.c_uint64(s.fileno())
                bpf(
                    _BPF_MAP_UPDATE_ELEM,
                    struct.pack("<IIQQQ", map_fd, 0, ctypes.addressof(key), ctypes.addressof(value), 0),
                )
        except BaseException:
            self.close()
            raise
        finally:
            # the group holds the program and the program its map: no process needs either fd (nor
            # should the forked workers inherit them)
            for fd in (prog_fd, map_fd):
                if fd is not None:
                    os.close(fd)

    @staticmethod
    def _load(bpf, insns, callback_at):
        code = ctypes.create_string_buffer(insns, len(insns))
        license_ = ctypes.create_string_buffer(b"GPL")
        log = ctypes.create_string_buffer(1 << 20)
        btf = ctypes.create_string_buffer(_BTF, len(_BTF))
        try:
            btf_fd = bpf(_BPF_BTF_LOAD, struct.pack("<QQII", ctypes.addressof(btf), 0, len(_BTF), 0))
        except OSError as exc:
            raise Unavailable(f"the kernel refused the program's BTF: {exc.strerror}") from None
        funcs = ctypes.create_string_buffer(struct.pack("<IIII", 0, _BTF_MAIN, callback_at, _BTF_CALLBACK), 16)

        def attempt(level):
            attr = struct.pack(
                "<IIQQIIQII16sIIIIQI",
                _PROG_SK_REUSEPORT,
                len(insns) // 8,
                ctypes.addressof(code),
                ctypes.addressof(license_),
                level,
                len(log) if level else 0,
                ctypes.addressof(log) if level else 0,
                0,
                0,
                b"lbpanel_callid",
                0,
                0,
                btf_fd,
                8,
                ctypes.addressof(funcs),
                2,
            )
            # the verifier gives up with EAGAIN when a signal arrives meanwhile (a SIGCHLD, a
            # SIGTERM): try again, as libbpf does
            for _ in range(_LOAD_ATTEMPTS - 1):
                try:
                    return bpf(_BPF_PROG_LOAD, attr)
                except OSError as exc:
                    if exc.errno != errno.EAGAIN:
                        raise
            return bpf(_BPF_PROG_LOAD, attr)

        try:
            try:
                return attempt(0)  # no log: the verifier's account of every path would not fit
            except OSError as exc:
                why = exc.strerror
            try:
                attempt(1)  # again, for the verifier's reason
            except OSError:
                pass
        finally:
            os.close(btf_fd)
        tail = log.value.decode(errors="replace").strip().splitlines()[-3:]
        raise Unavailable(f"the kernel refused the program: {why} ({' / '.join(tail)})")

    def close(self):
        for s in self.socks:
            s.close()
