//! Async ZeroMQ sockets (ZMTP 3.1) for [embassy-net], and poll-driven ones for plain
//! [smoltcp]: `#![no_std]`, no allocator, every byte in memory you give it.
//!
//! Every socket type of [`zmtp_core`] (REQ, REP, DEALER, ROUTER, PUB, SUB, XPUB, XSUB, PUSH,
//! PULL, PAIR) connects (with reconnect and exponential backoff) and/or listens over TCP.
//! Heartbeats, handshake timeouts and reconnects run without the application's help.
//!
//! # The embassy way
//!
//! 1. Allocate a [`Resources`] statically: its const generics name the capacities
//!    (`PEERS` connections, `BUF` bytes per TCP and ZMTP buffer, `QUEUE` bytes per message
//!    queue, `SUBS` bytes of subscription memory for PUB/SUB).
//! 2. [`new`] gives a [`Socket`] handle and a [`Runner`]; spawn a task that calls
//!    [`Runner::run`]. It moves bytes between the TCP sockets and the protocol core and
//!    sleeps until the next protocol deadline or socket readiness.
//! 3. [`Socket::send`] and [`Socket::recv`] whole multipart messages.
//!
//! ```no_run
//! use core::net::{Ipv4Addr, SocketAddrV4};
//! use static_cell::ConstStaticCell;
//! use zmtp_embassy::{Endpoint, Options, Resources, Runner, SocketType};
//!
//! type Res = Resources<'static, 1, 1024, 4096>; // 1 peer, 1 KiB buffers, 4 KiB queues
//! static RES: ConstStaticCell<Res> = ConstStaticCell::new(Res::new());
//!
//! #[embassy_executor::task]
//! async fn zmq(runner: Runner<'static, 1>) -> ! {
//!     runner.run().await // connects, reconnects with backoff, keeps heartbeats
//! }
//!
//! async fn dealer(spawner: embassy_executor::Spawner, stack: embassy_net::Stack<'static>) {
//!     let server = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5555);
//!     let options = Options::new(SocketType::Dealer).with_identity(b"sensor-1");
//!     let (mut socket, runner) =
//!         zmtp_embassy::new(stack, RES.take(), options, &[Endpoint::connect(server)]).unwrap();
//!     spawner.spawn(zmq(runner).unwrap());
//!     let mut buf = [0u8; 256];
//!     loop {
//!         socket.send(&[b"temperature", b"21.5"]).await.unwrap();
//!         let reply = socket.recv(&mut buf).await.unwrap(); // frames copied into buf
//!         let _first_frame: Option<&[u8]> = reply.frame(0);
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! # Socket type fixed at compile time
//!
//! `Resources`' last parameter is the socket's [`kind`]: [`kind::Any`] (the default) reads
//! the type from [`Options`] at run time, so every pattern's code is in the binary; a marker
//! such as [`kind::Dealer`] fixes it at compile time and leaves the other patterns out
//! (about 9 KiB less flash for a DEALER firmware). The options must name the same type
//! ([`Error::KindMismatch`] otherwise).
//!
//! ```no_run
//! # use zmtp_embassy::{kind, Options, Resources, Runner, SocketType};
//! type Res = Resources<'static, 1, 1024, 4096, 0, kind::Dealer>;
//! #[embassy_executor::task]
//! async fn zmq(runner: Runner<'static, 1, kind::Dealer>) -> ! {
//!     runner.run().await
//! }
//! // zmtp_embassy::new(stack, RES.take(), Options::new(SocketType::Dealer), ..)
//! // gives a Socket<'static, kind::Dealer>.
//! # fn main() {}
//! ```
//!
//! # Receiving into a buffer
//!
//! [`Socket::recv`] copies a message into the caller's buffer. One that does not fit is not
//! lost: the call fails with [`Error::BufferTooSmall`] (with the bytes it needs) or
//! [`Error::TooManyFrames`] and the message stays first in line, for a larger buffer,
//! [`Socket::recv_with`] (no copy) or [`Socket::discard`].
//!
//! # Cancel safety
//!
//! Every async fn of [`Socket`] (`wait_ready`, `send`, `recv`, `recv_with`) is cancel-safe:
//! a future dropped before it completes (in a `select` with a timer, say) has sent nothing
//! and taken nothing. [`Runner::run`] is not meant to be cancelled: dropping it stops every
//! connection. Dropping [`io::Driver::run_connection`] ends its connection's session (the
//! peer slot is freed; what it had read is lost with it).
//!
//! # Another transport
//!
//! [`new_io`] and [`io::Driver::run_connection`] run the same socket over any
//! `embedded_io_async::Read + Write` stream you open yourself (a serial link, a TLS stream).
//!
//! # Without embassy
//!
//! Feature `smoltcp` adds the module `zmtp_embassy::smoltcp`: the same sockets over
//! `smoltcp::socket::tcp::Socket`s in your `SocketSet`, driven by a `poll(now)` call from a
//! super loop or an RTIC task.
//!
//! # Memory
//!
//! Per peer: 2 × `BUF` TCP buffers (embassy-net only), 2 × `BUF` ZMTP buffers (frames larger
//! than `BUF` still arrive, streamed), and 2 × `QUEUE` message queues (the largest message a
//! peer can send us is a little under `QUEUE`). `BUF` must hold the handshake:
//! at least 256 bytes with NULL/PLAIN, 512 with CURVE.
//!
//! # Features
//!
//! - `embassy` (default): the async sockets over embassy-net.
//! - `smoltcp`: the poll-driven sockets over smoltcp.
//! - `medium-ethernet` (default), `medium-ip`: the link layer embassy-net / smoltcp is
//!   built for; at least one is needed (here or in your own embassy-net or smoltcp
//!   dependency). For PPP or TUN links: `default-features = false, features = ["embassy",
//!   "medium-ip"]`.
//! - `ipv6`: IPv6 endpoints (embassy-net / smoltcp `proto-ipv6`); IPv4 is always on.
//! - `defmt` / `log`: logging (exclusive).
//! - `plain`, `curve`: the PLAIN and CURVE security mechanisms (see [`Options`]; CURVE needs
//!   an RNG: `Runner::set_rng`).
//!
//! [embassy-net]: https://docs.rs/embassy-net
//! [smoltcp]: https://docs.rs/smoltcp
#![no_std]
#![forbid(unsafe_code)]
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod fmt;

