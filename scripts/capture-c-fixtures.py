#!/usr/bin/python3
"""Scenario driver for scripts/capture-c-fixtures.sh (see that script for the
fixture layout and the JSON shape). Not meant to be run on its own.

  capture-c-fixtures.py run SCENARIO SOCKET OUT.json
      Builds the scenario's state on the C xenstored at SOCKET, asks the
      driving shell for live updates over a line protocol (prints "LU" on
      stdout, expects "DONE <rc> <state-file>" on stdin), probes the daemon
      after the last update and writes OUT.json. Prints "END" when done.
      Everything else goes to stderr.
  capture-c-fixtures.py finalize OUT.json STATE.bin [INTERMEDIATE.bin...]
      Adds the "stream" section (size, sha256, record order decoded from the
      file) to OUT.json and prints a human-readable decoding of the stream.

Uses the kit's tools/xsraw.py (PYTHONPATH) for the wire format.
"""
import hashlib
import json
import os
import select
import struct
import sys
import time

from xsraw import Conn, XS, HDR

# ---------------------------------------------------------------------------
# helpers

def log(*a):
    print(*a, file=sys.stderr, flush=True)


def arg_repr(b):
    """JSON-friendly rendering of one payload argument."""
    try:
        s = b.decode("utf-8")
        if "\0" not in s:
            return s
    except UnicodeDecodeError:
        pass
    return {"hex": b.hex()}


def payload(*parts, nul=True):
    """NUL-join the parts; with nul=True also NUL-terminate the last one."""
    bs = [p if isinstance(p, bytes) else str(p).encode() for p in parts]
    out = b"\0".join(bs)
    return out + b"\0" if nul else out


def decode_reply(op, typ, data):
    """Convenience decoding of a reply payload (replyHex stays authoritative)."""
    if typ == XS.ERROR:
        return {"error": data.rstrip(b"\0").decode()}
    if op in ("DIRECTORY", "GET_PERMS"):
        items = data.split(b"\0")
        if items and items[-1] == b"":
            items = items[:-1]
        return {"reply": [i.decode("utf-8", "replace") for i in items]}
    if op == "DIRECTORY_PART":
        items = data.split(b"\0")
        # <generation>\0child\0...child\0\0
        gen = items[0].decode()
        kids = [i.decode("utf-8", "replace") for i in items[1:] if i != b""]
        return {"reply": {"generation": gen, "children": kids}}
    if op == "READ":
        try:
            s = data.decode("utf-8")
            if "\0" not in s:
                return {"reply": s}
        except UnicodeDecodeError:
            pass
        return {"reply": None}
    s = data[:-1] if data.endswith(b"\0") else data
    try:
        return {"reply": s.decode("utf-8")}
    except UnicodeDecodeError:
        return {"reply": None}


def parse_event(data):
    parts = data.split(b"\0")
    return {"path": parts[0].decode("utf-8", "replace"),
            "token": parts[1].decode("utf-8", "replace") if len(parts) > 1 else None,
            "payloadHex": data.hex()}


