"""What the pyzmq peers of the tests share (zmtp-std/tests/pyzmq/security_peer.py,
zmtp-cli/tests/pyzmq/cli_peer.py, zmtp-core/tests/pyzmq/curve_peer.py): the line protocol
they speak to the Rust test (one fact a line, flushed; FAIL ends the peer), handshake
events by name, a CURVE key allow-list for libzmq's ZAP authenticator, and finish(): an
exit that lets the last replies out."""

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


# (socket, thread) of each watch(), for finish() to stop and wait for.
_watchers = []


def watch(s, prefix):
    """Says each handshake event of socket `s` as `prefix name value`, from a thread, until
    finish() stops the monitor."""
    mon = s.get_monitor_socket(HANDSHAKE_EVENTS | zmq.EVENT_MONITOR_STOPPED)

    def run():
        try:
            while True:
                try:
                    ev = zmq.utils.monitor.recv_monitor_message(mon)
                except zmq.ZMQError:
                    return  # ETERM: the context is going away
                if ev["event"] == zmq.EVENT_MONITOR_STOPPED:
                    return  # every earlier event has been said
                say(prefix, event_name(ev), ev["value"])
        finally:
            mon.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    _watchers.append((s, t))


def finish(ctx, *sockets):
    """Says the watched sockets' last events, then closes `sockets` letting what they still
    queue go out (for up to TIMEOUT_MS), and terminates `ctx`, which is the call that waits
    for that. pyzmq does not terminate a context when the interpreter exits, so a peer that
    simply returned could exit with its last reply still queued in libzmq's I/O thread (a
    sleep only makes that less likely). Every other socket of `ctx` must be closed first
    (a ZAP authenticator stopped)."""
    for s, t in _watchers:
        # libzmq queues MONITOR_STOPPED behind the events already sent: the watcher says
        # them all, then closes its socket.
        s.disable_monitor()
        t.join(TIMEOUT_MS / 1000)
    _watchers.clear()
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
