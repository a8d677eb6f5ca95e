//! A ZeroMQ socket: one routing pattern over many sessions, allocation-free.
//!
//! A [`Socket`] drives up to N peers held in caller-provided [`PeerSlot`]s (each with its
//! session buffers and its two message queues), addressed by [`PeerHandle`]s. It has the
//! session's sans-IO shape: feed each peer's input ([`Socket::recv_window`],
//! [`Socket::commit_received`]), drain each peer's output ([`Socket::poll_transmit`],
//! [`Socket::mark_transmitted`]), drain application events ([`Socket::poll_event`]), pass
//! time in ([`Socket::handle_timeout`], [`Socket::poll_timeout`]), and send and receive whole
//! messages ([`Socket::send`], [`Socket::recv`]).
//!
//! **Memory**: a slot either keeps its memory for good ([`PeerSlot::new`]: a `static` array
//! on a microcontroller) or holds it only while a peer is in it ([`PeerSlot::empty`]): the
//! memory comes with [`Socket::add_peer_with`] and goes back from [`Socket::remove_peer`],
//! so it can be allocated per connection, or shared between sockets from a pool.
//!
//! **Messages are atomic**: a multipart message is queued whole or not at all, delivered whole
//! or not at all, and a peer that vanishes mid-message leaves nothing of it behind.
//!
//! Behaviour follows RFC 28 (REQ, REP, DEALER, ROUTER), RFC 29 (PUB, SUB, XPUB, XSUB; see
//! [`Socket::with_subscriptions`] and the `pubsub` notes there), RFC 30 (PUSH, PULL) and RFC 31
//! (PAIR), with libzmq's choices where the RFCs leave room (`docs/PROTOCOL.md`).
//!
//! **Receive back-pressure**: a peer's input is taken only while its receive queue has room
//! for the largest frame its session can deliver whole (its receive buffer), and for the whole
//! of a larger (streamed) frame before its first chunk; otherwise the bytes wait in the
//! session and [`Socket::recv_window`] shrinks, until the application receives. Only a
//! message the queue could not hold even empty closes the connection
//! ([`ProtocolError::MessageTooLarge`](crate::ProtocolError::MessageTooLarge)).
//!
//! **Taking messages without the queue** (desktop only, not on `target_os = "none"`): a
//! driver that copies every message out anyway can turn on `Socket::set_take_messages` (PULL,
//! DEALER, PAIR, SUB, XSUB): whole one-frame messages then stay in the session's receive
//! buffer and `Socket::take_messages` hands them over from there, one copy and no queue
//! bookkeeping per message; the others still come from [`Socket::recv`].

pub mod kind;
mod pubsub;
mod queue;
pub mod stream;
pub mod trie;

use kind::Kind;
use pubsub::PubSub;
pub use pubsub::{subscription_memory, SubscriptionMemory, SubscriptionStats};
use queue::MsgQueue;
pub use queue::{stored_len, Frames, Message, Parts};
pub use stream::{Part, Transmit};

use crate::error::CloseReason;
use crate::session::{Buffers, Config, Event, Role, Session, View};
use crate::time::Instant;
use crate::wire::SocketType;
use crate::AuthRequest;

/// Default high-water mark, in messages, of each peer's queues (libzmq's `ZMQ_SNDHWM` and
/// `ZMQ_RCVHWM`).
pub const DEFAULT_HWM: usize = 1000;

/// The memory of one peer: the session's two buffers and the two message queues.
#[derive(Debug)]
pub struct PeerMemory<'b> {
    /// Session receive buffer (frames larger than this stream in chunks).
    pub rx: &'b mut [u8],
    /// Session transmit buffer.
    pub tx: &'b mut [u8],
    /// Messages received from the peer, waiting for the application. Must be larger than
    /// `rx`; a message larger than it closes the connection.
    pub recv_queue: &'b mut [u8],
    /// Messages for the peer not yet in `tx` (may be empty: then `tx` is the only queue).
    pub send_queue: &'b mut [u8],
}

// Slots are caller memory laid out in place: no boxing, whatever the variant sizes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Conn<'b> {
    Idle(Buffers<'b>),
    Live(Session<'b>),
    /// Only while moving between the two.
    Moving,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PeerState {
    Free,
    /// Session up, handshake not done.
    Handshaking,
    /// Handshake done: messages flow.
    Active,
    /// Session over; queued messages still readable.
    Closed,
}

/// Room for one peer, in caller memory (a `static` array on a microcontroller).
#[derive(Debug)]
pub struct PeerSlot<'b> {
    conn: Conn<'b>,
    recv: MsgQueue<'b>,
    send: MsgQueue<'b>,
    state: PeerState,
    generation: u16,
    /// The peer's routing id (ROUTER), given or generated.
    routing_id: heapless::Vec<u8, 255>,
    peer_type: Option<SocketType>,
    /// Events for the application, not yet polled.
    report_ready: bool,
    report_closed: Option<CloseReason>,
    report_auth: bool,
    /// How far the front message of `send` has gone into the session: (frame, body offset).
    progress: Option<(usize, usize)>,
    /// Size of the session's receive buffer (the largest frame delivered whole).
    rx_len: usize,
    /// Input left in the session for lack of queue room: take it when room is made.
    stalled: bool,
    /// SUB, XSUB: resend of our subscriptions in progress, from this trie node index on.
    resync: Option<u32>,
    /// The memory comes with each peer ([`Socket::add_peer_with`]) and goes back with it
    /// ([`Socket::remove_peer`]); a free slot holds none.
    lends: bool,
}

impl<'b> PeerSlot<'b> {
    /// A free slot with its memory.
    pub fn new(mem: PeerMemory<'b>) -> Self {
        let rx_len = mem.rx.len();
        PeerSlot {
            conn: Conn::Idle(Buffers {
                rx: mem.rx,
                tx: mem.tx,
            }),
            recv: MsgQueue::new(mem.recv_queue),
            send: MsgQueue::new(mem.send_queue),
            state: PeerState::Free,
            generation: 0,
            routing_id: heapless::Vec::new(),
            peer_type: None,
            report_ready: false,
            report_closed: None,
            report_auth: false,
            progress: None,
            rx_len,
            stalled: false,
            resync: None,
            lends: false,
        }
    }

    /// A free slot without memory: each peer brings its own ([`Socket::add_peer_with`]),
    /// handed back when the peer is removed ([`Socket::remove_peer`]). For memory allocated
    /// per connection, or shared between sockets from a pool.
    pub fn empty() -> Self {
        let mut slot = PeerSlot::new(PeerMemory {
            rx: &mut [],
            tx: &mut [],
            recv_queue: &mut [],
            send_queue: &mut [],
        });
        slot.lends = true;
        slot
    }

    /// Whether the slot holds memory now (a slot from [`new`](Self::new), or an
    /// [`empty`](Self::empty) one with a peer in it).
    pub(crate) fn has_memory(&self) -> bool {
        !self.lends || self.state != PeerState::Free
    }

    /// Puts a peer's memory in (an empty slot).
    fn install(&mut self, mem: PeerMemory<'b>) {
        self.rx_len = mem.rx.len();
        self.conn = Conn::Idle(Buffers {
            rx: mem.rx,
            tx: mem.tx,
        });
        self.recv = MsgQueue::new(mem.recv_queue);
        self.send = MsgQueue::new(mem.send_queue);
    }

    /// Takes the memory out (the slot is idle). The receive and transmit buffers are empty
    /// if a session kept them (it never does: `Session::new` fails only on what is checked
    /// before it is called).
    fn take_memory(&mut self) -> PeerMemory<'b> {
        let (rx, tx) = match &mut self.conn {
            Conn::Idle(b) => (core::mem::take(&mut b.rx), core::mem::take(&mut b.tx)),
            // Callers end the session first (`remove_peer`), or never started one.
            Conn::Live(_) | Conn::Moving => (&mut [][..], &mut [][..]),
        };
        if !matches!(self.conn, Conn::Idle(_)) {
            self.conn = Conn::Idle(Buffers {
                rx: &mut [],
                tx: &mut [],
            });
        }
        self.rx_len = 0;
        PeerMemory {
            rx,
            tx,
            recv_queue: self.recv.take_buf(),
            send_queue: self.send.take_buf(),
        }
    }

    /// Empties the queues and forgets everything about the last peer (not the generation).
    #[cfg_attr(target_os = "none", inline(never))]
    fn reset(&mut self, state: PeerState) {
        self.recv.clear();
        self.send.clear();
        self.state = state;
        self.routing_id.clear();
        self.peer_type = None;
        self.report_ready = false;
        self.report_closed = None;
        self.report_auth = false;
        self.progress = None;
        self.stalled = false;
        self.resync = None;
    }

    #[cfg_attr(target_os = "none", inline(never))]
    fn session(&mut self) -> Option<&mut Session<'b>> {
        match &mut self.conn {
            Conn::Live(s) => Some(s),
            _ => None,
        }
    }

    fn session_ref(&self) -> Option<&Session<'b>> {
        match &self.conn {
            Conn::Live(s) => Some(s),
            _ => None,
        }
    }

    fn is_active(&self) -> bool {
        self.state == PeerState::Active
    }
}

