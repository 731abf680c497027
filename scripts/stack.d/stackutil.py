#!/usr/bin/env python3
"""Helpers for scripts/stack (stdlib only; not a public interface).

  stackutil.py ports-free NAME=PORT[/udp] ...   exit 1 naming each port already in use
  stackutil.py wait SECONDS SPEC ...            poll until every SPEC is ready
      SPEC = SERVICE|KIND|TARGET|LOGFILE, KIND one of
        tcp   TARGET=PORT          a LISTEN socket on 127.0.0.1:PORT (/proc/net/tcp)
        unix  TARGET=PATH          a listening unix socket bound to PATH (/proc/net/unix)
        dns   TARGET=PORT          Unbound answers "dx.test SOA" with NOERROR over UDP
        http  TARGET=URL           GET URL returns 200
        pid   TARGET=PIDFILE       the process in PIDFILE is alive (fails fast if it died)
        imap-login TARGET=PORT,USER,PASS[,USER,PASS...]  each user logs in on 127.0.0.1:PORT
                                   (plaintext LOGIN) and lists its folders (fails fast on NO)
  stackutil.py dkim-txt NAME PUBKEY.der         print an unbound local-data TXT line
"""
import base64
import errno
import os
import socket
import struct
import sys
import time
import urllib.request


def ports_free(args):
    busy = []
    for a in args:
        name, _, port = a.partition("=")
        proto = "tcp"
        if port.endswith("/udp"):
            port, proto = port[:-4], "udp"
        port = int(port)
        kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if proto == "udp" else [])
        for kind in kinds:
            s = socket.socket(socket.AF_INET, kind)
            try:
                if kind == socket.SOCK_STREAM:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
            except OSError as e:
                busy.append("%s=%d (%s%s)" % (name, port, "udp " if kind == socket.SOCK_DGRAM else "",
                                               os.strerror(e.errno) if e.errno else e))
                break
            finally:
                s.close()
    for b in busy:
        print("port in use on 127.0.0.1: %s" % b, file=sys.stderr)
    return 1 if busy else 0


def tcp_listening(port):
    want = ":%04X" % port
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                next(fh)
                for line in fh:
                    p = line.split()
                    if p[3] == "0A" and p[1].endswith(want):
                        return True
        except OSError:
            pass
    return False


def unix_listening(path):
    try:
        with open("/proc/net/unix") as fh:
            next(fh)
            for line in fh:
                p = line.split()
                # Flags 00010000 = __SO_ACCEPTCON (listening)
                if len(p) >= 8 and p[7] == path and int(p[3], 16) & 0x10000:
                    return True
    except OSError:
        pass
    return False


def dns_query(name, qtype, port, timeout=0.5):
    qid = os.getpid() & 0xFFFF
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, ("127.0.0.1", port))
        data = s.recv(4096)
    finally:
        s.close()
    rid, flags, _, ancount = struct.unpack(">HHHH", data[:8])
    return rid == qid, flags & 0xF, ancount


def dns_ready(port):
    try:
        ok, rcode, an = dns_query("dx.test", 6, port)
        return ok and rcode == 0 and an > 0
    except OSError:
        return False


def http_ready(url):
    try:
        with urllib.request.urlopen(url, timeout=0.5) as r:
            return r.status == 200
    except Exception:
        return False


def pid_alive(pidfile):
    try:
        pid = int(open(pidfile).read().split()[0])
        with open("/proc/%d/stat" % pid) as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, ValueError, IndexError):
        return False


class Fatal(Exception):
    """A readiness check that can never succeed (the spec fails at once)."""


def imap_logins(target):
    import imaplib  # only here: the other commands start faster without it

    port, *pairs = target.split(",")
    if not tcp_listening(int(port)):
        return False
    for user, password in zip(pairs[::2], pairs[1::2]):
        try:
            m = imaplib.IMAP4("127.0.0.1", int(port), timeout=10)
        except OSError:
            return False
        try:
            m.login(user, password)
            typ, _ = m.list()
            m.logout()
        except imaplib.IMAP4.error as e:
            raise Fatal("IMAP login of %s refused: %s" % (user, e))
        except OSError:
            return False
        if typ != "OK":
            raise Fatal("LIST of %s failed" % user)
    return True


CHECKS = {"tcp": lambda t: tcp_listening(int(t)), "unix": unix_listening,
          "dns": lambda t: dns_ready(int(t)), "http": http_ready, "pid": pid_alive,
          "imap-login": imap_logins}


def wait(args):
    deadline = time.monotonic() + float(args[0])
    pending = [a.split("|", 3) for a in args[1:]]
    dead = []
    why = {}
    while pending:
        still = []
        for spec in pending:
            svc, kind, target, log = spec
            try:
                if CHECKS[kind](target):
                    continue
            except Fatal as e:
                why[id(spec)] = str(e)
                dead.append(spec)
                continue
            if kind == "pid":  # the process died: no point in waiting for it
                dead.append(spec)
                continue
            still.append(spec)
        pending = still
        dead_svcs = {d[0] for d in dead}
        pending = [p for p in pending if p[0] not in dead_svcs]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    failed = dead + pending
    for spec in failed:
        svc, kind, target, log = spec
        if id(spec) in why:
            reason = why[id(spec)]
        elif kind == "pid":
            reason = "exited during start-up"
        else:
            reason = "not ready after %ss (%s %s)" % (args[0], kind, target)
        print("stack: %s %s; see its log %s" % (svc, reason, log), file=sys.stderr)
        try:
            tail = open(log, errors="replace").read().splitlines()[-8:]
            for t in tail:
                print("    | " + t, file=sys.stderr)
        except OSError:
            pass
    return 1 if failed else 0


def dkim_txt(name, der_file):
    p = base64.b64encode(open(der_file, "rb").read()).decode()
    value = "v=DKIM1; k=rsa; p=" + p
    chunks = [value[i:i + 250] for i in range(0, len(value), 250)]
    print("local-data: '%s 300 IN TXT %s'" % (name, " ".join('"%s"' % c for c in chunks)))
    return 0


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "ports-free":
        return ports_free(args)
    if cmd == "wait":
        return wait(args)
    if cmd == "dkim-txt":
        return dkim_txt(*args)
    print("unknown command %s" % cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
