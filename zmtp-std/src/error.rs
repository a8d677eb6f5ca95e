//! The one error type of the crate.

use std::fmt;
use std::io;

use zmtp_core::SocketType;

/// What went wrong. libzmq's `errno` for the same case is given in brackets.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Nothing could be done without waiting: nothing to receive, or no room to send
    /// (`EAGAIN`). Returned by the `try_*` calls.
    WouldBlock,
    /// The `*_timeout` call waited as long as it was allowed to (`EAGAIN` after
    /// `ZMQ_RCVTIMEO`/`ZMQ_SNDTIMEO`).
    Timeout,
    /// The socket type cannot do this now (`EFSM`): a REQ that sends twice without a reply
    /// (unless `req_relaxed`), a REQ that receives before sending, a REP that sends before
    /// receiving or receives twice, a PUSH that receives, a PULL that sends.
    State,
    /// This socket type is not supported (`EINVAL` in spirit). No type of zmtp-core's is
    /// refused any more; kept so a future type can be.
    Unsupported(SocketType),
    /// The endpoint cannot be parsed, or names a transport other than `tcp://` and
    /// `ipc://` (`EINVAL`, `EPROTONOSUPPORT`); or an `ipc://` path to bind is taken by a
    /// file that is not a socket.
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An option value is invalid, or the option can no longer be changed because the
    /// socket has already bound or connected (`EINVAL`).
    InvalidOption {
        /// The option.
        option: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A message needs at least one frame; a ROUTER's needs the routing id and one more.
    EmptyMessage,
    /// The message can never be queued: it is larger than a peer's send queue
    /// ([`SocketOptions::queue_size`](crate::SocketOptions::queue_size)), or with CURVE one
    /// of its frames is larger than a connection's transmit buffer allows
    /// ([`SocketOptions::buffer_size`](crate::SocketOptions::buffer_size)).
    MessageTooLarge,
    /// ROUTER with `router_mandatory`: no connected peer has this routing id
    /// (`EHOSTUNREACH`).
    HostUnreachable,
    /// [`unbind`](crate::Socket::unbind) or [`disconnect`](crate::Socket::disconnect) of
    /// an endpoint the socket is not bound or connected to (`ENOENT`).
    EndpointNotFound(String),
    /// SUB, XSUB: the subscription memory has no room for another topic
    /// ([`SocketOptions::subscription_nodes`](crate::SocketOptions::subscription_nodes));
    /// nothing changed (`ENOMEM`).
    SubscriptionsFull,
    /// The context's I/O thread is gone (`ETERM`): it failed, or could not be reached.
    Terminated,
    /// An operating-system error (binding a port in use, resolving a host name, starting
    /// the I/O thread).
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::WouldBlock => f.write_str("operation would block"),
            Error::Timeout => f.write_str("operation timed out"),
            Error::State => f.write_str("operation not allowed in the socket's current state"),
            Error::Unsupported(t) => write!(f, "socket type {t} is not supported yet"),
            Error::InvalidEndpoint { endpoint, reason } => {
                write!(f, "invalid endpoint {endpoint:?}: {reason}")
            }
            Error::InvalidOption { option, reason } => write!(f, "option {option}: {reason}"),
            Error::EmptyMessage => f.write_str("message has no frames"),
            Error::MessageTooLarge => {
                f.write_str("message (or, with CURVE, a frame) larger than the socket can send")
            }
            Error::HostUnreachable => f.write_str("no peer with this routing id"),
            Error::EndpointNotFound(e) => write!(f, "not bound or connected to {e:?}"),
            Error::SubscriptionsFull => f.write_str("no room for another subscription"),
            Error::Terminated => f.write_str("the context's I/O thread is gone"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant has a message of its own (the match stops compiling when one is added
    /// without being listed here).
    #[test]
    fn every_error_has_a_message() {
        let all = [
            Error::WouldBlock,
            Error::Timeout,
            Error::State,
            Error::Unsupported(SocketType::Pair),
            Error::InvalidEndpoint {
                endpoint: "tcp://nowhere".into(),
                reason: "no port",
            },
            Error::InvalidOption {
                option: "linger",
                reason: "too long",
            },
            Error::EmptyMessage,
            Error::MessageTooLarge,
            Error::HostUnreachable,
            Error::EndpointNotFound("tcp://127.0.0.1:1".into()),
            Error::SubscriptionsFull,
            Error::Terminated,
            Error::Io(io::Error::new(io::ErrorKind::AddrInUse, "address in use")),
        ];
        let mut listed = 0;
        for e in &all {
            listed += match e {
                Error::WouldBlock
                | Error::Timeout
                | Error::State
                | Error::Unsupported(_)
                | Error::InvalidEndpoint { .. }
                | Error::InvalidOption { .. }
                | Error::EmptyMessage
                | Error::MessageTooLarge
                | Error::HostUnreachable
                | Error::EndpointNotFound(_)
                | Error::SubscriptionsFull
                | Error::Terminated
                | Error::Io(_) => 1,
            };
        }
        assert_eq!(listed, 13);
        let texts: Vec<String> = all.iter().map(ToString::to_string).collect();
        for (i, t) in texts.iter().enumerate() {
            assert!(!t.trim().is_empty(), "{:?}: empty message", all[i]);
            assert!(!texts[..i].contains(t), "two variants say {t:?}");
        }
        assert!(texts[12].contains("address in use"), "{}", texts[12]);
        assert!(std::error::Error::source(&all[12]).is_some());
        let zap = crate::zap::ZapError("no version frame");
        assert_eq!(zap.to_string(), "malformed ZAP message: no version frame");
    }
}
