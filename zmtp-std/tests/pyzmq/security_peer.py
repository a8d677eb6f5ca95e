#!/usr/bin/env python3
"""A libzmq peer (through pyzmq) for tests/security_pyzmq.rs: PLAIN and CURVE servers and
clients, libzmq's ZAP authenticator, and a ZAP handler socket on TCP.

One JSON argument says what to be:
  {"role": "server" | "client" | "zap",
   "mechanism": "null" | "plain" | "curve",
   "bind": true (bind a random port on 127.0.0.1) | false (connect to "endpoint"),
   "endpoint": "tcp://127.0.0.1:PORT",
   "server_public", "server_secret", "client_public", "client_secret": Z85 keys,
   "username", "password": PLAIN client credentials,
   "auth": null, or for a server, libzmq's ZAP authenticator (zmq.auth ThreadAuthenticator):
           {"plain": {"user": "password", ...}} or {"curve_keys": [Z85, ...]},
   "allow_keys": [Z85], "allow_users": {"user": "password"}   (role zap),
   "count": requests to serve, send, or ZAP requests to answer}

It prints one line per fact, flushed, for the test to read:
  PORT n            bound (role server/client with "bind", and role zap)
  EVENT name value  the client's first handshake event (value: the ZAP status for _AUTH)
  SEVENT name value a handshake event of the server socket
  ZAP mech cred     the zap role answered a request (cred: key in Z85, or the user name)
  GOT f1|f2|...     a request (server) or reply (client), frames hex-encoded
  DONE              finished as asked
  FAIL why          something went wrong (exit status 1)
A server (REP) answers each request with "echo" + the frames; a client (REQ) sends
"msg", str(i). Everything times out after 10 s.
"""

import json
import sys
import time

import zmq
import zmq.auth
import zmq.auth.thread
import zmq.utils.monitor
import zmq.utils.z85

from peerlib import HANDSHAKE_EVENTS, TIMEOUT_MS, Keys, event_name, fail, finish, hexframes, say, watch

def endpoint_of(s, cfg):
    if cfg.get("bind"):
        port = s.bind_to_random_port("tcp://127.0.0.1")
        say("PORT", port)
    else:
        s.connect(cfg["endpoint"])


def start_auth(ctx, auth):
    a = zmq.auth.thread.ThreadAuthenticator(ctx)
    a.start()
    if "plain" in auth:
        a.configure_plain(domain="*", passwords=auth["plain"])
    if "curve_keys" in auth:
        a.configure_curve_callback(domain="*", credentials_provider=Keys(auth["curve_keys"]))
    return a


def server(ctx, cfg):
    auth = start_auth(ctx, cfg["auth"]) if cfg.get("auth") else None
    s = ctx.socket(zmq.REP)
    s.linger = 0
    s.rcvtimeo = TIMEOUT_MS
    s.sndtimeo = TIMEOUT_MS
    mech = cfg["mechanism"]
    if mech == "curve":
        s.curve_server = True
        s.curve_secretkey = cfg["server_secret"].encode()
        s.curve_publickey = cfg["server_public"].encode()
    elif mech == "plain":
        s.plain_server = True
    watch(s, "SEVENT")
    endpoint_of(s, cfg)
    count = cfg.get("count", 1)
    if count == 0:
        # Serve nothing: wait to be killed (the test reads SEVENT lines meanwhile).
        time.sleep(TIMEOUT_MS / 1000)
    for _ in range(count):
        try:
            msg = s.recv_multipart()
        except zmq.Again:
            fail("no request")
        say("GOT", hexframes(msg))
        s.send_multipart([b"echo"] + msg)
    say("DONE")
    if auth:
        auth.stop()
    finish(ctx, s)


def client(ctx, cfg):
    s = ctx.socket(zmq.REQ)
    s.linger = 0
    s.rcvtimeo = TIMEOUT_MS
    s.sndtimeo = TIMEOUT_MS
    mech = cfg["mechanism"]
    if mech == "curve":
        s.curve_serverkey = cfg["server_public"].encode()
        s.curve_publickey = cfg["client_public"].encode()
        s.curve_secretkey = cfg["client_secret"].encode()
    elif mech == "plain":
        s.plain_username = cfg["username"].encode()
        s.plain_password = cfg["password"].encode()
    mon = s.get_monitor_socket(HANDSHAKE_EVENTS)
    mon.rcvtimeo = TIMEOUT_MS
    s.setsockopt(zmq.RECONNECT_IVL, 60_000)
    endpoint_of(s, cfg)
    try:
        ev = zmq.utils.monitor.recv_monitor_message(mon)
    except zmq.Again:
        fail("no handshake event")
    say("EVENT", event_name(ev), ev["value"])
    if ev["event"] != zmq.EVENT_HANDSHAKE_SUCCEEDED:
        say("DONE")
        return
    for i in range(cfg.get("count", 1)):
        s.send_multipart([b"msg", str(i).encode()])
        try:
            reply = s.recv_multipart()
        except zmq.Again:
            fail("no reply")
        say("GOT", hexframes(reply))
    say("DONE")


def zap(ctx, cfg):
    """A ZAP handler (RFC 27) on TCP, as zmtp-std's Context::set_zap_endpoint reaches it."""
    s = ctx.socket(zmq.REP)
    s.linger = 0
    s.rcvtimeo = TIMEOUT_MS
    port = s.bind_to_random_port("tcp://127.0.0.1")
    say("PORT", port)
    keys = set(cfg.get("allow_keys", []))
    users = cfg.get("allow_users", {})
    for _ in range(cfg.get("count", 1)):
        try:
            req = s.recv_multipart()
        except zmq.Again:
            fail("no ZAP request")
        version, rid, domain, address, routing_id, mechanism = req[:6]
        creds = req[6:]
        if version != b"1.0":
            fail("ZAP version %r" % version)
        if mechanism == b"CURVE":
            cred = zmq.utils.z85.encode(creds[0]).decode()
            ok = cred in keys
        elif mechanism == b"PLAIN":
            cred = creds[0].decode()
            ok = users.get(cred) == creds[1].decode()
        else:
            cred, ok = "-", False
        status, text = (b"200", b"OK") if ok else (b"400", b"denied")
        s.send_multipart([b"1.0", rid, status, text, b"user" if ok else b"", b""])
        say("ZAP", mechanism.decode(), cred, address.decode(), domain.decode())
    say("DONE")
    finish(ctx, s)


def main():
    cfg = json.loads(sys.argv[1])
    if not zmq.has("curve"):
        fail("libzmq without CURVE")
    ctx = zmq.Context()
    {"server": server, "client": client, "zap": zap}[cfg["role"]](ctx, cfg)


if __name__ == "__main__":
    main()
