#!/usr/bin/python3
"""A scriptable HTTPS server for the HTTP client's tests (and push's).

  http_harness.py h2|h1 --port P --log FILE [--cert C --key K]
                  [--max-streams N]

h2: Debian's python3-h2 over TLS (ALPN h2 only) on 127.0.0.1. h1:
http.server (HTTP/1.1, keep-alive) over TLS offering only http/1.1, or
plain HTTP without --cert. The path picks the behaviour:

  /ok            200 "ok"            /status/NNN  NNN "status NNN"
  /echo          200 with the body   /delay/MS    200 after MS ms
  /stall         never answers       /rst         RST_STREAM (h2)
  /goaway        GOAWAY naming this stream last, then 200 (h2); streams
                 after it are refused
  /close         the TCP connection is closed at once
  /bighdr/N      200 with a header of N bytes
  /big/N         200 with a body of N bytes

Every connection and request is logged to FILE as one line:
  conn <n> port=<client port>
  req conn=<n> stream=<id> method=<m> path=<p> len=<body length>
Runs until killed (the test stops it by pid)."""

import argparse
import asyncio
import http.server
import os
import socketserver
import ssl
import sys
import threading


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.lock = threading.Lock()
        self.conns = 0

    def conn(self, port):
        with self.lock:
            self.conns += 1
            n = self.conns
            self.f.write("conn %d port=%d\n" % (n, port))
        return n

    def req(self, conn, stream, method, path, blen):
        with self.lock:
            self.f.write("req conn=%d stream=%d method=%s path=%s len=%d\n"
                         % (conn, stream, method, path, blen))


def plan(path, body):
    """(status, headers, body, action) for @path."""
    if path == "/ok":
        return 200, [], b"ok", None
    if path.startswith("/status/"):
        st = int(path.split("/")[2])
        return st, [], b"status %d" % st, None
    if path == "/echo":
        return 200, [], body, None
    if path.startswith("/delay/"):
        return 200, [], b"delayed", ("delay", int(path.split("/")[2]))
    if path.startswith("/bighdr/"):
        n = int(path.split("/")[2])
        return 200, [("x-big", "a" * n)], b"ok", None
    if path.startswith("/big/"):
        n = int(path.split("/")[2])
        return 200, [], b"b" * n, None
    if path in ("/stall", "/rst", "/goaway", "/close"):
        return 200, [], b"ok", (path[1:], 0)
    return 404, [], b"not found", None


# ---- HTTP/2 ----

class H2Conn(asyncio.Protocol):
    def __init__(self, log, max_streams):
        import h2.config
        import h2.connection
        cfg = h2.config.H2Configuration(client_side=False,
                                        header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.log = log
        self.max_streams = max_streams
        self.bodies = {}
        self.heads = {}
        self.goaway_last = None

    def connection_made(self, transport):
        import h2.settings
        self.t = transport
        port = transport.get_extra_info("peername")[1]
        self.n = self.log.conn(port)
        self.h2.initiate_connection()
        self.h2.update_settings({
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS:
                self.max_streams})
        self.t.write(self.h2.data_to_send())

    def data_received(self, data):
        import h2.events
        import h2.exceptions
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.t.write(self.h2.data_to_send())
            self.t.close()
            return
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                self.heads[ev.stream_id] = dict(ev.headers)
                self.bodies[ev.stream_id] = b""
                if ev.stream_ended:
                    self.request(ev.stream_id)
            elif isinstance(ev, h2.events.DataReceived):
                self.bodies[ev.stream_id] = (
                    self.bodies.get(ev.stream_id, b"") + ev.data)
                self.h2.acknowledge_received_data(
                    ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                if ev.stream_id in self.heads:
                    self.request(ev.stream_id)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.t.close()
                return
        if not self.t.is_closing():
            self.t.write(self.h2.data_to_send())

    def request(self, sid):
        hd = self.heads.pop(sid)
        body = self.bodies.pop(sid, b"")
        if self.goaway_last is not None and sid > self.goaway_last:
            return  # refused by the GOAWAY already sent
        path = hd.get(":path", "/")
        self.log.req(self.n, sid, hd.get(":method"), path, len(body))
        st, hdrs, rbody, action = plan(path, body)
        if action is not None:
            what, arg = action
            if what == "stall":
                return
            if what == "rst":
                import h2.errors
                self.h2.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
                return
            if what == "close":
                self.t.abort()
                return
            if what == "goaway":
                # Answer this stream, then refuse every later one.
                self.goaway_last = sid
                self.respond(sid, st, hdrs, rbody)
                self.h2.close_connection(last_stream_id=sid)
                self.t.write(self.h2.data_to_send())
                return
            if what == "delay":
                asyncio.get_event_loop().call_later(
                    arg / 1000.0, self.respond, sid, st, hdrs, rbody)
                return
        self.respond(sid, st, hdrs, rbody)

    def respond(self, sid, st, hdrs, body):
        if self.t.is_closing():
            return
        try:
            self.h2.send_headers(sid, [(":status", str(st)),
                                       ("content-length", str(len(body)))]
                                 + hdrs)
            self.send_body(sid, body)
        except Exception:  # the stream went away meanwhile
            pass
        self.t.write(self.h2.data_to_send())

    def send_body(self, sid, body):
        # Small bodies only (tests): within the default windows.
        while body:
            n = min(len(body), self.h2.max_outbound_frame_size,
                    self.h2.local_flow_control_window(sid))
            if n <= 0:
                break
            self.h2.send_data(sid, body[:n])
            body = body[n:]
        self.h2.end_stream(sid)


def run_h2(args, log):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(["h2"])
    loop = asyncio.new_event_loop()
    srv = loop.run_until_complete(loop.create_server(
        lambda: H2Conn(log, args.max_streams), "127.0.0.1", args.port,
        ssl=ctx))
    print("ready", flush=True)
    loop.run_forever()
    srv.close()


# ---- HTTP/1.1 ----

def run_h1(args, log):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            self.n = log.conn(self.client_address[1])
            self.nreq = 0

        def log_message(self, fmt, *a):
            pass

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            self.nreq += 1
            log.req(self.n, self.nreq, self.command, self.path, len(body))
            st, hdrs, rbody, action = plan(self.path, body)
            if action is not None:
                what, arg = action
                if what == "stall":
                    threading.Event().wait(3600)
                    return
                if what == "close":
                    self.close_connection = True
                    self.connection.close()
                    return
                if what == "delay":
                    threading.Event().wait(arg / 1000.0)
            self.send_response(st)
            for k, v in hdrs:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(rbody)))
            self.end_headers()
            self.wfile.write(rbody)

        do_GET = do_POST = do_PUT = handle_any

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = Server(("127.0.0.1", args.port), Handler)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        ctx.set_alpn_protocols(["http/1.1"])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("ready", flush=True)
    srv.serve_forever()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["h1", "h2"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--max-streams", type=int, default=100)
    args = ap.parse_args()
    log = Log(args.log)
    if args.mode == "h2":
        if not args.cert:
            sys.exit("h2 needs --cert and --key")
        run_h2(args, log)
    else:
        run_h1(args, log)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
