//! Interoperability with real libzmq (4.3.4, built from source by the `zmq` crate).
//!
//! A zmtp-core [`Session`] is driven over a real `std::net::TcpStream` against libzmq
//! sockets, in both directions of connection: DEALER/ROUTER with identities, PUSH/PULL with
//! ordering and a 1 MiB frame streamed through a 4 KiB receive buffer, PUB/SUB with
//! subscriptions both ways, and heartbeats (libzmq's PINGs answered, our PINGs answered, a
//! peer's TTL and our heartbeat timeout enforced when a relay silences libzmq).
//!
//! Layout: the blocking [`Driver`], a wire [`Scanner`] (to count commands that crossed the
//! wire), a TCP [`Relay`] that can silence libzmq, libzmq helpers, then the tests.
//!
//! Everything listens on 127.0.0.1 port 0, each test has its own `zmq::Context`, and every
//! wait is a condition polled against a deadline.

mod common;

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant as StdInstant};

use common::{leak, Ev};
use zmtp_core::{Buffers, CloseReason, Config, Instant, Role, SendError, Session, SocketType};

/// Longest a driver blocks in one read, so timers fire on time and callers can poll.
const READ_TIMEOUT: Duration = Duration::from_millis(10);
/// Deadline for any single expected step (a handshake, a message, an event).
const STEP: Duration = Duration::from_secs(5);

// ================================================================================ driver

/// What the handshake told us about the peer (an owned `PeerInfo`).
#[derive(Debug)]
struct Peer {
    socket_type: SocketType,
    identity: Vec<u8>,
    minor: u8,
}

/// One zmtp-core session over a blocking `TcpStream` with a short read timeout, on the real
/// clock. Events are copied out as they come ([`Ev`]) so the receive buffer never stays full.
struct Driver {
    stream: TcpStream,
    session: Session<'static>,
    /// The session's clock starts here (`Instant::ZERO`).
    epoch: StdInstant,
    /// Events not yet taken by the test, in order (`Closed` included).
    events: VecDeque<Ev>,
    /// Frames of the message being assembled.
    partial: Vec<Vec<u8>>,
    /// Body of the frame being assembled from `FrameChunk`s.
    chunked: Vec<u8>,
    /// `FrameChunk` events taken into messages so far.
    chunks_taken: usize,
    /// Why and when (real time) the session closed.
    closed: Option<(CloseReason, StdInstant)>,
    /// Every byte received from the peer and every byte written to it.
    rx_log: Vec<u8>,
    tx_log: Vec<u8>,
    /// The transport refused a write (the peer is gone).
    write_failed: bool,
}

impl Driver {
    fn new(stream: TcpStream, cfg: &Config<'_>, role: Role, rx: usize, tx: usize) -> Driver {
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let buffers = Buffers {
            rx: leak(rx),
            tx: leak(tx),
        };
        let epoch = StdInstant::now();
        let session = Session::new(cfg, role, buffers, Instant::ZERO).unwrap();
        let mut d = Driver {
            stream,
            session,
            epoch,
            events: VecDeque::new(),
            partial: Vec::new(),
            chunked: Vec::new(),
            chunks_taken: 0,
            closed: None,
            rx_log: Vec::new(),
            tx_log: Vec::new(),
            write_failed: false,
        };
        // Our greeting goes out at once, without waiting for the peer's.
        d.flush();
        d
    }

    /// Connects to `addr` (libzmq bound, or the relay).
    fn connect(addr: SocketAddr, cfg: &Config<'_>) -> Driver {
        Driver::connect_with(addr, cfg, 8192, 8192)
    }

    fn connect_with(addr: SocketAddr, cfg: &Config<'_>, rx: usize, tx: usize) -> Driver {
        let stream = TcpStream::connect(addr).unwrap();
        Driver::new(stream, cfg, Role::Connected, rx, tx)
    }

    /// Accepts libzmq's connection on `listener`.
    fn accept(listener: &TcpListener, cfg: &Config<'_>) -> Driver {
        Driver::accept_with(listener, cfg, 8192, 8192)
    }