mod engine;
#[cfg(feature = "embassy")]
pub mod io;
#[cfg(feature = "embassy")]
mod net;
#[cfg(feature = "smoltcp")]
pub mod smoltcp;

use core::time::Duration;

#[cfg(feature = "embassy")]
pub use net::{new, new_io, Resources, Runner, Socket};
pub use zmtp_core;
pub use zmtp_core::socket::{kind, Received, SocketConfig};
pub use zmtp_core::{AuthRequest, CloseReason, ConfigError, Security, SocketType};

/// Most frames a [`Message`] received into a caller buffer can have.
pub const MAX_FRAMES: usize = 16;

/// Where a socket's connections come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Endpoint {
    /// Connect to this address (`zmq_connect("tcp://...")`); one peer slot is reserved for
    /// it, and lost connections are re-established with exponential backoff. IPv6
    /// addresses need the feature `ipv6`.
    Connect(core::net::SocketAddr),
    /// Accept connections on this local port (`zmq_bind("tcp://*:port")`) into every peer
    /// slot not reserved by a `Connect`.
    Listen(u16),
}

impl Endpoint {
    /// `Connect` to an IPv4 or IPv6 address (`SocketAddrV4`, `SocketAddrV6`, `([u8; 4], u16)`,
    /// `(Ipv6Addr, u16)`, ...).
    pub fn connect(addr: impl Into<core::net::SocketAddr>) -> Self {
        Endpoint::Connect(addr.into())
    }
}

/// How a socket behaves: the core's [`SocketConfig`] (socket type, identity, security,
/// heartbeats, high-water marks) and the adapter's reconnect policy.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Options<'a> {
    /// The protocol options (see [`SocketConfig`] and [`zmtp_core::Config`]).
    pub socket: SocketConfig<'a>,
    /// First delay before reconnecting (libzmq `ZMQ_RECONNECT_IVL`, default 100 ms).
    pub reconnect_ivl: Duration,
    /// The delay doubles after each failed attempt up to this (`ZMQ_RECONNECT_IVL_MAX`,
    /// default 5 s). A completed handshake resets it.
    pub reconnect_ivl_max: Duration,
    /// Give up one TCP connection attempt after this long (default 5 s).
    pub connect_timeout: Duration,
    /// PLAIN or CURVE server: decides whether a client may in (its username/password or
    /// public key in the [`AuthRequest`]). `None`: every client is let in, as libzmq does
    /// without a ZAP handler.
    pub authenticate: Option<fn(&AuthRequest<'_>) -> bool>,
}

impl Options<'static> {
    /// Defaults for a socket of type `ty` (libzmq's defaults; heartbeats off).
    pub const fn new(ty: SocketType) -> Self {
        Options::from_config(SocketConfig::new(zmtp_core::Config::new(ty)))
    }
}

impl<'a> Options<'a> {
    /// Defaults around a full core configuration.
    pub const fn from_config(socket: SocketConfig<'a>) -> Self {
        Options {
            socket,
            reconnect_ivl: Duration::from_millis(100),
            reconnect_ivl_max: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            authenticate: None,
        }
    }

