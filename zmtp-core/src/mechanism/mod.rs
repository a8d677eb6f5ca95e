//! Security mechanisms: what each side sends and checks between the greeting and the first
//! message (RFC 37 §"Security Handshake"). NULL is always built; PLAIN (RFC 24) is behind the
//! `plain` feature.

#[cfg(feature = "plain")]
pub mod plain;

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
    #[doc(hidden)]
    _Lifetime(core::marker::PhantomData<&'a ()>),
}

impl Security<'_> {
    /// The mechanism name in the greeting.
    pub const fn mechanism(&self) -> Mechanism {
        match self {
            #[cfg(feature = "plain")]
            Security::PlainClient { .. } | Security::PlainServer => Mechanism::PLAIN,
            _ => Mechanism::NULL,
        }
    }

    /// The greeting's as-server bit: set only on the server side of PLAIN/CURVE (RFC 37).
    pub const fn as_server(&self) -> bool {
        match self {
            #[cfg(feature = "plain")]
            Security::PlainServer => true,
            _ => false,
        }
    }
}

/// A client asking to be let in, for the application (or a ZAP handler) to decide on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct AuthRequest<'a> {
    /// The mechanism (PLAIN).
    pub mechanism: Mechanism,
    /// PLAIN username.
    pub username: &'a [u8],
    /// PLAIN password.
    pub password: &'a [u8],
}