    fn accept_with(listener: &TcpListener, cfg: &Config<'_>, rx: usize, tx: usize) -> Driver {
        let stream = accept_one(listener);
        Driver::new(stream, cfg, Role::Accepted, rx, tx)
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    /// Writes as much pending output as the transport takes without blocking for long.
    fn flush(&mut self) {
        while !self.write_failed {
            let out = self.session.poll_transmit();
            if out.is_empty() {
                return;
            }
            match self.stream.write(out) {
                Ok(0) => {
                    self.write_failed = true;
                }
                Ok(n) => {
                    self.tx_log.extend_from_slice(&out[..n]);
                    self.session.mark_transmitted(n).unwrap();
                }
                Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => return,
                Err(_) => self.write_failed = true,
            }
        }
    }

    /// One turn of the run loop: write, read once (at most `READ_TIMEOUT`, less if a timer is
    /// due sooner), fire timers, copy events out, write again.
    fn pump(&mut self) {
        self.flush();
        if !self.session.is_closed() {
            let wait = match self.session.poll_timeout() {
                Some(at) => {
                    Duration::from_micros(at.as_micros().saturating_sub(self.now().as_micros()))
                        .clamp(Duration::from_millis(1), READ_TIMEOUT)
                }
                None => READ_TIMEOUT,
            };
            self.stream.set_read_timeout(Some(wait)).unwrap();
            let window = self.session.recv_window();
            assert!(
                !window.is_empty(),
                "receive window empty on an open session with all events drained"
            );
            match self.stream.read(window) {
                Ok(0) => self.session.handle_eof(),
                Ok(n) => {
                    self.rx_log.extend_from_slice(&window[..n]);
                    let now = self.now();
                    self.session.commit_received(n, now).unwrap();
                }
                Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.session.handle_eof(),
            }
        }
        let now = self.now();
        self.session.handle_timeout(now);
        self.drain();
        self.flush();
    }

    /// Copies every pending event out of the session.
    fn drain(&mut self) {
        while let Some(e) = self.session.poll_event() {
            let ev = Ev::from_event(&e);
            if let Ev::Closed(r) = ev {
                self.closed = Some((r, StdInstant::now()));
            }
            self.events.push_back(ev);
        }
    }

    /// Pumps until `f` returns a value, the deadline passes (`None`), or the session is closed
    /// and `f` still has nothing (`None`).
    fn pump_until<T>(
        &mut self,
        deadline: StdInstant,
        mut f: impl FnMut(&mut Driver) -> Option<T>,
    ) -> Option<T> {
        loop {
            if let Some(t) = f(self) {
                return Some(t);
            }
            if self.session.is_closed() || StdInstant::now() >= deadline {
                return None;
            }
            self.pump();
        }
    }

    /// [`pump_until`](Self::pump_until) with a `STEP` deadline; panics with `what` and the
    /// connection's state if the condition is not met.
    fn wait_for<T>(&mut self, what: &str, f: impl FnMut(&mut Driver) -> Option<T>) -> T {
        match self.pump_until(StdInstant::now() + STEP, f) {
            Some(t) => t,
            None => panic!("gave up waiting for {what}: {}", self.summary()),
        }
    }

    /// Pumps for `d`; panics if the session closes meanwhile.
    fn pump_for(&mut self, d: Duration) {
        let closed = self.pump_until(StdInstant::now() + d, |d| d.closed);
        assert!(closed.is_none(), "session closed: {}", self.summary());
    }

    /// Waits for the handshake; returns what it told us about the peer.
    fn handshake(&mut self) -> Peer {
        match self.next_event() {
            Ev::Ready {
                socket_type,
                identity,
                minor,
                ..
            } => Peer {
                socket_type,
                identity,
                minor,
            },
            e => panic!("expected HandshakeComplete, got {e:?}: {}", self.summary()),
        }
    }

    /// The next event, whatever it is.
    fn next_event(&mut self) -> Ev {
        self.wait_for("an event", |d| d.events.pop_front())
    }

    /// Takes one whole message from the queued events, reassembling streamed frames. Panics on
    /// an event that is not data.
    fn try_take_message(&mut self) -> Option<Vec<Vec<u8>>> {
        while let Some(ev) = self.events.pop_front() {
            match ev {
                Ev::Frame(data, more) => {
                    assert!(
                        self.chunked.is_empty(),
                        "whole frame inside a chunked frame"
                    );
                    self.partial.push(data);
                    if !more {
                        return Some(std::mem::take(&mut self.partial));
                    }
                }
                Ev::Chunk(data, offset, frame_len, more) => {
                    self.chunks_taken += 1;
                    assert_eq!(offset, self.chunked.len() as u64, "chunk out of order");
                    self.chunked.extend_from_slice(&data);
                    assert!(
                        self.chunked.len() as u64 <= frame_len,
                        "chunk past frame end"
                    );
                    if self.chunked.len() as u64 == frame_len {
                        self.partial.push(std::mem::take(&mut self.chunked));
                        if !more {
                            return Some(std::mem::take(&mut self.partial));
                        }
                    }
                }
                other => panic!(
                    "unexpected event {other:?} while receiving a message: {}",
                    self.summary()
                ),
            }
        }
        None
    }

    /// Waits for the next whole message.
    fn recv_message(&mut self) -> Vec<Vec<u8>> {
        self.wait_for("a message", |d| d.try_take_message())
    }

    /// Queues and writes one message; frames larger than the transmit buffer are streamed.
    fn send<T: AsRef<[u8]>>(&mut self, frames: &[T]) {
        for (i, f) in frames.iter().enumerate() {
            self.send_frame(f.as_ref(), i + 1 < frames.len());
        }
        self.flush();
    }

    fn send_frame(&mut self, data: &[u8], more: bool) {
        let deadline = StdInstant::now() + STEP;
        loop {
            match self.session.send_frame(data, more) {
                Ok(()) => return,
                Err(SendError::WouldBlock) => self.make_room(deadline),
                Err(SendError::TooLarge) => break,
                Err(e) => panic!("send_frame: {e:?}: {}", self.summary()),
            }
        }
        // Larger than the transmit buffer: stream the body.
        loop {
            match self.session.start_frame(data.len() as u64, more) {
                Ok(()) => break,
                Err(SendError::WouldBlock) => self.make_room(deadline),
                Err(e) => panic!("start_frame: {e:?}: {}", self.summary()),
            }
        }
        let mut off = 0;
        while off < data.len() {
            match self.session.write_frame_body(&data[off..]) {
                Ok(n) => off += n,
                Err(SendError::WouldBlock) => self.make_room(deadline),
                Err(e) => panic!("write_frame_body: {e:?}: {}", self.summary()),
            }
        }
        assert_eq!(self.session.frame_body_remaining(), 0);
    }

    /// Gets pending output onto the wire (reading meanwhile, so neither side stalls).
    fn make_room(&mut self, deadline: StdInstant) {
        assert!(
            StdInstant::now() < deadline,
            "transmit buffer never drained: {}",
            self.summary()
        );
        self.flush();
        if !self.session.poll_transmit().is_empty() {
            self.pump();
        }
    }

    fn subscribe(&mut self, topic: &[u8]) {
        self.session.send_subscribe(topic).unwrap();
        self.flush();
    }

    /// The connection's state, for failure messages.
    fn summary(&self) -> String {
        let names = |log: &[u8]| -> Vec<String> {
            scan(log)
                .iter()
                .filter_map(|w| match w {
                    Wire::Command(body) => Some(String::from_utf8_lossy(command_name(body)).into()),
                    Wire::Data { .. } => None,
                })
                .collect()
        };
        let first: Vec<&Ev> = self.events.iter().take(3).collect();
        format!(
            "closed={:?} ready={} rx={}B tx={}B write_failed={} commands in={:?} out={:?} \
             queued events={} (first: {:.300}) rx head={}",
            self.closed.map(|c| c.0),
            self.session.is_ready(),
            self.rx_log.len(),
            self.tx_log.len(),
            self.write_failed,
            names(&self.rx_log),
            names(&self.tx_log),
            self.events.len(),
            format!("{first:?}"),
            hex(&self.rx_log[..self.rx_log.len().min(160)]),
        )
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Accepts one connection within `STEP` and returns it in blocking mode.
fn accept_one(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = StdInstant::now() + STEP;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return s;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(StdInstant::now() < deadline, "no connection to accept");
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ================================================================================ wire scanner

/// One frame seen on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Wire {
    /// A command frame's body (name length, name, data).
    Command(Vec<u8>),
    /// A data frame's header.
    Data { len: u64, long: bool, more: bool },
}

#[derive(Clone, Copy, Debug)]
enum ScanState {
    Flags,
    Size,
    Body,
}

/// Splits one direction of a ZMTP connection (greeting first) into frames, byte by byte.
struct Scanner {
    greeting_left: usize,
    state: ScanState,
    flags: u8,
    size: Vec<u8>,
    left: u64,
    body: Vec<u8>,
}

impl Scanner {
    fn new() -> Scanner {
        Scanner {
            greeting_left: 64,
            state: ScanState::Flags,
            flags: 0,
            size: Vec::new(),
            left: 0,
            body: Vec::new(),
        }
    }

    /// Feeds one byte; returns the frame it completes, if any.
    fn push(&mut self, b: u8) -> Option<Wire> {
        if self.greeting_left > 0 {
            self.greeting_left -= 1;
            return None;
        }
        match self.state {
            ScanState::Flags => {
                self.flags = b;
                self.size.clear();
                self.state = ScanState::Size;
                None
            }
            ScanState::Size => {
                self.size.push(b);
                let need = if self.flags & 0x02 != 0 { 8 } else { 1 };
                if self.size.len() < need {
                    return None;
                }
                self.left = self.size.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x));
                self.body.clear();
                if self.left == 0 {
                    self.state = ScanState::Flags;
                    Some(self.finish())
                } else {
                    self.state = ScanState::Body;
                    None
                }
            }
            ScanState::Body => {
                if self.flags & 0x04 != 0 {
                    self.body.push(b);
                }
                self.left -= 1;
                if self.left == 0 {
                    self.state = ScanState::Flags;
                    Some(self.finish())
                } else {
                    None
                }
            }
        }
    }

    fn finish(&mut self) -> Wire {
        if self.flags & 0x04 != 0 {
            Wire::Command(std::mem::take(&mut self.body))
        } else {
            Wire::Data {
                len: self.size.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x)),
                long: self.flags & 0x02 != 0,
                more: self.flags & 0x01 != 0,
            }
        }
    }
}

