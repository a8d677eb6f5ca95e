//! Errors, split by who must act: the peer broke a rule ([`ProtocolError`], inside
//! [`CloseReason`]), the caller misused the API ([`UsageError`], [`SendError`]), or the
//! configuration is wrong ([`ConfigError`]). All are small, `Copy`, without lifetimes.

use core::fmt;

use crate::wire::{CommandError, FrameError, GreetingError, MetadataError, SocketType};

/// Which rule the peer broke. The connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ProtocolError {
    /// The greeting is not ZMTP 3.x.
    Greeting(GreetingError),
    /// The peer's mechanism is not ours (all 20 bytes are compared).
    MechanismMismatch,
    /// A malformed frame header.
    Frame(FrameError),
    /// A malformed command.
    Command(CommandError),
    /// A frame larger than the configured maximum frame size.
    FrameTooLarge,
    /// A message whose frames add up to more than the configured maximum message size.
    MessageTooLarge,
    /// A command larger than the receive buffer (commands are never streamed).
    CommandTooLarge,
    /// A data frame before the handshake finished.
    UnexpectedMessage,
    /// A command other than the one the handshake expects.
    UnexpectedCommand,
    /// READY without a `Socket-Type` property.
    MissingSocketType,
    /// A `Socket-Type` value that is not one of the eleven types.
    UnknownSocketType,
    /// A peer type we cannot talk to (for example PUB to a REQ).
    IncompatibleSocketType(SocketType),
    /// A PLAIN HELLO that does not follow RFC 24's grammar.
    MalformedHello,
    /// An `Identity` longer than 255 bytes, or (to a ROUTER) starting with a zero byte, which
    /// RFC 37 reserves.
    InvalidIdentity,
    /// A CURVE rule broken (RFC 25/26).
    Curve(CurveError),
}

/// How a CURVE peer broke RFC 26 (CurveZMQ) or RFC 25 (ZMTP-CURVE). The connection is closed
/// (RFC 26: "A server SHALL NOT send an ERROR command in response to an invalid MESSAGE").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CurveError {
    /// A command of the wrong size or with a wrong fixed field: HELLO not 200 bytes or with
    /// non-zero padding, WELCOME not 168, INITIATE under 257, READY under 30, MESSAGE under 33
    /// or not named MESSAGE.
    MalformedCommand,
    /// HELLO's CurveZMQ version is not 1.0.
    UnsupportedVersion,
    /// A box did not open: altered bytes, or the wrong keys (for example a client holding the
    /// wrong server key).
    BoxOpenFailed,
    /// INITIATE's cookie did not open with our cookie key, or names another connection.
    InvalidCookie,
    /// INITIATE's vouch did not open, or does not name this connection's C' and our key S.
    InvalidVouch,
    /// A short nonce not above the last one received (a replayed or reordered command).
    NonceReused,
    /// MESSAGE flags with reserved bits set, or COMMAND together with MORE.
    ReservedFlags,
    /// A command frame (flags `04`) after the handshake: everything must come as MESSAGE in a
    /// data frame.
    CommandFrame,
    /// A MESSAGE larger than the receive buffer: it can only be authenticated whole.
    MessageTooLarge,
    /// A public key of low order (the X25519 shared secret would be all zeros).
    WeakKey,
}

impl fmt::Display for CurveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CurveError::MalformedCommand => "malformed CURVE command",
            CurveError::UnsupportedVersion => "CurveZMQ version other than 1.0",
            CurveError::BoxOpenFailed => "CURVE box did not open (altered, or wrong keys)",
            CurveError::InvalidCookie => "invalid CURVE cookie",
            CurveError::InvalidVouch => "invalid CURVE vouch",
            CurveError::NonceReused => "CURVE short nonce replayed or out of order",
            CurveError::ReservedFlags => "CURVE MESSAGE flags invalid",
            CurveError::CommandFrame => "unencrypted command after the CURVE handshake",
            CurveError::MessageTooLarge => "CURVE MESSAGE larger than the receive buffer",
            CurveError::WeakKey => "CURVE public key of low order",
        })
    }
}

impl core::error::Error for CurveError {}