class Client:
    """One socket connection with a label; records every exchange in a log."""

    def __init__(self, label, sock, log_list):
        self.label = label
        self.c = Conn(sock)
        self.req = 0x100 * (1 + (sum(map(ord, label)) % 200))  # recognisable req ids
        self.log = log_list
        self.events = []   # watch events seen while waiting for replies

    def set_log(self, log_list):
        self.log = log_list

    def _recv_msg(self, timeout):
        r, _, _ = select.select([self.c.s], [], [], timeout)
        if not r:
            return None
        return self.c.recv()

    def call(self, op, pl=b"", tx=0, args=None, note=None, record=True):
        typ = getattr(XS, op)
        self.req += 1
        req = self.req
        self.c.send(typ, pl, tx=tx, req=req)
        while True:
            m = self._recv_msg(10.0)
            if m is None:
                raise RuntimeError(f"{self.label}: no reply to {op} {pl!r}")
            rtyp, rreq, rtx, data = m
            if rtyp == XS.WATCH_EVENT:
                self.events.append(data)
                continue
            break
        step = {"conn": self.label, "op": op}
        if args is not None:
            step["args"] = [arg_repr(a if isinstance(a, bytes) else str(a).encode()) for a in args]
        step.update({"payloadHex": pl.hex(), "reqId": req, "txId": tx,
                     "replyType": XS.names.get(rtyp, str(rtyp)),
                     "replyReqId": rreq, "replyTxId": rtx,
                     "replyHex": data.hex()})
        step.update(decode_reply(op, rtyp, data))
        if note:
            step["note"] = note
        if record:
            self.log.append(step)
        return step

    # common requests -------------------------------------------------------
    def read(self, path, **kw):
        return self.call("READ", payload(path), args=[path], **kw)

    def write(self, path, value, **kw):
        v = value if isinstance(value, bytes) else value.encode()
        return self.call("WRITE", payload(path, v, nul=False), args=[path, v], **kw)

    def mkdir(self, path, **kw):
        return self.call("MKDIR", payload(path), args=[path], **kw)

    def rm(self, path, **kw):
        return self.call("RM", payload(path), args=[path], **kw)

    def directory(self, path, **kw):
        return self.call("DIRECTORY", payload(path), args=[path], **kw)

    def directory_part(self, path, offset=0, **kw):
        return self.call("DIRECTORY_PART", payload(path, offset), args=[path, offset], **kw)

    def get_perms(self, path, **kw):
        return self.call("GET_PERMS", payload(path), args=[path], **kw)

    def set_perms(self, path, *perms, **kw):
        return self.call("SET_PERMS", payload(path, *perms), args=[path, *perms], **kw)

    def watch(self, path, token, **kw):
        return self.call("WATCH", payload(path, token), args=[path, token], **kw)

    def unwatch(self, path, token, **kw):
        return self.call("UNWATCH", payload(path, token), args=[path, token], **kw)

    def introduce(self, domid, gfn, port, **kw):
        return self.call("INTRODUCE", payload(domid, gfn, port), args=[domid, gfn, port], **kw)

    def release(self, domid, **kw):
        return self.call("RELEASE", payload(domid), args=[domid], **kw)

    def set_target(self, domid, target, **kw):
        return self.call("SET_TARGET", payload(domid, target), args=[domid, target], **kw)

    def is_introduced(self, domid, **kw):
        return self.call("IS_DOMAIN_INTRODUCED", payload(domid), args=[domid], **kw)

    def get_domain_path(self, domid, **kw):
        return self.call("GET_DOMAIN_PATH", payload(domid), args=[domid], **kw)

    def drain_events(self, wait=0.3, record=True, note=None):
        """Collect watch events: those queued while waiting for replies plus
        whatever arrives within `wait` seconds of quiet."""
        evs = list(self.events)
        self.events.clear()
        while True:
            m = self._recv_msg(wait)
            if m is None:
                break
            if m[0] != XS.WATCH_EVENT:
                raise RuntimeError(f"{self.label}: unexpected message {m!r}")
            evs.append(m[3])
        step = {"conn": self.label, "op": "WATCH_EVENTS",
                "events": [parse_event(e) for e in evs]}
        if note:
            step["note"] = note
        if record:
            self.log.append(step)
        return step

    # raw bytes (partial requests) --------------------------------------------
    def send_raw(self, data, note=None):
        self.c.s.sendall(data)
        step = {"conn": self.label, "op": "RAW_SEND", "bytesHex": data.hex()}
        if note:
            step["note"] = note
        self.log.append(step)

    def recv_reply(self, op, note=None):
        """Record the next non-event message as the reply to a raw request."""
        while True:
            m = self._recv_msg(10.0)
            if m is None:
                raise RuntimeError(f"{self.label}: no reply")
            if m[0] == XS.WATCH_EVENT:
                self.events.append(m[3])
                continue
            break
        rtyp, rreq, rtx, data = m
        step = {"conn": self.label, "op": "RAW_REPLY", "forOp": op,
                "replyType": XS.names.get(rtyp, str(rtyp)),
                "replyReqId": rreq, "replyTxId": rtx, "replyHex": data.hex()}
        step.update(decode_reply(op, rtyp, data))
        if note:
            step["note"] = note
        self.log.append(step)
        return step

    def close(self):
        self.c.close()