/// A peer of a socket: a slot index and the slot's generation (a handle to a peer that has
/// gone is never mistaken for the slot's next peer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PeerHandle {
    index: u16,
    generation: u16,
}

impl PeerHandle {
    /// The slot index.
    pub fn index(&self) -> usize {
        usize::from(self.index)
    }
}

/// Options of a socket, like libzmq's socket options.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct SocketConfig<'a> {
    /// Everything each session gets (socket type, identity, security, limits, heartbeats).
    pub session: Config<'a>,
    /// Send high-water mark, in messages per peer (`ZMQ_SNDHWM`). 0: no count limit.
    pub send_hwm: usize,
    /// Receive high-water mark, in messages per peer (`ZMQ_RCVHWM`). 0: no count limit.
    pub recv_hwm: usize,
    /// ROUTER: sending to an unknown routing id is an error, not a silent drop
    /// (`ZMQ_ROUTER_MANDATORY`).
    pub router_mandatory: bool,
    /// ROUTER: a newcomer with a routing id already in use takes it over and the old
    /// connection is closed (`ZMQ_ROUTER_HANDOVER`). Otherwise the newcomer is refused.
    pub router_handover: bool,
    /// ROUTER: first of the generated routing ids (`00` + 4-byte big-endian counter).
    /// libzmq starts at a random value; the core has no RNG, so the caller chooses.
    pub router_first_id: u32,
    /// REQ: a new request may be sent before the reply came (`ZMQ_REQ_RELAXED`).
    pub req_relaxed: bool,
    /// REQ: requests carry a request id and only the matching reply is taken
    /// (`ZMQ_REQ_CORRELATE`).
    pub req_correlate: bool,
    /// REQ: first request id (libzmq starts at a random value).
    pub req_first_id: u32,
    /// XPUB: show every subscription to the application, duplicates included
    /// (`ZMQ_XPUB_VERBOSE`). Otherwise only a topic's first subscriber is shown.
    pub xpub_verbose: bool,
    /// XPUB: show every cancel too, not only the one that leaves a topic without
    /// subscribers (`ZMQ_XPUB_VERBOSER`; implies `xpub_verbose`).
    pub xpub_verboser: bool,
    /// PULL, DEALER, ROUTER, PAIR (not CURVE): received data frames of at least this many
    /// bytes are direct frames, whose bodies the driver reads into its own memory
    /// ([`stream`]). The message size limit is then the session's `max_message_size`
    /// alone (direct bodies do not take queue room), so set one. `None` (default): off.
    pub direct_threshold: Option<u64>,
}

impl<'a> SocketConfig<'a> {
    /// Defaults for a socket configured as `session`.
    pub const fn new(session: Config<'a>) -> Self {
        SocketConfig {
            session,
            send_hwm: DEFAULT_HWM,
            recv_hwm: DEFAULT_HWM,
            router_mandatory: false,
            router_handover: false,
            router_first_id: 1,
            req_relaxed: false,
            req_correlate: false,
            req_first_id: 1,
            xpub_verbose: false,
            xpub_verboser: false,
            direct_threshold: None,
        }
    }
}

/// Something the application should know about a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SocketEvent {
    /// The peer's handshake is done: messages flow.
    PeerReady(PeerHandle),
    /// A client asks to be let in (PLAIN server): read it with [`Socket::pending_auth`],
    /// answer with [`Socket::accept_peer`] or [`Socket::reject_peer`].
    Authenticate(PeerHandle),
    /// The peer's session ended. Write out what [`Socket::poll_transmit`] still has for it,
    /// close its transport, then [`Socket::remove_peer`].
    PeerClosed(PeerHandle, CloseReason),
}

/// Why a peer could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AddPeerError {
    /// Every slot is in use.
    NoFreeSlot,
    /// The slot's memory cannot hold a session (see [`crate::ConfigError`]).
    Config(crate::ConfigError),
}

/// Why a message was not sent. Nothing was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SocketSendError {
    /// No peer can take the message now (EAGAIN): none is ready, or every one is at its
    /// high-water mark. Retry after output has drained or a peer has connected.
    WouldBlock,
    /// ROUTER with `router_mandatory`: no peer has this routing id (EHOSTUNREACH).
    HostUnreachable,
    /// This socket type cannot send now (EFSM): a REQ awaiting its reply, a REP without a
    /// request, or a type that never sends (PULL, SUB).
    NotAllowed,
    /// A message needs at least one frame (ROUTER: the routing id and one more).
    Empty,
    /// The message is larger than the peer's queues could ever hold (SUB, XSUB: a topic
    /// larger than a peer slot's send queue).
    TooLarge,
    /// SUB, XSUB: the subscription memory has no room for another topic. Nothing changed.
    SubscriptionsFull,
}

/// Why no message was received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SocketRecvError {
    /// Nothing to receive now (EAGAIN).
    WouldBlock,
    /// This socket type cannot receive now (EFSM): a REQ that has not sent, a REP that has
    /// not replied, or a type that never receives (PUSH, PUB).
    NotAllowed,
}

/// A received message. Borrowed from the peer's queue until the next call on the socket.
#[derive(Clone, Debug)]
pub struct Received<'a> {
    /// Who sent it.
    pub peer: PeerHandle,
    /// ROUTER: the peer's routing id, delivered as the first frame.
    routing_id: Option<&'a [u8]>,
    message: Message<'a>,
    /// Frames of the stored message not shown (REQ/REP envelope).
    skip: usize,
}

impl<'a> Received<'a> {
    /// The frames as the application sees them (ROUTER: routing id first; REQ/REP: without
    /// the envelope).
    pub fn frames(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.routing_id
            .into_iter()
            .chain(self.message.frames().skip(self.skip))
    }

    /// The frames as [`frames`](Self::frames) shows them, direct frames (bodies the driver
    /// holds, see [`stream`]) told apart: a driver using them reads messages this way.
    pub fn parts(&self) -> impl Iterator<Item = Part<'a>> + 'a {
        self.routing_id
            .map(Part::Bytes)
            .into_iter()
            .chain(self.message.parts().skip(self.skip))
    }

    /// Number of frames [`frames`](Self::frames) yields.
    pub fn len(&self) -> usize {
        self.frames().count()
    }

    /// Whether there are no frames (never for a delivered message).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// REQ/REP state (RFC 28).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReqRep {
    /// REQ: may send. REP: may receive.
    Idle,
    /// REQ: request sent to this peer (with this id when correlating); may receive.
    AwaitingReply { peer: PeerHandle, id: u32 },
    /// REP: request from this peer being served; its envelope is the first `envelope`
    /// frames of the front message of the peer's queue.
    Serving { peer: PeerHandle, envelope: usize },
}

/// One ZeroMQ socket over the peers in caller-provided slots.
///
/// `K` says how it knows its type: [`kind::Any`] (the default, [`Socket::new`]) from its
/// configuration at run time, or a marker such as [`kind::Dealer`] ([`Socket::typed`]) at
/// compile time, which leaves the other patterns' code out of the binary.
#[derive(Debug)]
pub struct Socket<'s, 'b, K: Kind = kind::Any> {
    kind: K,
    cfg: SocketConfig<'b>,
    slots: &'s mut [PeerSlot<'b>],
    /// Round-robin cursor for sending (libzmq `lb`).
    lb: usize,
    /// Fair-queue cursor for receiving (libzmq `fq`).
    fq: usize,
    /// Every slot from this index on is free: the per-message scans (round robin, fair
    /// queueing, timers, events) stop here instead of walking every slot. A socket with
    /// one peer and 64 slots otherwise spent most of each send and receive skipping 63
    /// free slots.
    span: usize,
    reqrep: ReqRep,
    next_routing_id: u32,
    next_request_id: u32,
    /// PUB, XPUB, SUB, XSUB: subscriptions and XPUB notifications.
    ps: PubSub<'s>,
    /// Whole one-frame messages stay in the sessions for `take_messages`.
    #[cfg(not(target_os = "none"))]
    take_mode: bool,
    /// Where `take_messages` starts.
    #[cfg(not(target_os = "none"))]
    take_cursor: usize,
}

