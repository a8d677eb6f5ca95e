//! A blocking driver for one zmtp-core session over a real `TcpStream`, a wire scanner, a
//! silencing TCP relay and libzmq helpers, for the interop tests.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant as StdInstant};

use super::{leak, Ev};
use zmtp_core::{Buffers, CloseReason, Config, Instant, Role, SendError, Session, SocketType};

/// Longest a driver blocks in one read, so timers fire on time and callers can poll.
pub const READ_TIMEOUT: Duration = Duration::from_millis(10);
/// Deadline for any single expected step (a handshake, a message, an event).
pub const STEP: Duration = Duration::from_secs(5);

// ================================================================================ driver

/// What the handshake told us about the peer (an owned `PeerInfo`).
#[derive(Debug)]
pub struct Peer {
    pub socket_type: SocketType,
    pub identity: Vec<u8>,
    pub minor: u8,
}

/// One zmtp-core session over a blocking `TcpStream` with a short read timeout, on the real
/// clock. Events are copied out as they come ([`Ev`]) so the receive buffer never stays full.
pub struct Driver {
    pub stream: TcpStream,
    pub session: Session<'static>,
    /// The session's clock starts here (`Instant::ZERO`).
    pub epoch: StdInstant,
    /// Events not yet taken by the test, in order (`Closed` included).
    pub events: VecDeque<Ev>,
    /// Frames of the message being assembled.
    pub partial: Vec<Vec<u8>>,
    /// Body of the frame being assembled from `FrameChunk`s.
    pub chunked: Vec<u8>,
    /// `FrameChunk` events taken into messages so far.
    pub chunks_taken: usize,
    /// Why and when (real time) the session closed.
    pub closed: Option<(CloseReason, StdInstant)>,
    /// Every byte received from the peer and every byte written to it.
    pub rx_log: Vec<u8>,
    pub tx_log: Vec<u8>,
    /// The transport refused a write (the peer is gone).
    pub write_failed: bool,
}

