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
            ProtocolError::Frame(e) => write!(f, "malformed frame: {e:?}"),
            ProtocolError::Command(e) => write!(f, "malformed command: {e:?}"),
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
