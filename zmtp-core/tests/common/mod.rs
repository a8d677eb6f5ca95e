//! Test harness shared by the integration tests: owned events, feeding in splits, and a pair
//! of sessions on virtual time with a hook to alter bytes in flight.
#![allow(dead_code)]

pub mod driver;
pub mod net;

use zmtp_core::{Buffers, CloseReason, Config, Event, Instant, Role, Session, SocketType};

/// An owned copy of an [`Event`], for comparing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Ready {
        socket_type: SocketType,
        identity: Vec<u8>,
        minor: u8,
        metadata: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// PLAIN credentials to decide on: username, password.
    Auth(Vec<u8>, Vec<u8>),
    Frame(Vec<u8>, bool),
    /// A chunk: data, offset, frame length, more.
    Chunk(Vec<u8>, u64, u64, bool),
    Subscribe(Vec<u8>),
    Cancel(Vec<u8>),
    PeerError(Vec<u8>),
    Closed(CloseReason),
}

impl Ev {
    pub fn from_event(e: &Event<'_>) -> Ev {
        match *e {
            Event::HandshakeComplete(p) => Ev::Ready {
                socket_type: p.socket_type,
                identity: p.identity.to_vec(),
                minor: p.minor_version,
                metadata: p
                    .metadata
                    .iter()
                    .map(|p| (p.name.to_vec(), p.value.to_vec()))
                    .collect(),
            },
            Event::Authenticate(a) => Ev::Auth(a.username.to_vec(), a.password.to_vec()),
            Event::Frame { data, more } => Ev::Frame(data.to_vec(), more),
            Event::FrameChunk(c) => Ev::Chunk(c.data.to_vec(), c.offset, c.frame_len, c.more),
            Event::Subscribe(t) => Ev::Subscribe(t.to_vec()),
            Event::Cancel(t) => Ev::Cancel(t.to_vec()),
            Event::PeerError(r) => Ev::PeerError(r.to_vec()),
            Event::Closed(r) => Ev::Closed(r),
            _ => panic!("unknown event {e:?}"),
        }
    }
}

/// Chunks merged back into whole frames, so event lists from different splits compare equal.
pub fn normalize(evs: &[Ev]) -> Vec<Ev> {
    let mut out = Vec::new();
    let mut acc: Vec<u8> = Vec::new();
    for e in evs {
        match e {
            Ev::Chunk(d, off, len, more) => {
                assert_eq!(*off as usize, acc.len(), "chunks out of order");
                acc.extend_from_slice(d);
                if off + d.len() as u64 == *len {
                    out.push(Ev::Frame(std::mem::take(&mut acc), *more));
                }
            }
            e => out.push(e.clone()),
        }
    }
    out
}

pub fn leak(n: usize) -> &'static mut [u8] {
    Box::leak(vec![0u8; n].into_boxed_slice())
}

/// A session on leaked buffers.
pub fn session(cfg: &Config<'static>, role: Role, rx: usize, tx: usize) -> Session<'static> {
    Session::new(
        cfg,
        role,
        Buffers {
            rx: leak(rx),
            tx: leak(tx),
        },
        Instant::ZERO,
    )
    .unwrap()
}

/// All events now.
pub fn drain(s: &mut Session<'_>) -> Vec<Ev> {
    let mut v = Vec::new();
    while let Some(e) = s.poll_event() {
        v.push(Ev::from_event(&e));
        assert!(v.len() < 1_000_000, "poll_event does not end");
    }
    v
}

/// All pending output, marked transmitted.
pub fn take_output(s: &mut Session<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = s.poll_transmit();
        if b.is_empty() {
            return out;
        }
        let n = b.len();
        out.extend_from_slice(b);
        s.mark_transmitted(n).unwrap();
    }
}

/// Feeds `bytes` in pieces of the given sizes (cycled), draining events after each piece.
/// Stops feeding once the session is closed.
pub fn feed_split(s: &mut Session<'_>, bytes: &[u8], sizes: &[usize], now: Instant) -> Vec<Ev> {
    let mut evs = Vec::new();
    let mut i = 0;
    let mut k = 0;
    while i < bytes.len() {
        let want = sizes[k % sizes.len()].max(1).min(bytes.len() - i);
        k += 1;
        let mut fed = 0;
        while fed < want {
            let n = s.feed(&bytes[i + fed..i + want], now);
            fed += n;
            evs.extend(drain(s));
            if s.is_closed() {
                return evs;
            }
            if n == 0 {
                // Window full with nothing to deliver cannot happen; guard against a hang.
                assert!(!s.recv_window().is_empty(), "receive window stuck at zero");
            }
        }
        i += want;
    }
    evs
}

