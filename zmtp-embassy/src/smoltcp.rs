//! The same sockets over plain smoltcp, without embassy and without async: for RTIC tasks and
//! super loops.
//!
//! You own the `Interface`, the `SocketSet` and its TCP sockets (one per peer, with their
//! buffers); a [`Socket`] borrows them in [`Socket::poll`]. Call it after each
//! `Interface::poll`, and again no later than [`Socket::poll_at`] (heartbeats, reconnects).
//! [`Socket::try_send`] and [`Socket::try_recv`] never block: after a send, `poll` moves the
//! bytes out.
//!
//! ```no_run
//! use smoltcp::iface::{Interface, SocketHandle, SocketSet};
//! use smoltcp::socket::tcp;
//! use smoltcp::time::Instant;
//! use zmtp_embassy::smoltcp::{Resources, Socket};
//! use zmtp_embassy::{Endpoint, Options, SocketType};
//!
//! fn run<D: smoltcp::phy::Device>(
//!     iface: &mut Interface,
//!     device: &mut D,
//!     sockets: &mut SocketSet<'static>,
//!     tcp_handle: SocketHandle,
//!     res: &'static mut Resources<'static, 1, 1024, 4096>,
//!     clock: impl Fn() -> Instant,
//! ) {
//!     let server = core::net::SocketAddrV4::new([10, 0, 0, 1].into(), 5555);
//!     let mut socket = Socket::new(
//!         res,
//!         Options::new(SocketType::Push),
//!         &[Endpoint::connect(server)],
//!         &[tcp_handle],
//!     )
//!     .unwrap();
//!     loop {
//!         iface.poll(clock(), device, sockets);
//!         socket.poll(clock(), iface, sockets);
//!         let _ = socket.try_send(&[b"tick"]); // WouldBlock until connected
//!         // sleep until socket.poll_at() / iface.poll_at() or an interrupt
//!     }
//! }
//! ```

use core::time::Duration;

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SInstant;
use zmtp_core::socket::kind::{self, Kind};
use zmtp_core::socket::{PeerSlot, Received};
use zmtp_core::{Instant, Role, SocketType};

use crate::engine::{plan_links, Engine, Init, Link, PeerBuffers, Plan};
use crate::fmt::debug;
use crate::{Endpoint, Error, Message, Options};

/// The memory of a smoltcp-driven socket (the TCP buffers are in your `SocketSet`).
///
/// `PEERS`, `BUF`, `QUEUE` and `SUBS` as in the embassy [`Resources`](crate::Resources),
/// without the TCP buffers. Starts as all-zero bytes (a `static` of it goes to `.bss`).
pub struct Resources<
    'd,
    const PEERS: usize,
    const BUF: usize,
    const QUEUE: usize,
    const SUBS: usize = 0,
> {
    peers: [PeerBuffers<BUF, QUEUE>; PEERS],
    subs: [u8; SUBS],
    links: Init<[Link; PEERS]>,
    tcp: Init<[TcpLink; PEERS]>,
    slots: Init<[PeerSlot<'d>; PEERS]>,
}

impl<const PEERS: usize, const BUF: usize, const QUEUE: usize, const SUBS: usize>
    Resources<'_, PEERS, BUF, QUEUE, SUBS>
{
    /// Zeroed memory (`const`: place it in a `static`).
    pub const fn new() -> Self {
        Resources {
            peers: [const { PeerBuffers::new() }; PEERS],
            subs: [0; SUBS],
            links: Init::Empty,
            tcp: Init::Empty,
            slots: Init::Empty,
        }
    }
}

impl<const PEERS: usize, const BUF: usize, const QUEUE: usize, const SUBS: usize> Default
    for Resources<'_, PEERS, BUF, QUEUE, SUBS>
{
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No connection; the next attempt at `at`.
    Idle,
    /// Connecting or listening since `at`.
    Opening,
    /// Session running.
    Up,
    /// Transport closing since `at`.
    Closing,
}

/// One TCP socket of the user's `SocketSet` and where it is.
#[derive(Debug)]
struct TcpLink {
    handle: Option<SocketHandle>,
    state: State,
    at: Instant,
}

impl TcpLink {
    const fn new() -> Self {
        TcpLink {
            handle: None,
            state: State::Idle,
            at: Instant::ZERO,
        }
    }
}

/// How long a closing transport may linger before it is aborted.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// A ZeroMQ socket over smoltcp TCP sockets, driven by [`poll`](Self::poll). `K`: the
/// socket type fixed at compile time ([`Socket::typed`]), or [`kind::Any`] ([`Socket::new`]).
pub struct Socket<'d, K: Kind = kind::Any> {
    engine: Engine<'d, K>,
    tcp: &'d mut [TcpLink],
    next_port: u16,
}

