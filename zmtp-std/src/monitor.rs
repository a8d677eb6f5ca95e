//! Socket monitors: what happens to a socket's listeners and connections, as a channel of
//! typed events ([`Socket::monitor`](crate::Socket::monitor), libzmq's
//! `zmq_socket_monitor`).

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use zmtp_core::{CloseReason, SocketType};

/// Events a monitor channel holds before the I/O thread starts dropping them (it never
/// waits for a slow reader); the reader then gets a [`MonitorEvent::Lagged`].
pub const MONITOR_CAPACITY: usize = 1024;

/// Something that happened to a socket's listeners or connections. `endpoint` is the
/// endpoint as `bind` returned it or as given to `connect`. libzmq's `ZMQ_EVENT_*` name is
/// given for each.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MonitorEvent {
    /// A listener is up (`LISTENING`).
    Listening {
        /// The endpoint bound (with the port the system chose).
        endpoint: String,
    },
    /// A bind failed (`BIND_FAILED`); `bind` returned the error as well.
    BindFailed {
        /// The endpoint as given.
        endpoint: String,
        /// The error.
        error: String,
    },
    /// A listener accepted a connection (`ACCEPTED`); its handshake starts.
    Accepted {
        /// The listener's endpoint.
        endpoint: String,
        /// The peer's address (`ip:port`; for `ipc://`, the peer's path if it has one).
        peer: String,
    },
    /// Accepting failed, or the connection was refused for want of a free slot
    /// ([`max_peers`](crate::SocketOptions::max_peers)) (`ACCEPT_FAILED`).
    AcceptFailed {
        /// The listener's endpoint.
        endpoint: String,
        /// What went wrong.
        error: String,
    },
    /// A connect is under way and will finish in the background (`CONNECT_DELAYED`).
    ConnectDelayed {
        /// The endpoint.
        endpoint: String,
    },
    /// A connect went through (`CONNECTED`); the ZMTP handshake starts.
    Connected {
        /// The endpoint.
        endpoint: String,
    },
    /// A connect failed (refused, unreachable, no address): `error` says why. A
    /// [`ReconnectScheduled`](Self::ReconnectScheduled) follows unless reconnecting is off.
    ConnectFailed {
        /// The endpoint.
        endpoint: String,
        /// The error.
        error: String,
    },
    /// The next connect attempt is due after `after` (`CONNECT_RETRIED`, whose value is
    /// the interval).
    ReconnectScheduled {
        /// The endpoint.
        endpoint: String,
        /// The wait, after backoff.
        after: Duration,
    },
    /// The ZMTP handshake is done: messages flow (`HANDSHAKE_SUCCEEDED`).
    HandshakeSucceeded {
        /// The endpoint.
        endpoint: String,
        /// The peer's socket type.
        peer_type: Option<SocketType>,
    },
    /// A connection closed before its handshake was done
    /// (`HANDSHAKE_FAILED_PROTOCOL`, `_NO_DETAIL`, `_AUTH`).
    HandshakeFailed {
        /// The endpoint.
        endpoint: String,
        /// Why (a bad greeting, an incompatible socket type, the handshake timeout, the
        /// peer leaving, ...).
        reason: CloseReason,
    },
    /// A connection whose handshake was done closed (`DISCONNECTED`).
    Disconnected {
        /// The endpoint.
        endpoint: String,
        /// Why (the peer left: [`CloseReason::Eof`]; a protocol error; a heartbeat
        /// timeout; [`CloseReason::Local`]: we closed it, e.g. `disconnect`).
        reason: CloseReason,
    },
    /// A listener was closed: `unbind` or the socket closing (`CLOSED`).
    Closed {
        /// The listener's endpoint.
        endpoint: String,
    },
    /// The reader was too slow: this many events were dropped before this one.
    Lagged {
        /// Events dropped.
        missed: u64,
    },
}

/// The I/O thread's end of a monitor channel.
#[derive(Debug)]
pub(crate) struct MonitorSender {
    tx: SyncSender<MonitorEvent>,
    missed: u64,
}

impl MonitorSender {
    /// A new channel with room for [`MONITOR_CAPACITY`] events.
    pub(crate) fn channel() -> (MonitorSender, Receiver<MonitorEvent>) {
        let (tx, rx) = mpsc::sync_channel(MONITOR_CAPACITY);
        (MonitorSender { tx, missed: 0 }, rx)
    }

    /// Sends without waiting; a full channel drops the event (counted, and reported with
    /// the next one that fits). `false` once the receiver is gone.
    pub(crate) fn send(&mut self, ev: MonitorEvent) -> bool {
        if self.missed > 0 {
            match self.tx.try_send(MonitorEvent::Lagged {
                missed: self.missed,
            }) {
                Ok(()) => self.missed = 0,
                Err(TrySendError::Full(_)) => {
                    self.missed = self.missed.saturating_add(1);
                    return true;
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
        match self.tx.try_send(ev) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.missed = self.missed.saturating_add(1);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_channel_drops_and_reports_the_loss() {
        let (mut tx, rx) = MonitorSender::channel();
        let ev = |i: usize| MonitorEvent::Closed {
            endpoint: i.to_string(),
        };
        for i in 0..MONITOR_CAPACITY + 5 {
            assert!(tx.send(ev(i)));
        }
        assert_eq!(rx.try_iter().count(), MONITOR_CAPACITY);
        assert!(tx.send(ev(7)));
        assert_eq!(rx.try_recv().unwrap(), MonitorEvent::Lagged { missed: 5 });
        assert_eq!(rx.try_recv().unwrap(), ev(7));
        drop(rx);
        assert!(!tx.send(ev(8)));
    }
}