# ---------------------------------------------------------------------------
# tree walk (after the update)

TREE_INLINE_MAX = 300


def walk_tree(cl):
    """Pre-order walk from / using DIRECTORY, READ, GET_PERMS (not recorded
    as probes). Children in the daemon's DIRECTORY order."""
    nodes = []

    def visit(path):
        val = cl.read(path, record=False)
        perms = cl.get_perms(path, record=False)
        kids = cl.directory(path, record=False)
        for st in (val, perms, kids):
            if st["replyType"] == "ERROR":
                raise RuntimeError(f"walk: {st['op']} {path}: {st['error']}")
        raw = bytes.fromhex(val["replyHex"])
        ent = {"path": path, "perms": perms["reply"]}
        if val["reply"] is not None:
            ent["value"] = val["reply"]
        ent["valueHex"] = raw.hex()
        nodes.append(ent)
        for k in kids["reply"]:
            visit(("" if path == "/" else path) + "/" + k)

    visit("/")
    h = hashlib.sha256()
    for n in nodes:
        h.update(n["path"].encode() + b"\0" + ",".join(n["perms"]).encode()
                 + b"\0" + n["valueHex"].encode() + b"\n")
    digest = {"nodes": len(nodes), "sha256": h.hexdigest(),
              "canonicalForm": "for each node in pre-order (children in DIRECTORY order): "
                               "path NUL perms-joined-by-comma NUL lowercase-hex(value) LF"}
    return nodes, digest


# ---------------------------------------------------------------------------
# live-update handshake with the shell

def live_update():
    print("LU", flush=True)
    line = sys.stdin.readline().split()
    if len(line) < 2 or line[0] != "DONE" or line[1] != "0":
        raise RuntimeError(f"live update failed: {line}")
    log("live update done:", " ".join(line[2:]))
    time.sleep(0.1)


def settle():
    # give the daemon time to process closes / partial sends before the update
    time.sleep(0.2)


# ---------------------------------------------------------------------------
# scenarios. Each gets (sock, ctx) and returns nothing; it fills ctx.

def sc_basic(sock, ctx):
    ctx["description"] = (
        "Plain tree: values incl. binary bytes with NULs and 0xff, empty values, a "
        "UTF-8 value, a 3000-byte value, children created in non-sorted order "
        "(zeta, alpha, mid), auto-created parents of a deep path, a relative write "
        "(-> /local/domain/0/rel), MKDIR, a removed node. Only the dom0 ring "
        "connection and the live-update socket connection exist at the update.")
    s = Client("setup", sock, ctx["setup"])
    s.write("/basic/zeta", "last letter, created first")
    s.write("/basic/alpha", "")
    s.write("/basic/mid", "middle")
    s.write("/basic/bin", b"\x00\x01\x02\xffabc\x00\x00")
    s.write("/basic/nul-only", b"\x00")
    s.write("/basic/utf8", "gr\u00fc\u00dfe \u2603")
    s.write("/basic/newline", "line1\nline2\n")
    s.write("/basic/big", ("0123456789abcdef" * 188)[:3000])
    s.write("/basic/deep/a/b/c/d/e", "deep value")
    s.mkdir("/basic/emptydir")
    s.write("/basic/gone", "to be removed")
    s.rm("/basic/gone")
    s.write("rel", "relative write from dom0 socket")
    s.write("/basic/zeta/child2", "second")
    s.write("/basic/zeta/child1", "first")
    s.close()
    settle()
    live_update()
    p = Client("probe", sock, ctx["probes"])
    ctx["tree"], ctx["treeDigest"] = walk_tree(p)
    for path in ("/basic/zeta", "/basic/alpha", "/basic/mid", "/basic/bin",
                 "/basic/nul-only", "/basic/utf8", "/basic/newline", "/basic/big",
                 "/basic/deep", "/basic/deep/a/b/c/d/e", "/basic/emptydir",
                 "/local/domain/0/rel", "rel", "/tool/xenstored", "/",
                 "/basic/gone", "/missing", "/missing/deeper"):
        p.read(path)
    for path in ("/", "/basic", "/basic/zeta", "/basic/deep/a", "/basic/emptydir",
                 "/local/domain/0", "/basic/gone"):
        p.directory(path)
    p.directory_part("/basic", 0)
    for path in ("/", "/basic/bin", "/basic/deep/a/b"):
        p.get_perms(path)
    # the restored tree keeps working
    p.write("/basic/new", "after update")
    p.directory("/basic")
    p.rm("/basic/deep")
    p.directory("/basic")
    p.read("/basic/deep/a/b/c/d/e")
    p.close()