/// smoltcp's form of an address (`None`: IPv6 without the `ipv6` feature).
fn ip_endpoint(addr: core::net::SocketAddr) -> Option<smoltcp::wire::IpEndpoint> {
    use smoltcp::wire::IpAddress;
    let ip = match addr {
        core::net::SocketAddr::V4(a) => IpAddress::Ipv4(*a.ip()),
        #[cfg(feature = "ipv6")]
        core::net::SocketAddr::V6(a) => IpAddress::Ipv6(*a.ip()),
        #[cfg(not(feature = "ipv6"))]
        core::net::SocketAddr::V6(_) => return None,
    };
    Some(smoltcp::wire::IpEndpoint::new(ip, addr.port()))
}

fn to_core(t: SInstant) -> Instant {
    Instant::from_micros(u64::try_from(t.total_micros()).unwrap_or(0))
}

fn to_smol(t: Instant) -> SInstant {
    SInstant::from_micros(i64::try_from(t.as_micros()).unwrap_or(i64::MAX))
}

impl<'d> Socket<'d> {
    /// A socket in `resources` over the TCP sockets `tcp` (one per peer; at least as many
    /// as `Connect` endpoints, plus one or more for a `Listen`). The TCP sockets must be
    /// closed; the socket connects and listens on them in [`poll`](Self::poll).
    pub fn new<const PEERS: usize, const BUF: usize, const QUEUE: usize, const SUBS: usize>(
        resources: &'d mut Resources<'d, PEERS, BUF, QUEUE, SUBS>,
        options: Options<'d>,
        endpoints: &[Endpoint],
        tcp: &[SocketHandle],
    ) -> Result<Self, Error> {
        Socket::typed(kind::Any, resources, options, endpoints, tcp)
    }
}

impl<'d, K: Kind> Socket<'d, K> {
    /// [`Socket::new`] with the socket type fixed at compile time (`kind`, e.g.
    /// [`kind::Dealer`]): the other types' code is left out. `options` must name the same
    /// type ([`Error::KindMismatch`]).
    pub fn typed<const PEERS: usize, const BUF: usize, const QUEUE: usize, const SUBS: usize>(
        _kind: K,
        resources: &'d mut Resources<'d, PEERS, BUF, QUEUE, SUBS>,
        options: Options<'d>,
        endpoints: &[Endpoint],
        tcp: &[SocketHandle],
    ) -> Result<Self, Error> {
        crate::engine::check_kind::<K>(&options)?;
        options
            .socket
            .session
            .check_buffers(BUF, BUF)
            .map_err(Error::Config)?;
        let Resources {
            peers,
            subs,
            links,
            tcp: tcp_links,
            slots,
        } = resources;
        // `insert` lends out what it just stored: the `None`s cannot happen.
        let links = links
            .insert([const { Link::new() }; PEERS])
            .ok_or(Error::NoFreeSlot)?;
        let tcp_links = tcp_links
            .insert([const { TcpLink::new() }; PEERS])
            .ok_or(Error::NoFreeSlot)?;
        let used = links.len().min(tcp.len());
        let links = links.get_mut(..used).unwrap_or_default();
        plan_links(links, endpoints, &options)?;
        for (l, h) in tcp_links.iter_mut().zip(tcp) {
            l.handle = Some(*h);
        }
        let slots = slots
            .insert(peers.each_mut().map(PeerBuffers::slot))
            .ok_or(Error::NoFreeSlot)?;
        Ok(Socket {
            engine: Engine::new(options, slots, subs, links),
            tcp: tcp_links,
            next_port: 49152,
        })
    }

