//! Security mechanisms: what each side sends and checks between the greeting and the first
//! message (RFC 37 §"Security Handshake"). NULL is always built; PLAIN (RFC 24) is behind the
//! `plain` feature, CURVE (RFC 25/26) and Z85 keys (RFC 32) behind `curve`.

#[cfg(feature = "curve")]
pub mod curve;
#[cfg(feature = "plain")]
pub mod plain;
#[cfg(feature = "curve")]
pub mod z85;

#[cfg(feature = "curve")]
use curve::CurveKeyPair;

use crate::wire::Mechanism;

/// The security a session uses, and our side of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Security<'a> {
    /// NULL: no authentication, no confidentiality (RFC 37 §"The NULL Security Mechanism").
    Null,
    /// PLAIN client: sends a username and password in clear (RFC 24). Like libzmq's
    /// `ZMQ_PLAIN_USERNAME` / `ZMQ_PLAIN_PASSWORD`.
    #[cfg(feature = "plain")]
    PlainClient {
        /// 0-255 bytes.
        username: &'a [u8],
        /// 0-255 bytes.
        password: &'a [u8],
    },
    /// PLAIN server (libzmq's `ZMQ_PLAIN_SERVER`): each client's credentials are handed to the
    /// application in [`Event::Authenticate`](crate::Event::Authenticate) to accept or reject.
    #[cfg(feature = "plain")]
    PlainServer,
    /// CURVE client (RFC 25/26), like libzmq's `ZMQ_CURVE_SERVERKEY` with
    /// `ZMQ_CURVE_PUBLICKEY`/`ZMQ_CURVE_SECRETKEY`. Start the session with
    /// [`Session::new_curve`](crate::Session::new_curve).
    #[cfg(feature = "curve")]
    CurveClient {
        /// The server's long-term public key S.
        server_key: [u8; 32],
        /// Our long-term key pair C.
        keys: &'a CurveKeyPair,
    },
    /// CURVE server (libzmq's `ZMQ_CURVE_SERVER`): each client's long-term public key is
    /// handed to the application in [`Event::Authenticate`](crate::Event::Authenticate) to
    /// accept or reject. Start the session with
    /// [`Session::new_curve`](crate::Session::new_curve).
    #[cfg(feature = "curve")]
    CurveServer {
        /// Our long-term key pair S.
        keys: &'a CurveKeyPair,
    },
    #[doc(hidden)]
    _Lifetime(core::marker::PhantomData<&'a ()>),
}

impl Security<'_> {
    /// The mechanism name in the greeting.
    pub const fn mechanism(&self) -> Mechanism {
        match self {
            #[cfg(feature = "plain")]
            Security::PlainClient { .. } | Security::PlainServer => Mechanism::PLAIN,
            #[cfg(feature = "curve")]
            Security::CurveClient { .. } | Security::CurveServer { .. } => Mechanism::CURVE,
            _ => Mechanism::NULL,
        }
    }

    /// Whether this is CURVE (either side).
    #[cfg(feature = "curve")]
    pub const fn is_curve(&self) -> bool {
        matches!(
            self,
            Security::CurveClient { .. } | Security::CurveServer { .. }
        )
    }

    /// The greeting's as-server bit: set only on the server side of PLAIN/CURVE (RFC 37).
    pub const fn as_server(&self) -> bool {
        match self {
            #[cfg(feature = "plain")]
            Security::PlainServer => true,
            #[cfg(feature = "curve")]
            Security::CurveServer { .. } => true,
            _ => false,
        }
    }
}

/// A client asking to be let in, for the application (or a ZAP handler) to decide on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct AuthRequest<'a> {
    /// The mechanism (PLAIN or CURVE).
    pub mechanism: Mechanism,
    /// PLAIN username (empty with CURVE).
    pub username: &'a [u8],
    /// PLAIN password (empty with CURVE).
    pub password: &'a [u8],
    /// CURVE: the client's long-term public key C, proven by its vouch (RFC 26 §"The INITIATE
    /// Command"); what libzmq hands its ZAP handler as the credential. `None` with PLAIN.
    pub public_key: Option<[u8; 32]>,
}
