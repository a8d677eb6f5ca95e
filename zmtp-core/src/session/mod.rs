//! One ZMTP connection as a state machine: bytes in, events and bytes out.
//!
//! See the [crate documentation](crate) for the caller's duty and a complete run loop.

mod config;
#[cfg(feature = "curve")]
mod curve;

pub use config::{Config, Role};

use crate::error::{CloseReason, ConfigError, ProtocolError, SendError, UsageError};
use crate::fmt::{debug, trace};
use crate::mechanism::{AuthRequest, Security};
use crate::time::Instant;
use crate::wire::{
    same_bytes, Command, CommandError, FrameHeader, Greeting, Metadata, SocketType, Status,
    GREETING_LEN, MAX_PING_CONTEXT,
};

/// Transmit space [`Session::frame_space`] keeps for control commands: a PONG with a 16-byte
/// context (23 bytes) and a PING (9 bytes), rounded up.
const CONTROL_RESERVE: usize = 40;

/// Transmit space kept for control commands under CURVE, where each travels in a MESSAGE
/// (33 bytes more each).
#[cfg(feature = "curve")]
const CURVE_CONTROL_RESERVE: usize = 110;

/// The largest data-frame body a CURVE session with a transmit buffer of `tx_capacity` bytes
/// can send ([`Session::max_frame_body`]): CURVE seals each frame whole (RFC 26), so a frame
/// cannot be larger than the buffer less a frame header (9 bytes) and the room kept for
/// control commands ([`Session::frame_space`]); the MESSAGE's own 33 bytes fit in that room.
/// A larger frame can never be sent: a socket refuses it ([`SocketSendError::TooLarge`]).
///
/// [`SocketSendError::TooLarge`]: crate::socket::SocketSendError::TooLarge
#[cfg(feature = "curve")]
pub const fn curve_max_frame_body(tx_capacity: usize) -> usize {
    tx_capacity.saturating_sub(CURVE_CONTROL_RESERVE + 9)
}

/// Whether [`Session::poll_event`] has its fast path for whole data frames (a second, inlined
/// decoder for the common case: more frames per second). Not on bare metal
/// (`target_os = "none"`), where flash counts more than speed: there the general decoder
/// takes every frame, with the same checks (about 350 bytes less flash).
const FAST_PATH: bool = cfg!(not(target_os = "none"));

/// Smallest receive buffer a session accepts. It holds the 64-byte greeting; the peer's READY
/// must fit too (commands are never streamed), so 512 bytes or more is the practical minimum.
pub const MIN_RX_BUFFER: usize = 128;

/// What the session has to tell the application. Borrowed from the receive buffer: the next
/// call on the session ends the borrow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Event<'a> {
    /// The handshake is done: data may flow both ways.
    HandshakeComplete(PeerInfo<'a>),
    /// A client asks to be let in (server side of PLAIN). Answer with
    /// [`Session::accept_peer`] or [`Session::reject_peer`]; the handshake waits until then.
    Authenticate(AuthRequest<'a>),
    /// A whole data frame.
    Frame {
        /// The frame body, in the receive buffer (zero-copy).
        data: &'a [u8],
        /// More frames of this message follow.
        more: bool,
    },
    /// A piece of a data frame too large for the receive buffer. Chunks of one frame arrive in
    /// order; where they split depends on how the input arrived.
    FrameChunk(Chunk<'a>),
    /// A data frame of at least the [direct threshold](Session::set_direct_threshold) bytes
    /// begins: its body is the caller's to take, straight into its own memory, with
    /// [`Session::direct_body`] and [`Session::commit_direct`]. No other event comes until
    /// the whole body is taken.
    DirectFrame {
        /// The body's length (already checked against the frame and message limits).
        len: u64,
        /// More frames of this message follow.
        more: bool,
    },
    /// The peer subscribed to a topic prefix (a 3.1 SUBSCRIBE command, or a 3.0 single-frame
    /// message starting with `01` when we are PUB or XPUB).
    Subscribe(&'a [u8]),
    /// The peer cancelled a subscription (CANCEL, or a 3.0 message starting with `00`).
    Cancel(&'a [u8]),
    /// The peer sent ERROR with this reason; [`Event::Closed`] follows. A malformed ERROR is
    /// reported with its raw body.
    PeerError(&'a [u8]),
    /// The session is over. Write out what [`Session::poll_transmit`] still returns (at most
    /// an ERROR command), then close the transport. The frames of an unfinished message that
    /// came before this event must be discarded: a message is delivered whole or not at all.
    Closed(CloseReason),
}

/// What the handshake told us about the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PeerInfo<'a> {
    /// The peer's socket type (already checked compatible with ours).
    pub socket_type: SocketType,
    /// The peer's `Identity` property, empty if it sent none.
    pub identity: &'a [u8],
    /// The peer's major version (3 or more).
    pub major_version: u8,
    /// The peer's minor version: 0 for a ZMTP 3.0 peer.
    pub minor_version: u8,
    /// All the peer's metadata, `Socket-Type` and `Identity` included.
    pub metadata: Metadata<'a>,
}

/// A piece of a streamed frame body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Chunk<'a> {
    /// The bytes.
    pub data: &'a [u8],
    /// Where they start in the frame body.
    pub offset: u64,
    /// The whole body's length.
    pub frame_len: u64,
    /// The frame's MORE flag.
    pub more: bool,
}

impl Chunk<'_> {
    /// Whether this chunk ends the frame.
    pub fn is_last(&self) -> bool {
        self.offset.saturating_add(self.data.len() as u64) == self.frame_len
    }
}

/// The body of a direct frame ([`Event::DirectFrame`], [`Session::direct_body`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DirectBody<'a> {
    /// The whole body's length.
    pub len: u64,
    /// Body bytes the caller has taken so far.
    pub offset: u64,
    /// Body bytes already in the receive buffer (they come next): copy them, then commit.
    pub buffered: &'a [u8],
    /// The frame's MORE flag.
    pub more: bool,
}

impl DirectBody<'_> {
    /// Body bytes still to take (buffered or still in the transport).
    pub fn owed(&self) -> u64 {
        self.len.saturating_sub(self.offset)
    }
}

/// The caller's buffers for one session.
#[derive(Debug)]
pub struct Buffers<'b> {
    /// Receive buffer. Frames up to its size are delivered whole; larger ones in chunks.
    pub rx: &'b mut [u8],
    /// Transmit buffer. Frames up to its size (less the header) can be sent whole; larger ones
    /// are streamed.
    pub tx: &'b mut [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the peer's greeting.
    Greeting,
    /// Between greeting and READY, in one of the mechanism's steps.
    Handshake(Hs),
    /// Traffic.
    Active,
    /// Over.
    Closed,
}

/// Where a handshake is (RFC 37 §"Security Handshake", RFC 24).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hs {
    /// NULL: waiting for the peer's READY.
    NullReady,
    /// PLAIN client: HELLO sent, waiting for WELCOME.
    #[cfg(feature = "plain")]
    PlainWelcome,
    /// PLAIN client: INITIATE sent, waiting for READY.
    #[cfg(feature = "plain")]
    PlainReady,
    /// PLAIN server: waiting for HELLO.
    #[cfg(feature = "plain")]
    PlainHello,
    /// PLAIN server: HELLO reported, waiting for the application's decision.
    #[cfg(feature = "plain")]
    PlainDecision,
    /// PLAIN server: WELCOME sent, waiting for INITIATE.
    #[cfg(feature = "plain")]
    PlainInitiate,
    /// CURVE client: HELLO sent, waiting for WELCOME.
    #[cfg(feature = "curve")]
    CurveWelcome,
    /// CURVE client: INITIATE sent, waiting for READY.
    #[cfg(feature = "curve")]
    CurveReady,
    /// CURVE server: waiting for HELLO.
    #[cfg(feature = "curve")]
    CurveHello,
    /// CURVE server: WELCOME sent, waiting for INITIATE.
    #[cfg(feature = "curve")]
    CurveInitiate,
    /// CURVE server: INITIATE checked and reported, waiting for the application's decision.
    #[cfg(feature = "curve")]
    CurveDecision,
    /// CURVE server: accepted and READY sent; the handshake event is still to be reported.
    #[cfg(feature = "curve")]
    CurveAccepted,
}

/// A frame whose body comes in pieces. `offset < len` while it is kept (and every step is
/// at most what is owed), so `len - offset` and `offset + n` are exact with `wrapping_*`.
#[derive(Clone, Copy, Debug)]
struct ChunkState {
    offset: u64,
    len: u64,
    more: bool,
    /// The caller takes the body itself ([`Event::DirectFrame`]).
    direct: bool,
}

/// What `advance` decided, as indices into the receive buffer (no borrow).
enum Out {
    Ready {
        meta: (usize, usize),
        identity: (usize, usize),
        socket_type: SocketType,
    },
    #[cfg(feature = "plain")]
    Auth {
        user: (usize, usize),
        pass: (usize, usize),
    },
    #[cfg(feature = "curve")]
    CurveAuth,
    Frame {
        body: (usize, usize),
        more: bool,
    },
    Chunk {
        body: (usize, usize),
        offset: u64,
        len: u64,
        more: bool,
    },
    Direct {
        len: u64,
        more: bool,
    },
    Subscribe((usize, usize)),
    Cancel((usize, usize)),
    PeerError((usize, usize)),
    Closed(CloseReason),
}

/// A handshake command, read.
enum HsInput {
    PeerError((usize, usize)),
    Metadata {
        checked: Result<(SocketType, Option<(usize, usize)>), Refusal>,
        range: (usize, usize),
        reply: Option<&'static [u8]>,
    },
    #[cfg(feature = "plain")]
    Welcome,
    #[cfg(feature = "plain")]
    Hello {
        user: (usize, usize),
        pass: (usize, usize),
    },
    Refuse(ProtocolError, Option<&'static [u8]>),
}

/// How a caller reads a session ([`Session::poll_event_as`]): as a socket of type `ty` (a
/// constant where the socket's type is fixed at compile time, so the other types' handshake
/// and subscription code folds away), and whether SUBSCRIBE and CANCEL (commands, and the
/// ZMTP 3.0 messages of a PUB or XPUB) are wanted: a socket whose type ignores them says
/// no. `Session::poll_event`: the session's own type, and yes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View {
    /// Our socket type (the session's).
    pub(crate) ty: SocketType,
    /// SUBSCRIBE and CANCEL are reported.
    pub(crate) subscriptions: bool,
}