def sc_perms(sock, ctx):
    ctx["description"] = (
        "Permission lists. Domains 5, 7, 9 (and 6) are introduced with XS_INTRODUCE; "
        "nodes get lists such as n0 r5 w7 b9, one node is owned by dom5, and "
        "@introduceDomain gets n0 r5. Stale entries: domain 6 is introduced, granted "
        "b6/r6 and then RELEASEd (its entries get the stale flag at once); /perms/stale "
        "also grants r12 to never-introduced domain 12, which C 4.17 flags stale only "
        "when restoring (README note 14). Hence TWO live updates: perms.lu1.bin is the "
        "first dump (r12 not yet flagged), perms.bin the second (r12 flagged) and the "
        "probes are answered after the second.")
    s = Client("setup", sock, ctx["setup"])
    for d in (5, 7, 9, 6):
        s.introduce(d, 0x1000 + d, 40 + d)
    s.write("/perms/n0", "owner dom0 only")
    s.write("/perms/r5w7b9", "mixed")
    s.set_perms("/perms/r5w7b9", "n0", "r5", "w7", "b9")
    s.write("/perms/owned5", "owned by dom5")
    s.set_perms("/perms/owned5", "n5", "r7", "b9")
    s.write("/perms/owned5/child", "inherits perms of parent")
    s.write("/perms/readall", "everybody may read")
    s.set_perms("/perms/readall", "r0")
    s.write("/perms/writeall", "everybody may write")
    s.set_perms("/perms/writeall", "w9", "n5")
    s.write("/perms/many", "five entries")
    s.set_perms("/perms/many", "b7", "r5", "w9", "n0", "r7")
    s.write("/perms/stale", "entries for a released and an un-introduced domain")
    s.set_perms("/perms/stale", "n0", "b6", "r12", "r5")
    s.set_perms("@introduceDomain", "n0", "r5")
    s.get_perms("/perms/stale")
    s.release(6)
    s.get_perms("/perms/stale")
    s.get_perms("/perms/owned5/child")
    s.close()
    settle()
    live_update()
    live_update()
    p = Client("probe", sock, ctx["probes"])
    ctx["tree"], ctx["treeDigest"] = walk_tree(p)
    for path in ("/perms", "/perms/n0", "/perms/r5w7b9", "/perms/owned5",
                 "/perms/owned5/child", "/perms/readall", "/perms/writeall",
                 "/perms/many", "/perms/stale", "/", "@introduceDomain",
                 "@releaseDomain", "/missing"):
        p.get_perms(path)
    for d in (5, 6, 7, 9, 12):
        p.is_introduced(d)
    p.read("/perms/owned5")
    p.directory("/perms")
    # a new node under a dom5-owned node inherits its list
    p.write("/perms/owned5/new", "x")
    p.get_perms("/perms/owned5/new")
    p.close()


