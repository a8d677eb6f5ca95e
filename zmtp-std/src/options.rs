//! Socket options and their defaults.

use std::time::Duration;

use zmtp_core::socket::{subscription_memory, DEFAULT_HWM};
use zmtp_core::SocketType;

/// Default [`SocketOptions::max_peers`].
pub const DEFAULT_MAX_PEERS: usize = 64;
/// Default [`SocketOptions::buffer_size`]: 64 KiB.
pub const DEFAULT_BUFFER_SIZE: usize = 64 * 1024;
/// Default [`SocketOptions::queue_size`]: 1 MiB + 64 KiB, so a 1 MiB message fits with room
/// for its frame records.
pub const DEFAULT_QUEUE_SIZE: usize = 1024 * 1024 + 64 * 1024;
/// Default [`SocketOptions::linger`]: 30 s.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(30);
/// Default [`SocketOptions::reconnect_interval`]: 100 ms, as libzmq.
pub const DEFAULT_RECONNECT_INTERVAL: Duration = Duration::from_millis(100);
/// Default [`SocketOptions::handshake_timeout`]: 30 s, as libzmq.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`SocketOptions::subscription_nodes`]: 16384 (at least 8191 topics of up to 11
/// bytes; 512 KiB for a PUB with 64 peer slots, 448 KiB for a SUB).
pub const DEFAULT_SUBSCRIPTION_NODES: usize = 16 * 1024;