impl From<MetadataError> for ProtocolError {
    fn from(e: MetadataError) -> Self {
        ProtocolError::Command(CommandError::Metadata(e))
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Greeting(GreetingError::BadSignature) => {
                f.write_str("peer greeting has no ZMTP 3 signature")
            }
            ProtocolError::Greeting(GreetingError::UnsupportedVersion { major }) => {
                write!(f, "peer speaks ZMTP major version {major}, below 3")
            }
            ProtocolError::MechanismMismatch => f.write_str("peer security mechanism differs"),
            ProtocolError::Frame(e) => write!(f, "malformed frame: {e}"),
            ProtocolError::Command(e) => write!(f, "malformed command: {e}"),
            ProtocolError::FrameTooLarge => f.write_str("frame exceeds maximum frame size"),
            ProtocolError::MessageTooLarge => f.write_str("message exceeds maximum message size"),
            ProtocolError::CommandTooLarge => f.write_str("command larger than receive buffer"),
            ProtocolError::UnexpectedMessage => f.write_str("message before handshake finished"),
            ProtocolError::UnexpectedCommand => f.write_str("unexpected command in handshake"),
            ProtocolError::MissingSocketType => f.write_str("peer sent no Socket-Type"),
            ProtocolError::UnknownSocketType => f.write_str("peer sent an unknown Socket-Type"),
            ProtocolError::IncompatibleSocketType(t) => {
                write!(f, "peer socket type {t} is incompatible")
            }
            ProtocolError::InvalidIdentity => f.write_str("peer sent an invalid Identity"),
            ProtocolError::MalformedHello => f.write_str("malformed PLAIN HELLO"),
            ProtocolError::Curve(e) => write!(f, "CURVE: {e}"),
        }
    }
}

impl core::error::Error for ProtocolError {}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer broke a protocol rule.
    Protocol(ProtocolError),
    /// The peer sent ERROR (its reason came in the preceding [`Event::PeerError`]). RFC 37: the
    /// error is fatal; do not reconnect with the same credentials.
    ///
    /// [`Event::PeerError`]: crate::Event::PeerError
    PeerError,
    /// The server turned us away during a PLAIN/CURVE handshake with ERROR (or libzmq's
    /// malformed ERROR); its reason came in the preceding `Event::PeerError`. Reconnecting
    /// with the same credentials would fail again.
    AuthFailed,
    /// We rejected the client's credentials (`Session::reject_peer`).
    AuthRejected,
    /// The handshake did not finish within the handshake timeout.
    HandshakeTimeout,
    /// We sent PING and nothing arrived within the heartbeat timeout.
    HeartbeatTimeout,
    /// The peer's PING asked for a TTL and nothing arrived within it.
    TtlExpired,
    /// The peer closed the connection (end of stream).
    Eof,
    /// The application closed the session.
    Local,
}

impl CloseReason {
    /// Whether reconnecting makes sense (libzmq does not reconnect after an ERROR, nor after a
    /// peer that is not a ZMTP 3 peer of a compatible type).
    pub const fn should_reconnect(&self) -> bool {
        !matches!(
            self,
            CloseReason::PeerError
                | CloseReason::AuthFailed
                | CloseReason::AuthRejected
                | CloseReason::Local
                | CloseReason::Protocol(
                    ProtocolError::Greeting(_)
                        | ProtocolError::MechanismMismatch
                        | ProtocolError::IncompatibleSocketType(_)
                )
        )
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Protocol(e) => write!(f, "protocol error: {e}"),
            CloseReason::PeerError => f.write_str("peer sent ERROR"),
            CloseReason::AuthFailed => f.write_str("authentication failed"),
            CloseReason::AuthRejected => f.write_str("peer's credentials rejected"),
            CloseReason::HandshakeTimeout => f.write_str("handshake timed out"),
            CloseReason::HeartbeatTimeout => f.write_str("heartbeat timed out"),
            CloseReason::TtlExpired => f.write_str("peer heartbeat TTL expired"),
            CloseReason::Eof => f.write_str("peer closed the connection"),
            CloseReason::Local => f.write_str("closed locally"),
        }
    }
}

impl core::error::Error for CloseReason {}