def sc_watches(sock, ctx):
    ctx["description"] = (
        "Two extra socket connections A and B, kept open across the update by this "
        "process, with absolute, relative, @introduceDomain and @releaseDomain "
        "watches (initial events drained before the update). After the update: no "
        "spurious events, then writes/introduce/release/rm from the probe connection "
        "and the events A and B receive; EEXIST for a re-registered watch; UNWATCH "
        "of a restored watch.")
    s = Client("setup", sock, ctx["setup"])
    s.write("/w/abs", "")
    s.write("rel/w", "")
    a = Client("A", sock, ctx["setup"])
    b = Client("B", sock, ctx["setup"])
    ctx["keptConnections"] = ["A", "B"]
    a.watch("/w/abs", "tokA-abs")
    a.watch("rel/w", "tokA-rel")
    a.watch("@introduceDomain", "tokA-intro")
    a.watch("@releaseDomain", "tokA-release")
    b.watch("/w", "tokB-w")
    b.watch("/w/abs", "tokB-abs")
    b.watch("rel", "tokB-relroot")
    b.watch("@releaseDomain", "tokB-release")
    a.drain_events(note="initial events of the registrations")
    b.drain_events(note="initial events of the registrations")
    s.write("/w/abs/before", "1")
    a.drain_events(note="event before the update")
    b.drain_events(note="event before the update")
    s.close()
    settle()
    live_update()
    a.set_log(ctx["probes"])
    b.set_log(ctx["probes"])
    p = Client("probe", sock, ctx["probes"])
    a.drain_events(wait=0.5, note="right after the update: restored watches fire no initial event")
    b.drain_events(wait=0.5, note="right after the update")
    p.write("/w/abs/x", "1")
    a.drain_events()
    b.drain_events()
    p.write("/local/domain/0/rel/w/y", "2")
    a.drain_events()
    b.drain_events()
    p.introduce(11, 0x1011, 51)
    a.drain_events()
    b.drain_events()
    p.release(11)
    a.drain_events()
    b.drain_events()
    a.watch("/w/abs", "tokA-abs", note="already registered before the update")
    a.watch("/w/abs", "tokA-new")
    a.drain_events(note="initial event of the new watch")
    a.unwatch("rel/w", "tokA-rel")
    p.write("rel/w/z", "3")
    a.drain_events(note="tokA-rel was removed")
    b.drain_events()
    b.read("/w/abs/x", note="kept connection still answers requests")
    p.rm("/w")
    a.drain_events()
    b.drain_events()
    ctx["tree"], ctx["treeDigest"] = walk_tree(p)
    for c in (a, b, p):
        c.close()


def sc_pending(sock, ctx):
    ctx["description"] = (
        "Partially received requests at the time of the update: P sent 1 byte of a "
        "header, Q 8 bytes (half a header), R the 16-byte header plus 1 payload byte, "
        "S the header plus 13 of 18 payload bytes, T a complete READ (answered before "
        "the update) followed by 3 bytes of the next header. After the update each "
        "connection sends the rest and the reply is recorded (RAW_REPLY). Not "
        "capturable: a complete header with NONE of a non-empty payload, because C "
        "4.17 then does a blocking read() for the payload on the (blocking) socket and "
        "the whole daemon stalls until that client sends more, so the live-update "
        "command itself would not be served.")
    s = Client("setup", sock, ctx["setup"])
    s.write("/pending/t", "value-t")
    s.close()
    conns = {}
    for lbl in "PQRST":
        conns[lbl] = Client(lbl, sock, ctx["setup"])
    ctx["keptConnections"] = list("PQRST")

    def mk(op, req, pl):
        return HDR.pack(getattr(XS, op), req, 0, len(pl)) + pl

    msgs = {
        "P": ("WRITE", mk("WRITE", 0x50505050, b"/pending/p\0value-p")),
        "Q": ("WRITE", mk("WRITE", 0x51515151, b"/pending/q\0value-q")),
        "R": ("WRITE", mk("WRITE", 0x52525252, b"/pending/r\0value-r")),
        "S": ("WRITE", mk("WRITE", 0x53535353, b"/pending/s\0value-s")),
        "T": ("READ", mk("READ", 0x54545454, b"/pending/t\0")),
    }
    cut = {"P": 1, "Q": 8, "R": 16 + 1, "S": 16 + 13, "T": 3}
    for lbl in "PQRS":
        op, m = msgs[lbl]
        conns[lbl].send_raw(m[:cut[lbl]], note=f"first {cut[lbl]} of {len(m)} bytes")
    t = conns["T"]
    first = mk("READ", 0x54000001, b"/pending/t\0")
    t.send_raw(first, note="complete READ")
    t.recv_reply("READ", note="answered before the update")
    t.send_raw(msgs["T"][1][:3], note=f"first 3 of {len(msgs['T'][1])} bytes of the next READ")
    settle()
    live_update()
    p = Client("probe", sock, ctx["probes"])
    for lbl in "PQRST":
        c = conns[lbl]
        c.set_log(ctx["probes"])
        op, m = msgs[lbl]
        c.send_raw(m[cut[lbl]:], note="rest of the request")
        c.recv_reply(op)
    for lbl in "PQRS":
        p.read(f"/pending/{lbl.lower()}")
    p.directory("/pending")
    # a partial request completed in two more pieces after the update
    r2 = mk("WRITE", 0x52000002, b"/pending/r2\0two-step")
    c = conns["R"]
    c.send_raw(r2[:5])
    time.sleep(0.1)
    c.send_raw(r2[5:])
    c.recv_reply("WRITE")
    p.read("/pending/r2")
    ctx["tree"], ctx["treeDigest"] = walk_tree(p)
    for c in list(conns.values()) + [p]:
        c.close()