impl<'s, 'b> Socket<'s, 'b> {
    /// A socket over `slots` (their number is the most peers it can have at once). PUB, XPUB,
    /// SUB and XSUB need memory for subscriptions: use
    /// [`with_subscriptions`](Self::with_subscriptions).
    pub fn new(cfg: SocketConfig<'b>, slots: &'s mut [PeerSlot<'b>]) -> Self {
        let n = slots.len();
        Self::build(
            cfg,
            slots,
            PubSub::new(&cfg, n, SubscriptionMemory::new(&mut [])),
        )
    }
}

impl<'s, 'b, K: Kind> Socket<'s, 'b, K> {
    /// A socket of type `kind` fixed at compile time (see [`kind`]): like [`Socket::new`],
    /// without the code of the other socket types. `cfg.session.socket_type` is set to
    /// `kind`'s type. PUB, XPUB, SUB and XSUB: see
    /// [`typed_with_subscriptions`](Self::typed_with_subscriptions).
    pub fn typed(kind: K, cfg: SocketConfig<'b>, slots: &'s mut [PeerSlot<'b>]) -> Self {
        Self::typed_with_subscriptions(kind, cfg, slots, SubscriptionMemory::new(&mut []))
    }

    /// [`Socket::with_subscriptions`] for a socket of type `kind` fixed at compile time.
    pub fn typed_with_subscriptions(
        kind: K,
        mut cfg: SocketConfig<'b>,
        slots: &'s mut [PeerSlot<'b>],
        memory: SubscriptionMemory<'s>,
    ) -> Self {
        if let Some(ty) = K::TYPE {
            cfg.session.socket_type = ty;
        }
        let n = slots.len();
        let mut s = Self::build(cfg, slots, PubSub::new(&cfg, n, memory));
        s.kind = kind;
        s
    }

    fn build(cfg: SocketConfig<'b>, slots: &'s mut [PeerSlot<'b>], ps: PubSub<'s>) -> Self {
        Socket {
            kind: K::default(),
            cfg,
            slots,
            lb: 0,
            fq: 0,
            span: 0,
            reqrep: ReqRep::Idle,
            next_routing_id: cfg.router_first_id,
            next_request_id: cfg.req_first_id,
            ps,
            #[cfg(not(target_os = "none"))]
            take_mode: false,
            #[cfg(not(target_os = "none"))]
            take_cursor: 0,
        }
    }

    /// The socket type.
    pub fn socket_type(&self) -> SocketType {
        self.cfg.session.socket_type
    }

    /// The socket type: a constant when `K` fixes it, so other patterns' branches fold away.
    #[inline(always)]
    fn ty(&self) -> SocketType {
        match K::TYPE {
            Some(ty) => ty,
            None => self.cfg.session.socket_type,
        }
    }

    // ------------------------------------------------------------ peers

    /// Starts a session with a new peer whose transport is up (we connected, or we
    /// accepted). Our greeting is queued at once: drain [`poll_transmit`](Self::poll_transmit).
    pub fn add_peer(&mut self, role: Role, now: Instant) -> Result<PeerHandle, AddPeerError> {
        self.add_peer_inner(role, now, Randomness::None, None)
            .map_err(|(e, _)| e)
    }

    /// [`add_peer`](Self::add_peer) into an [`empty`](PeerSlot::empty) slot, with the peer's
    /// memory: [`remove_peer`](Self::remove_peer) hands it back. If the peer cannot be added
    /// (no free empty slot, or memory a session cannot use) the memory comes back with the
    /// error.
    pub fn add_peer_with(
        &mut self,
        memory: PeerMemory<'b>,
        role: Role,
        now: Instant,
    ) -> Result<PeerHandle, (AddPeerError, PeerMemory<'b>)> {
        self.add_peer_inner(role, now, Randomness::None, Some(memory))
            .map_err(|(e, m)| (e, m.unwrap_or_else(no_memory)))
    }

    /// [`add_peer`](Self::add_peer) for a CURVE socket: each connection needs fresh
    /// randomness from the caller's CSPRNG (the core has none).
    #[cfg(feature = "curve")]
    pub fn add_peer_curve(
        &mut self,
        role: Role,
        now: Instant,
        random: crate::mechanism::curve::CurveRandom,
    ) -> Result<PeerHandle, AddPeerError> {
        self.add_peer_inner(role, now, Randomness::Curve(random), None)
            .map_err(|(e, _)| e)
    }

    /// [`add_peer_with`](Self::add_peer_with) for a CURVE socket (see
    /// [`add_peer_curve`](Self::add_peer_curve)).
    #[cfg(feature = "curve")]
    pub fn add_peer_curve_with(
        &mut self,
        memory: PeerMemory<'b>,
        role: Role,
        now: Instant,
        random: crate::mechanism::curve::CurveRandom,
    ) -> Result<PeerHandle, (AddPeerError, PeerMemory<'b>)> {
        self.add_peer_inner(role, now, Randomness::Curve(random), Some(memory))
            .map_err(|(e, m)| (e, m.unwrap_or_else(no_memory)))
    }

    fn add_peer_inner(
        &mut self,
        role: Role,
        now: Instant,
        random: Randomness,
        memory: Option<PeerMemory<'b>>,
    ) -> Result<PeerHandle, (AddPeerError, Option<PeerMemory<'b>>)> {
        let direct = self.direct_recv_threshold();
        let ty = self.ty();
        let lends = memory.is_some();
        let Some(index) = self
            .slots
            .iter()
            .position(|s| s.state == PeerState::Free && s.lends == lends)
        else {
            return Err((AddPeerError::NoFreeSlot, memory));
        };
        let Some(slot) = self.slots.get_mut(index) else {
            return Err((AddPeerError::NoFreeSlot, memory));
        };
        if let Some(mem) = memory {
            slot.install(mem);
        }
        // Gives the memory back if the peer is refused.
        let refuse = |slot: &mut PeerSlot<'b>, e: AddPeerError| {
            let mem = slot.lends.then(|| slot.take_memory());
            Err((e, mem))
        };
        let max_msg = slot.recv.capacity();
        let mut session_cfg = self.cfg.session;
        // The same type, a constant where `K` fixes it (its name's length folds).
        session_cfg.socket_type = ty;
        // A message the receive queue can never hold would wedge the peer: refuse it before
        // its body is read. (Per-frame record overhead is checked when queuing.) Direct
        // frames take no queue room: then the configured limit alone applies.
        let limit = max_msg as u64;
        if direct.is_none() {
            session_cfg.max_message_size =
                Some(session_cfg.max_message_size.map_or(limit, |m| m.min(limit)));
        }
        let Conn::Idle(buffers) = core::mem::replace(&mut slot.conn, Conn::Moving) else {
            return refuse(slot, AddPeerError::NoFreeSlot);
        };
        // Session::new consumes the buffers: check first what it checks, so a refused
        // configuration leaves the slot usable.
        let checked = session_cfg.check_buffers(buffers.rx.len(), buffers.tx.len());
        #[cfg(feature = "curve")]
        let checked = checked.and_then(|()| {
            if session_cfg.security.is_curve() && !matches!(random, Randomness::Curve(_)) {
                Err(crate::ConfigError::MissingRandomness)
            } else {
                Ok(())
            }
        });
        if let Err(e) = checked {
            slot.conn = Conn::Idle(buffers);
            return refuse(slot, AddPeerError::Config(e));
        }
        let session = match random {
            #[cfg(feature = "curve")]
            Randomness::Curve(r) => Session::new_curve(&session_cfg, role, buffers, now, r),
            Randomness::None => Session::new(&session_cfg, role, buffers, now),
        };
        match session {
            Ok(mut s) => {
                s.set_direct_threshold(direct);
                slot.conn = Conn::Live(s);
            }
            Err(e) => return refuse(slot, AddPeerError::Config(e)),
        }
        slot.reset(PeerState::Handshaking);
        slot.generation = slot.generation.wrapping_add(1);
        let generation = slot.generation;
        self.span = self.span.max(index.wrapping_add(1));
        Ok(PeerHandle {
            index: index as u16,
            generation,
        })
    }

    /// Slot indices `start..span` then `0..start` (a round that begins at a cursor).
    fn round_from(&self, cursor: usize) -> impl Iterator<Item = usize> {
        let n = self.span;
        let start = if cursor < n { cursor } else { 0 };
        (start..n).chain(0..start)
    }

    fn slot(&self, h: PeerHandle) -> Option<&PeerSlot<'b>> {
        live_slot(self.slots, h)
    }