/// Why a send was refused. Nothing was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SendError {
    /// The handshake has not got far enough (our READY is not queued yet).
    NotReady,
    /// Not enough free transmit buffer now: transmit what [`poll_transmit`] returns, then retry.
    ///
    /// [`poll_transmit`]: crate::Session::poll_transmit
    WouldBlock,
    /// The frame can never fit the transmit buffer whole: stream it with `start_frame` and
    /// `write_frame_body`. With CURVE, which seals each frame whole, frames cannot be
    /// streamed and `start_frame` returns this too.
    TooLarge,
    /// A streamed frame is unfinished: write the rest of its body first.
    FrameInProgress,
    /// `write_frame_body` without `start_frame`.
    NoFrameInProgress,
    /// The session is closed.
    Closed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::NotReady => "handshake not ready for sending",
            SendError::WouldBlock => "transmit buffer full",
            SendError::TooLarge => "frame larger than the transmit buffer",
            SendError::FrameInProgress => "a streamed frame is unfinished",
            SendError::NoFrameInProgress => "no streamed frame in progress",
            SendError::Closed => "session closed",
        })
    }
}

impl core::error::Error for SendError {}

/// The caller broke the API contract. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum UsageError {
    /// `commit_received(n)` with `n` larger than the window `recv_window` gave.
    CommitExceedsWindow,
    /// `mark_transmitted(n)` with `n` larger than what `poll_transmit` gave.
    TransmitExceedsPending,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UsageError::CommitExceedsWindow => "committed more bytes than the receive window",
            UsageError::TransmitExceedsPending => "marked more bytes transmitted than pending",
        })
    }
}

impl core::error::Error for UsageError {}

/// The configuration cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// The receive buffer is smaller than [`MIN_RX_BUFFER`](crate::MIN_RX_BUFFER).
    RxBufferTooSmall,
    /// The transmit buffer cannot hold our greeting and handshake.
    TxBufferTooSmall,
    /// The identity is longer than 255 bytes or starts with a zero byte (RFC 37 reserves those).
    InvalidIdentity,
    /// CURVE needs per-connection randomness: start the session with `Session::new_curve`.
    MissingRandomness,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::RxBufferTooSmall => "receive buffer too small",
            ConfigError::TxBufferTooSmall => "transmit buffer too small for the handshake",
            ConfigError::InvalidIdentity => "identity longer than 255 bytes or starting with 0",
            ConfigError::MissingRandomness => "CURVE session started without randomness",
        })
    }
}

impl core::error::Error for ConfigError {}

// Display for the error types of `wire` and `socket`: kept here, with the others, so every
// error of the crate reads the same way (lower case, no trailing period, the rule named).

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::ReservedFlags(flags) => {
                write!(f, "frame flags {flags:#04x} set reserved bits 3-7")
            }
            FrameError::CommandWithMore => f.write_str("command frame with the MORE flag set"),
            FrameError::SizeOverflow => {
                f.write_str("long frame size with its most significant bit set")
            }
        }
    }
}

impl core::error::Error for FrameError {}

impl fmt::Display for GreetingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GreetingError::BadSignature => f.write_str("greeting has no ZMTP 3 signature"),
            GreetingError::UnsupportedVersion { major } => {
                write!(f, "greeting of ZMTP major version {major}, below 3")
            }
        }
    }
}

impl core::error::Error for GreetingError {}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetadataError::EmptyName => "metadata property with an empty name",
            MetadataError::InvalidName => "metadata property name outside A-Z a-z 0-9 - _ . +",
            MetadataError::Truncated => "metadata property runs past the end of the list",
            MetadataError::ValueTooLong => "metadata value size of 2^31 bytes or more",
        })
    }
}

impl core::error::Error for MetadataError {}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::EmptyName => f.write_str("command with an empty name"),
            CommandError::NameOverrun => f.write_str("command name runs past the frame"),
            CommandError::InvalidName => f.write_str("command name not ASCII letters"),
            CommandError::Metadata(e) => write!(f, "READY: {e}"),
            CommandError::MalformedError => f.write_str("ERROR reason length does not match"),
            CommandError::MalformedPing => {
                f.write_str("PING without its TTL or with a context over 16 bytes")
            }
            CommandError::MalformedPong => f.write_str("PONG with a context over 16 bytes"),
        }
    }
}