    /// CURVE: the RNG each new connection draws its transient key and nonces from.
    #[cfg(feature = "curve")]
    pub fn set_rng(&mut self, rng: &'d mut (dyn rand_core::CryptoRng + Send)) {
        self.engine.rng = Some(rng);
    }

    /// Does everything due at `now`: connects, accepts, moves bytes both ways, fires
    /// heartbeats and timeouts, closes and reconnects. Returns whether anything happened
    /// (poll the interface again if so).
    pub fn poll(
        &mut self,
        now: SInstant,
        iface: &mut Interface,
        sockets: &mut SocketSet<'_>,
    ) -> bool {
        let t = to_core(now);
        let mut progress = false;
        for i in 0..self.tcp.len() {
            progress |= self.poll_link(i, t, iface, sockets);
        }
        if self.engine.poll_timeout().is_some_and(|d| d <= t) {
            self.engine.handle_timeout(t);
            progress = true;
            for i in 0..self.tcp.len() {
                progress |= self.poll_link(i, t, iface, sockets);
            }
        }
        progress
    }

    fn poll_link(
        &mut self,
        i: usize,
        now: Instant,
        iface: &mut Interface,
        sockets: &mut SocketSet<'_>,
    ) -> bool {
        let plan = self.engine.links.get(i).map_or(Plan::Unused, |l| l.plan);
        let stopped = self.engine.links.get(i).is_some_and(|l| l.stopped);
        let connect_timeout = self.engine.options().connect_timeout;
        let Some(link) = self.tcp.get_mut(i) else {
            return false;
        };
        let Some(handle) = link.handle else {
            return false;
        };
        let tcp = sockets.get_mut::<tcp::Socket<'_>>(handle);
        match link.state {
            State::Idle => {
                if now < link.at || stopped {
                    return false;
                }
                let opened = match plan {
                    Plan::Unused => return false,
                    Plan::Connect(addr) => {
                        let port = self.next_port;
                        self.next_port = if port >= 65000 { 49152 } else { port + 1 };
                        debug!("zmtp: link {} connecting", i);
                        ip_endpoint(addr).is_some_and(|remote| {
                            tcp.connect(iface.context(), remote, port).is_ok()
                        })
                    }
                    Plan::Listen(port) => tcp.listen(port).is_ok(),
                };
                if opened {
                    link.state = State::Opening;
                    link.at = now;
                } else {
                    tcp.abort();
                    link.at = now.saturating_add(Duration::from_secs(1));
                }
                true
            }
            State::Opening => {
                if tcp.may_send() {
                    let role = match plan {
                        Plan::Listen(_) => Role::Accepted,
                        _ => Role::Connected,
                    };
                    if self.engine.attach(i, role, now).is_err() {
                        tcp.abort();
                        link.state = State::Idle;
                        link.at = now.saturating_add(Duration::from_secs(1));
                    } else {
                        link.state = State::Up;
                        self.pump(i, now, sockets);
                    }
                    return true;
                }
                let timed_out = matches!(plan, Plan::Connect(_))
                    && now.saturating_duration_since(link.at) > connect_timeout;
                if !tcp.is_open() || timed_out {
                    tcp.abort();
                    let delay = match plan {
                        Plan::Connect(_) => self.engine.connect_failed(i),
                        _ => Duration::ZERO,
                    };
                    link.state = State::Idle;
                    link.at = now.saturating_add(delay);
                    return true;
                }
                false
            }
            State::Up => self.pump(i, now, sockets),
            State::Closing => {
                let gone = matches!(tcp.state(), tcp::State::Closed | tcp::State::TimeWait);
                if gone || now.saturating_duration_since(link.at) > CLOSE_LINGER {
                    tcp.abort();
                    let delay = self.engine.detach(i);
                    link.state = State::Idle;
                    link.at = match delay {
                        Some(d) => now.saturating_add(d),
                        None => now,
                    };
                    return true;
                }
                false
            }
        }
    }