    fn slot_mut(&mut self, h: PeerHandle) -> Option<&mut PeerSlot<'b>> {
        live_slot_mut(self.slots, h)
    }

    fn handle_of(&self, index: usize) -> Option<PeerHandle> {
        let s = self
            .slots
            .get(index)
            .filter(|s| s.state != PeerState::Free)?;
        Some(PeerHandle {
            index: index as u16,
            generation: s.generation,
        })
    }

    /// Frees a peer's slot (after its transport is closed). Messages it sent that were not
    /// received yet are dropped; a partial message never existed for the application.
    ///
    /// The peer's memory comes back if it came with the peer
    /// ([`add_peer_with`](Self::add_peer_with)); `None` for a slot that keeps its memory
    /// ([`PeerSlot::new`]) and for a handle to a peer already removed.
    pub fn remove_peer(&mut self, h: PeerHandle) -> Option<PeerMemory<'b>> {
        if let ReqRep::Serving { peer, .. } | ReqRep::AwaitingReply { peer, .. } = self.reqrep {
            if peer == h {
                self.reqrep = ReqRep::Idle;
            }
        }
        self.slot(h)?;
        self.forget_subscriptions(h);
        let slot = self.slot_mut(h)?;
        let conn = core::mem::replace(&mut slot.conn, Conn::Moving);
        slot.conn = match conn {
            Conn::Live(s) => Conn::Idle(s.into_buffers()),
            other => other,
        };
        slot.reset(PeerState::Free);
        let memory = slot.lends.then(|| slot.take_memory());
        while self.span > 0
            && self
                .slots
                .get(self.span - 1)
                .is_none_or(|s| s.state == PeerState::Free)
        {
            self.span -= 1;
        }
        memory
    }

    /// Closes a peer from our side (its queued output is still sent).
    ///
    /// SUB, XSUB: no CANCEL is sent for our subscriptions first (RFC 29's SHOULD for XSUB),
    /// as libzmq does not: the publisher drops a connection's subscriptions when it ends
    /// (PROTOCOL.md, "Subscriptions").
    pub fn close_peer(&mut self, h: PeerHandle) {
        if let Some(s) = self.slot_mut(h).and_then(PeerSlot::session) {
            s.close();
        }
        self.pump_in(h);
    }

    /// The peer's socket type, once its handshake is done.
    pub fn peer_type(&self, h: PeerHandle) -> Option<SocketType> {
        self.slot(h).and_then(|s| s.peer_type)
    }

    /// The peer's routing id (ROUTER: received or generated).
    pub fn peer_routing_id(&self, h: PeerHandle) -> Option<&[u8]> {
        self.slot(h).map(|s| s.routing_id.as_slice())
    }

    /// The reason of the ERROR command the peer closed with (RFC 37 §"The ERROR Command"),
    /// for example the ZAP status code (`400`) of a server that turned us away
    /// ([`CloseReason::AuthFailed`]) or [`CloseReason::PeerError`]. Readable from the
    /// [`SocketEvent::PeerClosed`] until [`remove_peer`](Self::remove_peer); it stays in the
    /// slot's receive buffer, so no memory is set aside for it.
    pub fn peer_error_reason(&self, h: PeerHandle) -> Option<&[u8]> {
        self.slot(h)?.session_ref()?.peer_error_reason()
    }

    /// Whether the peer's transport can be closed: its session is over and its output sent.
    pub fn is_finished(&self, h: PeerHandle) -> bool {
        self.slot(h)
            .is_none_or(|s| s.session_ref().is_none_or(Session::is_finished))
    }

    /// Handles of the peers in use.
    pub fn peers(&self) -> Peers<'_, 'b> {
        Peers {
            slots: self.slots.iter().enumerate(),
        }
    }

    // ------------------------------------------------------------ authentication

    /// The credentials a peer presented (after [`SocketEvent::Authenticate`]).
    pub fn pending_auth(&self, h: PeerHandle) -> Option<AuthRequest<'_>> {
        self.slot(h)?.session_ref()?.pending_auth()
    }

    /// Lets the peer in.
    pub fn accept_peer(&mut self, h: PeerHandle) {
        if let Some(s) = self.slot_mut(h).and_then(PeerSlot::session) {
            s.accept_peer();
        }
        self.pump_in(h);
    }

    /// Turns the peer away with ERROR carrying `status` (a ZAP status code such as `400`).
    pub fn reject_peer(&mut self, h: PeerHandle, status: &'static [u8]) {
        if let Some(s) = self.slot_mut(h).and_then(PeerSlot::session) {
            s.reject_peer(status);
        }
        self.pump_in(h);
    }

    // ------------------------------------------------------------ input

    /// Where to read the peer's next bytes (see [`Session::recv_window`]). Empty when the
    /// peer is gone, or while its receive queue is full (back-pressure: read later).
    pub fn recv_window(&mut self, h: PeerHandle) -> &mut [u8] {
        if self.slot(h).is_some_and(|s| s.stalled) {
            self.pump_in(h);
        }
        match self.slot_mut(h).and_then(PeerSlot::session) {
            Some(s) => s.recv_window(),
            None => &mut [],
        }
    }

    /// Records `n` bytes read into the window and processes them.
    pub fn commit_received(
        &mut self,
        h: PeerHandle,
        n: usize,
        now: Instant,
    ) -> Result<(), crate::UsageError> {
        if let Some(s) = self.slot_mut(h).and_then(PeerSlot::session) {
            s.commit_received(n, now)?;
        }
        self.pump_in(h);
        Ok(())
    }

    /// Desktop fast path for a driver that copies every received message out at once anyway
    /// (one copy less per message, and none of the queue's bookkeeping): with `on`, whole
    /// messages of one data frame stay in their session's receive buffer instead of being
    /// queued, and only [`take_messages`](Self::take_messages) gives them; [`recv`](Self::recv)
    /// gives the others (multipart messages, frames that come in pieces), and the driver
    /// calls both. Whether a message is held or queued, every peer's messages come in the
    /// order they were sent, with the same checks and limits (a held message takes room in
    /// the receive buffer: reading stops when it is full, as when the queue is full).
    ///
    /// Only PULL, DEALER, PAIR, SUB and XSUB, whose `recv` gives each message as it came
    /// (SUB's subscriptions filter in both); returns whether the mode is on. Not on bare
    /// metal (flash).
    #[cfg(not(target_os = "none"))]
    pub fn set_take_messages(&mut self, on: bool) -> bool {
        self.take_mode = on
            && matches!(
                self.ty(),
                SocketType::Pull
                    | SocketType::Dealer
                    | SocketType::Pair
                    | SocketType::Sub
                    | SocketType::XSub
            );
        self.take_mode
    }

    /// With [`set_take_messages`](Self::set_take_messages): hands up to `max` held messages
    /// (each one frame, borrowed from the session's buffer, with the peer that sent it, as
    /// [`Received::peer`] for `recv`) to `take`, the peers in turn
    /// (fair queuing: up to 32 messages each, starting after the peer the last call ended
    /// with); returns how many. A peer's held messages come only after those queued for it (call
    /// [`recv`](Self::recv) until it has none first). What follows a peer's last held
    /// message (a multipart message, a command, its end) is then processed as
    /// [`commit_received`](Self::commit_received) does.
    #[cfg(not(target_os = "none"))]
    pub fn take_messages(&mut self, max: usize, mut take: impl FnMut(PeerHandle, &[u8])) -> usize {
        let mut got = 0usize;
        let n = self.span;
        if !self.take_mode || n == 0 {
            return got;
        }
        let ty = self.ty();
        let mut i = if self.take_cursor < n {
            self.take_cursor
        } else {
            0
        };
        // Peers in a row that had nothing held: once every peer has had a turn without a
        // message, there is nothing left.
        let mut idle = 0usize;
        while got < max && idle < n {
            let here = i;
            i = i.wrapping_add(1) % n;
            let (slots, ps) = (&mut *self.slots, &self.ps);
            let Some(PeerSlot {
                conn: Conn::Live(session),
                state: PeerState::Active,
                recv,
                generation,
                ..
            }) = slots.get_mut(here)
            else {
                idle = idle.wrapping_add(1);
                continue;
            };
            // Held messages come after the queued ones.
            if recv.messages() > 0 || recv.has_partial() {
                idle = idle.wrapping_add(1);
                continue;
            }
            let h = PeerHandle {
                index: here as u16,
                generation: *generation,
            };
            // This peer's turn: at most `TAKE_TURN` messages, then the next peer's.
            let mut polled = 0usize;
            while polled < TAKE_TURN && got < max {
                let Some(body) = session.poll_single_frame() else {
                    break;
                };
                polled = polled.wrapping_add(1);
                // RFC 29 §"The SUB Socket Type": the subscriber filters too.
                if ty == SocketType::Sub && !ps.subs.matches(body) {
                    continue;
                }
                take(h, body);
                got = got.wrapping_add(1);
            }
            if polled == 0 {
                idle = idle.wrapping_add(1);
                continue;
            }
            idle = 0;
            if !session.peek_single_frame() {
                // What followed the held messages (a multipart message, a command, the
                // end of the stream).
                self.pump_in(h);
            }
        }
        // The next call starts with the peer after the last one served.
        self.take_cursor = i;
        got
    }

    /// Copies `data` into the peer's window and processes it; returns the bytes taken.
    pub fn feed(&mut self, h: PeerHandle, data: &[u8], now: Instant) -> usize {
        let n = match self.slot_mut(h).and_then(PeerSlot::session) {
            Some(s) => s.feed(data, now),
            None => 0,
        };
        self.pump_in(h);
        n
    }

    /// The peer's transport reached end of stream.
    pub fn handle_eof(&mut self, h: PeerHandle) {
        if let Some(s) = self.slot_mut(h).and_then(PeerSlot::session) {
            s.handle_eof();
        }
        self.pump_in(h);
    }

    /// Moves the peer's session events into its queue and the socket's state, while its
    /// receive queue has room.
    fn pump_in(&mut self, h: PeerHandle) {
        let ty = self.ty();
        let index = h.index();
        loop {
            let Some(slot) = self
                .slots
                .get_mut(index)
                .filter(|s| s.generation == h.generation)
            else {
                return;
            };
            if slot.state == PeerState::Free || slot.state == PeerState::Closed {
                return;
            }
            let hwm = self.cfg.recv_hwm;
            // Back-pressure: a frame can be as large as the session's receive buffer (larger
            // ones come as chunks into a reserved record), so only take input when one fits.
            // An empty queue always takes input (a message it cannot hold is refused below).
            // (A record header more than the receive buffer: no overflow.)
            let room = slot
                .rx_len
                .wrapping_add(stored_len(1, 0))
                .min(slot.recv.capacity());
            let mut full = (hwm != 0 && slot.recv.messages() >= hwm && !slot.recv.has_partial())
                || (slot.recv.messages() > 0 && slot.recv.free() < room)
                || self.ps.blocks(ty, slot.rx_len);
            let PeerSlot {
                conn: Conn::Live(session),
                recv,
                stalled,
                routing_id,
                state,
                ..
            } = slot
            else {
                slot.stalled = full;
                return;
            };
            // A frame larger than the receive buffer comes in chunks into one record reserved
            // at its first chunk: look at its length first. If the queue has no room for it
            // now but will once the application has received what is queued, it waits in the
            // session; if it never could, it is taken and refused below.
            if !full && ty != SocketType::Pub {
                if let Some(len) = session.next_streamed_frame_len() {
                    let need = usize::try_from(len).map_or(usize::MAX, |l| stored_len(1, l));
                    full = need > recv.free() && need <= recv.free_when_drained();
                }
            }
            *stalled = full;
            if full {
                return;
            }
            // Our type, and SUBSCRIBE and CANCEL only for the types that keep subscriptions.
            let view = View {
                ty,
                subscriptions: ty.receives_subscriptions(),
            };
            // Held for `take_messages` (`set_take_messages`), not queued.
            #[cfg(not(target_os = "none"))]
            if self.take_mode && *state == PeerState::Active && session.peek_single_frame() {
                return;
            }
            #[cfg(target_os = "none")]
            let _ = state;
            let Some(event) = session.poll_event_as(view) else {
                return;
            };
            let action = match event {
                Event::HandshakeComplete(info) => {
                    // The peer's identity, checked by the session (at most 255 bytes): its
                    // routing id unless `attach` decides otherwise.
                    routing_id.clear();
                    let _ = routing_id.extend_from_slice(info.identity);
                    Action::Ready(info.socket_type)
                }
                Event::Authenticate(_) => Action::Auth,
                // RFC 29 §"The PUB Socket Type": "SHALL silently discard any messages that
                // subscribers send it" (only their subscriptions count).
                Event::Frame { .. } | Event::FrameChunk(_) if ty == SocketType::Pub => Action::None,
                // A whole frame is its only chunk.
                Event::Frame { data, more } => take_chunk(recv, 0, data.len() as u64, data, more),
                Event::FrameChunk(c) => take_chunk(recv, c.offset, c.frame_len, c.data, c.more),
                // The driver takes the body (`Socket::commit_direct` ends the frame).
                Event::DirectFrame { len, more } => {
                    if recv.begin_direct_frame(len, more) {
                        Action::None
                    } else {
                        Action::TooBig
                    }
                }
                Event::Subscribe(topic) => {
                    self.ps.on_peer_subscription(ty, index, h, true, topic);
                    Action::None
                }
                Event::Cancel(topic) => {
                    self.ps.on_peer_subscription(ty, index, h, false, topic);
                    Action::None
                }
                Event::PeerError(_) => Action::None,
                Event::Closed(reason) => Action::Closed(reason),
            };
            match action {
                Action::None => {}
                Action::Auth => slot.report_auth = true,
                Action::TooBig => {
                    // The queue cannot hold this message even when empty (the message's
                    // earlier frames and their record overhead leave too little room; larger
                    // bodies the session refuses itself): the peer loses its connection,
                    // nothing else.
                    if let Some(s) = slot.session() {
                        s.close_protocol_error(
                            crate::ProtocolError::MessageTooLarge,
                            b"message-too-large",
                        );
                    }
                }
                Action::Closed(reason) => {
                    slot.recv.drop_partial();
                    slot.send.clear();
                    slot.state = PeerState::Closed;
                    slot.report_closed = Some(reason);
                    // The reply may already be queued: the REQ waits until that is read.
                    self.release_orphaned_request();
                    // RFC 29 §"The PUB Socket Type": a gone subscriber's queue and
                    // subscriptions go; §"The XPUB Socket Type": XPUB reports the cancels.
                    self.ps.drop_member(ty, index, h);
                    return;
                }
                Action::Ready(peer_type) => self.attach(h, peer_type),
            }
        }
    }

    /// A peer finished its handshake: give it a routing id, refuse it where the pattern
    /// says so.
    /// The slot's `routing_id` holds the peer's identity.
    fn attach(&mut self, h: PeerHandle, peer_type: SocketType) {
        let ty = self.ty();
        let index = h.index();
        // PAIR (RFC 31): exactly one peer.
        if ty == SocketType::Pair
            && self
                .slots
                .iter()
                .enumerate()
                .any(|(i, s)| i != index && s.is_active())
        {
            if let Some(s) = self.slot_mut(h).and_then(PeerSlot::session) {
                s.close_with_error(b"pair-already-connected");
            }
            return;
        }
        if ty == SocketType::Router {
            let slots = &mut *self.slots;
            if slots.get(index).is_some_and(|s| s.routing_id.is_empty()) {
                // libzmq's generated ids: a zero byte and a 4-byte big-endian counter.
                let n = self.next_routing_id;
                self.next_routing_id = n.wrapping_add(1);
                if let Some(slot) = slots.get_mut(index) {
                    let _ = slot.routing_id.push(0);
                    let _ = slot.routing_id.extend_from_slice(&n.to_be_bytes());
                }
            } else if let Some(other) = slots.get(index).and_then(|me| {
                // This slot is not active yet: only the others compare.
                let id = me.routing_id.as_slice();
                slots
                    .iter()
                    .position(|s| s.is_active() && s.routing_id.as_slice() == id)
            }) {
                if self.cfg.router_handover {
                    // The newcomer takes the id; the old connection goes.
                    if let Some(old) = self.handle_of(other) {
                        self.close_peer(old);
                    }
                } else if let Some(s) = self.slot_mut(h).and_then(PeerSlot::session) {
                    s.close_with_error(b"duplicate-routing-id");
                    return;
                }
            }
        }
        let Some(slot) = self.slot_mut(h) else { return };
        slot.peer_type = Some(peer_type);
        slot.state = PeerState::Active;
        slot.report_ready = true;
        // PROTOCOL.md (RFC 29 §"The XSUB Socket Type": "SHALL send subscribe ... requests to
        // publishers"): a subscriber sends its subscriptions to every new (or reconnected) peer.
        if matches!(ty, SocketType::Sub | SocketType::XSub) {
            slot.resync = Some(0);
        }
    }

    // ------------------------------------------------------------ events and time

    /// The next peer event, or `None`.
    pub fn poll_event(&mut self) -> Option<SocketEvent> {
        let span = self.span;
        for (i, slot) in self.slots.iter_mut().take(span).enumerate() {
            let h = PeerHandle {
                index: i as u16,
                generation: slot.generation,
            };
            if slot.state == PeerState::Free {
                continue;
            }
            if core::mem::take(&mut slot.report_auth) {
                return Some(SocketEvent::Authenticate(h));
            }
            if core::mem::take(&mut slot.report_ready) {
                return Some(SocketEvent::PeerReady(h));
            }
            if let Some(r) = slot.report_closed.take() {
                return Some(SocketEvent::PeerClosed(h, r));
            }
        }
        None
    }

    /// Fires every session's timers (heartbeats, timeouts).
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.span {
            let Some(h) = self.handle_of(i) else { continue };
            if let Some(s) = self.slot_mut(h).and_then(PeerSlot::session) {
                s.handle_timeout(now);
            }
            self.pump_in(h);
        }
    }

    /// The earliest deadline of any session.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter(|s| matches!(s.state, PeerState::Handshaking | PeerState::Active))
            .filter_map(|s| s.session_ref()?.poll_timeout())
            .min()
    }

    // ------------------------------------------------------------ output

    /// Bytes to write to the peer's transport now (moves queued messages into the session
    /// first).
    pub fn poll_transmit(&mut self, h: PeerHandle) -> &[u8] {
        self.pump_out(h);
        match self.slot_mut(h).and_then(PeerSlot::session) {
            Some(s) => s.poll_transmit(),
            None => &[],
        }
    }

    /// Records that `n` bytes from [`poll_transmit`](Self::poll_transmit) were written.
    pub fn mark_transmitted(&mut self, h: PeerHandle, n: usize) -> Result<(), crate::UsageError> {
        match self.slot_mut(h).and_then(PeerSlot::session) {
            Some(s) => s.mark_transmitted(n),
            None => Err(crate::UsageError::TransmitExceedsPending),
        }
    }

    /// Moves queued messages into the peer's session: whole frames while they fit, frames
    /// larger than the transmit buffer streamed. Once a message's first frame is in the
    /// session the rest follows before anything else (messages are never interleaved).
    ///
    /// SUB, XSUB: queued subscriptions go out through [`Session::send_subscribe`] in their
    /// place, and once the queue is empty a pending resend is staged into it.
    fn pump_out(&mut self, h: PeerHandle) {
        let subscriber = matches!(self.ty(), SocketType::Sub | SocketType::XSub);
        let Some(slot) = self
            .slots
            .get_mut(h.index())
            .filter(|s| s.generation == h.generation && s.state != PeerState::Free)
        else {
            return;
        };
        loop {
            pump_out_slot(slot, subscriber);
            if !subscriber || !slot.send.is_empty() || !slot.is_active() {
                return;
            }
            if !pubsub::stage_resync(&self.ps.subs, slot) {
                return;
            }
        }
    }

    // ------------------------------------------------------------ send

    /// Sends one message (its frames in order) the way the socket type routes messages:
    ///
    /// - PUSH, DEALER: round robin over ready peers with room; `WouldBlock` if none.
    /// - PAIR: to the one peer.
    /// - ROUTER: the first frame is the routing id of the peer to send to; unknown ids are
    ///   dropped (or `HostUnreachable` with `router_mandatory`); a full peer drops the message.
    /// - REQ: adds the empty delimiter (and request id with `req_correlate`), round robin.
    /// - REP: the reply to the request just received, with its envelope restored.
    /// - PUB, XPUB: to every ready peer subscribed to a prefix of the first frame; a peer
    ///   without room for the whole message loses it (never `WouldBlock`).
    /// - XSUB: a single-frame message `01 topic` / `00 topic` subscribes / unsubscribes (as
    ///   [`subscribe`](Self::subscribe) / [`unsubscribe`](Self::unsubscribe)); any other
    ///   message goes to every ready peer with room.
    /// - SUB: `NotAllowed` (use [`subscribe`](Self::subscribe)).
    pub fn send(&mut self, frames: &[&[u8]]) -> Result<(), SocketSendError> {
        if frames.is_empty() {
            return Err(SocketSendError::Empty);
        }
        match self.ty() {
            SocketType::Push | SocketType::Dealer | SocketType::Pair => {
                self.send_round_robin(&[], frames).map(|_| ())
            }
            SocketType::Router => {
                let (id, body) = frames.split_first().ok_or(SocketSendError::Empty)?;
                if body.is_empty() {
                    return Err(SocketSendError::Empty);
                }
                let target = (0..self.slots.len()).find(|&i| {
                    self.slots
                        .get(i)
                        .is_some_and(|s| s.is_active() && s.routing_id.as_slice() == *id)
                });
                let Some(peer) = target.and_then(|i| self.handle_of(i)) else {
                    return if self.cfg.router_mandatory {
                        Err(SocketSendError::HostUnreachable)
                    } else {
                        Ok(())
                    };
                };
                match self.enqueue(peer, &[], body) {
                    // ROUTER drops when the peer is full, unless mandatory (libzmq).
                    Err(SocketSendError::WouldBlock) if !self.cfg.router_mandatory => Ok(()),
                    r => r,
                }
            }
            SocketType::Req => {
                if matches!(self.reqrep, ReqRep::AwaitingReply { .. }) && !self.cfg.req_relaxed {
                    return Err(SocketSendError::NotAllowed);
                }
                let id = self.next_request_id;
                let id_bytes = id.to_be_bytes();
                let with_id: [&[u8]; 2] = [&id_bytes, &[]];
                let delim: [&[u8]; 1] = [&[]];
                let envelope: &[&[u8]] = if self.cfg.req_correlate {
                    &with_id
                } else {
                    &delim
                };
                let peer = self.send_round_robin(envelope, frames)?;
                self.next_request_id = id.wrapping_add(1);
                self.reqrep = ReqRep::AwaitingReply { peer, id };
                Ok(())
            }
            SocketType::Rep => {
                let ReqRep::Serving { peer, envelope } = self.reqrep else {
                    return Err(SocketSendError::NotAllowed);
                };
                self.reqrep = ReqRep::Idle;
                let r = self.reply(peer, envelope, frames);
                if let Some(slot) = self.slot_mut(peer) {
                    slot.recv.pop();
                }
                self.pump_in(peer);
                r
            }
            SocketType::Pub | SocketType::XPub => self.distribute(frames),
            SocketType::XSub => {
                // RFC 29 §"The XSUB Socket Type": subscriptions come from the application as
                // messages; only single-frame ones count (PROTOCOL.md).
                if let [f] = frames {
                    if let Some((&tag @ (0 | 1), topic)) = f.split_first() {
                        return self.change_subscription(tag == 1, topic);
                    }
                }
                self.distribute(frames)
            }
            _ => Err(SocketSendError::NotAllowed),
        }
    }

    /// REQ: a request whose peer has closed and left nothing more to read can never be
    /// answered; the REQ may send again (libzmq keeps waiting forever; the lazy-pirate
    /// pattern exists to work around that). A reply already queued is still delivered.
    fn release_orphaned_request(&mut self) {
        if let ReqRep::AwaitingReply { peer, .. } = self.reqrep {
            let gone = self
                .slot(peer)
                .is_none_or(|s| s.state == PeerState::Closed && s.recv.messages() == 0);
            if self.ty() == SocketType::Req && gone {
                self.reqrep = ReqRep::Idle;
            }
        }
    }

    /// REP: envelope frames from the request (still at the front of the peer's queue),
    /// then the reply. A peer that went away or is full loses the reply (libzmq).
    fn reply(
        &mut self,
        peer: PeerHandle,
        envelope: usize,
        body: &[&[u8]],
    ) -> Result<(), SocketSendError> {
        let hwm = self.cfg.send_hwm;
        let Some(slot) = self.slot_mut(peer).filter(|s| s.is_active()) else {
            return Ok(());
        };
        let PeerSlot {
            recv, send, conn, ..
        } = slot;
        let Some(req) = recv.front() else {
            return Ok(());
        };
        let env = req.frames().take(envelope);
        let env_len: usize = env.clone().map(<[u8]>::len).sum();
        let body_len: usize = body.iter().map(|f| f.len()).sum();
        let need = stored_len(
            envelope.saturating_add(body.len()),
            env_len.saturating_add(body_len),
        );
        if need > send.capacity() && need > 0 {
            return Err(SocketSendError::TooLarge);
        }
        // A frame the session can never send whole (CURVE) would stop this peer's replies.
        if let Conn::Live(session) = conn {
            let largest = env
                .clone()
                .chain(body.iter().copied())
                .map(<[u8]>::len)
                .max();
            let fits = |max: usize| largest.is_none_or(|l| l <= max);
            if !session.max_frame_body().is_none_or(fits) {
                return Err(SocketSendError::TooLarge);
            }
        }
        if (hwm != 0 && send.messages() >= hwm) || need > send.free() {
            return Ok(());
        }
        for f in env {
            send.push_frame(f, true);
        }
        push_frames(send, body);
        Ok(())
    }

    /// Round robin over ready peers (libzmq `lb`): queues `envelope` + `frames` for the first
    /// that can take the message now, and returns it. `TooLarge` if no ready peer could ever
    /// take it, `WouldBlock` if none can now. One rule decides, [`enqueue_slot`]'s.
    fn send_round_robin(
        &mut self,
        envelope: &[&[u8]],
        frames: &[&[u8]],
    ) -> Result<PeerHandle, SocketSendError> {
        let hwm = self.cfg.send_hwm;
        let len = MsgLen::of(envelope, frames);
        // TooLarge only if every ready peer says so; none ready: WouldBlock.
        let mut verdict = None;
        let n = self.span;
        let start = if self.lb < n { self.lb } else { 0 };
        for i in (start..n).chain(0..start) {
            let Some(slot) = self.slots.get_mut(i).filter(|s| s.is_active()) else {
                continue;
            };
            match enqueue_slot(slot, hwm, envelope, frames, len) {
                Ok(()) => {
                    self.lb = i.wrapping_add(1);
                    return self.handle_of(i).ok_or(SocketSendError::WouldBlock);
                }
                Err(SocketSendError::TooLarge) => {
                    verdict.get_or_insert(SocketSendError::TooLarge);
                }
                Err(e) => verdict = Some(e),
            }
        }
        Err(verdict.unwrap_or(SocketSendError::WouldBlock))
    }

    /// Queues `envelope` + `frames` for `peer`: straight into its session when nothing is
    /// queued before it and it fits, otherwise into its send queue.
    fn enqueue(
        &mut self,
        peer: PeerHandle,
        envelope: &[&[u8]],
        frames: &[&[u8]],
    ) -> Result<(), SocketSendError> {
        let hwm = self.cfg.send_hwm;
        let slot = self.slot_mut(peer).ok_or(SocketSendError::WouldBlock)?;
        enqueue_slot(slot, hwm, envelope, frames, MsgLen::of(envelope, frames))
    }

    // ------------------------------------------------------------ receive

    /// The next message, fair-queued across peers (libzmq `fq`), filtered by the pattern:
    ///
    /// - ROUTER: the sender's routing id comes first.
    /// - REQ: only the reply from the peer asked, with its delimiter (and id) removed; other
    ///   messages are dropped.
    /// - REP: the request without its envelope (kept for the reply); requests without an
    ///   empty delimiter are dropped.
    ///
    /// - SUB: only messages whose first frame starts with one of our subscriptions (RFC 29 §"The
    ///   SUB Socket Type": the subscriber filters too, whatever the publisher sent).
    /// - XPUB: pending subscription notifications first (`01 topic` / `00 topic`), then
    ///   messages from subscribers.
    /// - XSUB: everything.
    ///
    /// The message stays valid until the next call on the socket.
    pub fn recv(&mut self) -> Result<Received<'_>, SocketRecvError> {
        self.next_message(true)
    }

    /// The message [`recv`](Self::recv) would return, left queued: a `recv` right after,
    /// with no other call on the socket between, returns this message (and only then does
    /// what receiving does: REQ/REP state, fair-queueing cursor). Messages the pattern
    /// drops (a SUB's unsubscribed topics, a REQ's stray replies) are dropped here as in
    /// `recv`. For adapters that copy a message into a caller's buffer and must not take
    /// it when it does not fit.
    pub fn peek(&mut self) -> Result<Received<'_>, SocketRecvError> {
        self.next_message(false)
    }

    fn next_message(&mut self, take: bool) -> Result<Received<'_>, SocketRecvError> {
        self.release_orphaned_request();
        let ty = self.ty();
        match (ty, self.reqrep) {
            (SocketType::Push | SocketType::Pub, _) => return Err(SocketRecvError::NotAllowed),
            (SocketType::Req, ReqRep::Idle) => return Err(SocketRecvError::NotAllowed),
            (SocketType::Rep, ReqRep::Serving { .. }) => return Err(SocketRecvError::NotAllowed),
            _ => {}
        }
        let n = self.span;
        // Peers held back for lack of room get another chance: the message lent out by the
        // last call is gone.
        for i in 0..n {
            if self.slots.get(i).is_some_and(|s| s.stalled) {
                if let Some(h) = self.handle_of(i) {
                    self.pump_in(h);
                }
            }
        }
        if ty == SocketType::XPub && self.ps.notes.messages() > 0 {
            let note = if take {
                self.next_notification()
            } else {
                self.front_notification()
            };
            return note.ok_or(SocketRecvError::WouldBlock);
        }
        // Free space first (a reader unblocks back-pressured peers).
        for _ in 0..n.wrapping_mul(2).wrapping_add(1) {
            let found = self
                .round_from(self.fq)
                .find(|&i| self.slots.get(i).is_some_and(|s| s.recv.messages() > 0));
            let Some(i) = found else {
                return Err(SocketRecvError::WouldBlock);
            };
            let Some(h) = self.handle_of(i) else {
                return Err(SocketRecvError::WouldBlock);
            };
            self.fq = i.wrapping_add(1);
            match self.accept_message(h) {
                Verdict::Deliver { skip } if take => return self.deliver(h, skip),
                Verdict::Deliver { skip } => {
                    // Peeking: the next recv starts at this peer and finds this message.
                    self.fq = i;
                    return self.front_message(h, skip);
                }
                Verdict::Drop => {
                    if let Some(s) = self.slot_mut(h) {
                        s.recv.pop();
                    }
                    self.pump_in(h);
                }
            }
        }
        Err(SocketRecvError::WouldBlock)
    }

    fn deliver(&mut self, h: PeerHandle, skip: usize) -> Result<Received<'_>, SocketRecvError> {
        let ty = self.ty();
        let serving = ty == SocketType::Rep;
        if serving {
            self.reqrep = ReqRep::Serving {
                peer: h,
                envelope: skip,
            };
        } else if ty == SocketType::Req {
            self.reqrep = ReqRep::Idle;
        }
        // Let the peer's next messages in before lending out this one (the queue only
        // appends, so the front stays put).
        self.pump_in(h);
        let slot = self
            .slots
            .get_mut(h.index())
            .ok_or(SocketRecvError::WouldBlock)?;
        let routing_id = (ty == SocketType::Router).then_some(slot.routing_id.as_slice());
        // REP keeps the request (its envelope) until the reply is sent.
        let message = if serving {
            slot.recv.front()
        } else {
            slot.recv.pop_front()
        };
        let message = message.ok_or(SocketRecvError::WouldBlock)?;
        Ok(Received {
            peer: h,
            routing_id,
            message,
            skip,
        })
    }

    /// The front message of peer `h` as `deliver` would lend it, without taking it.
    fn front_message(&self, h: PeerHandle, skip: usize) -> Result<Received<'_>, SocketRecvError> {
        let slot = self.slot(h).ok_or(SocketRecvError::WouldBlock)?;
        let routing_id = (self.ty() == SocketType::Router).then_some(slot.routing_id.as_slice());
        let message = slot.recv.front().ok_or(SocketRecvError::WouldBlock)?;
        Ok(Received {
            peer: h,
            routing_id,
            message,
            skip,
        })
    }

    /// What the pattern does with the front message of a peer.
    fn accept_message(&self, h: PeerHandle) -> Verdict {
        let Some(msg) = self.slot(h).and_then(|s| s.recv.front()) else {
            return Verdict::Drop;
        };
        match self.ty() {
            SocketType::Req => {
                // RFC 28: replies from another peer, or without the delimiter, are dropped.
                let ReqRep::AwaitingReply { peer, id } = self.reqrep else {
                    return Verdict::Drop;
                };
                if peer != h && !self.cfg.req_relaxed {
                    return Verdict::Drop;
                }
                let mut frames = msg.frames();
                if self.cfg.req_correlate {
                    let ok = frames.next() == Some(&id.to_be_bytes()[..]);
                    if !ok || frames.next() != Some(&[][..]) {
                        return Verdict::Drop;
                    }
                    Verdict::Deliver { skip: 2 }
                } else if frames.next() == Some(&[][..]) {
                    Verdict::Deliver { skip: 1 }
                } else {
                    Verdict::Drop
                }
            }
            SocketType::Rep => {
                // RFC 28: the envelope runs up to and including the first empty frame.
                match msg.frames().position(<[u8]>::is_empty) {
                    Some(p) if p.wrapping_add(1) < msg.len() => Verdict::Deliver {
                        skip: p.wrapping_add(1),
                    },
                    _ => Verdict::Drop,
                }
            }
            SocketType::Sub => {
                if self.ps.subs.matches(msg.first().unwrap_or(&[])) {
                    Verdict::Deliver { skip: 0 }
                } else {
                    Verdict::Drop
                }
            }
            _ => Verdict::Deliver { skip: 0 },
        }
    }
}