/// All frames in one direction of a connection's bytes.
fn scan(bytes: &[u8]) -> Vec<Wire> {
    let mut s = Scanner::new();
    bytes.iter().filter_map(|&b| s.push(b)).collect()
}

/// A command body's name.
fn command_name(body: &[u8]) -> &[u8] {
    let n = body.first().map_or(0, |&n| usize::from(n));
    body.get(1..1 + n).unwrap_or(&[])
}

/// Bodies of the commands named `name` in one direction's bytes.
fn commands(bytes: &[u8], name: &[u8]) -> Vec<Vec<u8>> {
    scan(bytes)
        .into_iter()
        .filter_map(|w| match w {
            Wire::Command(body) if command_name(&body) == name => Some(body),
            _ => None,
        })
        .collect()
}

// ================================================================================ relay

/// A TCP relay between our session (downstream) and libzmq (upstream). Everything is
/// forwarded until the relay is armed; then libzmq's bytes are forwarded up to and including
/// the first whole command named `trigger`, and from then on nothing more reaches us, while
/// both TCP connections stay open (libzmq's bytes are read and dropped).
struct Relay {
    addr: SocketAddr,
    armed: Arc<AtomicBool>,
    silenced_at: Arc<Mutex<Option<StdInstant>>>,
}

impl Relay {
    fn start(upstream: SocketAddr, trigger: &'static [u8]) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let armed = Arc::new(AtomicBool::new(false));
        let silenced_at = Arc::new(Mutex::new(None));
        let (armed2, silenced2) = (armed.clone(), silenced_at.clone());
        thread::spawn(move || {
            let down = accept_one(&listener);
            let up = TcpStream::connect(upstream).unwrap();
            down.set_nodelay(true).unwrap();
            up.set_nodelay(true).unwrap();
            // Us to libzmq: untouched. When we close, close libzmq's side too (ends the
            // other direction's read).
            let (mut down_r, mut up_w) = (down.try_clone().unwrap(), up.try_clone().unwrap());
            thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let mut up_ok = true;
                while let Ok(n @ 1..) = down_r.read(&mut buf) {
                    up_ok = up_ok && up_w.write_all(&buf[..n]).is_ok();
                }
                let _ = up_w.shutdown(Shutdown::Both);
            });
            // libzmq to us: cut after the trigger once armed. `down` (a handle on our
            // connection) is kept by the other thread, so our connection stays open even
            // after this loop ends.
            let (mut up_r, mut down_w) = (up, down);
            let mut scanner = Scanner::new();
            let mut silent = false;
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = up_r.read(&mut buf) {
                if silent {
                    continue;
                }
                let mut cut = n;
                for (i, &b) in buf[..n].iter().enumerate() {
                    if let Some(Wire::Command(body)) = scanner.push(b) {
                        if armed2.load(Ordering::SeqCst) && command_name(&body) == trigger {
                            cut = i + 1;
                            silent = true;
                            break;
                        }
                    }
                }
                if down_w.write_all(&buf[..cut]).is_err() {
                    break;
                }
                if silent {
                    *silenced2.lock().unwrap() = Some(StdInstant::now());
                }
            }
        });
        Relay {
            addr,
            armed,
            silenced_at,
        }
    }

    /// From now on, the next `trigger` command from libzmq is the last thing we receive.
    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    fn silenced_at(&self) -> Option<StdInstant> {
        *self.silenced_at.lock().unwrap()
    }
}