/// Feeds all bytes at once, then one byte at a time, then in the given random splits, and
/// checks the normalized events are identical each time. `make` builds a fresh session (with
/// its greeting/handshake already done as the test wants). Returns the events.
pub fn feed_all_ways(make: &dyn Fn() -> Session<'static>, bytes: &[u8], seed: u64) -> Vec<Ev> {
    let whole = normalize(&feed_split(
        &mut make(),
        bytes,
        &[usize::MAX],
        Instant::ZERO,
    ));
    let ones = normalize(&feed_split(&mut make(), bytes, &[1], Instant::ZERO));
    assert_eq!(whole, ones, "one byte at a time differs from whole");
    for sizes in random_splits(seed) {
        let split = normalize(&feed_split(&mut make(), bytes, &sizes, Instant::ZERO));
        assert_eq!(whole, split, "split {sizes:?} differs from whole");
    }
    whole
}

/// 20 reproducible lists of 16 piece sizes (1-97 bytes) for splitting a transcript.
pub fn random_splits(seed: u64) -> Vec<Vec<usize>> {
    let mut rng = seed | 1;
    (0..20)
        .map(|_| {
            (0..16)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    (rng % 97) as usize + 1
                })
                .collect()
        })
        .collect()
}

/// `feed_all_ways` for rules about bytes on the wire: also collects what the session writes
/// (output taken after every piece) and checks it is identical whole, one byte at a time and
/// in random splits. Returns the (normalized) events and the output.
pub fn feed_all_ways_out(
    make: &dyn Fn() -> Session<'static>,
    bytes: &[u8],
    seed: u64,
) -> (Vec<Ev>, Vec<u8>) {
    let evs = feed_all_ways(make, bytes, seed);
    let mut splits: Vec<Vec<usize>> = vec![vec![usize::MAX], vec![1]];
    splits.extend(random_splits(seed));
    let mut first: Option<Vec<u8>> = None;
    for sizes in &splits {
        let mut s = make();
        let mut out = Vec::new();
        let (mut i, mut k) = (0, 0);
        while i < bytes.len() && !s.is_closed() {
            let want = sizes[k % sizes.len()].min(bytes.len() - i);
            k += 1;
            let n = s.feed(&bytes[i..i + want], Instant::ZERO);
            assert!(n > 0, "receive window full");
            i += n;
            drain(&mut s);
            out.extend(take_output(&mut s));
        }
        drain(&mut s);
        out.extend(take_output(&mut s));
        match &first {
            None => first = Some(out),
            Some(f) => assert_eq!(f, &out, "output for split {sizes:?} differs from whole"),
        }
    }
    (evs, first.unwrap())
}

/// Hook to alter bytes in flight: (direction: true = client to server, bytes) -> bytes.
pub type Tamper = Box<dyn FnMut(bool, Vec<u8>) -> Vec<u8>>;

/// Two sessions connected back to back on virtual time.
pub struct Pair {
    pub client: Session<'static>,
    pub server: Session<'static>,
    pub now: Instant,
    pub client_events: Vec<Ev>,
    pub server_events: Vec<Ev>,
    pub tamper: Option<Tamper>,
    /// Bytes in flight that did not fit the receiver's window yet.
    c2s: Vec<u8>,
    s2c: Vec<u8>,
}

impl Pair {
    pub fn new(client: &Config<'static>, server: &Config<'static>) -> Pair {
        Pair::with_buffers(client, server, 4096, 4096)
    }

    pub fn with_buffers(
        client: &Config<'static>,
        server: &Config<'static>,
        rx: usize,
        tx: usize,
    ) -> Pair {
        Pair {
            client: session(client, Role::Connected, rx, tx),
            server: session(server, Role::Accepted, rx, tx),
            now: Instant::ZERO,
            client_events: Vec::new(),
            server_events: Vec::new(),
            tamper: None,
            c2s: Vec::new(),
            s2c: Vec::new(),
        }
    }