/// Iterator over a socket's peers ([`Socket::peers`]).
#[derive(Debug)]
pub struct Peers<'a, 'b> {
    slots: core::iter::Enumerate<core::slice::Iter<'a, PeerSlot<'b>>>,
}

impl Iterator for Peers<'_, '_> {
    type Item = PeerHandle;
    fn next(&mut self) -> Option<PeerHandle> {
        loop {
            let (i, s) = self.slots.next()?;
            if s.state != PeerState::Free {
                return Some(PeerHandle {
                    index: i as u16,
                    generation: s.generation,
                });
            }
        }
    }
}

/// Per-connection randomness a mechanism needs.
enum Randomness {
    None,
    #[cfg(feature = "curve")]
    Curve(crate::mechanism::curve::CurveRandom),
}

/// Messages [`Socket::take_messages`] takes from one peer before the next one's turn.
#[cfg(not(target_os = "none"))]
const TAKE_TURN: usize = 32;

enum Verdict {
    Deliver { skip: usize },
    Drop,
}

#[allow(clippy::large_enum_variant)]
enum Action {
    None,
    Auth,
    TooBig,
    Closed(CloseReason),
    Ready(SocketType),
}

/// Memory of nothing (what a refused `add_peer_with` could not find to give back).
/// Writes a piece of a frame (`data`, at `offset` in a body of `len` bytes) into a receive
/// queue: the first piece starts the frame's record, the last ends it.
fn take_chunk(recv: &mut MsgQueue<'_>, offset: u64, len: u64, data: &[u8], more: bool) -> Action {
    if offset == 0 && !usize::try_from(len).is_ok_and(|len| recv.begin_frame(len, more)) {
        return Action::TooBig;
    }
    recv.write_body(data);
    if offset.wrapping_add(data.len() as u64) == len {
        recv.end_frame();
    }
    Action::None
}