// ================================================================================ libzmq helpers

/// A libzmq socket that does not linger at close and never blocks for long.
fn zsocket(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(STEP.as_millis() as i32).unwrap();
    s.set_sndtimeo(STEP.as_millis() as i32).unwrap();
    s
}

/// Binds a libzmq socket to an ephemeral port on 127.0.0.1; returns the address.
fn zbind(s: &zmq::Socket) -> SocketAddr {
    s.bind("tcp://127.0.0.1:0").unwrap();
    let ep = s.get_last_endpoint().unwrap().unwrap();
    ep.strip_prefix("tcp://")
        .unwrap_or_else(|| panic!("endpoint {ep}"))
        .parse()
        .unwrap()
}

/// Our listener on an ephemeral port and the endpoint libzmq connects to.
fn listen() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("tcp://{}", l.local_addr().unwrap());
    (l, ep)
}

/// Receives one message on a libzmq socket while pumping our side.
fn zrecv(d: &mut Driver, s: &zmq::Socket) -> Vec<Vec<u8>> {
    d.wait_for("libzmq to receive a message", |_| {
        match s.recv_multipart(zmq::DONTWAIT) {
            Ok(m) => Some(m),
            Err(zmq::Error::EAGAIN) => None,
            Err(e) => panic!("libzmq recv: {e}"),
        }
    })
}

/// Sends one message on a libzmq socket while pumping our side (retries while libzmq has no
/// route or no room yet).
fn zsend<T: AsRef<[u8]>>(d: &mut Driver, s: &zmq::Socket, frames: &[T]) {
    d.wait_for("libzmq to accept a message", |_| {
        match s.send_multipart(frames.iter().map(|f| f.as_ref()), zmq::DONTWAIT) {
            Ok(()) => Some(()),
            Err(zmq::Error::EAGAIN | zmq::Error::EHOSTUNREACH) => None,
            Err(e) => panic!("libzmq send: {e}"),
        }
    })
}

/// Deterministic, non-repeating test bytes.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A multipart message with empty frames and a 300-byte frame (8-byte size on the wire).
fn sample_message() -> Vec<Vec<u8>> {
    vec![
        b"".to_vec(),
        b"hello".to_vec(),
        b"".to_vec(),
        pattern(300, 7),
        b"end".to_vec(),
    ]
}

/// Whether a 300-byte data frame with a long (8-byte) size crossed in these bytes.
fn has_long_300(bytes: &[u8]) -> bool {
    scan(bytes).contains(&Wire::Data {
        len: 300,
        long: true,
        more: true,
    })
}