impl Driver {
    pub fn new(
        stream: TcpStream,
        cfg: &Config<'static>,
        role: Role,
        rx: usize,
        tx: usize,
    ) -> Driver {
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
    pub fn connect(addr: SocketAddr, cfg: &Config<'static>) -> Driver {
        Driver::connect_with(addr, cfg, 8192, 8192)
    }

    pub fn connect_with(addr: SocketAddr, cfg: &Config<'static>, rx: usize, tx: usize) -> Driver {
        let stream = TcpStream::connect(addr).unwrap();
        Driver::new(stream, cfg, Role::Connected, rx, tx)
    }

    /// Accepts libzmq's connection on `listener`.
    pub fn accept(listener: &TcpListener, cfg: &Config<'static>) -> Driver {
        Driver::accept_with(listener, cfg, 8192, 8192)
    }

    pub fn accept_with(
        listener: &TcpListener,
        cfg: &Config<'static>,
        rx: usize,
        tx: usize,
    ) -> Driver {
        let stream = accept_one(listener);
        Driver::new(stream, cfg, Role::Accepted, rx, tx)
    }

    pub fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    /// Writes as much pending output as the transport takes without blocking for long.
    pub fn flush(&mut self) {
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
    pub fn pump(&mut self) {
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
    pub fn drain(&mut self) {
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
    pub fn pump_until<T>(
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
    pub fn wait_for<T>(&mut self, what: &str, f: impl FnMut(&mut Driver) -> Option<T>) -> T {
        match self.pump_until(StdInstant::now() + STEP, f) {
            Some(t) => t,
            None => panic!("gave up waiting for {what}: {}", self.summary()),
        }
    }

    /// Pumps for `d`; panics if the session closes meanwhile.
    pub fn pump_for(&mut self, d: Duration) {
        let closed = self.pump_until(StdInstant::now() + d, |d| d.closed);
        assert!(closed.is_none(), "session closed: {}", self.summary());
    }

    /// Waits for the handshake; returns what it told us about the peer.
    pub fn handshake(&mut self) -> Peer {
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
    pub fn next_event(&mut self) -> Ev {
        self.wait_for("an event", |d| d.events.pop_front())
    }

    /// Takes one whole message from the queued events, reassembling streamed frames. Panics on
    /// an event that is not data.
    pub fn try_take_message(&mut self) -> Option<Vec<Vec<u8>>> {
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
    pub fn recv_message(&mut self) -> Vec<Vec<u8>> {
        self.wait_for("a message", |d| d.try_take_message())
    }

    /// Queues and writes one message; frames larger than the transmit buffer are streamed.
    pub fn send<T: AsRef<[u8]>>(&mut self, frames: &[T]) {
        for (i, f) in frames.iter().enumerate() {
            self.send_frame(f.as_ref(), i + 1 < frames.len());
        }
        self.flush();
    }

    pub fn send_frame(&mut self, data: &[u8], more: bool) {
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
    pub fn make_room(&mut self, deadline: StdInstant) {
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

    pub fn subscribe(&mut self, topic: &[u8]) {
        self.session.send_subscribe(topic).unwrap();
        self.flush();
    }

    /// The connection's state, for failure messages.
    pub fn summary(&self) -> String {
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

pub fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Accepts one connection within `STEP` and returns it in blocking mode.
pub fn accept_one(listener: &TcpListener) -> TcpStream {
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

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ================================================================================ wire scanner

/// One frame seen on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wire {
    /// A command frame's body (name length, name, data).
    Command(Vec<u8>),
    /// A data frame's header.
    Data { len: u64, long: bool, more: bool },
}

#[derive(Clone, Copy, Debug)]
pub enum ScanState {
    Flags,
    Size,
    Body,
}

/// Splits one direction of a ZMTP connection (greeting first) into frames, byte by byte.
pub struct Scanner {
    pub greeting_left: usize,
    pub state: ScanState,
    pub flags: u8,
    pub size: Vec<u8>,
    pub left: u64,
    pub body: Vec<u8>,
}

impl Scanner {
    pub fn new() -> Scanner {
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
    pub fn push(&mut self, b: u8) -> Option<Wire> {
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

    pub fn finish(&mut self) -> Wire {
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
pub fn scan(bytes: &[u8]) -> Vec<Wire> {
    let mut s = Scanner::new();
    bytes.iter().filter_map(|&b| s.push(b)).collect()
}

/// A command body's name.
pub fn command_name(body: &[u8]) -> &[u8] {
    let n = body.first().map_or(0, |&n| usize::from(n));
    body.get(1..1 + n).unwrap_or(&[])
}

/// Bodies of the commands named `name` in one direction's bytes.
pub fn commands(bytes: &[u8], name: &[u8]) -> Vec<Vec<u8>> {
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
pub struct Relay {
    pub addr: SocketAddr,
    pub armed: Arc<AtomicBool>,
    pub silenced_at: Arc<Mutex<Option<StdInstant>>>,
}

impl Relay {
    pub fn start(upstream: SocketAddr, trigger: &'static [u8]) -> Relay {
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
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    pub fn silenced_at(&self) -> Option<StdInstant> {
        *self.silenced_at.lock().unwrap()
    }
}

// ================================================================================ libzmq helpers

/// A libzmq socket that does not linger at close and never blocks for long.
pub fn zsocket(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(STEP.as_millis() as i32).unwrap();
    s.set_sndtimeo(STEP.as_millis() as i32).unwrap();
    s
}

/// Binds a libzmq socket to an ephemeral port on 127.0.0.1; returns the address.
pub fn zbind(s: &zmq::Socket) -> SocketAddr {
    s.bind("tcp://127.0.0.1:0").unwrap();
    let ep = s.get_last_endpoint().unwrap().unwrap();
    ep.strip_prefix("tcp://")
        .unwrap_or_else(|| panic!("endpoint {ep}"))
        .parse()
        .unwrap()
}

/// Our listener on an ephemeral port and the endpoint libzmq connects to.
pub fn listen() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("tcp://{}", l.local_addr().unwrap());
    (l, ep)
}

/// Receives one message on a libzmq socket while pumping our side.
pub fn zrecv(d: &mut Driver, s: &zmq::Socket) -> Vec<Vec<u8>> {
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
pub fn zsend<T: AsRef<[u8]>>(d: &mut Driver, s: &zmq::Socket, frames: &[T]) {
    d.wait_for("libzmq to accept a message", |_| {
        match s.send_multipart(frames.iter().map(|f| f.as_ref()), zmq::DONTWAIT) {
            Ok(()) => Some(()),
            Err(zmq::Error::EAGAIN | zmq::Error::EHOSTUNREACH) => None,
            Err(e) => panic!("libzmq send: {e}"),
        }
    })
}

/// Deterministic, non-repeating test bytes.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
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
pub fn sample_message() -> Vec<Vec<u8>> {
    vec![
        b"".to_vec(),
        b"hello".to_vec(),
        b"".to_vec(),
        pattern(300, 7),
        b"end".to_vec(),
    ]
}

/// Whether a 300-byte data frame with a long (8-byte) size crossed in these bytes.
pub fn has_long_300(bytes: &[u8]) -> bool {
    scan(bytes).contains(&Wire::Data {
        len: 300,
        long: true,
        more: true,
    })
}