/// The slot of `h` if its peer is still there. Out of line: every public call that takes a
/// handle looks its slot up, and one copy of the checks is smaller than a dozen (firmware).
#[cfg_attr(target_os = "none", inline(never))]
fn live_slot<'a, 'b>(slots: &'a [PeerSlot<'b>], h: PeerHandle) -> Option<&'a PeerSlot<'b>> {
    slots
        .get(h.index())
        .filter(|s| s.generation == h.generation && s.state != PeerState::Free)
}

/// [`live_slot`], mutable.
#[cfg_attr(target_os = "none", inline(never))]
fn live_slot_mut<'a, 'b>(
    slots: &'a mut [PeerSlot<'b>],
    h: PeerHandle,
) -> Option<&'a mut PeerSlot<'b>> {
    slots
        .get_mut(h.index())
        .filter(|s| s.generation == h.generation && s.state != PeerState::Free)
}

fn no_memory<'b>() -> PeerMemory<'b> {
    PeerMemory {
        rx: &mut [],
        tx: &mut [],
        recv_queue: &mut [],
        send_queue: &mut [],
    }
}

/// Queues `envelope` + `frames` (`len` long) for the peer in `slot` (see
/// [`Socket::enqueue`]), the one back-pressure rule of sending: straight into its session
/// when nothing is queued before it and the session has room, otherwise into its send queue
/// if that has room and the peer is under its high-water mark. `WouldBlock` if neither can
/// take it now (or the peer is not ready), `TooLarge` if neither ever could.
fn enqueue_slot(
    slot: &mut PeerSlot<'_>,
    hwm: usize,
    envelope: &[&[u8]],
    frames: &[&[u8]],
    len: MsgLen,
) -> Result<(), SocketSendError> {
    let PeerSlot {
        conn,
        send,
        progress,
        state,
        ..
    } = slot;
    let session = match conn {
        Conn::Live(s) => Some(s),
        _ => None,
    };
    let fits_session =
        |s: &Session<'_>| len.wire_for(s).saturating_add(CONTROL_MARGIN) <= s.tx_capacity();
    if len.stored > send.capacity() && !session.as_deref().is_some_and(fits_session) {
        return Err(SocketSendError::TooLarge);
    }
    // A frame its session can never send whole (CURVE) would stop the peer's queue for good.
    if session.as_deref().is_some_and(|s| !len.frames_fit(s)) {
        return Err(SocketSendError::TooLarge);
    }
    if *state != PeerState::Active || (hwm != 0 && send.messages() >= hwm) {
        return Err(SocketSendError::WouldBlock);
    }
    if let Some(session) = session {
        // Every frame must go in, or the message would leave in part: the mechanism's
        // per-frame overhead counts.
        if send.is_empty() && progress.is_none() && len.wire_for(session) <= session.frame_space() {
            let total = envelope.len().wrapping_add(frames.len());
            for (k, f) in envelope.iter().chain(frames.iter()).enumerate() {
                // Fits: checked above.
                let _ = session.send_frame(f, k.wrapping_add(1) < total);
            }
            return Ok(());
        }
    }
    if len.stored > send.free() {
        return Err(SocketSendError::WouldBlock);
    }
    for f in envelope {
        send.push_frame(f, true);
    }
    push_frames(send, frames);
    Ok(())
}