const MIB: usize = 1 << 20;

// ================================================================================ tests: DEALER / ROUTER

/// libzmq DEALER <-> our ROUTER, after the handshake: both directions, multipart with empty
/// frames and a long frame, plus a message that is one empty frame.
fn exchange_libzmq_dealer_our_router(d: &mut Driver, dealer: &zmq::Socket) {
    let msg = sample_message();
    zsend(d, dealer, &msg);
    assert_eq!(d.recv_message(), msg);
    assert!(
        has_long_300(&d.rx_log),
        "libzmq sent the 300-byte frame with a long size"
    );

    d.send(&msg);
    assert_eq!(zrecv(d, dealer), msg);
    assert!(
        has_long_300(&d.tx_log),
        "we sent the 300-byte frame with a long size"
    );

    zsend(d, dealer, &[b""]);
    assert_eq!(d.recv_message(), vec![Vec::<u8>::new()]);
    d.send(&[b""]);
    assert_eq!(zrecv(d, dealer), vec![Vec::<u8>::new()]);
}

#[test]
fn libzmq_dealer_connects_to_our_router_with_routing_id_and_multipart() {
    let ctx = zmq::Context::new();
    let (listener, ep) = listen();
    let dealer = zsocket(&ctx, zmq::DEALER);
    dealer.set_identity(b"zdealer-7").unwrap();
    dealer.connect(&ep).unwrap();

    let mut d = Driver::accept(&listener, &Config::new(SocketType::Router));
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Dealer);
    assert_eq!(peer.identity, b"zdealer-7");
    assert_eq!(peer.minor, 1, "libzmq 4.3 speaks ZMTP 3.1");
    exchange_libzmq_dealer_our_router(&mut d, &dealer);
}

#[test]
fn our_router_connects_to_libzmq_dealer_with_routing_id_and_multipart() {
    let ctx = zmq::Context::new();
    let dealer = zsocket(&ctx, zmq::DEALER);
    dealer.set_identity(b"zdealer-8").unwrap();
    let addr = zbind(&dealer);

    let mut d = Driver::connect(addr, &Config::new(SocketType::Router));
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Dealer);
    assert_eq!(peer.identity, b"zdealer-8");
    assert_eq!(peer.minor, 1);
    exchange_libzmq_dealer_our_router(&mut d, &dealer);
}

/// Our DEALER "dev-1" <-> libzmq ROUTER, after the handshake: the ROUTER sees "dev-1" as the
/// routing id and routes its reply back by it.
fn exchange_our_dealer_libzmq_router(d: &mut Driver, router: &zmq::Socket) {
    let msg = sample_message();
    d.send(&msg);
    let got = zrecv(d, router);
    assert_eq!(
        got[0], b"dev-1",
        "libzmq ROUTER's routing id for our DEALER"
    );
    assert_eq!(got[1..], msg[..]);
    assert!(has_long_300(&d.tx_log));

    let mut reply = vec![b"dev-1".to_vec()];
    reply.extend(msg.iter().cloned());
    zsend(d, router, &reply);
    assert_eq!(d.recv_message(), msg);
    assert!(has_long_300(&d.rx_log));

    d.send(&[b""]);
    assert_eq!(zrecv(d, router), vec![b"dev-1".to_vec(), Vec::new()]);
    zsend(d, router, &[&b"dev-1"[..], b""]);
    assert_eq!(d.recv_message(), vec![Vec::<u8>::new()]);
}

#[test]
fn our_dealer_connects_to_libzmq_router_which_sees_our_routing_id() {
    let ctx = zmq::Context::new();
    let router = zsocket(&ctx, zmq::ROUTER);
    router.set_router_mandatory(true).unwrap();
    let addr = zbind(&router);

    let cfg = Config::new(SocketType::Dealer).with_identity(b"dev-1");
    let mut d = Driver::connect(addr, &cfg);
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Router);
    assert_eq!(
        peer.identity, b"",
        "libzmq ROUTER without a routing id sends an empty one"
    );
    exchange_our_dealer_libzmq_router(&mut d, &router);
}

#[test]
fn libzmq_router_connects_to_our_dealer_which_it_sees_by_routing_id() {
    let ctx = zmq::Context::new();
    let (listener, ep) = listen();
    let router = zsocket(&ctx, zmq::ROUTER);
    router.set_router_mandatory(true).unwrap();
    router.connect(&ep).unwrap();

    let cfg = Config::new(SocketType::Dealer).with_identity(b"dev-1");
    let mut d = Driver::accept(&listener, &cfg);
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Router);
    exchange_our_dealer_libzmq_router(&mut d, &router);
}

// ================================================================================ tests: PUSH / PULL

const ORDERED: usize = 1000;