    /// Moves bytes both ways and drains events until nothing moves.
    pub fn run(&mut self) {
        for _ in 0..100_000 {
            self.client_events.extend(drain(&mut self.client));
            self.server_events.extend(drain(&mut self.server));
            let mut a = take_output(&mut self.client);
            let mut b = take_output(&mut self.server);
            if let Some(t) = self.tamper.as_mut() {
                if !a.is_empty() {
                    a = t(true, a);
                }
                if !b.is_empty() {
                    b = t(false, b);
                }
            }
            self.c2s.extend(a);
            self.s2c.extend(b);
            let moved_a = Self::deliver(&mut self.server, &mut self.c2s, self.now);
            let moved_b = Self::deliver(&mut self.client, &mut self.s2c, self.now);
            self.client_events.extend(drain(&mut self.client));
            self.server_events.extend(drain(&mut self.server));
            if moved_a == 0 && moved_b == 0 {
                return;
            }
        }
        panic!("pair does not settle");
    }

    fn deliver(to: &mut Session<'_>, buf: &mut Vec<u8>, now: Instant) -> usize {
        if to.is_closed() {
            buf.clear();
            return 0;
        }
        let n = to.feed(buf, now);
        buf.drain(..n);
        n
    }

    /// Advances virtual time by `ms`, firing timers on both sides, in steps no larger than
    /// the sessions' own deadlines, and keeps bytes moving.
    pub fn advance(&mut self, ms: u64) {
        let end = Instant::from_micros(self.now.as_micros() + ms * 1000);
        loop {
            self.run();
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .filter(|&t| t <= end)
                .min();
            match next {
                Some(t) => {
                    self.now = self.now.max(t);
                    self.client.handle_timeout(self.now);
                    self.server.handle_timeout(self.now);
                }
                None => {
                    self.now = end;
                    self.client.handle_timeout(end);
                    self.server.handle_timeout(end);
                    self.run();
                    return;
                }
            }
        }
    }

    /// Runs the handshake and checks both sides completed it.
    pub fn handshake(&mut self) {
        self.run();
        assert!(
            self.client.is_ready(),
            "client not ready: {:?}",
            self.client_events
        );
        assert!(
            self.server.is_ready(),
            "server not ready: {:?}",
            self.server_events
        );
    }
}

/// A valid NULL greeting from a peer (ZMTP 3.1), as libzmq sends it (`00 01 7F` in bytes 7-9:
/// bytes 1-8 are not validated).
pub fn peer_greeting() -> Vec<u8> {
    let mut g = vec![0u8; 64];
    g[0] = 0xff;
    g[8] = 0x01;
    g[9] = 0x7f;
    g[10] = 3;
    g[11] = 1;
    g[12..16].copy_from_slice(b"NULL");
    g
}

/// A command frame with the given name and data.
pub fn command(name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(data);
    frame(0x04, &body)
}

/// A frame with the given flags (LONG added when the body needs it).
pub fn frame(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    if body.len() > 255 {
        v.push(flags | 0x02);
        v.extend_from_slice(&(body.len() as u64).to_be_bytes());
    } else {
        v.push(flags);
        v.push(body.len() as u8);
    }
    v.extend_from_slice(body);
    v
}

/// READY carrying the given properties.
pub fn ready(props: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut m = Vec::new();
    for (n, v) in props {
        m.push(n.len() as u8);
        m.extend_from_slice(n);
        m.extend_from_slice(&(v.len() as u32).to_be_bytes());
        m.extend_from_slice(v);
    }
    command(b"READY", &m)
}

/// A session of type `ours` that has been through the greeting and READY of a peer of type
/// `peer`, with the handshake event drained. Its output so far is discarded.
pub fn ready_session(ours: SocketType, peer: &str) -> Session<'static> {
    let mut s = session(&Config::new(ours), Role::Connected, 4096, 4096);
    let mut input = peer_greeting();
    input.extend(ready(&[(b"Socket-Type", peer.as_bytes())]));
    s.feed(&input, Instant::ZERO);
    let evs = drain(&mut s);
    assert!(matches!(evs.as_slice(), [Ev::Ready { .. }]), "{evs:?}");
    take_output(&mut s);
    s
}

pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}