def sc_domains(sock, ctx):
    ctx["description"] = (
        "Domains 1 and 3 introduced (XS_INTRODUCE domid gfn port) and SET_TARGET 3 1 "
        "(domain 3 gets target 1, as for a device-model stub domain); nodes under "
        "/local/domain/1 and /local/domain/3 owned by them. After the update: "
        "introduction state, domain paths, perms; then RELEASE of domain 3 and what "
        "remains.")
    s = Client("setup", sock, ctx["setup"])
    s.introduce(1, 0x10001, 61)
    s.introduce(3, 0x10003, 63)
    s.set_target(3, 1)
    s.write("/local/domain/1/name", "guest1")
    s.write("/local/domain/1/device/vif/0/state", "4")
    s.set_perms("/local/domain/1", "n1", "r3")
    s.set_perms("/local/domain/1/name", "n1", "r3")
    s.set_perms("/local/domain/1/device", "n1", "b3")
    s.write("/local/domain/3/name", "stubdom-for-1")
    s.set_perms("/local/domain/3", "n3", "r1")
    s.set_perms("/local/domain/3/name", "n3")
    s.write("/vm/guest1", "vm node owned by dom1")
    s.set_perms("/vm/guest1", "n1", "r0")
    s.close()
    settle()
    live_update()
    p = Client("probe", sock, ctx["probes"])
    ctx["tree"], ctx["treeDigest"] = walk_tree(p)
    for d in (0, 1, 2, 3):
        p.is_introduced(d)
    for d in (1, 3):
        p.get_domain_path(d)
    for path in ("/local/domain/1", "/local/domain/1/name", "/local/domain/1/device",
                 "/local/domain/1/device/vif/0/state", "/local/domain/3",
                 "/vm/guest1"):
        p.get_perms(path)
    p.read("/local/domain/1/name")
    p.directory("/local/domain")
    p.introduce(1, 0x10001, 61, note="re-introduce with the same parameters")
    p.set_target(3, 1, note="again, after the update")
    p.watch("@releaseDomain", "tokP-release")
    p.drain_events(note="initial event")
    p.release(3)
    p.drain_events()
    p.is_introduced(3)
    p.directory("/local/domain")
    p.get_perms("/local/domain/1")
    p.release(3, note="second release")
    p.close()