/// libzmq PUSH (in a thread) sends 1000 numbered messages then 1 MiB; our PULL with a 4 KiB
/// receive buffer gets them in order, the big one as a chunk stream, byte-exact.
fn libzmq_push_to_our_pull(push: zmq::Socket, d: &mut Driver) {
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Push);
    let big = pattern(MIB, 42);
    let big2 = big.clone();
    let sender = thread::spawn(move || {
        for i in 0..ORDERED {
            push.send(format!("msg-{i}").as_bytes(), 0).unwrap();
        }
        push.send(&big2[..], 0).unwrap();
        push
    });
    for i in 0..ORDERED {
        let m = d.recv_message();
        assert_eq!(m, vec![format!("msg-{i}").into_bytes()], "message {i}");
    }
    assert_eq!(d.chunks_taken, 0, "small frames are delivered whole");
    let m = d.recv_message();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].len(), MIB);
    assert!(m[0] == big, "1 MiB frame reassembled byte-exact");
    assert!(
        d.chunks_taken >= MIB / 4096,
        "1 MiB through a 4 KiB buffer arrives as FrameChunks (saw {})",
        d.chunks_taken
    );
    drop(sender.join().unwrap());
}

#[test]
fn libzmq_push_connects_to_our_pull_1000_ordered_and_1mib_chunked() {
    let ctx = zmq::Context::new();
    let (listener, ep) = listen();
    let push = zsocket(&ctx, zmq::PUSH);
    push.connect(&ep).unwrap();
    let mut d = Driver::accept_with(&listener, &Config::new(SocketType::Pull), 4096, 4096);
    libzmq_push_to_our_pull(push, &mut d);
}

#[test]
fn our_pull_connects_to_libzmq_push_1000_ordered_and_1mib_chunked() {
    let ctx = zmq::Context::new();
    let push = zsocket(&ctx, zmq::PUSH);
    let addr = zbind(&push);
    let mut d = Driver::connect_with(addr, &Config::new(SocketType::Pull), 4096, 4096);
    libzmq_push_to_our_pull(push, &mut d);
}

/// Our PUSH with a 4 KiB transmit buffer sends 1000 numbered messages then 1 MiB (streamed);
/// libzmq PULL (in a thread) gets them in order, byte-exact.
fn our_push_to_libzmq_pull(pull: zmq::Socket, d: &mut Driver) {
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Pull);
    let receiver = thread::spawn(move || {
        let mut got = Vec::new();
        for _ in 0..=ORDERED {
            got.push(
                pull.recv_multipart(0)
                    .expect("libzmq PULL receives in time"),
            );
        }
        // Hand the socket back: closing it here would close the connection under us.
        (got, pull)
    });
    for i in 0..ORDERED {
        d.send(&[format!("msg-{i}")]);
    }
    let big = pattern(MIB, 43);
    d.send(&[&big]);
    d.wait_for("libzmq PULL to receive everything", |_| {
        receiver.is_finished().then_some(())
    });
    let (got, _pull) = receiver.join().unwrap();
    for (i, m) in got[..ORDERED].iter().enumerate() {
        assert_eq!(m, &vec![format!("msg-{i}").into_bytes()], "message {i}");
    }
    assert_eq!(got[ORDERED].len(), 1);
    assert!(got[ORDERED][0] == big, "1 MiB frame arrived byte-exact");
    assert!(scan(&d.tx_log).contains(&Wire::Data {
        len: MIB as u64,
        long: true,
        more: false
    }));
}

#[test]
fn our_push_connects_to_libzmq_pull_1000_ordered_and_1mib() {
    let ctx = zmq::Context::new();
    let pull = zsocket(&ctx, zmq::PULL);
    let addr = zbind(&pull);
    let mut d = Driver::connect_with(addr, &Config::new(SocketType::Push), 4096, 4096);
    our_push_to_libzmq_pull(pull, &mut d);
}

#[test]
fn libzmq_pull_connects_to_our_push_1000_ordered_and_1mib() {
    let ctx = zmq::Context::new();
    let (listener, ep) = listen();
    let pull = zsocket(&ctx, zmq::PULL);
    pull.connect(&ep).unwrap();
    let mut d = Driver::accept_with(&listener, &Config::new(SocketType::Push), 4096, 4096);
    our_push_to_libzmq_pull(pull, &mut d);
}

// ================================================================================ tests: PUB / SUB

#[test]
fn libzmq_pub_sends_our_sub_only_the_topic_we_subscribed() {
    let ctx = zmq::Context::new();
    let publisher = zsocket(&ctx, zmq::PUB);
    let addr = zbind(&publisher);
    let mut d = Driver::connect(addr, &Config::new(SocketType::Sub));
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Pub);
    d.subscribe(b"A");
    assert_eq!(
        commands(&d.tx_log, b"SUBSCRIBE"),
        vec![b"\x09SUBSCRIBEA".to_vec()],
        "to a 3.1 peer the subscription is a SUBSCRIBE command"
    );

    // libzmq applies the subscription asynchronously: publish until a match arrives.
    let mut received: Vec<Vec<Vec<u8>>> = Vec::new();
    let deadline = StdInstant::now() + STEP;
    while received.is_empty() {
        assert!(
            StdInstant::now() < deadline,
            "no matching message: {}",
            d.summary()
        );
        publisher.send(&b"B-sync"[..], 0).unwrap();
        publisher.send(&b"A-sync"[..], 0).unwrap();
        let soon = StdInstant::now() + Duration::from_millis(20);
        received.extend(d.pump_until(soon, |d| d.try_take_message()));
    }
    // Subscribed now: a known sequence, ended by a matching marker.
    for m in [&b"B1"[..], b"A1", b"C", b"AB", b"", b"B2"] {
        publisher.send(m, 0).unwrap();
    }
    publisher
        .send_multipart([&b"A-multi"[..], b"payload"], 0)
        .unwrap();
    publisher.send(&b"A-end"[..], 0).unwrap();
    loop {
        let m = d.recv_message();
        let end = m == [b"A-end".to_vec()];
        received.push(m);
        if end {
            break;
        }
    }
    // Sync messages still in flight come first; B-sync must never have arrived.
    let after: Vec<Vec<Vec<u8>>> = received
        .into_iter()
        .filter(|m| {
            assert_ne!(
                m[0], b"B-sync",
                "libzmq PUB sent a topic we did not subscribe to"
            );
            m[..] != [b"A-sync".to_vec()]
        })
        .collect();
    assert_eq!(
        after,
        vec![
            vec![b"A1".to_vec()],
            vec![b"AB".to_vec()],
            vec![b"A-multi".to_vec(), b"payload".to_vec()],
            vec![b"A-end".to_vec()],
        ]
    );
}

