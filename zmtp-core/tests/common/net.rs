//! A socket under test with several remote peers (plain sessions), on virtual time.
#![allow(dead_code)]

use super::{drain, leak, take_output, Ev};
use zmtp_core::socket::kind::{self, Kind};
use zmtp_core::socket::{
    PeerHandle, PeerMemory, PeerSlot, Socket, SocketConfig, SocketEvent, SubscriptionMemory,
};
use zmtp_core::{Buffers, Config, Instant, Role, Session, SocketType};

/// One remote peer: a session of its own and what it has received.
pub struct Remote {
    pub handle: PeerHandle,
    pub session: Session<'static>,
    pub events: Vec<Ev>,
    /// Whole messages received.
    pub messages: Vec<Vec<Vec<u8>>>,
    partial: Vec<Vec<u8>>,
    chunked: Vec<u8>,
    eof_sent: bool,
    /// When false, bytes from the socket to this peer stay in flight (a slow reader).
    pub reading: bool,
}

impl Remote {
    pub fn send(&mut self, frames: &[&[u8]]) {
        for (i, f) in frames.iter().enumerate() {
            self.session.send_frame(f, i + 1 < frames.len()).unwrap();
        }
    }

    fn absorb(&mut self) {
        for e in drain(&mut self.session) {
            let whole = match &e {
                Ev::Frame(d, more) => Some((d.clone(), *more)),
                Ev::Chunk(d, off, len, more) => {
                    self.chunked.extend_from_slice(d);
                    (off + d.len() as u64 == *len)
                        .then(|| (std::mem::take(&mut self.chunked), *more))
                }
                _ => None,
            };
            if let Some((d, more)) = whole {
                self.partial.push(d);
                if !more {
                    self.messages.push(std::mem::take(&mut self.partial));
                }
                continue;
            }
            if let Ev::Closed(_) = e {
                self.partial.clear();
            }
            self.events.push(e);
        }
    }
}

/// `K`: the socket's type at run time ([`kind::Any`], the default) or fixed at compile time.
pub struct Net<K: Kind = kind::Any> {
    pub socket: Socket<'static, 'static, K>,
    pub remotes: Vec<Remote>,
    pub now: Instant,
    pub socket_events: Vec<SocketEvent>,
}

pub fn slots(n: usize, rx: usize, tx: usize, queue: usize) -> &'static mut [PeerSlot<'static>] {
    let v: Vec<PeerSlot<'static>> = (0..n)
        .map(|_| {
            PeerSlot::new(PeerMemory {
                rx: leak(rx),
                tx: leak(tx),
                recv_queue: leak(queue),
                send_queue: leak(queue),
            })
        })
        .collect();
    Box::leak(v.into_boxed_slice())
}

impl<K: Kind> Net<K> {
    /// A socket of type `kind` fixed at compile time ([`Socket::typed_with_subscriptions`]),
    /// with the memory of [`Net::with_subscriptions`].
    pub fn typed(
        kind: K,
        cfg: SocketConfig<'static>,
        capacity: usize,
        (rx, tx, queue): (usize, usize, usize),
        trie: usize,
        notes: usize,
    ) -> Net<K> {
        let memory = SubscriptionMemory::new(leak(trie)).with_notifications(leak(notes));
        let slots = slots(capacity, rx, tx, queue);
        Net {
            socket: Socket::typed_with_subscriptions(kind, cfg, slots, memory),
            remotes: Vec::new(),
            now: Instant::ZERO,
            socket_events: Vec::new(),
        }
    }
}

impl Net {
    pub fn new(cfg: SocketConfig<'static>, capacity: usize) -> Net {
        Net::with_memory(cfg, capacity, 1024, 1024, 8192)
    }

    pub fn with_memory(
        cfg: SocketConfig<'static>,
        capacity: usize,
        rx: usize,
        tx: usize,
        queue: usize,
    ) -> Net {
        Net {
            socket: Socket::new(cfg, slots(capacity, rx, tx, queue)),
            remotes: Vec::new(),
            now: Instant::ZERO,
            socket_events: Vec::new(),
        }
    }

    /// A PUB/XPUB/SUB/XSUB socket with `trie` bytes of subscription memory and `notes` bytes
    /// of XPUB notification queue.
    pub fn with_subscriptions(
        cfg: SocketConfig<'static>,
        capacity: usize,
        (rx, tx, queue): (usize, usize, usize),
        trie: usize,
        notes: usize,
    ) -> Net {
        let memory = SubscriptionMemory::new(leak(trie)).with_notifications(leak(notes));
        Net {
            socket: Socket::with_subscriptions(cfg, slots(capacity, rx, tx, queue), memory),
            remotes: Vec::new(),
            now: Instant::ZERO,
            socket_events: Vec::new(),
        }
    }
}

