//! Receive back-pressure against real libzmq: a libzmq PUSH sends messages larger than our
//! session's receive buffer while our application does not receive. They wait (in the
//! session and in TCP) until it does; the connection stays up. Both directions: we bind and
//! libzmq connects, and we connect to libzmq.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant as StdInstant};

use common::driver::{listen, zbind, zsocket};
use common::net::slots;
use zmtp_core::socket::{PeerHandle, Socket, SocketConfig, SocketEvent};
use zmtp_core::{Config, Instant, Role, SocketType};

const KIB: usize = 1024;

struct Host {
    socket: Socket<'static, 'static>,
    peer: Option<(PeerHandle, TcpStream)>,
    events: Vec<SocketEvent>,
    epoch: StdInstant,
}

impl Host {
    /// A PULL with a 16 KiB receive buffer and a 256 KiB receive queue per peer.
    fn new() -> Host {
        let cfg = SocketConfig::new(Config::new(SocketType::Pull));
        Host {
            socket: Socket::new(cfg, slots(2, 16 * KIB, 4096, 256 * KIB)),
            peer: None,
            events: Vec::new(),
            epoch: StdInstant::now(),
        }
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn add(&mut self, stream: TcpStream, role: Role) {
        stream.set_nonblocking(true).unwrap();
        let h = self.socket.add_peer(role, self.now()).unwrap();
        self.peer = Some((h, stream));
    }

    fn handle(&self) -> PeerHandle {
        self.peer.as_ref().unwrap().0
    }

    /// One round of I/O; true if the peer's receive window is closed (back-pressure, or the
    /// session is over).
    fn pump(&mut self) -> bool {
        let now = self.now();
        let (h, stream) = self.peer.as_mut().unwrap();
        let mut held = false;
        loop {
            let w = self.socket.recv_window(*h);
            if w.is_empty() {
                held = true;
                break;
            }
            match stream.read(w) {
                Ok(0) => {
                    self.socket.handle_eof(*h);
                    break;
                }
                Ok(n) => self.socket.commit_received(*h, n, now).unwrap(),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("read: {e}"),
            }
        }
        loop {
            let out = self.socket.poll_transmit(*h);
            if out.is_empty() {
                break;
            }
            match stream.write(out) {
                Ok(n) => self.socket.mark_transmitted(*h, n).unwrap(),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        self.socket.handle_timeout(now);
        while let Some(e) = self.socket.poll_event() {
            self.events.push(e);
        }
        held
    }

    fn until<T>(&mut self, what: &str, mut f: impl FnMut(&mut Host, bool) -> Option<T>) -> T {
        let deadline = StdInstant::now() + Duration::from_secs(10);
        loop {
            let held = self.pump();
            if let Some(t) = f(self, held) {
                return t;
            }
            assert!(StdInstant::now() < deadline, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn closed(&self) -> Vec<SocketEvent> {
        self.events
            .iter()
            .filter(|e| matches!(e, SocketEvent::PeerClosed(..)))
            .copied()
            .collect()
    }
}

/// The reported case: three 90 KiB messages into a 256 KiB queue behind a 16 KiB buffer.
fn three_large_messages(host: &mut Host, push: &zmq::Socket) {
    host.until("the handshake", |h, _| {
        h.socket.peer_type(h.handle()).is_some().then_some(())
    });
    let bodies: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i + 1; 90 * KIB]).collect();
    for b in &bodies {
        push.send(&b[..], 0).unwrap();
    }
    // Not receiving: the socket reads until its queue holds two messages and the third
    // waits, then closes its window.
    host.until("our window to close", |_, held| held.then_some(()));
    assert_eq!(host.closed(), [], "the connection stays up");
    for (i, b) in bodies.iter().enumerate() {
        let m = host.until("a message", |h, _| {
            h.socket
                .recv()
                .ok()
                .map(|m| m.frames().map(<[u8]>::to_vec).collect::<Vec<_>>())
        });
        assert_eq!(m, std::slice::from_ref(b), "message {i} whole and in order");
    }
    // Still connected: one more goes through.
    push.send(&b"after"[..], 0).unwrap();
    let m = host.until("the last message", |h, _| {
        h.socket
            .recv()
            .ok()
            .map(|m| m.frames().map(<[u8]>::to_vec).collect::<Vec<_>>())
    });
    assert_eq!(m, [b"after".to_vec()]);
    assert_eq!(host.closed(), []);
}

#[test]
fn large_messages_from_libzmq_wait_for_room_when_we_bind() {
    let ctx = zmq::Context::new();
    let push = zsocket(&ctx, zmq::PUSH);
    push.set_sndtimeo(5000).unwrap();
    let (listener, ep) = listen();
    push.connect(&ep).unwrap();
    let mut host = Host::new();
    let (s, _) = listener.accept().unwrap();
    host.add(s, Role::Accepted);
    three_large_messages(&mut host, &push);
}

#[test]
fn large_messages_from_libzmq_wait_for_room_when_we_connect() {
    let ctx = zmq::Context::new();
    let push = zsocket(&ctx, zmq::PUSH);
    push.set_sndtimeo(5000).unwrap();
    let addr = zbind(&push);
    let mut host = Host::new();
    host.add(TcpStream::connect(addr).unwrap(), Role::Connected);
    three_large_messages(&mut host, &push);
}