#[test]
fn libzmq_sub_subscribes_and_cancels_at_our_pub() {
    let ctx = zmq::Context::new();
    let (listener, ep) = listen();
    let sub = zsocket(&ctx, zmq::SUB);
    sub.set_subscribe(b"topic").unwrap();
    sub.connect(&ep).unwrap();

    let mut d = Driver::accept(&listener, &Config::new(SocketType::Pub));
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Sub);
    assert_eq!(d.next_event(), Ev::Subscribe(b"topic".to_vec()));

    // libzmq's SUB filters what it receives too: only the match comes out.
    d.send(&[b"other"]);
    d.send(&[&b"topic-1"[..], b"body"]);
    assert_eq!(
        zrecv(&mut d, &sub),
        vec![b"topic-1".to_vec(), b"body".to_vec()]
    );

    sub.set_unsubscribe(b"topic").unwrap();
    assert_eq!(d.next_event(), Ev::Cancel(b"topic".to_vec()));
    assert!(d.closed.is_none());
}

// ================================================================================ tests: heartbeats

#[test]
fn libzmq_heartbeats_against_our_session_keep_the_connection_up_for_2s() {
    let ctx = zmq::Context::new();
    let (listener, ep) = listen();
    let dealer = zsocket(&ctx, zmq::DEALER);
    dealer.set_heartbeat_ivl(100).unwrap();
    dealer.set_heartbeat_timeout(300).unwrap();
    dealer.connect(&ep).unwrap();

    let mut d = Driver::accept(&listener, &Config::new(SocketType::Router));
    d.handshake();

    // libzmq sends every 100 ms; we send every 400 ms, longer than libzmq's 300 ms heartbeat
    // timeout, so only our PONGs keep libzmq from dropping the connection in between.
    let start = StdInstant::now();
    let end = start + Duration::from_secs(2);
    let (mut z_sent, mut z_got, mut r_sent, mut r_got) = (0usize, 0usize, 0usize, 0usize);
    let (mut next_z, mut next_r) = (start, start);
    while StdInstant::now() < end {
        let now = StdInstant::now();
        if now >= next_z {
            dealer
                .send(format!("z-{z_sent}").as_bytes(), zmq::DONTWAIT)
                .unwrap();
            z_sent += 1;
            next_z += Duration::from_millis(100);
        }
        if now >= next_r {
            d.send(&[format!("r-{r_sent}")]);
            r_sent += 1;
            next_r += Duration::from_millis(400);
        }
        while let Some(m) = d.try_take_message() {
            assert_eq!(m, vec![format!("z-{z_got}").into_bytes()]);
            z_got += 1;
        }
        while let Ok(m) = dealer.recv_multipart(zmq::DONTWAIT) {
            assert_eq!(m, vec![format!("r-{r_got}").into_bytes()]);
            r_got += 1;
        }
        assert!(
            d.closed.is_none(),
            "closed during heartbeats: {}",
            d.summary()
        );
        d.pump();
    }

    // Still up: a message each way, no close, and libzmq never reconnected.
    zsend(&mut d, &dealer, &[b"final"]);
    while z_got < z_sent {
        assert_eq!(d.recv_message(), vec![format!("z-{z_got}").into_bytes()]);
        z_got += 1;
    }
    assert_eq!(d.recv_message(), vec![b"final".to_vec()]);
    d.send(&[b"final-back"]);
    loop {
        let m = zrecv(&mut d, &dealer);
        if m == [b"final-back".to_vec()] {
            break;
        }
        assert_eq!(m, vec![format!("r-{r_got}").into_bytes()]);
        r_got += 1;
    }
    assert!(d.closed.is_none());
    assert!(
        z_got >= 15 && r_got >= 4,
        "traffic flowed: z {z_got}, r {r_got}"
    );
    let pings = commands(&d.rx_log, b"PING");
    let pongs = commands(&d.tx_log, b"PONG");
    assert!(
        pings.len() >= 10,
        "libzmq pinged us every 100 ms: {} PINGs",
        pings.len()
    );
    assert!(pongs.len() >= 10, "we answered: {} PONGs", pongs.len());
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock),
        "libzmq reconnected: the first connection was dropped"
    );
}