def sc_large(sock, ctx):
    nd, nn = 40, 50
    ctx["description"] = (
        f"About 2000 nodes: /large/dNN/nNN ({nd} x {nn}) with 16-byte-ish values, "
        "written pipelined on one connection; size/performance sanity check. The "
        "full tree is given as treeDigest only.")
    s = Client("setup", sock, ctx["setup"])
    c = s.c
    # pipelined writes, not recorded one by one
    sent = 0
    for d in range(nd):
        for n in range(nn):
            pl = payload(f"/large/d{d:02d}/n{n:02d}", f"value-{d:02d}-{n:02d}-xx", nul=False)
            c.send(XS.WRITE, pl)
            sent += 1
            if sent % 50 == 0:
                for _ in range(50):
                    t, _r, _t, data = c.recv()
                    if t != XS.WRITE:
                        raise RuntimeError(f"write failed: {data!r}")
    ctx["setup"].append({"conn": "setup", "op": "WRITE", "note":
                         f"{sent} pipelined WRITEs /large/dDD/nNN = value-DD-NN-xx (not listed)"})
    s.set_perms("/large/d07", "n0", "r3")
    s.close()
    settle()
    t0 = time.time()
    live_update()
    log(f"large: live update round trip {time.time() - t0:.3f}s")
    p = Client("probe", sock, ctx["probes"])
    nodes, digest = walk_tree(p)
    ctx["tree"] = nodes if len(nodes) <= TREE_INLINE_MAX else None
    ctx["treeDigest"] = digest
    p.directory("/large")
    p.directory("/large/d17")
    p.directory_part("/large/d17", 0)
    for path in ("/large/d00/n00", "/large/d17/n33", "/large/d39/n49", "/large/d40/n00"):
        p.read(path)
    p.get_perms("/large/d07/n12")
    p.close()


SCENARIOS = {
    "basic": sc_basic,
    "perms": sc_perms,
    "watches": sc_watches,
    "pending": sc_pending,
    "domains": sc_domains,
    "large": sc_large,
}