/// Moves a slot's queued messages into its session (see [`Socket::pump_out`]): whole frames
/// while they fit, frames larger than the transmit buffer streamed. Once a message's first
/// frame is in the session the rest follows before anything else (messages are never
/// interleaved).
fn pump_out_slot(slot: &mut PeerSlot<'_>, subscriber: bool) {
    loop {
        if subscriber {
            match pubsub::pump_subscription(slot) {
                Some(true) => continue,
                Some(false) => return,
                None => {}
            }
        }
        if !pump_one_message(slot) {
            return;
        }
    }
}

/// Moves (the rest of) the front message of a slot's send queue into its session; true if
/// it went whole (and was popped).
fn pump_one_message(slot: &mut PeerSlot<'_>) -> bool {
    let PeerSlot {
        conn: Conn::Live(session),
        send,
        progress,
        ..
    } = slot
    else {
        return false;
    };
    let Some(msg) = send.front() else {
        return false;
    };
    let count = msg.len();
    let (mut fi, mut off) = progress.unwrap_or((0, 0));
    for (k, part) in msg.parts().enumerate().skip(fi) {
        let more = k.wrapping_add(1) < count;
        let f = match part {
            Part::Bytes(f) => f,
            Part::Direct(len) => {
                // The driver writes the body (`Socket::mark_transmitted_direct`): `off` 1
                // marks the header as queued.
                if off == 0 {
                    if session.start_frame(len, more).is_err() {
                        *progress = Some((fi, 0));
                        return false;
                    }
                    off = 1;
                }
                if session.frame_body_remaining() > 0 {
                    *progress = Some((fi, off));
                    return false;
                }
                fi = fi.wrapping_add(1);
                off = 0;
                continue;
            }
        };
        // A streamed frame may be started with none of its body written yet (its header
        // filled the transmit buffer): then the session still owes body bytes, and the frame
        // must not be started again.
        if off == 0 && session.frame_body_remaining() == 0 {
            let whole = f.len().wrapping_add(9);
            if whole <= session.frame_space() {
                if session.send_frame(f, more).is_err() {
                    *progress = Some((fi, off));
                    return false;
                }
                fi = fi.wrapping_add(1);
                continue;
            }
            if whole.wrapping_add(CONTROL_MARGIN) <= session.tx_capacity() {
                // It will fit whole once the transport has taken some output.
                *progress = Some((fi, off));
                return false;
            }
            // Larger than the buffer: stream it.
            if session.start_frame(f.len() as u64, more).is_err() {
                *progress = Some((fi, off));
                return false;
            }
        }
        while off < f.len() {
            match f.get(off..).map(|rest| session.write_frame_body(rest)) {
                Some(Ok(n)) => off = off.wrapping_add(n),
                _ => {
                    *progress = Some((fi, off));
                    return false;
                }
            }
        }
        fi = fi.wrapping_add(1);
        off = 0;
    }
    *progress = None;
    send.pop();
    true
}