/// What one decode step found, when it did not produce an event.
enum Step {
    Continue,
    Stall,
    Emit(Out),
}

/// A PING's context, for its PONG (RFC 37: at most 16 bytes). 17 bytes, where a
/// `heapless::Vec` takes 20.
#[derive(Clone, Copy, Debug)]
struct PingContext {
    len: u8,
    bytes: [u8; MAX_PING_CONTEXT],
}

impl PingContext {
    /// Holds `context` now, or nothing if it is longer than a PING's may be. In place: the
    /// bytes beyond `len` are never read, so nothing is zeroed.
    fn set(&mut self, context: &[u8]) {
        self.len = 0;
        if let Some(dst) = self.bytes.get_mut(..context.len()) {
            dst.copy_from_slice(context);
            self.len = context.len() as u8;
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

/// One ZMTP 3.1 connection with the NULL mechanism, in either role.
///
/// Owns no I/O, no clock and no memory of its own beyond this struct: the two buffers are the
/// caller's. See the [crate documentation](crate) for the run loop.
#[derive(Debug)]
pub struct Session<'b> {
    socket_type: SocketType,
    identity: &'b [u8],
    security: Security<'b>,
    role: Role,
    max_frame: u64,
    max_message: u64,
    /// PINGs are sent (a non-zero `heartbeat_interval` was configured).
    heartbeats: bool,
    /// Between PINGs, in microseconds (times are kept in microseconds, not `Duration`s:
    /// smaller, and no 128-bit arithmetic on 32-bit targets).
    heartbeat_interval: u64,
    /// How long after a PING the peer has to answer, in microseconds (`None`: no limit).
    heartbeat_timeout: Option<u64>,
    heartbeat_ttl_ds: u16,

    /// Received bytes not yet decoded: `rx[rx_start..rx_end]`. Always `rx_start <= rx_end
    /// <= rx.len()` and `tx_start <= tx_end <= tx.len()`, and every step that moves them is
    /// checked against the bytes there are, so arithmetic on these positions cannot leave
    /// `0..=len`: it is `wrapping_*` (exact here, and smaller than `saturating_*` on 32-bit
    /// targets). Were it ever wrong, slicing is by `get`: no panic, just nothing.
    rx: &'b mut [u8],
    rx_start: usize,
    rx_end: usize,
    /// Output not yet written: `tx[tx_start..tx_end]`.
    tx: &'b mut [u8],
    tx_start: usize,
    tx_end: usize,
    /// Body bytes still owed by a frame started with `start_frame`.
    tx_frame_remaining: u64,
    /// Data frames of at least this many bytes are [`Event::DirectFrame`]s (`u64::MAX`: none).
    direct_threshold: u64,

    phase: Phase,
    peer_major: u8,
    peer_minor: u8,
    peer_socket_type: Option<SocketType>,
    chunk: Option<ChunkState>,
    in_message: bool,
    /// The fast path of `poll_event` may run (traffic, no chunk, no PUB, no CURVE).
    fast_ok: bool,
    /// Largest frame the fast path takes now: `max_frame`, or less of the message budget.
    frame_limit: u64,
    message_size: u64,
    eof: bool,
    close_reason: Option<CloseReason>,
    close_reported: bool,

    /// A PONG to send, with this context.
    pong_due: bool,
    pong: PingContext,
    ping_due: bool,
    /// Where the credentials of a pending [`Event::Authenticate`] sit in `rx`.
    #[cfg(feature = "plain")]
    auth: Option<((usize, usize), (usize, usize))>,
    error_out: Option<&'static [u8]>,
    /// Where the reason of the peer's ERROR sits in `rx` (kept there once closed: nothing
    /// is read after).
    peer_error: Option<(usize, usize)>,

    /// CURVE keys, nonces and transient secrets (wiped on drop).
    #[cfg(feature = "curve")]
    curve: Option<crate::mechanism::curve::CurveState>,
    /// Frames and commands go out and come in as MESSAGEs (set once the handshake's keys are
    /// in force: the client on READY, the server when it sends READY).
    #[cfg(feature = "curve")]
    curve_armed: bool,
    /// CURVE server: where INITIATE's checked metadata waits in `rx` while the application
    /// decides.
    #[cfg(feature = "curve")]
    curve_held: Option<curve::Held>,
    /// CURVE server: the cookie key's end (RFC 26: "discard ... after a short interval").
    #[cfg(feature = "curve")]
    cookie_deadline: Option<Instant>,

    now: Instant,
    last_rx: Instant,
    /// `handshake_deadline` is set (a handshake timeout was configured; cleared at READY).
    handshake_timed: bool,
    handshake_deadline: Instant,
    /// When the next PING is due (in traffic, with `heartbeats`).
    next_ping: Instant,
    /// `ping_timeout_at` is set: a PING went out and no input has come since.
    ping_timeout_armed: bool,
    ping_timeout_at: Instant,
    /// The peer's TTL from its last PING, in microseconds; 0: none.
    peer_ttl: u64,
}

/// `rx[a..b]`, or nothing if out of range. One copy of the bounds checks for every event.
#[inline(never)]
fn rx_range(rx: &[u8], (a, b): (usize, usize)) -> &[u8] {
    rx.get(a..b).unwrap_or(&[])
}

/// The ERROR reasons we send (RFC 37: "error-reason = OCTET 0*255VCHAR", so no spaces).
mod reason {
    pub const MISSING_SOCKET_TYPE: &[u8] = b"missing-socket-type";
    pub const UNKNOWN_SOCKET_TYPE: &[u8] = b"unknown-socket-type";
    pub const INCOMPATIBLE_SOCKET_TYPE: &[u8] = b"incompatible-socket-type";
    pub const INVALID_IDENTITY: &[u8] = b"invalid-identity";
    pub const MALFORMED_METADATA: &[u8] = b"malformed-metadata";
}

impl<'b> Session<'b> {
    /// Starts a session on a transport that is up. Our greeting is queued at once: the caller
    /// must write it without waiting for the peer (libzmq sends its greeting in pieces and
    /// waits in between, so waiting for 64 peer bytes first would deadlock).
    ///
    /// A CURVE session needs per-connection randomness: start it with
    /// `new_curve` (this returns [`ConfigError::MissingRandomness`]).
    pub fn new(
        config: &Config<'b>,
        role: Role,
        buffers: Buffers<'b>,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        #[cfg(feature = "curve")]
        if config.security.is_curve() {
            return Err(ConfigError::MissingRandomness);
        }
        Self::start(config, role, buffers, now)
    }

    fn start(
        config: &Config<'b>,
        role: Role,
        buffers: Buffers<'b>,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        let Buffers { rx, tx } = buffers;
        config.check_buffers(rx.len(), tx.len())?;
        let ttl_ds = config
            .heartbeat_ttl
            .map(|d| u16::try_from(crate::time::duration_micros(d) / 100_000).unwrap_or(u16::MAX))
            .unwrap_or(0);
        let mut s = Session {
            socket_type: config.socket_type,
            identity: config.identity,
            security: config.security,
            role,
            max_frame: config.max_frame_size.unwrap_or(u64::MAX),
            max_message: config.max_message_size.unwrap_or(u64::MAX),
            heartbeats: config.heartbeat_interval.is_some_and(|d| !d.is_zero()),
            heartbeat_interval: config
                .heartbeat_interval
                .map_or(0, crate::time::duration_micros),
            heartbeat_timeout: config
                .heartbeat_timeout
                .or(config.heartbeat_interval)
                .map(crate::time::duration_micros),
            heartbeat_ttl_ds: ttl_ds,
            rx,
            rx_start: 0,
            rx_end: 0,
            tx,
            tx_start: 0,
            tx_end: 0,
            tx_frame_remaining: 0,
            phase: Phase::Greeting,
            peer_major: 0,
            peer_minor: 0,
            peer_socket_type: None,
            chunk: None,
            direct_threshold: u64::MAX,
            in_message: false,
            fast_ok: false,
            frame_limit: 0,
            message_size: 0,
            eof: false,
            close_reason: None,
            close_reported: false,
            pong_due: false,
            pong: PingContext {
                len: 0,
                bytes: [0; MAX_PING_CONTEXT],
            },
            ping_due: false,
            #[cfg(feature = "plain")]
            auth: None,
            error_out: None,
            peer_error: None,
            #[cfg(feature = "curve")]
            curve: None,
            #[cfg(feature = "curve")]
            curve_armed: false,
            #[cfg(feature = "curve")]
            curve_held: None,
            #[cfg(feature = "curve")]
            cookie_deadline: None,
            now,
            last_rx: now,
            handshake_timed: config.handshake_timeout.is_some(),
            handshake_deadline: config
                .handshake_timeout
                .map_or(now, |d| now.plus_micros(crate::time::duration_micros(d))),
            next_ping: now,
            ping_timeout_armed: false,
            ping_timeout_at: now,
            peer_ttl: 0,
        };
        // Greeting: RFC 37 §"Version Negotiation"; as-server only on a PLAIN/CURVE server.
        let out: &mut [u8; GREETING_LEN] =
            s.tx.first_chunk_mut()
                .ok_or(ConfigError::TxBufferTooSmall)?;
        Greeting::new(config.security.mechanism(), config.security.as_server()).emit(out);
        s.tx_end = GREETING_LEN;
        // `check_buffers` has checked that the handshake's commands fit after the greeting
        // (were one not to, the handshake would end with `CommandTooLarge`, nothing worse).
        // Debug builds prove it: write each command we will send, then drop it again.
        // (CURVE's commands need keys.)
        if cfg!(debug_assertions) {
            s.prove_handshake_fits(config)?;
        }
        Ok(s)
    }

    /// Writes each handshake command after the greeting and drops it again (debug builds).
    fn prove_handshake_fits(&mut self, config: &Config<'b>) -> Result<(), ConfigError> {
        #[cfg(feature = "curve")]
        let names: &[&[u8]] = if config.security.is_curve() {
            &[]
        } else {
            &[b"READY", b"INITIATE", b"HELLO"]
        };
        #[cfg(not(feature = "curve"))]
        let names: &[&[u8]] = &[b"READY", b"INITIATE", b"HELLO"];
        #[cfg(not(feature = "curve"))]
        let _ = config;
        for &name in names {
            self.write_handshake_command(name, self.socket_type)
                .ok_or(ConfigError::TxBufferTooSmall)?;
            self.tx_end = GREETING_LEN;
        }
        Ok(())
    }

    /// Writes a handshake command after `tx_end` and queues it: READY or INITIATE with our
    /// metadata (RFC 37 §"The READY Command": `Socket-Type`, and `Identity` for the types
    /// that send one), HELLO with our PLAIN credentials (RFC 24), WELCOME. Returns its
    /// length. The property names are constants and the identity was checked by
    /// `check_buffers` (at most 255 bytes), so every length fits its field.
    fn write_handshake_command(&mut self, name: &'static [u8], ours: SocketType) -> Option<usize> {
        let ty = ours.as_str().as_bytes();
        let id = self.identity;
        let (ty_len, id_len) = (
            (ty.len() as u32).to_be_bytes(),
            (id.len() as u32).to_be_bytes(),
        );
        let name_len = [name.len() as u8];
        let all: [&[u8]; 8] = [
            &name_len,
            name,
            b"\x0bSocket-Type",
            &ty_len,
            ty,
            b"\x08Identity",
            &id_len,
            id,
        ];
        let count = match name {
            b"READY" | b"INITIATE" if ours.sends_identity() => 8,
            b"READY" | b"INITIATE" => 5,
            _ => 2,
        };
        #[cfg(feature = "plain")]
        let (hello, lens);
        #[allow(unused_mut)]
        let mut parts = all.get(..count)?;
        #[cfg(feature = "plain")]
        if let (b"HELLO", Security::PlainClient { username, password }) = (name, self.security) {
            lens = [
                u8::try_from(username.len()).ok()?,
                u8::try_from(password.len()).ok()?,
            ];
            hello = [
                &name_len[..],
                name,
                &lens[..1],
                username,
                &lens[1..],
                password,
            ];
            parts = &hello;
        }
        let start = self.tx_end;
        let n = crate::wire::emit_parts(self.tx.get_mut(start..)?, parts)?;
        self.tx_end = start.checked_add(n)?;
        Some(n)
    }

    /// Ends the session and hands its buffers back, for the next connection.
    pub fn into_buffers(self) -> Buffers<'b> {
        Buffers {
            rx: self.rx,
            tx: self.tx,
        }
    }

    // ---------------------------------------------------------------- accessors

    /// Our socket type.
    pub fn socket_type(&self) -> SocketType {
        self.socket_type
    }

    /// Which side opened the transport.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The peer's socket type, once the handshake is done.
    pub fn peer_socket_type(&self) -> Option<SocketType> {
        self.peer_socket_type
    }

    /// The peer's (major, minor) version, once its greeting has arrived.
    pub fn peer_version(&self) -> Option<(u8, u8)> {
        (self.peer_major != 0).then_some((self.peer_major, self.peer_minor))
    }

    /// Whether the handshake is done and the session not closed.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Active
    }