    /// The same with our identity (`ZMQ_ROUTING_ID`; REQ, DEALER, ROUTER send it).
    pub const fn with_identity<'b>(self, identity: &'b [u8]) -> Options<'b>
    where
        'a: 'b,
    {
        let this: Options<'b> = self;
        let mut socket = this.socket;
        socket.session = socket.session.with_identity(identity);
        Options { socket, ..this }
    }

    /// The same with a security mechanism (PLAIN or CURVE, with features `plain`/`curve`).
    pub const fn with_security<'b>(self, security: Security<'b>) -> Options<'b>
    where
        'a: 'b,
    {
        let this: Options<'b> = self;
        let mut socket = this.socket;
        socket.session = socket.session.with_security(security);
        Options { socket, ..this }
    }

    /// The same with heartbeats: PING every `interval`, close after `interval` of silence
    /// (libzmq `ZMQ_HEARTBEAT_IVL`, `ZMQ_HEARTBEAT_TIMEOUT`); the peer is asked to close
    /// after 3 × `interval` (`ZMQ_HEARTBEAT_TTL`).
    pub const fn with_heartbeat(mut self, interval: Duration) -> Self {
        self.socket.session.heartbeat_interval = Some(interval);
        self.socket.session.heartbeat_timeout = Some(interval);
        self.socket.session.heartbeat_ttl = Some(interval.saturating_mul(3));
        self
    }
}

/// What went wrong. Split by who must act: the caller's use of the socket, its
/// configuration, or a resource limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// `try_*` only: nothing can be done now (EAGAIN).
    WouldBlock,
    /// The socket type cannot do this now (EFSM): REQ sending twice, REP replying without a
    /// request, PUB receiving, SUB sending.
    NotAllowed,
    /// ROUTER with `router_mandatory`: no peer has this routing id.
    HostUnreachable,
    /// A message needs at least one frame (ROUTER: the routing id and one more).
    Empty,
    /// The message can never fit a peer's queue and transmit buffer.
    TooLarge,
    /// SUB: the subscription memory (`SUBS`) is full.
    SubscriptionsFull,
    /// The next message does not fit the caller's buffer: it needs `needed` bytes. It stays
    /// queued: receive it with a buffer that large, without copying (`recv_with`), or drop
    /// it (`discard`).
    BufferTooSmall {
        /// Bytes the message's frames take, back to back.
        needed: usize,
    },
    /// The next message has more than [`MAX_FRAMES`] frames, more than a [`Message`] can
    /// index. It stays queued: receive it without copying (`recv_with`) or drop it
    /// (`discard`).
    TooManyFrames {
        /// The message's frames.
        frames: usize,
    },
    /// The [`Options`]' socket type is not the one the resources' compile-time
    /// [`kind`] fixes.
    KindMismatch,
    /// The buffers cannot hold a session with this configuration.
    Config(ConfigError),
    /// No peer slot is free (internal: a link without a slot).
    NoFreeSlot,
    /// More `Connect` endpoints than peer slots, more than one `Listen`, or a `Listen` with no
    /// slot left for it.
    TooManyEndpoints,
    /// No endpoint given.
    NoEndpoint,
    /// An IPv6 endpoint, without the feature `ipv6`.
    Ipv6Disabled,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::WouldBlock => f.write_str("operation would block"),
            Error::NotAllowed => f.write_str("not allowed in the socket's current state"),
            Error::HostUnreachable => f.write_str("no peer with this routing id"),
            Error::Empty => f.write_str("message without frames"),
            Error::TooLarge => f.write_str("message larger than the peer queues"),
            Error::SubscriptionsFull => f.write_str("subscription memory full"),
            Error::BufferTooSmall { needed } => {
                write!(
                    f,
                    "message larger than the receive buffer (needs {needed} bytes)"
                )
            }
            Error::TooManyFrames { frames } => write!(
                f,
                "message with {frames} frames (at most {MAX_FRAMES} fit a Message)"
            ),
            Error::KindMismatch => f.write_str("socket type differs from the compile-time kind"),
            Error::Config(e) => write!(f, "configuration: {e}"),
            Error::NoFreeSlot => f.write_str("no free peer slot"),
            Error::TooManyEndpoints => f.write_str("more endpoints than peer slots"),
            Error::NoEndpoint => f.write_str("no endpoint"),
            Error::Ipv6Disabled => f.write_str("IPv6 endpoint without the `ipv6` feature"),
        }
    }
}

impl core::error::Error for Error {}

/// A message received into a caller buffer: its frames back to back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'b> {
    data: &'b [u8],
    ends: heapless::Vec<usize, MAX_FRAMES>,
}

impl<'b> Message<'b> {
    /// The frames, in order (ROUTER: the sender's routing id first).
    pub fn frames(&self) -> impl Iterator<Item = &'b [u8]> + '_ {
        let data = self.data;
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let f = data.get(start..end).unwrap_or(&[]);
            start = end;
            f
        })
    }

    /// Frame `i`.
    pub fn frame(&self, i: usize) -> Option<&'b [u8]> {
        self.frames().nth(i)
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no frames (never for a received message).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// All frames' bytes, back to back.
    pub fn bytes(&self) -> &'b [u8] {
        self.data
    }
}
