"""What the pyzmq peers of the tests share (zmtp-std/tests/pyzmq/security_peer.py,
zmtp-cli/tests/pyzmq/cli_peer.py): the line protocol they speak to the Rust test (one fact
a line, flushed; FAIL ends the peer), handshake events by name, a CURVE key allow-list
for libzmq's ZAP authenticator, and finish(): an exit that lets the last replies out."""

import sys
import threading

import zmq
import zmq.utils.monitor
import zmq.utils.z85

# Every blocking call of a peer gives up after this long.
TIMEOUT_MS = 10_000

NAMES = {
    zmq.EVENT_HANDSHAKE_SUCCEEDED: "HANDSHAKE_SUCCEEDED",
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "HANDSHAKE_FAILED_AUTH",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "HANDSHAKE_FAILED_PROTOCOL",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "HANDSHAKE_FAILED_NO_DETAIL",
}
HANDSHAKE_EVENTS = 0
for _e in NAMES:
    HANDSHAKE_EVENTS |= _e

_say_lock = threading.Lock()


def say(*parts):
    """One line to the test, whole and flushed (threads may say things too)."""
    with _say_lock:
        print(*parts, flush=True)


def fail(why):
    say("FAIL", why)
    sys.exit(1)


def hexframes(frames):
    return "|".join(f.hex() for f in frames)


def event_name(ev):
    return NAMES.get(ev["event"], str(ev["event"]))


def watch(s, prefix):
    """Says each handshake event of socket `s` as `prefix name value`, from a thread."""
    mon = s.get_monitor_socket(HANDSHAKE_EVENTS)

    def run():
        while True:
            try:
                ev = zmq.utils.monitor.recv_monitor_message(mon)
            except zmq.ZMQError:
                # ETERM from finish()'s ctx.term(), which waits for this socket to close.
                mon.close()
                return
            say(prefix, event_name(ev), ev["value"])

    threading.Thread(target=run, daemon=True).start()


def finish(ctx, *sockets):
    """Closes `sockets` letting what they still queue go out (for up to TIMEOUT_MS), then
    terminates `ctx`, which is the call that waits for that. pyzmq does not terminate a
    context when the interpreter exits, so a peer that simply returned could exit with its
    last reply still queued in libzmq's I/O thread (a sleep only makes that less likely).
    Every other socket of `ctx` must be closed too: a ZAP authenticator stopped, a `watch`
    thread closes its own."""
    for s in sockets:
        s.close(linger=TIMEOUT_MS)
    ctx.term()


class Keys:
    """A credentials provider for configure_curve_callback: lets in these Z85 keys."""

    def __init__(self, keys):
        self.keys = set(keys)

    def callback(self, domain, key):
        # pyzmq hands the key in Z85 (older versions: 32 bytes).
        if len(key) == 32:
            key = zmq.utils.z85.encode(key)
        return key.decode() in self.keys