#[test]
fn libzmq_ping_ttl_is_enforced_when_relay_silences_libzmq() {
    let ctx = zmq::Context::new();
    let dealer = zsocket(&ctx, zmq::DEALER);
    dealer.set_heartbeat_ivl(100).unwrap();
    dealer.set_heartbeat_ttl(500).unwrap();
    // libzmq itself should not give up on us during the test.
    dealer.set_heartbeat_timeout(5000).unwrap();
    let relay = Relay::start(zbind(&dealer), b"PING");

    let mut d = Driver::connect(relay.addr, &Config::new(SocketType::Router));
    d.handshake();
    zsend(&mut d, &dealer, &[b"before"]);
    assert_eq!(d.recv_message(), vec![b"before".to_vec()]);
    d.send(&[b"ack"]);
    assert_eq!(zrecv(&mut d, &dealer), vec![b"ack".to_vec()]);

    relay.arm();
    let closed = d.pump_until(StdInstant::now() + STEP, |d| d.closed);
    let silenced = relay
        .silenced_at()
        .expect("the relay went silent after a PING");
    let (reason, at) = closed.unwrap_or_else(|| panic!("still open: {}", d.summary()));
    assert_eq!(reason, CloseReason::TtlExpired, "{}", d.summary());
    let after = at.saturating_duration_since(silenced);
    assert!(
        after >= Duration::from_millis(400) && after <= Duration::from_secs(2),
        "closed {after:?} after libzmq went silent (TTL 500 ms)"
    );
    // The PING that set the TTL: `04 PING` + TTL 5 deciseconds (+ context, empty from libzmq).
    let pings = commands(&d.rx_log, b"PING");
    let last = pings.last().expect("a PING reached us");
    assert_eq!(last[5..7], [0x00, 0x05], "PING {}", hex(last));
}

#[test]
fn our_heartbeat_times_out_when_relay_silences_libzmq_pongs() {
    let ctx = zmq::Context::new();
    let dealer = zsocket(&ctx, zmq::DEALER);
    let relay = Relay::start(zbind(&dealer), b"PONG");

    let mut cfg = Config::new(SocketType::Router);
    cfg.heartbeat_interval = Some(Duration::from_millis(100));
    cfg.heartbeat_timeout = Some(Duration::from_millis(300));
    let mut d = Driver::connect(relay.addr, &cfg);
    d.handshake();
    zsend(&mut d, &dealer, &[b"before"]);
    assert_eq!(d.recv_message(), vec![b"before".to_vec()]);
    d.wait_for("libzmq's first PONG", |d| {
        (!commands(&d.rx_log, b"PONG").is_empty()).then_some(())
    });
    assert!(d.closed.is_none());

    relay.arm();
    let closed = d.pump_until(StdInstant::now() + STEP, |d| d.closed);
    let silenced = relay
        .silenced_at()
        .expect("the relay went silent after a PONG");
    let (reason, at) = closed.unwrap_or_else(|| panic!("still open: {}", d.summary()));
    assert_eq!(reason, CloseReason::HeartbeatTimeout, "{}", d.summary());
    let after = at.saturating_duration_since(silenced);
    assert!(
        after >= Duration::from_millis(250) && after <= Duration::from_secs(2),
        "closed {after:?} after libzmq went silent (interval 100 ms, timeout 300 ms)"
    );
    assert!(commands(&d.tx_log, b"PING").len() >= 2);
}

#[test]
fn libzmq_without_heartbeat_options_answers_our_pings_for_1s() {
    let ctx = zmq::Context::new();
    let dealer = zsocket(&ctx, zmq::DEALER);
    let addr = zbind(&dealer);

    let mut cfg = Config::new(SocketType::Router);
    cfg.heartbeat_interval = Some(Duration::from_millis(100));
    cfg.heartbeat_timeout = Some(Duration::from_millis(300));
    let mut d = Driver::connect(addr, &cfg);
    d.handshake();
    zsend(&mut d, &dealer, &[b"hi"]);
    assert_eq!(d.recv_message(), vec![b"hi".to_vec()]);

    // No data for 1 s: only libzmq's PONGs keep our session alive.
    let pongs_before = commands(&d.rx_log, b"PONG").len();
    d.pump_for(Duration::from_secs(1));
    let pings = commands(&d.tx_log, b"PING");
    let pongs = commands(&d.rx_log, b"PONG").len() - pongs_before;
    assert!(
        pings.len() >= 5,
        "we pinged every 100 ms: {} PINGs",
        pings.len()
    );
    assert!(
        pongs >= 5,
        "libzmq answered: {pongs} PONGs in the silent second"
    );
    assert!(
        pings.iter().all(|p| p == b"\x04PING\x00\x00"),
        "our PINGs: TTL 0, no context"
    );

    d.send(&[b"still-here"]);
    assert_eq!(zrecv(&mut d, &dealer), vec![b"still-here".to_vec()]);
    zsend(&mut d, &dealer, &[b"me-too"]);
    assert_eq!(d.recv_message(), vec![b"me-too".to_vec()]);
    assert!(d.closed.is_none());
}