impl core::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            CommandError::Metadata(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for crate::wire::WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            crate::wire::WriteError::Invalid => {
                "metadata property name or value not allowed (name 1-255 bytes of A-Z a-z 0-9 \
                 - _ . +, value under 2^31 bytes)"
            }
            crate::wire::WriteError::BufferTooSmall => "no room in the buffer for the property",
        })
    }
}

impl core::error::Error for crate::wire::WriteError {}

impl fmt::Display for crate::socket::AddPeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            crate::socket::AddPeerError::NoFreeSlot => f.write_str("every peer slot is in use"),
            crate::socket::AddPeerError::Config(e) => write!(f, "peer slot unusable: {e}"),
        }
    }
}

impl core::error::Error for crate::socket::AddPeerError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            crate::socket::AddPeerError::Config(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for crate::socket::SocketSendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::socket::SocketSendError as E;
        f.write_str(match self {
            E::WouldBlock => "no peer can take the message now",
            E::HostUnreachable => "no peer with this routing id",
            E::NotAllowed => "the socket type cannot send now",
            E::Empty => "message without the frames it needs",
            E::TooLarge => "message larger than a peer's queues",
            E::SubscriptionsFull => "no room for another subscription",
        })
    }
}

impl core::error::Error for crate::socket::SocketSendError {}

impl fmt::Display for crate::socket::SocketRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            crate::socket::SocketRecvError::WouldBlock => "nothing to receive now",
            crate::socket::SocketRecvError::NotAllowed => "the socket type cannot receive now",
        })
    }
}

impl core::error::Error for crate::socket::SocketRecvError {}

#[cfg(test)]
mod display_tests {
    use super::*;
    use crate::mechanism::z85::Z85Error;
    use crate::socket::{AddPeerError, SocketRecvError, SocketSendError};
    use crate::wire::{BufferTooSmall, WriteError};