def cmd_run(scenario, sock, out):
    ctx = {"scenario": scenario, "description": "", "setup": [], "probes": []}
    SCENARIOS[scenario](sock, ctx)
    doc = {
        "scenario": scenario,
        "description": ctx["description"],
        "setup": ctx["setup"],
        "keptConnections": ctx.get("keptConnections", []),
        "probes": ctx["probes"],
        "tree": ctx.get("tree"),
        "treeDigest": ctx.get("treeDigest"),
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("END", flush=True)


# ---------------------------------------------------------------------------
# stream decoding (for the summary; independent of the simulator's reader)

REC = {0: "END", 1: "GLOBAL_DATA", 2: "CONNECTION_DATA", 3: "WATCH_DATA",
       4: "TRANSACTION_DATA", 5: "NODE_DATA", 6: "GLOBAL_QUOTA_DATA",
       7: "DOMAIN_DATA", 8: "WATCH_DATA_EXTENDED"}


def c_str(b):
    return b.split(b"\0")[0].decode("utf-8", "replace")


def decode_stream(data):
    """Returns (header dict, list of (offset, type, len, description))."""
    if data[:8] != b"xenstore":
        raise ValueError("bad ident")
    version, flags = struct.unpack(">II", data[8:16])
    hdr = {"ident": "xenstore", "version": version, "flagsHex": data[12:16].hex()}
    recs = []
    conns = []
    off = 16
    while off + 8 <= len(data):
        typ, ln = struct.unpack("<II", data[off:off + 8])
        body = data[off + 8: off + 8 + ln]
        d = ""
        if typ == 1:
            sfd, efd = struct.unpack("<ii", body[:8])
            d = f"socket-fd={sfd} evtchn-fd={efd}"
        elif typ == 2:
            cid, ctype, fields = struct.unpack("<IHH", body[:8])
            inl, outr, outl = struct.unpack("<HHI", body[16:24])
            if ctype == 0:
                domid, tdomid, port = struct.unpack("<HHI", body[8:16])
                spec = f"ring domid={domid} tdomid={tdomid:#x} evtchn={port}"
            else:
                fd, pad = struct.unpack("<iI", body[8:16])
                spec = f"socket fd={fd} pad={pad}"
            conns.append({"connId": cid, "type": "ring" if ctype == 0 else "socket"})
            if ctype == 0:
                conns[-1].update(domid=domid, tdomid=tdomid, evtchn=port)
            else:
                conns[-1].update(fd=fd)
            conns[-1].update(inDataLen=inl, outRespLen=outr, outDataLen=outl)
            d = (f"conn-id={cid} {spec} fields={fields} in-len={inl} "
                 f"out-resp-len={outr} out-len={outl}")
            if inl:
                d += f" in={body[24:24 + inl].hex()}"
            if outl:
                d += f" out={body[24 + inl:24 + inl + outl].hex()}"
        elif typ == 3:
            cid, wl, tl = struct.unpack("<IHH", body[:8])
            d = (f"conn-id={cid} wpath={c_str(body[8:8 + wl])!r} "
                 f"token={c_str(body[8 + wl:8 + wl + tl])!r}")
        elif typ == 5:
            cid, tx, pl, vl, acc, np_ = struct.unpack("<IIHHHH", body[:16])
            perms = []
            for i in range(np_):
                ch, fl, dom = struct.unpack("<BBH", body[16 + 4 * i:20 + 4 * i])
                perms.append(f"{chr(ch)}{dom}" + ("(stale)" if fl & 1 else "")
                             + (f"(flags={fl:#x})" if fl & ~1 else ""))
            po = 16 + 4 * np_
            path = c_str(body[po:po + pl])
            val = body[po + pl: po + pl + vl]
            vs = repr(val)[2:-1]
            if len(vs) > 40:
                vs = vs[:40] + "..."
            d = (f"conn-id={cid} tx-id={tx} access={acc} perms={','.join(perms)} "
                 f"path={path} vlen={vl} value='{vs}'")
        recs.append((off, REC.get(typ, f"UNKNOWN({typ})"), ln, d))
        off += 8 + ln
        if typ == 0:
            break
    if off != len(data):
        recs.append((off, "TRAILING", len(data) - off, ""))
    return hdr, recs, conns


def cmd_finalize(jpath, binpath, intermediates):
    data = open(binpath, "rb").read()
    hdr, recs, conns = decode_stream(data)
    order = []
    for _off, name, _ln, _d in recs:
        if order and order[-1]["type"] == name:
            order[-1]["count"] += 1
        else:
            order.append({"type": name, "count": 1})
    doc = json.load(open(jpath))
    # label the stream's connections: ring ones by domain; socket ones in
    # creation order = the kept connections, then xenstore-control's (last)
    kept = doc.pop("keptConnections", [])
    socks = [c for c in conns if c["type"] == "socket"]
    if len(socks) != len(kept) + 1:
        raise SystemExit(f"expected {len(kept) + 1} socket connections, found {len(socks)}")
    for c, lbl in zip(socks, kept + ["xenstore-control"]):
        c["label"] = lbl
    for c in conns:
        if c["type"] == "ring":
            c["label"] = f"dom{c['domid']} ring"
    stream = {
        "file": os.path.basename(binpath),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "header": hdr,
        "recordOrder": order,
        "connections": conns,
        "allLenMultipleOf8": all(ln % 8 == 0 for _o, _n, ln, _d in recs),
    }
    cap = {k: os.environ[e] for k, e in (
        ("xenUtilsVersion", "CAPTURE_XEN_VERSION"), ("xenstoredSha256", "CAPTURE_BIN_SHA256"),
        ("liveUpdateCommand", "CAPTURE_LU_CMD")) if os.environ.get(e)}
    if intermediates:
        stream["intermediateDumps"] = [
            {"file": os.path.basename(p), "bytes": os.path.getsize(p),
             "sha256": hashlib.sha256(open(p, "rb").read()).hexdigest()}
            for p in intermediates]
    # put "capture" and "stream" right after the description
    new = {}
    for k, v in doc.items():
        new[k] = v
        if k == "description":
            new["capture"] = cap
            new["stream"] = stream
    json.dump(new, open(jpath, "w"), indent=1, ensure_ascii=False)
    open(jpath, "a").write("\n")
    # text summary on stdout
    print(f"{os.path.basename(binpath)}: {len(data)} bytes, sha256 {stream['sha256']}")
    print(f"header: ident=xenstore version={hdr['version']} flags(bytes)={hdr['flagsHex']}")
    print()
    shown = recs if len(recs) <= 80 else recs[:60] + [None] + recs[-5:]
    for r in shown:
        if r is None:
            print(f"... ({len(recs) - 65} records not shown)")
            continue
        off, name, ln, d = r
        print(f"{off:#07x} {name:<17} len={ln:<5} {d}")


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "run":
        cmd_run(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) >= 4 and sys.argv[1] == "finalize":
        cmd_finalize(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        log(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
