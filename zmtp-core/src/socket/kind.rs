//! Socket types fixed at compile time, for firmware that wants only its own pattern's code.
//!
//! A [`Socket`](super::Socket) made with [`Socket::new`](super::Socket::new) reads its type
//! from its configuration at run time, so every pattern's code (routing ids, request
//! envelopes, subscription tries, XPUB notifications) is reachable and stays in the binary
//! even with link-time optimisation. A socket made with
//! [`Socket::typed`](super::Socket::typed) and one of the marker types of this module has its
//! type as a constant: the compiler drops what other patterns need. The behaviour is the same
//! either way; only the code size differs (a NULL DEALER firmware: about 8 KiB less flash).
//!
//! ```
//! use zmtp_core::socket::{kind, PeerMemory, PeerSlot, Socket, SocketConfig};
//! use zmtp_core::{Config, SocketType};
//!
//! let (mut rx, mut tx, mut rq, mut sq) = ([0u8; 512], [0u8; 512], [0u8; 1024], [0u8; 1024]);
//! let mut slots = [PeerSlot::new(PeerMemory {
//!     rx: &mut rx,
//!     tx: &mut tx,
//!     recv_queue: &mut rq,
//!     send_queue: &mut sq,
//! })];
//! // The type in the session configuration is replaced by the marker's.
//! let cfg = SocketConfig::new(Config::new(SocketType::Dealer));
//! let socket = Socket::typed(kind::Dealer, cfg, &mut slots);
//! assert_eq!(socket.socket_type(), SocketType::Dealer);
//! ```

use crate::wire::SocketType;

mod sealed {
    pub trait Sealed {}
}

/// How a [`Socket`](super::Socket) knows its type: [`Any`] at run time (from its
/// configuration), or one of the marker types of this module at compile time. Sealed.
pub trait Kind: Copy + Default + core::fmt::Debug + sealed::Sealed {
    /// The socket type, when fixed at compile time.
    const TYPE: Option<SocketType>;
}

/// The socket type is read from the configuration at run time (every pattern's code is
/// linked in). The default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Any;

impl sealed::Sealed for Any {}
impl Kind for Any {
    const TYPE: Option<SocketType> = None;
}

macro_rules! kinds {
    ($($name:ident: $doc:literal),* $(,)?) => {$(
        #[doc = $doc]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;

        impl sealed::Sealed for $name {}
        impl Kind for $name {
            const TYPE: Option<SocketType> = Some(SocketType::$name);
        }
    )*};
}

kinds! {
    Pair: "A PAIR socket (RFC 31), fixed at compile time.",
    Pub: "A PUB socket (RFC 29), fixed at compile time.",
    Sub: "A SUB socket (RFC 29), fixed at compile time.",
    Req: "A REQ socket (RFC 28), fixed at compile time.",
    Rep: "A REP socket (RFC 28), fixed at compile time.",
    Dealer: "A DEALER socket (RFC 28), fixed at compile time.",
    Router: "A ROUTER socket (RFC 28), fixed at compile time.",
    Pull: "A PULL socket (RFC 30), fixed at compile time.",
    Push: "A PUSH socket (RFC 30), fixed at compile time.",
    XPub: "An XPUB socket (RFC 29), fixed at compile time.",
    XSub: "An XSUB socket (RFC 29), fixed at compile time.",
}