impl<K: Kind> Net<K> {
    pub fn ty(&self) -> SocketType {
        self.socket.socket_type()
    }

    /// Adds a remote peer of type `ty` (with `identity`), runs the handshake; returns its
    /// index in `remotes`.
    pub fn connect(&mut self, ty: SocketType, identity: &'static [u8]) -> usize {
        self.connect_with(ty, identity, 4096, 1 << 18)
    }

    /// [`connect`](Self::connect) with the remote session's buffer sizes.
    pub fn connect_with(
        &mut self,
        ty: SocketType,
        identity: &'static [u8],
        rx: usize,
        tx: usize,
    ) -> usize {
        let h = self.socket.add_peer(Role::Accepted, self.now).unwrap();
        self.attach(h, ty, identity, rx, tx)
    }

    /// A remote peer of type `ty` for the socket's peer `h` (just added), with its session's
    /// buffer sizes; runs the handshake and returns its index in `remotes`.
    pub fn attach(
        &mut self,
        h: PeerHandle,
        ty: SocketType,
        identity: &'static [u8],
        rx: usize,
        tx: usize,
    ) -> usize {
        let cfg = Config::new(ty).with_identity(identity);
        let session = Session::new(
            &cfg,
            Role::Connected,
            Buffers {
                rx: leak(rx),
                tx: leak(tx),
            },
            self.now,
        )
        .unwrap();
        self.remotes.push(Remote {
            handle: h,
            session,
            events: Vec::new(),
            messages: Vec::new(),
            partial: Vec::new(),
            chunked: Vec::new(),
            eof_sent: false,
            reading: true,
        });
        self.run();
        self.remotes.len() - 1
    }

    /// Moves bytes until nothing moves.
    pub fn run(&mut self) {
        for _ in 0..100_000 {
            let mut moved = 0;
            for r in self.remotes.iter_mut() {
                // Socket -> remote.
                if r.reading && !r.session.is_closed() {
                    loop {
                        let out = self.socket.poll_transmit(r.handle);
                        if out.is_empty() {
                            break;
                        }
                        let n = r.session.feed(out, self.now);
                        if n == 0 {
                            break;
                        }
                        self.socket.mark_transmitted(r.handle, n).unwrap();
                        moved += n;
                        r.absorb();
                    }
                }
                r.absorb();
                // Our side closed and flushed: the remote sees end of stream.
                if !r.eof_sent && self.socket.is_finished(r.handle) {
                    r.eof_sent = true;
                    r.session.handle_eof();
                    r.absorb();
                    moved += 1;
                }
                // Remote -> socket.
                let out =
                    take_output_limited(&mut r.session, self.socket.recv_window(r.handle).len());
                if !out.is_empty() {
                    let n = self.socket.feed(r.handle, &out, self.now);
                    assert_eq!(n, out.len());
                    moved += n;
                }
            }
            while let Some(e) = self.socket.poll_event() {
                self.socket_events.push(e);
            }
            if moved == 0 {
                return;
            }
        }
        panic!("net does not settle");
    }

    /// Every message the socket can deliver now, as owned frames with the sender's index.
    pub fn recv_all(&mut self) -> Vec<(usize, Vec<Vec<u8>>)> {
        let mut v = Vec::new();
        loop {
            self.run();
            match self.socket.recv() {
                Ok(m) => {
                    let who = self
                        .remotes
                        .iter()
                        .position(|r| r.handle == m.peer)
                        .unwrap();
                    v.push((who, m.frames().map(<[u8]>::to_vec).collect()));
                }
                Err(_) => return v,
            }
        }
    }

    /// Closes a remote's transport abruptly (EOF at the socket).
    pub fn kill(&mut self, i: usize) {
        let h = self.remotes[i].handle;
        self.socket.handle_eof(h);
        self.remotes[i].session.close();
        self.run();
    }
}

/// Takes at most `max` bytes of a session's output.
fn take_output_limited(s: &mut Session<'_>, max: usize) -> Vec<u8> {
    let b = s.poll_transmit();
    let n = b.len().min(max);
    let out = b[..n].to_vec();
    s.mark_transmitted(n).unwrap();
    let _ = take_output;
    out
}