    /// Every variant of every public error type, each once. The `exhaustive` match below
    /// stops compiling when a variant is added, so it cannot be missed here.
    fn every_error() -> Vec<(&'static str, String)> {
        let mut v: Vec<(&str, String)> = Vec::new();
        let mut add = |name: &'static str, e: &dyn core::error::Error| {
            v.push((name, e.to_string()));
        };
        let frame = [
            FrameError::ReservedFlags(0x08),
            FrameError::CommandWithMore,
            FrameError::SizeOverflow,
        ];
        let greeting = [
            GreetingError::BadSignature,
            GreetingError::UnsupportedVersion { major: 2 },
        ];
        let metadata = [
            MetadataError::EmptyName,
            MetadataError::InvalidName,
            MetadataError::Truncated,
            MetadataError::ValueTooLong,
        ];
        let command = [
            CommandError::EmptyName,
            CommandError::NameOverrun,
            CommandError::InvalidName,
            CommandError::Metadata(MetadataError::Truncated),
            CommandError::MalformedError,
            CommandError::MalformedPing,
            CommandError::MalformedPong,
        ];
        let curve = [
            CurveError::MalformedCommand,
            CurveError::UnsupportedVersion,
            CurveError::BoxOpenFailed,
            CurveError::InvalidCookie,
            CurveError::InvalidVouch,
            CurveError::NonceReused,
            CurveError::ReservedFlags,
            CurveError::CommandFrame,
            CurveError::MessageTooLarge,
            CurveError::WeakKey,
        ];
        let protocol = [
            ProtocolError::Greeting(GreetingError::BadSignature),
            ProtocolError::MechanismMismatch,
            ProtocolError::Frame(FrameError::SizeOverflow),
            ProtocolError::Command(CommandError::MalformedPing),
            ProtocolError::FrameTooLarge,
            ProtocolError::MessageTooLarge,
            ProtocolError::CommandTooLarge,
            ProtocolError::UnexpectedMessage,
            ProtocolError::UnexpectedCommand,
            ProtocolError::MissingSocketType,
            ProtocolError::UnknownSocketType,
            ProtocolError::IncompatibleSocketType(SocketType::Pub),
            ProtocolError::MalformedHello,
            ProtocolError::InvalidIdentity,
            ProtocolError::Curve(CurveError::WeakKey),
        ];
        let close = [
            CloseReason::Protocol(ProtocolError::MalformedHello),
            CloseReason::PeerError,
            CloseReason::AuthFailed,
            CloseReason::AuthRejected,
            CloseReason::HandshakeTimeout,
            CloseReason::HeartbeatTimeout,
            CloseReason::TtlExpired,
            CloseReason::Eof,
            CloseReason::Local,
        ];
        let send = [
            SendError::NotReady,
            SendError::WouldBlock,
            SendError::TooLarge,
            SendError::FrameInProgress,
            SendError::NoFrameInProgress,
            SendError::Closed,
        ];
        let usage = [
            UsageError::CommitExceedsWindow,
            UsageError::TransmitExceedsPending,
        ];
        let config = [
            ConfigError::RxBufferTooSmall,
            ConfigError::TxBufferTooSmall,
            ConfigError::InvalidIdentity,
            ConfigError::MissingRandomness,
        ];
        let write = [WriteError::Invalid, WriteError::BufferTooSmall];
        let add_peer = [
            AddPeerError::NoFreeSlot,
            AddPeerError::Config(ConfigError::RxBufferTooSmall),
        ];
        let socket_send = [
            SocketSendError::WouldBlock,
            SocketSendError::HostUnreachable,
            SocketSendError::NotAllowed,
            SocketSendError::Empty,
            SocketSendError::TooLarge,
            SocketSendError::SubscriptionsFull,
        ];
        let socket_recv = [SocketRecvError::WouldBlock, SocketRecvError::NotAllowed];
        let z85 = [
            Z85Error::Length,
            Z85Error::InvalidChar,
            Z85Error::Overflow,
            Z85Error::BufferTooSmall,
        ];
        for e in &frame {
            add("FrameError", e);
        }
        for e in &greeting {
            add("GreetingError", e);
        }
        for e in &metadata {
            add("MetadataError", e);
        }
        for e in &command {
            add("CommandError", e);
        }
        for e in &curve {
            add("CurveError", e);
        }
        for e in &protocol {
            add("ProtocolError", e);
        }
        for e in &close {
            add("CloseReason", e);
        }
        for e in &send {
            add("SendError", e);
        }
        for e in &usage {
            add("UsageError", e);
        }
        for e in &config {
            add("ConfigError", e);
        }
        for e in &write {
            add("WriteError", e);
        }
        for e in &add_peer {
            add("AddPeerError", e);
        }
        for e in &socket_send {
            add("SocketSendError", e);
        }
        for e in &socket_recv {
            add("SocketRecvError", e);
        }
        for e in &z85 {
            add("Z85Error", e);
        }
        add("BufferTooSmall", &BufferTooSmall);
        v
    }

    /// Compiles only while the lists above name every variant (inside the crate,
    /// `#[non_exhaustive]` does not stop an exhaustive match).
    #[allow(dead_code, clippy::too_many_arguments)]
    fn exhaustive(
        f: FrameError,
        g: GreetingError,
        m: MetadataError,
        c: CommandError,
        cu: CurveError,
        p: ProtocolError,
        cl: CloseReason,
        s: SendError,
        u: UsageError,
        co: ConfigError,
        w: WriteError,
        a: AddPeerError,
        ss: SocketSendError,
        sr: SocketRecvError,
        z: Z85Error,
    ) -> usize {
        use CommandError as C;
        use ProtocolError as P;
        let f = match f {
            FrameError::ReservedFlags(_)
            | FrameError::CommandWithMore
            | FrameError::SizeOverflow => 3,
        };
        let g = match g {
            GreetingError::BadSignature | GreetingError::UnsupportedVersion { .. } => 2,
        };
        let m = match m {
            MetadataError::EmptyName
            | MetadataError::InvalidName
            | MetadataError::Truncated
            | MetadataError::ValueTooLong => 4,
        };
        let c = match c {
            C::EmptyName
            | C::NameOverrun
            | C::InvalidName
            | C::Metadata(_)
            | C::MalformedError
            | C::MalformedPing
            | C::MalformedPong => 7,
        };
        let cu = match cu {
            CurveError::MalformedCommand
            | CurveError::UnsupportedVersion
            | CurveError::BoxOpenFailed
            | CurveError::InvalidCookie
            | CurveError::InvalidVouch
            | CurveError::NonceReused
            | CurveError::ReservedFlags
            | CurveError::CommandFrame
            | CurveError::MessageTooLarge
            | CurveError::WeakKey => 10,
        };
        let p = match p {
            P::Greeting(_)
            | P::MechanismMismatch
            | P::Frame(_)
            | P::Command(_)
            | P::FrameTooLarge
            | P::MessageTooLarge
            | P::CommandTooLarge
            | P::UnexpectedMessage
            | P::UnexpectedCommand
            | P::MissingSocketType
            | P::UnknownSocketType
            | P::IncompatibleSocketType(_)
            | P::MalformedHello
            | P::InvalidIdentity
            | P::Curve(_) => 15,
        };
        let cl = match cl {
            CloseReason::Protocol(_)
            | CloseReason::PeerError
            | CloseReason::AuthFailed
            | CloseReason::AuthRejected
            | CloseReason::HandshakeTimeout
            | CloseReason::HeartbeatTimeout
            | CloseReason::TtlExpired
            | CloseReason::Eof
            | CloseReason::Local => 9,
        };
        let s = match s {
            SendError::NotReady
            | SendError::WouldBlock
            | SendError::TooLarge
            | SendError::FrameInProgress
            | SendError::NoFrameInProgress
            | SendError::Closed => 6,
        };
        let u = match u {
            UsageError::CommitExceedsWindow | UsageError::TransmitExceedsPending => 2,
        };
        let co = match co {
            ConfigError::RxBufferTooSmall
            | ConfigError::TxBufferTooSmall
            | ConfigError::InvalidIdentity
            | ConfigError::MissingRandomness => 4,
        };
        let w = match w {
            WriteError::Invalid | WriteError::BufferTooSmall => 2,
        };
        let a = match a {
            AddPeerError::NoFreeSlot | AddPeerError::Config(_) => 2,
        };
        let ss = match ss {
            SocketSendError::WouldBlock
            | SocketSendError::HostUnreachable
            | SocketSendError::NotAllowed
            | SocketSendError::Empty
            | SocketSendError::TooLarge
            | SocketSendError::SubscriptionsFull => 6,
        };
        let sr = match sr {
            SocketRecvError::WouldBlock | SocketRecvError::NotAllowed => 2,
        };
        let z = match z {
            Z85Error::Length
            | Z85Error::InvalidChar
            | Z85Error::Overflow
            | Z85Error::BufferTooSmall => 4,
        };
        f + g + m + c + cu + p + cl + s + u + co + w + a + ss + sr + z
    }

    #[test]
    fn every_error_has_a_message() {
        let all = every_error();
        // 3 + 2 + 4 + 7 + 10 + 15 + 9 + 6 + 2 + 4 + 2 + 2 + 6 + 2 + 4 variants, and BufferTooSmall.
        assert_eq!(all.len(), 79);
        for (name, text) in &all {
            assert!(!text.trim().is_empty(), "{name}: empty message");
            assert!(!text.ends_with('.'), "{name}: {text:?} ends with a period");
            assert!(
                !text.contains("Error") && !text.contains('{'),
                "{name}: {text:?} looks like Debug output"
            );
        }
        // Each variant says something different within its type.
        for (i, (name, text)) in all.iter().enumerate() {
            for (other_name, other) in &all[..i] {
                assert!(
                    name != other_name || text != other,
                    "{name}: two variants both say {text:?}"
                );
            }
        }
    }

    #[test]
    fn nested_errors_show_their_cause() {
        let e = ProtocolError::Command(CommandError::Metadata(MetadataError::Truncated));
        assert_eq!(
            e.to_string(),
            "malformed command: READY: metadata property runs past the end of the list"
        );
        let e = CloseReason::Protocol(ProtocolError::Frame(FrameError::ReservedFlags(0x81)));
        assert_eq!(
            e.to_string(),
            "protocol error: malformed frame: frame flags 0x81 set reserved bits 3-7"
        );
        let source = core::error::Error::source(&CommandError::Metadata(MetadataError::EmptyName));
        assert!(source.is_some());
    }
}