/// The options of a socket, read with [`Socket::options`](crate::Socket::options) and set
/// with the socket's `set_*` methods.
///
/// Everything except [`linger`](Self::linger) is fixed once the socket first binds or
/// connects (the I/O thread then allocates the socket's memory and builds it); a setter
/// called later returns [`Error::InvalidOption`](crate::Error::InvalidOption).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketOptions {
    /// Our identity, sent to peers in READY (`ZMQ_ROUTING_ID`). 0-255 bytes, not starting
    /// with a zero byte. Default: empty (a ROUTER peer then makes one up).
    pub routing_id: Vec<u8>,
    /// Send high-water mark in messages (`ZMQ_SNDHWM`, default 1000; 0: no limit). See the
    /// crate docs, "High-water marks", for where messages wait.
    pub send_hwm: usize,
    /// Receive high-water mark in messages (`ZMQ_RCVHWM`, default 1000; 0: no limit).
    pub recv_hwm: usize,
    /// How long [`close`](crate::Socket::close) (or drop) keeps delivering queued messages
    /// (`ZMQ_LINGER`). `None`: until delivered. Default 30 s (libzmq: forever), so a program
    /// whose peer has gone does not hang at exit. Can be changed at any time.
    pub linger: Option<Duration>,
    /// Wait before reconnecting a lost or refused connection (`ZMQ_RECONNECT_IVL`, default
    /// 100 ms). `None`: never reconnect (libzmq's -1).
    pub reconnect_interval: Option<Duration>,
    /// Exponential backoff: each failed attempt in a row doubles the wait, up to this
    /// (`ZMQ_RECONNECT_IVL_MAX`). `None` (default, as libzmq's 0): no backoff.
    pub reconnect_interval_max: Option<Duration>,
    /// Close a connection whose ZMTP handshake has not finished in this time
    /// (`ZMQ_HANDSHAKE_IVL`, default 30 s). `None`: no limit.
    pub handshake_timeout: Option<Duration>,
    /// PUSH, DEALER, REQ, PAIR: queue messages only for connections whose handshake is
    /// done (`ZMQ_IMMEDIATE`, default off). With no such peer, `try_send` returns
    /// [`WouldBlock`](crate::Error::WouldBlock) and `send` waits for one, instead of
    /// queueing up to the high-water mark for peers still to come.
    pub immediate: bool,
    /// TCP keepalive on every TCP connection (`ZMQ_TCP_KEEPALIVE`): `Some(true)` on,
    /// `Some(false)` off, `None` (default, libzmq's -1) the system's default (usually off).
    /// The three settings below apply when it is on.
    pub tcp_keepalive: Option<bool>,
    /// Idle time before the first keepalive probe (`ZMQ_TCP_KEEPALIVE_IDLE`; `None`,
    /// default: the system's, often 2 hours). Whole seconds.
    pub tcp_keepalive_idle: Option<Duration>,
    /// Time between keepalive probes (`ZMQ_TCP_KEEPALIVE_INTVL`; `None`, default: the
    /// system's). Whole seconds.
    pub tcp_keepalive_interval: Option<Duration>,
    /// Unanswered probes before the connection is dropped (`ZMQ_TCP_KEEPALIVE_CNT`;
    /// `None`, default: the system's).
    pub tcp_keepalive_count: Option<u32>,
    /// Send a PING this often when the connection is up (`ZMQ_HEARTBEAT_IVL`). Default
    /// `None`: no heartbeats. We always answer the peer's PINGs.
    pub heartbeat_interval: Option<Duration>,
    /// Close the connection if nothing arrives this long after a PING
    /// (`ZMQ_HEARTBEAT_TIMEOUT`). `None` (default): the heartbeat interval.
    pub heartbeat_timeout: Option<Duration>,
    /// Ask the peer to close the connection if it hears nothing from us for this long
    /// (`ZMQ_HEARTBEAT_TTL`, sent in our PINGs). Default `None`.
    pub heartbeat_ttl: Option<Duration>,
    /// Largest message accepted from a peer, in bytes (`ZMQ_MAXMSGSIZE`); a peer sending a
    /// larger one is disconnected. `None` (default): limited only by
    /// [`queue_size`](Self::queue_size).
    pub max_message_size: Option<u64>,
    /// ROUTER: sending to an unknown routing id fails with
    /// [`Error::HostUnreachable`](crate::Error::HostUnreachable) instead of dropping the
    /// message (`ZMQ_ROUTER_MANDATORY`, default off).
    pub router_mandatory: bool,
    /// ROUTER: a peer connecting with a routing id already in use takes it over
    /// (`ZMQ_ROUTER_HANDOVER`, default off: the newcomer is refused).
    pub router_handover: bool,
    /// REQ: a new request may be sent before the reply came (`ZMQ_REQ_RELAXED`).
    pub req_relaxed: bool,
    /// REQ: requests carry an id and only the matching reply is taken (`ZMQ_REQ_CORRELATE`).
    pub req_correlate: bool,
    /// Most connections at once (default 64). One more is accepted and closed at once.
    pub max_peers: usize,
    /// Size of each connection's receive and transmit buffers (default 64 KiB each).
    ///
    /// With CURVE it also bounds each frame: CURVE seals a frame whole (RFC 26), so a frame
    /// can be at most [`zmtp_core::curve_max_frame_body`]`(buffer_size)` bytes (65 417 by
    /// default) to be sent ([`Error::MessageTooLarge`](crate::Error::MessageTooLarge)
    /// otherwise), and a peer that sends a frame larger than the buffer holds is
    /// disconnected. Raise it for larger CURVE frames. NULL and PLAIN frames of any size
    /// stream through.
    pub buffer_size: usize,
    /// Size of each connection's two message queues, received and to send (default
    /// 1 MiB + 64 KiB each). A message, plus 5 bytes per frame, must fit in one: this is
    /// the largest message the socket can send or receive.
    pub queue_size: usize,
    /// PUB, XPUB, SUB, XSUB: room for subscriptions, in nodes of the subscription tree
    /// (default [`DEFAULT_SUBSCRIPTION_NODES`]). A topic of `n` bytes takes at most
    /// `1 + ceil(n / 11)` nodes, fewer when it shares a prefix with another topic; a
    /// publisher stores each distinct topic once, whatever the number of subscribers. A
    /// node takes 24 bytes plus 4 (SUB, XSUB) or `ceil(max_peers / 8)` (PUB, XPUB); see
    /// [`subscription_memory`](Self::subscription_memory). When it is full a SUB's
    /// [`subscribe`](crate::Socket::subscribe) fails and a PUB ignores new topics (logged).
    pub subscription_nodes: usize,
    /// XPUB: every subscription reaches the application through `recv`, not only a topic's
    /// first (`ZMQ_XPUB_VERBOSE`, default off).
    pub xpub_verbose: bool,
    /// XPUB: every unsubscription too, not only the one that leaves a topic without
    /// subscribers (`ZMQ_XPUB_VERBOSER`, default off; implies `xpub_verbose`).
    pub xpub_verboser: bool,
    /// PLAIN and CURVE (`ZMQ_CURVE_*`, `ZMQ_PLAIN_*`, `ZMQ_ZAP_DOMAIN`), set with the
    /// socket's `set_curve_*`, `set_plain_*` and `set_zap_domain`. Default: NULL.
    pub security: crate::security::SecurityOptions,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            routing_id: Vec::new(),
            send_hwm: DEFAULT_HWM,
            recv_hwm: DEFAULT_HWM,
            linger: Some(DEFAULT_LINGER),
            reconnect_interval: Some(DEFAULT_RECONNECT_INTERVAL),
            reconnect_interval_max: None,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
            immediate: false,
            tcp_keepalive: None,
            tcp_keepalive_idle: None,
            tcp_keepalive_interval: None,
            tcp_keepalive_count: None,
            heartbeat_interval: None,
            heartbeat_timeout: None,
            heartbeat_ttl: None,
            max_message_size: None,
            router_mandatory: false,
            router_handover: false,
            req_relaxed: false,
            req_correlate: false,
            max_peers: DEFAULT_MAX_PEERS,
            buffer_size: DEFAULT_BUFFER_SIZE,
            queue_size: DEFAULT_QUEUE_SIZE,
            subscription_nodes: DEFAULT_SUBSCRIPTION_NODES,
            xpub_verbose: false,
            xpub_verboser: false,
            security: Default::default(),
        }
    }
}

impl SocketOptions {
    /// Memory one connection takes: two buffers and two queues (about 2.3 MiB with the
    /// defaults), allocated when the connection arrives and kept for the next one or freed
    /// when it goes.
    pub fn memory_per_peer(&self) -> usize {
        self.buffer_size
            .saturating_mul(2)
            .saturating_add(self.queue_size.saturating_mul(2))
    }

    /// Bytes of subscription memory a socket of type `ty` allocates when it first binds or
    /// connects: the subscription tree ([`subscription_nodes`](Self::subscription_nodes)),
    /// plus for an XPUB a notification queue of [`queue_size`](Self::queue_size) bytes.
    /// 0 for types without subscriptions.
    pub fn subscription_memory(&self, ty: SocketType) -> usize {
        match ty {
            SocketType::Pub | SocketType::Sub | SocketType::XSub => {
                subscription_memory(ty, self.max_peers, self.subscription_nodes)
            }
            SocketType::XPub => subscription_memory(ty, self.max_peers, self.subscription_nodes)
                .saturating_add(self.queue_size),
            _ => 0,
        }
    }
}
