#!/usr/bin/env python3
"""A local HTTPS server replaying documented API responses, for the tests of the SaaS APIs the
exporter reads (Google Postmaster Tools, Microsoft SNDS) and their token endpoints: the only way
to test them here, since a test may not reach the real services. Binds 127.0.0.1 only.

Usage: replay.py ROUTES CERT KEY LOG [PORT]
  ROUTES  a JSON file, read again on every request (so a test can change the answers):
          {"METHOD /path?query": {"status": 200, "file": "/abs/body", "type": "text/csv",
           "headers": {"Retry-After": "30"}}, "METHOD /path": {...}}
          A key with the query is tried first, then the path alone; no match is a 404. A
          value may also be a list of such answers, each with "when": a text the request body
          must contain (the first that matches answers; one without "when" always matches).
  LOG     every request is appended as one JSON line: method, path, query, headers, body.
PORT  127.0.0.1's port to listen on (default: any free one).
Prints "listening PORT" on stdout once it accepts connections.
"""
import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ROUTES, CERT, KEY, LOG = sys.argv[1:5]
LOCK = threading.Lock()
MAX_BODY = 1 << 20


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self):
        url = urlsplit(self.path)
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
        body = self.rfile.read(length) if length else b""
        with LOCK:
            with open(LOG, "a") as log:
                log.write(json.dumps({
                    "method": self.command,
                    "path": url.path,
                    "query": url.query,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode("utf-8", "replace"),
                }) + "\n")
        with open(ROUTES) as f:
            routes = json.load(f)
        route = routes.get(f"{self.command} {url.path}?{url.query}") or routes.get(
            f"{self.command} {url.path}")
        if isinstance(route, list):
            text = body.decode("utf-8", "replace")
            route = next((r for r in route if r.get("when", "") in text), None)
        if route is None:
            status, data, ctype, headers = 404, b'{"error":{"code":404,"status":"NOT_FOUND"}}', "application/json", {}
        else:
            status = route.get("status", 200)
            data = open(route["file"], "rb").read() if "file" in route else route.get("body", "").encode()
            ctype = route.get("type", "application/json")
            headers = route.get("headers", {})
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_GET = answer
    do_POST = answer


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[5]) if len(sys.argv) > 5 else 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