    /// Whether the session has ended (the reason is also in [`Event::Closed`]).
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Why the session ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason
    }

    /// The reason the peer gave in the ERROR command that ended the session (RFC 37 §"The
    /// ERROR Command"; a ZAP status code such as `400` when a libzmq server turned us away,
    /// also from the malformed ERROR libzmq's PLAIN server sends), the raw body of another
    /// malformed ERROR, or `None` if the session did not end that way. Kept until the buffers
    /// are taken back.
    pub fn peer_error_reason(&self) -> Option<&[u8]> {
        let (a, b) = self.peer_error?;
        self.rx.get(a..b)
    }

    /// Whether the transport can be closed: the session is over and nothing is left to send.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Closed
            && self.tx_visible_end() == self.tx_start
            && self.error_out.is_none()
    }

    /// Whether the application may send data frames: with NULL once our READY is queued,
    /// with PLAIN and CURVE once the handshake is done (RFC 24: the client "MAY send messages
    /// after receiving a READY command"; RFC 26 likewise, and the server once it has sent
    /// READY).
    pub fn can_send(&self) -> bool {
        matches!(self.phase, Phase::Handshake(Hs::NullReady) | Phase::Active)
    }

    // ---------------------------------------------------------------- input

    /// The free part of the receive buffer: read from the transport straight into it, then
    /// call [`commit_received`](Self::commit_received). Empty once the session is closed, or
    /// while undelivered events fill the buffer (drain [`poll_event`](Self::poll_event)).
    pub fn recv_window(&mut self) -> &mut [u8] {
        if self.phase == Phase::Closed {
            return &mut [];
        }
        // Keep the credentials of a pending authentication where `pending_auth` finds them.
        #[cfg(feature = "plain")]
        let base = match self
            .auth
            .filter(|_| self.phase == Phase::Handshake(Hs::PlainDecision))
        {
            Some(((u0, _), (p0, _))) => self.rx_start.min(u0).min(p0),
            None => self.rx_start,
        };
        #[cfg(not(feature = "plain"))]
        let base = self.rx_start;
        #[cfg(feature = "curve")]
        let base = match self.curve_held.as_ref() {
            Some(h) => base.min(h.meta.0),
            None => base,
        };
        if base > 0 {
            if base < self.rx_end {
                self.rx.copy_within(base..self.rx_end, 0);
            }
            self.rx_end = self.rx_end.wrapping_sub(base);
            self.rx_start = self.rx_start.wrapping_sub(base);
            #[cfg(feature = "plain")]
            if let Some(((u0, u1), (p0, p1))) = self.auth.as_mut() {
                for x in [u0, u1, p0, p1] {
                    *x = x.saturating_sub(base);
                }
            }
            #[cfg(feature = "curve")]
            if let Some(h) = self.curve_held.as_mut() {
                h.shift(base);
            }
        }
        self.rx.get_mut(self.rx_end..).unwrap_or(&mut [])
    }

    /// Records that `n` bytes were written at the start of the window. Any byte counts as
    /// life for the heartbeat (PROTOCOL.md). Then drain [`poll_event`](Self::poll_event).
    pub fn commit_received(&mut self, n: usize, now: Instant) -> Result<(), UsageError> {
        let free = self.rx.len().wrapping_sub(self.rx_end);
        if n > free || (n > 0 && self.phase == Phase::Closed) {
            return Err(UsageError::CommitExceedsWindow);
        }
        self.rx_end = self.rx_end.wrapping_add(n);
        self.now = self.now.max(now);
        if n > 0 {
            self.last_rx = self.now;
            self.ping_timeout_armed = false;
        }
        Ok(())
    }

    /// Copies `data` into the receive window and commits it; returns how many bytes were
    /// taken (fewer than `data.len()` when the window is smaller). A convenience for callers
    /// whose transport hands them bytes.
    pub fn feed(&mut self, data: &[u8], now: Instant) -> usize {
        let window = self.recv_window();
        let n = window.len().min(data.len());
        if let (Some(w), Some(d)) = (window.get_mut(..n), data.get(..n)) {
            w.copy_from_slice(d);
        }
        // Cannot fail: n is within the window.
        let _ = self.commit_received(n, now);
        n
    }

    /// The peer closed its side of the transport. Bytes already received are still processed;
    /// then [`Event::Closed`] reports [`CloseReason::Eof`].
    pub fn handle_eof(&mut self) {
        self.eof = true;
    }

    /// The next event, or `None` when the input so far is used up. Call it until `None` after
    /// every input, timeout and send.
    #[inline(always)]
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        self.poll_event_as(View {
            ty: self.socket_type,
            subscriptions: true,
        })
    }

    /// [`poll_event`](Self::poll_event) as `view` says (see [`View`]).
    #[inline(always)]
    pub(crate) fn poll_event_as(&mut self, view: View) -> Option<Event<'_>> {
        if FAST_PATH && self.fast_ok {
            if let Some((a, b, more)) = self.fast_data_frame() {
                return Some(Event::Frame {
                    data: self.rx.get(a..b).unwrap_or(&[]),
                    more,
                });
            }
        }
        self.poll_event_slow(view)
    }

    /// Everything but the common whole data frame: out of line, so `poll_event` stays small
    /// enough to inline into the caller's loop.
    #[inline(never)]
    fn poll_event_slow(&mut self, view: View) -> Option<Event<'_>> {
        let out = self.advance(view);
        self.refresh_fast_path();
        Some(self.materialize(out?))
    }

    /// The hot path: one whole data frame (short or long size) already in the buffer, in the
    /// traffic phase, with no chunk in progress, no 3.0 subscription to interpret and no
    /// encryption. Anything else returns `None` without touching state, and `advance` takes
    /// it from the same place, with every check (reserved flags, bit 63, limits).
    #[inline(always)]
    fn fast_data_frame(&mut self) -> Option<(usize, usize, bool)> {
        let start = self.rx_start;
        let (flags, size, hl, total) = self.whole_data_frame()?;
        let more = flags & 1 != 0;
        self.rx_start = start.wrapping_add(total);
        if more {
            // `size <= frame_limit` keeps the sum within `max_message`.
            self.message_size = if self.in_message {
                self.message_size.saturating_add(size)
            } else {
                size
            };
            self.in_message = true;
            self.frame_limit = self
                .fast_max_frame()
                .min(self.max_message.saturating_sub(self.message_size));
        } else if self.in_message {
            self.in_message = false;
            self.frame_limit = self.fast_max_frame().min(self.max_message);
        }
        Some((start.saturating_add(hl), start.saturating_add(total), more))
    }

    /// The next event if it is a whole message of one data frame already in the buffer
    /// (the case [`fast_data_frame`](Self::fast_data_frame) takes, without MORE and not
    /// inside a multipart message): its body, taken. Anything else returns `None` without
    /// touching state, for [`poll_event_as`](Self::poll_event_as) to take with every check.
    /// Desktop only (firmware keeps one decoder), for
    /// [`Socket::take_messages`](crate::socket::Socket::take_messages).
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    pub(crate) fn poll_single_frame(&mut self) -> Option<&[u8]> {
        let (body, end) = self.single_frame()?;
        self.rx_start = end;
        self.rx.get(body..end)
    }

    /// Whether [`poll_single_frame`](Self::poll_single_frame) would take a message.
    #[cfg(not(target_os = "none"))]
    pub(crate) fn peek_single_frame(&self) -> bool {
        self.single_frame().is_some()
    }

    /// Where the body of the message [`poll_single_frame`](Self::poll_single_frame) takes
    /// starts and ends.
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn single_frame(&self) -> Option<(usize, usize)> {
        if !self.fast_ok || self.in_message {
            return None;
        }
        let start = self.rx_start;
        let (flags, _, hl, total) = self.whole_data_frame()?;
        // Not MORE: a message of one frame (outside a message, `frame_limit` is the tighter
        // of the frame and message limits).
        if flags & 1 != 0 {
            return None;
        }
        Some((start.wrapping_add(hl), start.wrapping_add(total)))
    }

    /// The data frame at the start of the buffered input, if it is all there and within
    /// `frame_limit`: its flags (`00`-`03`), body size, header length and total length.
    /// Reads only; for the two fast decoders above.
    #[inline(always)]
    fn whole_data_frame(&self) -> Option<(u8, u64, usize, usize)> {
        let avail = self.rx.get(self.rx_start..self.rx_end)?;
        let (&flags, rest) = avail.split_first()?;
        // RFC 37 §"Framing": 00/01 short size, 02/03 long size; anything else (commands,
        // reserved bits) goes the slow way.
        let (size, hl) = match flags {
            0 | 1 => (u64::from(*rest.first()?), 2usize),
            2 | 3 => (u64::from_be_bytes(*rest.first_chunk::<8>()?), 9usize),
            _ => return None,
        };
        // One compare: the tighter of the frame limit and what is left of the message limit.
        if size > self.frame_limit {
            return None;
        }
        // try_from, not `as`: on 32-bit targets a long size must not truncate.
        let total = usize::try_from(size).ok()?.checked_add(hl)?;
        if total > avail.len() {
            return None;
        }
        Some((flags, size, hl, total))
    }

    /// Decides whether [`fast_data_frame`](Self::fast_data_frame) may run, after each slow step.
    fn refresh_fast_path(&mut self) {
        if !FAST_PATH {
            return;
        }
        self.fast_ok = self.phase == Phase::Active
            && self.chunk.is_none()
            && !self.socket_type.receives_subscriptions();
        #[cfg(feature = "curve")]
        {
            self.fast_ok &= self.curve.is_none();
        }
        self.frame_limit = if self.in_message {
            self.fast_max_frame()
                .min(self.max_message.saturating_sub(self.message_size))
        } else {
            self.fast_max_frame().min(self.max_message)
        };
    }

    /// The largest frame the fast path takes whole: direct frames go the slow way.
    #[inline(always)]
    fn fast_max_frame(&self) -> u64 {
        self.max_frame.min(self.direct_threshold.saturating_sub(1))
    }

    fn materialize(&self, out: Out) -> Event<'_> {
        // The one range most events carry, sliced once (firmware: one copy of the call).
        let range = match out {
            Out::Frame { body, .. } | Out::Chunk { body, .. } => body,
            Out::Subscribe(r) | Out::Cancel(r) | Out::PeerError(r) => r,
            Out::Ready { identity, .. } => identity,
            _ => (0, 0),
        };
        let data = rx_range(self.rx, range);
        match out {
            Out::Frame { more, .. } => Event::Frame { data, more },
            Out::Chunk {
                offset, len, more, ..
            } => Event::FrameChunk(Chunk {
                data,
                offset,
                frame_len: len,
                more,
            }),
            Out::Ready {
                meta, socket_type, ..
            } => Event::HandshakeComplete(PeerInfo {
                socket_type,
                identity: data,
                major_version: self.peer_major,
                minor_version: self.peer_minor,
                // Validated when READY was parsed; iteration cannot fail.
                metadata: Metadata::validated(rx_range(self.rx, meta)),
            }),
            #[cfg(feature = "plain")]
            Out::Auth { user, pass } => Event::Authenticate(AuthRequest {
                mechanism: self.security.mechanism(),
                username: rx_range(self.rx, user),
                password: rx_range(self.rx, pass),
                public_key: None,
            }),
            #[cfg(feature = "curve")]
            Out::CurveAuth => Event::Authenticate(AuthRequest {
                mechanism: self.security.mechanism(),
                username: &[],
                password: &[],
                public_key: self.curve.as_ref().map(|c| c.peer_key),
            }),
            Out::Direct { len, more } => Event::DirectFrame { len, more },
            Out::Subscribe(_) => Event::Subscribe(data),
            Out::Cancel(_) => Event::Cancel(data),
            Out::PeerError(_) => Event::PeerError(data),
            Out::Closed(r) => Event::Closed(r),
        }
    }

    fn advance(&mut self, view: View) -> Option<Out> {
        loop {
            let step = match self.phase {
                Phase::Active => self.step_traffic(view),
                Phase::Handshake(hs) => self.step_handshake(hs, view),
                Phase::Greeting => self.step_greeting(view),
                Phase::Closed => {
                    if self.close_reported {
                        return None;
                    }
                    self.close_reported = true;
                    return self.close_reason.map(Out::Closed);
                }
            };
            match step {
                Step::Continue => {}
                Step::Emit(out) => return Some(out),
                Step::Stall => {
                    // A direct body already in the buffer is still the caller's to take.
                    if self.eof && !self.direct_body_buffered() {
                        self.fail(CloseReason::Eof, None);
                    } else {
                        return None;
                    }
                }
            }
        }
    }

    // Out of line on bare metal: one copy of the bounds checks for its callers.
    #[cfg_attr(target_os = "none", inline(never))]
    fn available(&self) -> &[u8] {
        self.rx.get(self.rx_start..self.rx_end).unwrap_or(&[])
    }

    fn step_greeting(&mut self, view: View) -> Step {
        let g = match Greeting::parse(self.available()) {
            Ok(Status::Complete(g)) => g,
            Ok(Status::Partial) => return Step::Stall,
            Err(e) => return self.protocol_error(ProtocolError::Greeting(e), None),
        };
        self.rx_start = self.rx_start.wrapping_add(GREETING_LEN);
        self.peer_major = g.major;
        self.peer_minor = g.minor;
        // RFC 37 §"The Security Mechanism": all 20 bytes must match ours. We never fall back
        // to another mechanism or version (CVE-2014-7202/9721).
        if g.mechanism != self.security.mechanism() {
            return self.protocol_error(ProtocolError::MechanismMismatch, None);
        }
        debug!("zmtp: peer greeting {}.{}", g.major, g.minor);
        let (first, next) = match self.security {
            // NULL: "each peer sends READY" right after the greeting.
            Security::Null | Security::_Lifetime(_) => (Some(&b"READY"[..]), Hs::NullReady),
            // RFC 24: "The client authenticates itself to the server by sending a HELLO".
            #[cfg(feature = "plain")]
            Security::PlainClient { .. } => (Some(&b"HELLO"[..]), Hs::PlainWelcome),
            #[cfg(feature = "plain")]
            Security::PlainServer => (None, Hs::PlainHello),
            // RFC 26: "The client SHALL send a HELLO command after opening the stream
            // connection"; the server waits for it.
            #[cfg(feature = "curve")]
            Security::CurveClient { .. } => {
                if let Err(e) = self.curve_send_hello() {
                    return self.protocol_error(e, None);
                }
                (None, Hs::CurveWelcome)
            }
            #[cfg(feature = "curve")]
            Security::CurveServer { .. } => (None, Hs::CurveHello),
        };
        if let Some(name) = first {
            if self.write_handshake_command(name, view.ty).is_none() {
                // Checked in `new`: cannot happen with the buffer we were given.
                return self.protocol_error(ProtocolError::CommandTooLarge, None);
            }
        }
        self.phase = Phase::Handshake(next);
        Step::Continue
    }

    /// Splits the next whole command off the input; `Err(step)` when it cannot.
    fn next_command(&mut self, h: FrameHeader, hl: usize) -> Result<(usize, usize), Step> {
        let Some(total) = usize::try_from(h.size).ok().and_then(|s| s.checked_add(hl)) else {
            return Err(self.protocol_error(ProtocolError::CommandTooLarge, None));
        };
        if total > self.rx.len() {
            return Err(self.protocol_error(ProtocolError::CommandTooLarge, None));
        }
        if self.rx_end.wrapping_sub(self.rx_start) < total {
            return Err(Step::Stall);
        }
        let body = (
            self.rx_start.wrapping_add(hl),
            self.rx_start.wrapping_add(total),
        );
        self.rx_start = body.1;
        Ok(body)
    }

    fn header(&mut self) -> Result<(FrameHeader, usize), Step> {
        match FrameHeader::parse(self.available()) {
            Ok(Status::Complete(h)) => Ok(h),
            Ok(Status::Partial) => Err(Step::Stall),
            Err(e) => Err(self.protocol_error(ProtocolError::Frame(e), None)),
        }
    }

    fn step_handshake(&mut self, hs: Hs, view: View) -> Step {
        #[cfg(feature = "plain")]
        if hs == Hs::PlainDecision {
            // Nothing is read until the application has answered.
            return Step::Stall;
        }
        #[cfg(feature = "curve")]
        match hs {
            Hs::CurveDecision => return Step::Stall,
            Hs::CurveAccepted => return self.curve_report_ready(),
            _ => {}
        }
        let (h, hl) = match self.header() {
            Ok(h) => h,
            Err(s) => return s,
        };
        // RFC 37: during the handshake only the mechanism's commands may be sent.
        if !h.command {
            return self.protocol_error(ProtocolError::UnexpectedMessage, None);
        }
        let body = match self.next_command(h, hl) {
            Ok(b) => b,
            Err(s) => return s,
        };
        #[cfg(feature = "curve")]
        if self.curve.is_some() {
            return self.curve_handshake_command(hs, body);
        }
        match self.classify_handshake_command(hs, body, view.ty) {
            HsInput::PeerError(r) => self.peer_error(r),
            HsInput::Metadata {
                checked,
                range,
                reply,
            } => match checked {
                Ok((peer, id)) => {
                    if let Some(name) = reply {
                        if self.write_handshake_command(name, view.ty).is_none() {
                            return self.protocol_error(ProtocolError::CommandTooLarge, None);
                        }
                    }
                    self.ready(peer, range, id.unwrap_or((range.1, range.1)))
                }
                Err((e, why)) => self.protocol_error(e, Some(why)),
            },
            #[cfg(feature = "plain")]
            HsInput::Welcome => {
                if self.write_handshake_command(b"INITIATE", view.ty).is_none() {
                    return self.protocol_error(ProtocolError::CommandTooLarge, None);
                }
                self.phase = Phase::Handshake(Hs::PlainReady);
                Step::Continue
            }
            #[cfg(feature = "plain")]
            HsInput::Hello { user, pass } => {
                self.phase = Phase::Handshake(Hs::PlainDecision);
                self.auth = Some((user, pass));
                Step::Emit(Out::Auth { user, pass })
            }
            HsInput::Refuse(e, why) => self.protocol_error(e, why),
        }
    }

    /// Reads a handshake command into indices and verdicts, so acting on it needs no borrow.
    fn classify_handshake_command(
        &self,
        hs: Hs,
        body: (usize, usize),
        ours: SocketType,
    ) -> HsInput {
        let bytes = self.rx.get(body.0..body.1).unwrap_or(&[]);
        let tail = |part: &[u8]| (body.1.wrapping_sub(part.len()), body.1);
        let metadata = |meta: Metadata<'_>, reply| HsInput::Metadata {
            checked: check_ready(ours, meta, self.rx),
            range: tail(meta.as_bytes()),
            reply,
        };
        let cmd = match Command::parse(bytes) {
            Ok(c) => c,
            // A malformed ERROR is still a failure (libzmq's PLAIN server sends one).
            Err(_) if is_error_command(bytes) => return HsInput::PeerError(body),
            Err(CommandError::Metadata(e)) => {
                return HsInput::Refuse(e.into(), Some(reason::MALFORMED_METADATA))
            }
            Err(e) => return HsInput::Refuse(ProtocolError::Command(e), None),
        };
        match (hs, cmd) {
            (_, Command::Error { reason }) => HsInput::PeerError(tail(reason)),
            (Hs::NullReady, Command::Ready(meta)) => metadata(meta, None),
            #[cfg(feature = "plain")]
            (Hs::PlainReady, Command::Ready(meta)) => metadata(meta, None),
            // RFC 24: "initiate = command-size %d8 "INITIATE" metadata", answered by READY.
            #[cfg(feature = "plain")]
            (
                Hs::PlainInitiate,
                Command::Other {
                    name: b"INITIATE",
                    data,
                },
            ) => match Metadata::parse(data) {
                Ok(meta) => metadata(meta, Some(&b"READY"[..])),
                Err(e) => HsInput::Refuse(e.into(), Some(reason::MALFORMED_METADATA)),
            },
            // RFC 24: "welcome = command-size %d7 "WELCOME"": nothing after the name.
            #[cfg(feature = "plain")]
            (
                Hs::PlainWelcome,
                Command::Other {
                    name: b"WELCOME",
                    data: [],
                },
            ) => HsInput::Welcome,
            #[cfg(feature = "plain")]
            (
                Hs::PlainHello,
                Command::Other {
                    name: b"HELLO",
                    data,
                },
            ) => match crate::mechanism::plain::parse_hello(data) {
                Ok((user, pass)) => HsInput::Hello {
                    user: offset_range(self.rx, user).unwrap_or((0, 0)),
                    pass: offset_range(self.rx, pass).unwrap_or((0, 0)),
                },
                Err(_) => HsInput::Refuse(ProtocolError::MalformedHello, None),
            },
            _ => HsInput::Refuse(ProtocolError::UnexpectedCommand, None),
        }
    }

    /// The request of the last [`Event::Authenticate`], while it waits for an answer.
    pub fn pending_auth(&self) -> Option<AuthRequest<'_>> {
        #[cfg(feature = "plain")]
        if self.phase == Phase::Handshake(Hs::PlainDecision) {
            let ((u0, u1), (p0, p1)) = self.auth?;
            return Some(AuthRequest {
                mechanism: self.security.mechanism(),
                username: self.rx.get(u0..u1)?,
                password: self.rx.get(p0..p1)?,
                public_key: None,
            });
        }
        #[cfg(feature = "curve")]
        if self.phase == Phase::Handshake(Hs::CurveDecision) {
            return Some(AuthRequest {
                mechanism: self.security.mechanism(),
                username: &[],
                password: &[],
                public_key: self.curve.as_ref().map(|c| c.peer_key),
            });
        }
        None
    }

    /// Lets the client whose [`Event::Authenticate`] was just reported in (RFC 24: the
    /// server "replies with a WELCOME command"; RFC 26: the server "SHALL send a READY
    /// command", after which [`Event::HandshakeComplete`] follows). Does nothing if no
    /// decision is pending.
    pub fn accept_peer(&mut self) {
        #[cfg(feature = "curve")]
        if self.phase == Phase::Handshake(Hs::CurveDecision) {
            self.curve_accept();
        }
        #[cfg(feature = "plain")]
        if self.phase == Phase::Handshake(Hs::PlainDecision) {
            if self
                .write_handshake_command(b"WELCOME", self.socket_type)
                .is_none()
            {
                self.fail(CloseReason::Protocol(ProtocolError::CommandTooLarge), None);
                return;
            }
            self.phase = Phase::Handshake(Hs::PlainInitiate);
        }
    }

    /// Turns away the client whose [`Event::Authenticate`] was just reported: an ERROR with
    /// `status` as its reason (a ZAP status code such as `400`, as libzmq sends), then close.
    /// Does nothing if no decision is pending.
    pub fn reject_peer(&mut self, status: &'static [u8]) {
        #[cfg(feature = "plain")]
        if self.phase == Phase::Handshake(Hs::PlainDecision) {
            self.fail(CloseReason::AuthRejected, Some(status));
        }
        // CURVE: libzmq answers a ZAP refusal with ERROR too (still unencrypted: no READY
        // has been sent).
        #[cfg(feature = "curve")]
        if self.phase == Phase::Handshake(Hs::CurveDecision) {
            self.curve_held = None;
            self.fail(CloseReason::AuthRejected, Some(status));
        }
        let _ = status;
    }

    fn ready(&mut self, peer: SocketType, meta: (usize, usize), identity: (usize, usize)) -> Step {
        self.peer_socket_type = Some(peer);
        self.phase = Phase::Active;
        self.handshake_timed = false;
        self.next_ping = self.now.plus_micros(self.heartbeat_interval);
        debug!("zmtp: handshake complete with {}", peer);
        Step::Emit(Out::Ready {
            meta,
            identity,
            socket_type: peer,
        })
    }

    #[inline]
    fn step_traffic(&mut self, view: View) -> Step {
        if let Some(c) = self.chunk {
            return self.step_chunk(c);
        }
        let (h, hl) = match self.header() {
            Ok(h) => h,
            Err(s) => return s,
        };
        #[cfg(feature = "curve")]
        if self.curve_armed {
            return self.curve_step_message(h, hl, view);
        }
        if h.command {
            let body = match self.next_command(h, hl) {
                Ok(b) => b,
                Err(s) => return s,
            };
            return self.handle_command(body, view.subscriptions);
        }
        // RFC 37 has no size limit; ours are configuration (libzmq's ZMQ_MAXMSGSIZE), checked
        // before the body is read.
        if h.size > self.max_frame {
            return self.protocol_error(ProtocolError::FrameTooLarge, None);
        }
        let msg = if self.in_message {
            self.message_size.saturating_add(h.size)
        } else {
            h.size
        };
        if msg > self.max_message {
            return self.protocol_error(ProtocolError::MessageTooLarge, None);
        }
        let first = !self.in_message;
        // A direct frame's body the caller reads into its own memory (`direct_body`).
        let direct = h.size >= self.direct_threshold;
        let whole = usize::try_from(h.size)
            .ok()
            .and_then(|s| s.checked_add(hl))
            .filter(|&t| t <= self.rx.len() && !direct);
        let Some(total) = whole else {
            // Direct, or larger than the buffer: stream the body.
            self.rx_start = self.rx_start.wrapping_add(hl);
            self.message_size = msg;
            self.in_message = h.more;
            self.chunk = Some(ChunkState {
                offset: 0,
                len: h.size,
                more: h.more,
                direct,
            });
            return match direct {
                true => Step::Emit(Out::Direct {
                    len: h.size,
                    more: h.more,
                }),
                false => Step::Continue,
            };
        };
        if self.rx_end.wrapping_sub(self.rx_start) < total {
            return Step::Stall;
        }
        let body = (
            self.rx_start.wrapping_add(hl),
            self.rx_start.wrapping_add(total),
        );
        self.rx_start = body.1;
        self.deliver_frame(body, h.more, msg, first, view)
    }

    /// A whole data frame has been read (and, with CURVE, opened): account for it and report
    /// it, or the ZMTP 3.0 subscription it stands for (see [`View`]).
    fn deliver_frame(
        &mut self,
        body: (usize, usize),
        more: bool,
        msg: u64,
        first: bool,
        view: View,
    ) -> Step {
        self.message_size = msg;
        self.in_message = more;
        if view.subscriptions && first && !more && view.ty.receives_subscriptions() {
            // ZMTP 3.0 subscriptions are messages: `01 topic` / `00 topic` (RFC 29).
            // An empty message has no tag: it is a message, not a subscription.
            let tag = self.rx.get(body.0..body.1).and_then(<[u8]>::first).copied();
            let topic = (body.0.saturating_add(1), body.1);
            match tag {
                Some(1) => return Step::Emit(Out::Subscribe(topic)),
                Some(0) => return Step::Emit(Out::Cancel(topic)),
                _ => {}
            }
        }
        Step::Emit(Out::Frame { body, more })
    }

    fn step_chunk(&mut self, c: ChunkState) -> Step {
        if c.direct {
            // Nothing until the caller has taken the body (`commit_direct`).
            return Step::Stall;
        }
        let avail = self.rx_end.wrapping_sub(self.rx_start);
        if avail == 0 {
            return Step::Stall;
        }
        let remaining = c.len.wrapping_sub(c.offset);
        let n = usize::try_from(remaining).map_or(avail, |r| r.min(avail));
        let body = (self.rx_start, self.rx_start.wrapping_add(n));
        self.rx_start = body.1;
        let next = c.offset.wrapping_add(n as u64);
        self.chunk = (next < c.len).then_some(ChunkState { offset: next, ..c });
        Step::Emit(Out::Chunk {
            body,
            offset: c.offset,
            len: c.len,
            more: c.more,
        })
    }

    /// A command in traffic; SUBSCRIBE and CANCEL are ignored unless `subscriptions`.
    fn handle_command(&mut self, body: (usize, usize), subscriptions: bool) -> Step {
        let bytes = self.rx.get(body.0..body.1).unwrap_or(&[]);
        match Command::parse(bytes) {
            Ok(Command::Ping {
                ttl_deciseconds,
                context,
            }) => {
                // RFC 37 §"Connection Heartbeating": answer with PONG echoing the context.
                // Queued at once so every PING gets its PONG; only when the transmit buffer
                // is full (or a streamed frame is unfinished) does a newer PONG replace one
                // not yet written.
                self.pong.set(context);
                self.pong_due = true;
                // "If the TTL is non-zero, the peer SHOULD close the connection if it receives
                // no traffic within that time." Computed in Duration: no 16-bit wrap.
                self.peer_ttl = u64::from(ttl_deciseconds) * 100_000;
                self.flush_control();
                trace!("zmtp: PING ttl={}", ttl_deciseconds);
                // A PING read long after its bytes arrived (the caller polled late, or a
                // socket held input back) may carry a TTL that has already run out: close
                // now rather than leave a deadline in the past (found by the socket fuzz
                // target: poll_timeout must be later than the time of the last input).
                if self.peer_ttl > 0 && self.now >= self.last_rx.plus_micros(self.peer_ttl) {
                    self.fail(CloseReason::TtlExpired, None);
                }
                Step::Continue
            }
            Ok(Command::Subscribe(t)) if subscriptions => {
                Step::Emit(Out::Subscribe((body.1.wrapping_sub(t.len()), body.1)))
            }
            Ok(Command::Cancel(t)) if subscriptions => {
                Step::Emit(Out::Cancel((body.1.wrapping_sub(t.len()), body.1)))
            }
            Ok(Command::Error { reason }) => {
                let r = (body.1.wrapping_sub(reason.len()), body.1);
                self.peer_error(r)
            }
            // PONG: liveness was counted on arrival. A second READY, unknown commands, and
            // SUBSCRIBE/CANCEL where they are not wanted are ignored (RFC 37: "a peer SHOULD
            // ignore commands it does not recognise").
            Ok(_) => Step::Continue,
            Err(_) if is_error_command(bytes) => self.peer_error(body),
            Err(e) => self.protocol_error(ProtocolError::Command(e), None),
        }
    }

    fn peer_error(&mut self, reason: (usize, usize)) -> Step {
        // An ERROR in a PLAIN/CURVE handshake is the server turning us away.
        let why = match self.phase {
            #[cfg(feature = "plain")]
            Phase::Handshake(Hs::PlainWelcome | Hs::PlainReady) => CloseReason::AuthFailed,
            #[cfg(feature = "curve")]
            Phase::Handshake(Hs::CurveWelcome | Hs::CurveReady) => CloseReason::AuthFailed,
            _ => CloseReason::PeerError,
        };
        self.fail(why, None);
        self.peer_error = Some(libzmq_error_reason(self.rx, reason).unwrap_or(reason));
        Step::Emit(Out::PeerError(reason))
    }

    fn protocol_error(&mut self, e: ProtocolError, error_reason: Option<&'static [u8]>) -> Step {
        debug!("zmtp: closing: {}", e);
        self.fail(CloseReason::Protocol(e), error_reason);
        Step::Continue
    }

    /// Ends the session; `error_reason` queues an ERROR command first.
    fn fail(&mut self, reason: CloseReason, error_reason: Option<&'static [u8]>) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.fast_ok = false;
        self.close_reason = Some(reason);
        self.close_reported = false;
        self.rx_start = 0;
        self.rx_end = 0;
        self.chunk = None;
        self.pong_due = false;
        self.ping_due = false;
        // ERROR can only follow whole frames.
        self.error_out = error_reason.filter(|_| self.tx_frame_remaining == 0);
        self.flush_control();
    }

    // ---------------------------------------------------------------- time

    /// Advances time: fires the handshake timeout, heartbeat PINGs, our heartbeat timeout and
    /// the peer's TTL. Early or repeated calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let now = self.now;
        match self.phase {
            Phase::Greeting | Phase::Handshake(_) => {
                if self.handshake_timed && now >= self.handshake_deadline {
                    self.fail(CloseReason::HandshakeTimeout, None);
                }
                // RFC 26: the cookie key is discarded "after a short interval"; INITIATE
                // cannot come any more.
                #[cfg(feature = "curve")]
                if self.cookie_deadline.is_some_and(|d| now >= d) {
                    self.fail(CloseReason::HandshakeTimeout, None);
                }
            }
            Phase::Active => {
                if self.ping_timeout_armed && now >= self.ping_timeout_at {
                    self.fail(CloseReason::HeartbeatTimeout, None);
                    return;
                }
                if self.peer_ttl > 0 && now >= self.last_rx.plus_micros(self.peer_ttl) {
                    self.fail(CloseReason::TtlExpired, None);
                    return;
                }
                if self.heartbeats && now >= self.next_ping {
                    self.ping_due = true;
                    self.next_ping = now.plus_micros(self.heartbeat_interval);
                    if !self.ping_timeout_armed {
                        if let Some(t) = self.heartbeat_timeout {
                            self.ping_timeout_armed = true;
                            self.ping_timeout_at = now.plus_micros(t);
                        }
                    }
                    self.flush_control();
                }
            }
            Phase::Closed => {}
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            #[cfg(feature = "curve")]
            Phase::Greeting | Phase::Handshake(_) => {
                match (
                    self.handshake_timed.then_some(self.handshake_deadline),
                    self.cookie_deadline,
                ) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            #[cfg(not(feature = "curve"))]
            Phase::Greeting | Phase::Handshake(_) => {
                self.handshake_timed.then_some(self.handshake_deadline)
            }
            Phase::Active => {
                // The earliest of the armed deadlines, in microseconds (MAX: none armed).
                let mut t = u64::MAX;
                if self.heartbeats {
                    t = self.next_ping.as_micros();
                }
                if self.ping_timeout_armed {
                    t = t.min(self.ping_timeout_at.as_micros());
                }
                if self.peer_ttl > 0 {
                    t = t.min(self.last_rx.plus_micros(self.peer_ttl).as_micros());
                }
                (t != u64::MAX).then_some(Instant::from_micros(t))
            }
            Phase::Closed => None,
        }
    }

    // ---------------------------------------------------------------- output

    fn tx_visible_end(&self) -> usize {
        self.tx_end
    }

    /// Bytes to write to the transport now (possibly empty). Write any prefix of them, then
    /// call [`mark_transmitted`](Self::mark_transmitted).
    pub fn poll_transmit(&mut self) -> &[u8] {
        self.flush_control();
        self.tx
            .get(self.tx_start..self.tx_visible_end())
            .unwrap_or(&[])
    }

    /// Records that the first `n` bytes from [`poll_transmit`](Self::poll_transmit) were
    /// written. Partial writes are fine.
    pub fn mark_transmitted(&mut self, n: usize) -> Result<(), UsageError> {
        let pending = self.tx_visible_end().wrapping_sub(self.tx_start);
        if n > pending {
            return Err(UsageError::TransmitExceedsPending);
        }
        self.tx_start = self.tx_start.wrapping_add(n);
        if self.tx_start == self.tx_end {
            self.tx_start = 0;
            self.tx_end = 0;
        }
        self.flush_control();
        Ok(())
    }

    /// Space for `need` bytes at the end of the pending output, compacting if that helps.
    fn tx_reserve(&mut self, need: usize) -> Result<&mut [u8], SendError> {
        if need > self.tx.len() {
            return Err(SendError::TooLarge);
        }
        if self.tx.len().wrapping_sub(self.tx_end) < need {
            self.tx_compact();
        }
        let end = self.tx_end.checked_add(need).ok_or(SendError::TooLarge)?;
        self.tx
            .get_mut(self.tx_end..end)
            .ok_or(SendError::WouldBlock)
    }

    /// Moves pending output to the start of the transmit buffer.
    fn tx_compact(&mut self) {
        if self.tx_start > 0 {
            self.tx.copy_within(self.tx_start..self.tx_end, 0);
            self.tx_end = self.tx_end.wrapping_sub(self.tx_start);
            self.tx_start = 0;
        }
    }

    /// Writes pending PONG, PING and ERROR at a frame boundary, if they fit.
    fn flush_control(&mut self) {
        if self.tx_frame_remaining != 0 {
            return;
        }
        // Written as parts (RFC 37 §"Connection Heartbeating", §"The ERROR Command"): name
        // length and name, PING's TTL or ERROR's reason length, the rest.
        if self.pong_due {
            let ctx = self.pong;
            let context = ctx.as_slice();
            self.pong_due = !self.emit_control(Command::Pong { context }, &[b"\x04PONG", context]);
        }
        if self.ping_due {
            let ttl = self.heartbeat_ttl_ds;
            let c = Command::Ping {
                ttl_deciseconds: ttl,
                context: &[],
            };
            self.ping_due = !self.emit_control(c, &[b"\x04PING", &ttl.to_be_bytes()]);
        }
        if let Some(reason) = self.error_out {
            // Reasons are cut to 255 bytes where they are set.
            if let Ok(len) = u8::try_from(reason.len()) {
                let c = Command::Error { reason };
                if self.emit_control(c, &[b"\x05ERROR", &[len], reason]) {
                    self.error_out = None;
                }
            }
        }
    }

    /// Queues control command `c`, whose body is `parts`: as is, or (CURVE) sealed in a
    /// MESSAGE. The parts spare the plain path `Command`'s generic writer.
    fn emit_control(&mut self, c: Command<'_>, parts: &[&[u8]]) -> bool {
        #[cfg(feature = "curve")]
        if self.curve_armed {
            return self.curve_queue_command(c).is_ok();
        }
        let _ = c;
        let body = parts.iter().fold(0usize, |n, p| n.wrapping_add(p.len()));
        let need = body.wrapping_add(if body > 255 { 9 } else { 2 });
        let Ok(buf) = self.tx_reserve(need) else {
            return false;
        };
        let Some(n) = crate::wire::emit_parts(buf, parts) else {
            return false;
        };
        self.tx_end = self.tx_end.wrapping_add(n);
        true
    }

    /// Queues a command: as is, or sealed in a MESSAGE once CURVE is armed.
    fn queue_command(&mut self, c: Command<'_>) -> Result<(), SendError> {
        #[cfg(feature = "curve")]
        if self.curve_armed {
            return self.curve_queue_command(c);
        }
        let n = c.encoded_len();
        let buf = self.tx_reserve(n)?;
        c.emit(buf).map_err(|_| SendError::TooLarge)?;
        self.tx_end = self.tx_end.wrapping_add(n);
        Ok(())
    }

    fn check_send(&mut self) -> Result<(), SendError> {
        match self.phase {
            Phase::Closed => return Err(SendError::Closed),
            Phase::Greeting | Phase::Handshake(_) if !self.can_send() => {
                return Err(SendError::NotReady)
            }
            _ => {}
        }
        if self.tx_frame_remaining != 0 {
            return Err(SendError::FrameInProgress);
        }
        self.flush_control();
        Ok(())
    }

    /// Queues one data frame (`more`: further frames of this message follow). Bodies of 0-255
    /// bytes get a 1-byte size, larger ones an 8-byte size (RFC 37 §"Framing").
    ///
    /// Nothing is queued on error.
    pub fn send_frame(&mut self, data: &[u8], more: bool) -> Result<(), SendError> {
        self.send_frame_with(data.len(), more, |buf| {
            // `buf` is `data.len()` long; a checked copy all the same (no panic path).
            if let Some(dst) = buf.get_mut(..data.len()) {
                dst.copy_from_slice(data);
            }
        })
    }

    /// Queues one data frame of `len` bytes whose body `fill` writes straight into the
    /// transmit buffer (it gets a slice of exactly `len` bytes).
    pub fn send_frame_with(
        &mut self,
        len: usize,
        more: bool,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), SendError> {
        self.check_send()?;
        #[cfg(feature = "curve")]
        if self.curve_armed {
            return self.curve_queue_frame(len, more, fill);
        }
        let h = FrameHeader::data(len as u64, more);
        let hl = h.encoded_len();
        let need = hl.checked_add(len).ok_or(SendError::TooLarge)?;
        let buf = self.tx_reserve(need)?;
        let (head, body) = buf.split_at_mut_checked(hl).ok_or(SendError::TooLarge)?;
        h.emit(head).map_err(|_| SendError::TooLarge)?;
        fill(body);
        self.tx_end = self.tx_end.wrapping_add(need);
        Ok(())
    }

    /// Starts a data frame of `len` bytes whose body follows in
    /// [`write_frame_body`](Self::write_frame_body) calls; for bodies larger than the
    /// transmit buffer. No other frame or command goes out until the body is complete.
    ///
    /// Not with CURVE, which seals each frame whole: [`SendError::TooLarge`].
    pub fn start_frame(&mut self, len: u64, more: bool) -> Result<(), SendError> {
        self.check_send()?;
        #[cfg(feature = "curve")]
        if self.curve.is_some() {
            return Err(SendError::TooLarge);
        }
        if len >> 63 != 0 {
            return Err(SendError::TooLarge);
        }
        let h = FrameHeader::data(len, more);
        let hl = h.encoded_len();
        let buf = self.tx_reserve(hl)?;
        h.emit(buf).map_err(|_| SendError::TooLarge)?;
        self.tx_end = self.tx_end.wrapping_add(hl);
        self.tx_frame_remaining = len;
        self.flush_control();
        Ok(())
    }

    /// Copies as much of `data` as fits (and as the frame still owes) into the transmit
    /// buffer; returns how many bytes were taken. `Err(WouldBlock)` when none fit.
    pub fn write_frame_body(&mut self, data: &[u8]) -> Result<usize, SendError> {
        if self.phase == Phase::Closed {
            return Err(SendError::Closed);
        }
        if self.tx_frame_remaining == 0 {
            return Err(SendError::NoFrameInProgress);
        }
        let owed = usize::try_from(self.tx_frame_remaining).unwrap_or(usize::MAX);
        let want = data.len().min(owed);
        if want == 0 {
            return Ok(0);
        }
        if self.tx.len().wrapping_sub(self.tx_end) < want {
            self.tx_compact();
        }
        let free = self.tx.len().wrapping_sub(self.tx_end);
        let n = want.min(free);
        if n == 0 {
            return Err(SendError::WouldBlock);
        }
        // Both exactly `n` long (no length check left to fail).
        let (Some(out), Some(src)) = (
            self.tx.get_mut(self.tx_end..).and_then(|t| t.get_mut(..n)),
            data.get(..n),
        ) else {
            return Err(SendError::WouldBlock);
        };
        out.copy_from_slice(src);
        self.tx_end = self.tx_end.wrapping_add(n);
        self.tx_frame_remaining = self.tx_frame_remaining.wrapping_sub(n as u64);
        self.flush_control();
        Ok(n)
    }

    /// Bytes a caller can queue as whole frames now, headers included, keeping room for
    /// the PING, PONG and ERROR the session may have to write first. 0 while sending is not
    /// allowed or a streamed frame is unfinished. With CURVE each frame also takes
    /// [`frame_overhead`](Self::frame_overhead) bytes.
    #[cfg_attr(target_os = "none", inline(never))]
    pub fn frame_space(&self) -> usize {
        if !self.can_send() || self.tx_frame_remaining != 0 {
            return 0;
        }
        #[cfg(feature = "curve")]
        let reserve = if self.curve.is_some() {
            CURVE_CONTROL_RESERVE
        } else {
            CONTROL_RESERVE
        };
        #[cfg(not(feature = "curve"))]
        let reserve = CONTROL_RESERVE;
        let pending = self.tx_end.wrapping_sub(self.tx_start);
        self.tx.len().wrapping_sub(pending).saturating_sub(reserve)
    }

    /// Bytes each frame takes on the wire beyond its header and body: 0, or with CURVE the
    /// MESSAGE's name, nonce, tag and flags
    /// (33 bytes, `mechanism::curve::MESSAGE_OVERHEAD`).
    pub fn frame_overhead(&self) -> usize {
        #[cfg(feature = "curve")]
        if self.curve.is_some() {
            return crate::mechanism::curve::MESSAGE_OVERHEAD;
        }
        0
    }

    /// The largest data-frame body this session can ever send, when its frames cannot be
    /// streamed: with CURVE every frame is sealed whole into one MESSAGE (RFC 26 §"The
    /// MESSAGE Command"), so it must fit the transmit buffer with its overhead and the room
    /// kept for control commands (`curve_max_frame_body`, feature `curve`). `None`: any size (frames larger
    /// than the buffer go out with [`start_frame`](Self::start_frame)).
    pub fn max_frame_body(&self) -> Option<usize> {
        #[cfg(feature = "curve")]
        if self.curve.is_some() {
            return Some(curve_max_frame_body(self.tx.len()));
        }
        None
    }

    /// Size of the transmit buffer.
    pub fn tx_capacity(&self) -> usize {
        self.tx.len()
    }

    /// Bytes of body the frame started with [`start_frame`](Self::start_frame) still owes.
    pub fn frame_body_remaining(&self) -> u64 {
        self.tx_frame_remaining
    }

    /// The body length of the next data frame to be delivered in chunks
    /// ([`Event::FrameChunk`]), when none of its body has been delivered yet: its header is
    /// in, and the frame is larger than the receive buffer. `None` otherwise (a whole frame,
    /// a command, an incomplete header, a frame already under way, or CURVE, whose frames
    /// always come whole).
    ///
    /// A caller that queues messages can look before it polls: a frame it has no room for
    /// now can wait in the session until room is made, rather than be torn.
    pub fn next_streamed_frame_len(&self) -> Option<u64> {
        if self.phase != Phase::Active {
            return None;
        }
        if let Some(c) = self.chunk {
            return (c.offset == 0 && !c.direct).then_some(c.len);
        }
        #[cfg(feature = "curve")]
        if self.curve_armed {
            return None;
        }
        match FrameHeader::parse(self.available()) {
            Ok(Status::Complete((h, hl))) if !h.command && h.size < self.direct_threshold => {
                let whole = usize::try_from(h.size)
                    .ok()
                    .and_then(|s| s.checked_add(hl))
                    .is_some_and(|t| t <= self.rx.len());
                (!whole).then_some(h.size)
            }
            _ => None,
        }
    }

    // ---------------------------------------------------------------- direct bodies

    /// Data frames of at least `bytes` bytes (`None`: none, the default) are announced with
    /// [`Event::DirectFrame`] and their bodies left to the caller, who reads them straight
    /// into its own memory: [`direct_body`](Self::direct_body) shows what is already in the
    /// receive buffer and how much is owed, [`commit_direct`](Self::commit_direct) records
    /// what the caller took. The frame and message limits are checked on the header, before
    /// the event. Not with CURVE, whose frames must be opened here (they come as
    /// [`Event::Frame`]s). A threshold of 0 counts as 1.
    pub fn set_direct_threshold(&mut self, bytes: Option<u64>) {
        self.direct_threshold = bytes.map_or(u64::MAX, |b| b.max(1));
        self.refresh_fast_path();
    }

    /// The body of the [`Event::DirectFrame`] being taken, or `None` (no direct frame under
    /// way, or the session is over).
    pub fn direct_body(&self) -> Option<DirectBody<'_>> {
        if self.phase != Phase::Active {
            return None;
        }
        let c = self.chunk.filter(|c| c.direct)?;
        let owed = c.len.wrapping_sub(c.offset);
        let avail = self.available();
        let n = usize::try_from(owed).map_or(avail.len(), |o| o.min(avail.len()));
        Some(DirectBody {
            len: c.len,
            offset: c.offset,
            buffered: avail.get(..n).unwrap_or(&[]),
            more: c.more,
        })
    }

    /// Whether a direct frame's whole remaining body is in the receive buffer.
    fn direct_body_buffered(&self) -> bool {
        self.direct_body()
            .is_some_and(|d| d.buffered.len() as u64 == d.owed())
    }

    /// Records that the caller now holds `n` more bytes of the direct frame's body: first
    /// the [`buffered`](DirectBody::buffered) ones (it copied them), then bytes it read from
    /// the transport itself. Reading from the transport is only right once nothing is
    /// buffered (the buffered bytes come first on the wire). Bytes read count as life for
    /// the heartbeat. Once the body is complete, drain [`poll_event`](Self::poll_event).
    ///
    /// `Err(CommitExceedsWindow)` if no direct frame is under way or `n` is more than it
    /// owes; nothing changes then.
    pub fn commit_direct(&mut self, n: usize, now: Instant) -> Result<(), UsageError> {
        let Some(d) = self.direct_body() else {
            return Err(UsageError::CommitExceedsWindow);
        };
        if n as u64 > d.owed() {
            return Err(UsageError::CommitExceedsWindow);
        }
        let from_buffer = n.min(d.buffered.len());
        let read = n.wrapping_sub(from_buffer);
        self.rx_start = self.rx_start.wrapping_add(from_buffer);
        if read > 0 {
            self.now = self.now.max(now);
            self.last_rx = self.now;
            self.ping_timeout_armed = false;
        }
        if let Some(c) = self.chunk.as_mut() {
            c.offset = c.offset.wrapping_add(n as u64);
            if c.offset >= c.len {
                self.chunk = None;
                self.refresh_fast_path();
            }
        }
        Ok(())
    }

    /// Records that the caller wrote `n` bytes of the body of the frame started with
    /// [`start_frame`](Self::start_frame) to the transport itself, from its own memory,
    /// right after everything [`poll_transmit`](Self::poll_transmit) gave (which must all be
    /// written first: `Err(TransmitExceedsPending)` otherwise, or if `n` is more than the
    /// frame owes). The zero-copy alternative to [`write_frame_body`](Self::write_frame_body),
    /// for NULL and PLAIN (a vectored write sends the header and the body together).
    pub fn mark_body_transmitted(&mut self, n: usize) -> Result<(), UsageError> {
        if n == 0 {
            return Ok(());
        }
        if self.tx_start != self.tx_end || n as u64 > self.tx_frame_remaining {
            return Err(UsageError::TransmitExceedsPending);
        }
        self.tx_frame_remaining = self.tx_frame_remaining.wrapping_sub(n as u64);
        self.flush_control();
        Ok(())
    }

    /// Subscribes the peer's PUB/XPUB to `topic`: a SUBSCRIBE command to a ZMTP 3.1 peer, a
    /// `01 topic` message to a 3.0 peer (RFC 37 §"The SUBSCRIBE Command", RFC 29).
    pub fn send_subscribe(&mut self, topic: &[u8]) -> Result<(), SendError> {
        self.send_subscription(true, topic)
    }

    /// Cancels a subscription: CANCEL to a 3.1 peer, `00 topic` to a 3.0 peer.
    pub fn send_cancel(&mut self, topic: &[u8]) -> Result<(), SendError> {
        self.send_subscription(false, topic)
    }

    fn send_subscription(&mut self, subscribe: bool, topic: &[u8]) -> Result<(), SendError> {
        self.check_send()?;
        if self.peer_major > 3 || self.peer_minor >= 1 {
            let c = if subscribe {
                Command::Subscribe(topic)
            } else {
                Command::Cancel(topic)
            };
            self.queue_command(c)
        } else {
            let len = topic.len().checked_add(1).ok_or(SendError::TooLarge)?;
            self.send_frame_with(len, false, |buf| {
                if let Some((tag, rest)) = buf.split_first_mut() {
                    *tag = u8::from(subscribe);
                    rest.copy_from_slice(topic);
                }
            })
        }
    }

    /// Closes the session from our side. Queued output stays queued: write it out until
    /// [`is_finished`](Self::is_finished), then close the transport.
    pub fn close(&mut self) {
        self.fail(CloseReason::Local, None);
    }

    /// Closes the session, telling the peer why with an ERROR command (RFC 37 §"The ERROR
    /// Command"). `reason` should be at most 255 printable ASCII bytes without spaces.
    pub fn close_with_error(&mut self, reason: &'static [u8]) {
        let reason = reason.get(..reason.len().min(255)).unwrap_or(&[]);
        self.fail(CloseReason::Local, Some(reason));
    }

    /// Closes the session because the peer broke a limit the caller enforces (the socket's
    /// receive queue), with [`CloseReason::Protocol`]`(e)` and an ERROR carrying `reason`.
    pub(crate) fn close_protocol_error(&mut self, e: ProtocolError, reason: &'static [u8]) {
        let reason = reason.get(..reason.len().min(255)).unwrap_or(&[]);
        self.fail(CloseReason::Protocol(e), Some(reason));
    }
}