    /// Moves bytes of an established link both ways.
    fn pump(&mut self, i: usize, now: Instant, sockets: &mut SocketSet<'_>) -> bool {
        let Some(link) = self.tcp.get_mut(i) else {
            return false;
        };
        let Some(handle) = link.handle else {
            return false;
        };
        let tcp = sockets.get_mut::<tcp::Socket<'_>>(handle);
        let engine = &mut self.engine;
        let mut progress = false;
        // Input: straight from smoltcp's buffer into the session (one copy).
        while tcp.can_recv() && engine.wants_input(i) {
            let n = tcp
                .recv(|buf| {
                    let n = engine.input(i, buf, now);
                    (n, n)
                })
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            progress = true;
        }
        if !tcp.may_recv() && tcp.recv_queue() == 0 && !engine.finished(i) {
            engine.eof(i);
            progress = true;
        }
        // Output: straight from the session into smoltcp's buffer.
        while tcp.can_send() && engine.has_output(i) {
            let n = tcp
                .send(|buf| {
                    let n = engine.output(i, buf);
                    (n, n)
                })
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            progress = true;
        }
        if engine.finished(i) || !tcp.is_open() {
            engine.eof(i);
            tcp.close();
            link.state = State::Closing;
            link.at = now;
            progress = true;
        }
        progress
    }

    /// When to call [`poll`](Self::poll) next at the latest (`None`: only after network
    /// activity).
    pub fn poll_at(&self) -> Option<SInstant> {
        let mut at = self.engine.poll_timeout();
        let connect_timeout = self.engine.options().connect_timeout;
        for (i, l) in self.tcp.iter().enumerate() {
            let plan = self.engine.links.get(i).map(|l| l.plan);
            let t = match (l.state, plan) {
                (State::Idle, Some(Plan::Connect(_) | Plan::Listen(_))) => Some(l.at),
                (State::Opening, Some(Plan::Connect(_))) => {
                    Some(l.at.saturating_add(connect_timeout))
                }
                (State::Closing, _) => Some(l.at.saturating_add(CLOSE_LINGER)),
                _ => None,
            };
            at = match (at, t) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        at.map(to_smol)
    }

    /// The socket type.
    pub fn socket_type(&self) -> SocketType {
        self.engine.socket.socket_type()
    }

    /// Peers whose handshake is done.
    pub fn ready_peers(&self) -> usize {
        self.engine.ready()
    }

    /// Queues a multipart message, or fails with [`Error::WouldBlock`] when no peer can take
    /// it now. See [`crate::Socket::send`] for the routing.
    pub fn try_send(&mut self, frames: &[&[u8]]) -> Result<(), Error> {
        self.engine.try_send(frames)
    }

    /// The next message, its frames copied into `buf`, or [`Error::WouldBlock`]. A message
    /// that does not fit stays queued ([`Error::BufferTooSmall`] says how many bytes it
    /// needs; [`Error::TooManyFrames`]): call again with a larger buffer, take it with
    /// [`try_recv_with`](Self::try_recv_with), or drop it with [`discard`](Self::discard).
    pub fn try_recv<'b>(&mut self, buf: &'b mut [u8]) -> Result<Message<'b>, Error> {
        self.engine.try_recv(buf)
    }

    /// Drops the next message unread; returns whether there was one.
    pub fn discard(&mut self) -> Result<bool, Error> {
        self.engine.discard()
    }

    /// The next message without copying, seen by `f` in the socket's queue.
    pub fn try_recv_with<R>(&mut self, f: impl FnOnce(&Received<'_>) -> R) -> Result<R, Error> {
        self.engine.try_recv_with(f)
    }

    /// SUB, XSUB: receive messages whose first frame starts with `topic`.
    pub fn subscribe(&mut self, topic: &[u8]) -> Result<(), Error> {
        self.engine.socket.subscribe(topic).map_err(Error::from)
    }

    /// SUB, XSUB: drop one use of `topic`.
    pub fn unsubscribe(&mut self, topic: &[u8]) -> Result<(), Error> {
        self.engine.socket.unsubscribe(topic).map_err(Error::from)
    }
}