fn push_frames(q: &mut MsgQueue<'_>, frames: &[&[u8]]) {
    let last = frames.len().wrapping_sub(1);
    for (k, f) in frames.iter().enumerate() {
        q.push_frame(f, k < last);
    }
}

/// A message's sizes, computed once per send (they were recomputed for every check).
#[derive(Clone, Copy, Debug)]
struct MsgLen {
    /// Bytes it takes in a send queue (records included).
    stored: usize,
    /// Bytes it takes on the wire at most (9-byte headers), before any per-frame overhead of
    /// the mechanism ([`wire_for`](Self::wire_for)).
    wire: usize,
    /// Number of frames.
    count: usize,
    /// Its largest frame's body.
    largest: usize,
}

impl MsgLen {
    fn of(envelope: &[&[u8]], frames: &[&[u8]]) -> MsgLen {
        let mut bytes = 0usize;
        let mut count = 0usize;
        let mut largest = 0usize;
        for f in envelope.iter().chain(frames.iter()) {
            bytes = bytes.saturating_add(f.len());
            count = count.saturating_add(1);
            largest = largest.max(f.len());
        }
        MsgLen {
            stored: stored_len(count, bytes),
            wire: bytes.saturating_add(count.saturating_mul(9)),
            count,
            largest,
        }
    }

    /// Bytes it takes in `session`'s transmit buffer: with CURVE each frame travels in a
    /// MESSAGE, 33 bytes more ([`Session::frame_overhead`]).
    fn wire_for(&self, session: &Session<'_>) -> usize {
        self.wire
            .saturating_add(self.count.saturating_mul(session.frame_overhead()))
    }

    /// Whether `session` could ever send each of its frames (CURVE sends frames whole only,
    /// [`Session::max_frame_body`]).
    fn frames_fit(&self, session: &Session<'_>) -> bool {
        session.max_frame_body().is_none_or(|m| self.largest <= m)
    }
}

/// Room kept in a transmit buffer for control commands when deciding whether a frame can
/// ever go out whole (the session keeps the same).
const CONTROL_MARGIN: usize = 40;
