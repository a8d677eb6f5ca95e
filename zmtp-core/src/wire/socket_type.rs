//! Socket types and their compatibility (RFC 37 §"The Socket-Type Property" and RFCs 28-31).

/// The eleven ZeroMQ socket types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SocketType {
    /// PAIR (RFC 31).
    Pair,
    /// PUB (RFC 29).
    Pub,
    /// SUB (RFC 29).
    Sub,
    /// REQ (RFC 28).
    Req,
    /// REP (RFC 28).
    Rep,
    /// DEALER (RFC 28).
    Dealer,
    /// ROUTER (RFC 28).
    Router,
    /// PULL (RFC 30).
    Pull,
    /// PUSH (RFC 30).
    Push,
    /// XPUB (RFC 29).
    XPub,
    /// XSUB (RFC 29).
    XSub,
}

impl SocketType {
    /// All eleven, in libzmq's numbering order.
    pub const ALL: [SocketType; 11] = [
        SocketType::Pair,
        SocketType::Pub,
        SocketType::Sub,
        SocketType::Req,
        SocketType::Rep,
        SocketType::Dealer,
        SocketType::Router,
        SocketType::Pull,
        SocketType::Push,
        SocketType::XPub,
        SocketType::XSub,
    ];

    /// The name sent in the `Socket-Type` property.
    pub const fn as_str(self) -> &'static str {
        match self {
            SocketType::Pair => "PAIR",
            SocketType::Pub => "PUB",
            SocketType::Sub => "SUB",
            SocketType::Req => "REQ",
            SocketType::Rep => "REP",
            SocketType::Dealer => "DEALER",
            SocketType::Router => "ROUTER",
            SocketType::Pull => "PULL",
            SocketType::Push => "PUSH",
            SocketType::XPub => "XPUB",
            SocketType::XSub => "XSUB",
        }
    }

    /// Parses a `Socket-Type` value. Values are compared exactly (RFC 37: names are uppercase).
    pub fn from_bytes(name: &[u8]) -> Option<SocketType> {
        SocketType::ALL
            .into_iter()
            .find(|t| super::same_bytes(t.as_str().as_bytes(), name))
    }

    /// Parses a type name in any case (for command lines and configuration, not for the wire).
    pub fn from_name_ignore_case(name: &str) -> Option<SocketType> {
        SocketType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name))
    }

    /// Whether a peer of type `peer` may connect to us (RFC 37 §"The Socket-Type Property",
    /// RFC 28-31): REQ:REP,ROUTER · REP:REQ,DEALER · DEALER:REP,DEALER,ROUTER ·
    /// ROUTER:REQ,DEALER,ROUTER · PUB,XPUB:SUB,XSUB · SUB,XSUB:PUB,XPUB · PUSH:PULL · PULL:PUSH ·
    /// PAIR:PAIR.
    pub const fn is_compatible_with(self, peer: SocketType) -> bool {
        use SocketType::*;
        matches!(
            (self, peer),
            (Req, Rep | Router)
                | (Rep, Req | Dealer)
                | (Dealer, Rep | Dealer | Router)
                | (Router, Req | Dealer | Router)
                | (Pub | XPub, Sub | XSub)
                | (Sub | XSub, Pub | XPub)
                | (Push, Pull)
                | (Pull, Push)
                | (Pair, Pair)
        )
    }

    /// Whether READY from this type carries an `Identity` property (libzmq sends one from REQ,
    /// DEALER and ROUTER).
    pub const fn sends_identity(self) -> bool {
        matches!(
            self,
            SocketType::Req | SocketType::Dealer | SocketType::Router
        )
    }

    /// Whether this type receives subscriptions (and so reads `01`/`00` messages from ZMTP 3.0
    /// peers as SUBSCRIBE/CANCEL).
    pub const fn receives_subscriptions(self) -> bool {
        matches!(self, SocketType::Pub | SocketType::XPub)
    }
}

impl core::fmt::Display for SocketType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatibility_is_symmetric() {
        for a in SocketType::ALL {
            for b in SocketType::ALL {
                assert_eq!(a.is_compatible_with(b), b.is_compatible_with(a), "{a} {b}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for t in SocketType::ALL {
            assert_eq!(SocketType::from_bytes(t.as_str().as_bytes()), Some(t));
            assert_eq!(
                SocketType::from_name_ignore_case(&t.as_str().to_lowercase()),
                Some(t)
            );
        }
        assert_eq!(SocketType::from_bytes(b"dealer"), None);
    }
}