type Refusal = (ProtocolError, &'static [u8]);

/// RFC 37 §"The READY Command" and §"The Socket-Type Property": the peer's type must be
/// present, known and compatible; its identity (where `rx` holds it) valid.
fn check_ready(
    ours: SocketType,
    meta: Metadata<'_>,
    rx: &[u8],
) -> Result<(SocketType, Option<(usize, usize)>), Refusal> {
    let st = meta.get(b"Socket-Type").ok_or((
        ProtocolError::MissingSocketType,
        reason::MISSING_SOCKET_TYPE,
    ))?;
    let peer = SocketType::from_bytes(st).ok_or((
        ProtocolError::UnknownSocketType,
        reason::UNKNOWN_SOCKET_TYPE,
    ))?;
    if !ours.is_compatible_with(peer) {
        return Err((
            ProtocolError::IncompatibleSocketType(peer),
            reason::INCOMPATIBLE_SOCKET_TYPE,
        ));
    }
    let identity = meta.get(b"Identity").unwrap_or(&[]);
    // RFC 37: identities are 0-255 octets; ones starting with a zero octet are reserved (a
    // ROUTER generates those itself), so a ROUTER refuses them.
    if identity.len() > 255 || (ours == SocketType::Router && identity.first() == Some(&0)) {
        return Err((ProtocolError::InvalidIdentity, reason::INVALID_IDENTITY));
    }
    Ok((peer, offset_range(rx, identity)))
}

/// Whether a command body is named ERROR, even if the rest is malformed; also libzmq's
/// mangled `5E 'RROR'` (a C escape bug in its PLAIN server).
fn is_error_command(body: &[u8]) -> bool {
    let at =
        |r: core::ops::Range<usize>, name: &[u8]| body.get(r).is_some_and(|b| same_bytes(b, name));
    at(1..6, b"ERROR") || at(0..5, b"\x5eRROR")
}

/// libzmq's PLAIN server writes ERROR's name as the C literal `"\5ERROR"`, whose `\5E` is
/// one byte: `5E 'RROR'`, then a well-formed reason (`03 '400'`). Where that reason sits in
/// `rx`, if `body` is such a command.
fn libzmq_error_reason(rx: &[u8], body: (usize, usize)) -> Option<(usize, usize)> {
    let bytes = rx.get(body.0..body.1)?;
    let rest = bytes
        .split_at_checked(5)
        .filter(|(name, _)| same_bytes(name, b"\x5eRROR"))?
        .1;
    let (&len, reason) = rest.split_first()?;
    (reason.len() == usize::from(len)).then_some((body.1.wrapping_sub(reason.len()), body.1))
}

/// Where `part` (a sub-slice of `whole`) sits in `whole`.
fn offset_range(whole: &[u8], part: &[u8]) -> Option<(usize, usize)> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some((start, end))
}
