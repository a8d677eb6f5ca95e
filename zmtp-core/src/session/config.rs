use core::time::Duration;

use crate::error::ConfigError;
use crate::mechanism::Security;
use crate::wire::SocketType;

/// Smallest receive buffer for a CURVE session: HELLO and INITIATE must arrive whole.
#[cfg(feature = "curve")]
pub const CURVE_MIN_RX_BUFFER: usize = 512;

/// Which side opened the transport. With NULL the two behave the same; the adapter uses it to
/// decide who reconnects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Role {
    /// We connected to the peer.
    Connected,
    /// We accepted the peer's connection.
    Accepted,
}

/// How one session behaves. Build it with [`Config::new`] and set the public fields.
///
/// Defaults follow libzmq: no size limits, heartbeats off, handshake timeout 30 s.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Config<'a> {
    /// Our socket type, sent in READY's `Socket-Type` and checked against the peer's.
    pub socket_type: SocketType,
    /// Our identity (libzmq's `ZMQ_ROUTING_ID`), sent in READY by REQ, DEALER and ROUTER.
    /// 0-255 bytes, not starting with a zero byte. Read only by [`Session::new`](crate::Session::new).
    pub identity: &'a [u8],
    /// The security mechanism and our side of it (default NULL).
    pub security: Security<'a>,
    /// Largest frame body accepted; a larger frame closes the connection before its body is
    /// read. `None`: no limit (libzmq's `ZMQ_MAXMSGSIZE` = -1).
    pub max_frame_size: Option<u64>,
    /// Largest message (sum of its frames) accepted. `None`: no limit.
    pub max_message_size: Option<u64>,
    /// Send PING this often once the handshake is done (libzmq's `ZMQ_HEARTBEAT_IVL`).
    /// `None`: no heartbeats.
    pub heartbeat_interval: Option<Duration>,
    /// Close if nothing arrives this long after a PING (`ZMQ_HEARTBEAT_TIMEOUT`).
    /// `None`: the heartbeat interval.
    pub heartbeat_timeout: Option<Duration>,
    /// TTL we ask the peer to enforce, sent in our PINGs in deciseconds (`ZMQ_HEARTBEAT_TTL`,
    /// capped at 6553.5 s). `None`: 0, no TTL.
    pub heartbeat_ttl: Option<Duration>,
    /// Close if the handshake has not finished after this long (`ZMQ_HANDSHAKE_IVL`, default 30 s).
    /// `None`: never.
    pub handshake_timeout: Option<Duration>,
}

impl Config<'static> {
    /// Defaults for a socket of type `socket_type`.
    pub const fn new(socket_type: SocketType) -> Config<'static> {
        Config {
            socket_type,
            identity: &[],
            security: Security::Null,
            max_frame_size: None,
            max_message_size: None,
            heartbeat_interval: None,
            heartbeat_timeout: None,
            heartbeat_ttl: None,
            handshake_timeout: Some(Duration::from_secs(30)),
        }
    }
}

impl<'a> Config<'a> {
    /// Whether a session with this configuration can run on buffers of these sizes:
    /// the receive buffer holds [`MIN_RX_BUFFER`](crate::MIN_RX_BUFFER) bytes, the transmit
    /// buffer our greeting and largest handshake command, and the identity is valid.
    pub fn check_buffers(&self, rx: usize, tx: usize) -> Result<(), ConfigError> {
        if rx < crate::MIN_RX_BUFFER {
            return Err(ConfigError::RxBufferTooSmall);
        }
        // CURVE: the peer's HELLO (202 bytes on the wire) and INITIATE (266 + metadata) must
        // arrive whole.
        #[cfg(feature = "curve")]
        if self.security.is_curve() && rx < CURVE_MIN_RX_BUFFER {
            return Err(ConfigError::RxBufferTooSmall);
        }
        // RFC 37 §"The Identity Property": 0-255 octets; a leading zero octet is reserved.
        if self.identity.len() > 255 || self.identity.first() == Some(&0) {
            return Err(ConfigError::InvalidIdentity);
        }
        if tx < self.min_tx_buffer() {
            return Err(ConfigError::TxBufferTooSmall);
        }
        Ok(())
    }

    /// The smallest transmit buffer for this configuration: the greeting and the largest
    /// command of the handshake (READY/INITIATE with our metadata, or PLAIN's HELLO).
    pub fn min_tx_buffer(&self) -> usize {
        let ty = self.socket_type.as_str().len();
        let identity = if self.socket_type.sends_identity() {
            13 + self.identity.len()
        } else {
            0
        };
        let metadata = 9 + (1 + 11 + 4 + ty) + identity;
        let hello = match self.security {
            #[cfg(feature = "plain")]
            Security::PlainClient { username, password } => 8 + username.len() + password.len(),
            // CURVE: INITIATE (client) or READY (server) seal the metadata behind 257 or 30
            // bytes; HELLO is 200 and WELCOME 168.
            #[cfg(feature = "curve")]
            Security::CurveClient { .. } => {
                crate::mechanism::curve::INITIATE_MIN_LEN + metadata - 9
            }
            #[cfg(feature = "curve")]
            Security::CurveServer { .. } => crate::mechanism::curve::WELCOME_LEN
                .max(crate::mechanism::curve::READY_MIN_LEN + metadata - 9),
            _ => 0,
        };
        crate::wire::GREETING_LEN + crate::wire::MAX_HEADER_LEN + metadata.max(hello)
    }
    /// The same configuration with another identity.
    pub const fn with_identity<'b>(self, identity: &'b [u8]) -> Config<'b>
    where
        'a: 'b,
    {
        // Config is covariant: the shorter lifetime takes the rest of `self` as it is.
        let this: Config<'b> = self;
        Config { identity, ..this }
    }

    /// The same configuration with another security mechanism.
    pub const fn with_security<'b>(self, security: Security<'b>) -> Config<'b>
    where
        'a: 'b,
    {
        // Config is covariant: the shorter lifetime takes the rest of `self` as it is.
        let this: Config<'b> = self;
        Config { security, ..this }
    }
}
