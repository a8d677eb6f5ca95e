//! Waiting on several sockets at once: [`poll`], like `zmq_poll` and pyzmq's `zmq.Poller`.
//!
//! A poll looks at each socket's queues. When none is ready it registers a wake-up flag
//! ([`Signal`]) with every socket and sleeps on it; the I/O thread (or another application
//! thread) fires it whenever a socket may have become ready: a message reached its inbox,
//! its outbox gained room, a peer finished its handshake, or the socket terminated. So a
//! poll never spins, and wakes as soon as something changes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::shared::Signal;
use crate::socket::Socket;

/// A set of readiness kinds: [`IN`](Self::IN), [`OUT`](Self::OUT), both or none
/// (`ZMQ_POLLIN`, `ZMQ_POLLOUT`). Combine with `|`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PollEvents(u8);

impl PollEvents {
    /// A whole message can be received now without waiting (`ZMQ_POLLIN`).
    pub const IN: PollEvents = PollEvents(1);
    /// A message can be sent now without waiting (`ZMQ_POLLOUT`): the socket's state
    /// allows it (a REQ is not waiting for a reply, a REP holds a request) and its outbox
    /// has room.
    pub const OUT: PollEvents = PollEvents(2);

    /// No event.
    pub const fn empty() -> Self {
        PollEvents(0)
    }

    /// Whether every event of `other` is in `self`.
    pub const fn contains(self, other: PollEvents) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether there is no event.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for PollEvents {
    type Output = PollEvents;

    fn bitor(self, rhs: PollEvents) -> PollEvents {
        PollEvents(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for PollEvents {
    fn bitor_assign(&mut self, rhs: PollEvents) {
        self.0 |= rhs.0;
    }
}

/// A socket and the events to wait for, given to [`poll`]; afterwards
/// [`revents`](Self::revents) says which happened (`zmq_pollitem_t`).
#[derive(Debug)]
pub struct PollItem<'a> {
    socket: &'a Socket,
    events: PollEvents,
    revents: PollEvents,
}

impl<'a> PollItem<'a> {
    /// Waits for `events` on `socket`.
    pub fn new(socket: &'a Socket, events: PollEvents) -> Self {
        PollItem {
            socket,
            events,
            revents: PollEvents::empty(),
        }
    }

    /// The events found by the last [`poll`] (a subset of those asked for).
    pub fn revents(&self) -> PollEvents {
        self.revents
    }

    /// Whether the last [`poll`] found a message to receive.
    pub fn is_readable(&self) -> bool {
        self.revents.contains(PollEvents::IN)
    }

    /// Whether the last [`poll`] found room to send.
    pub fn is_writable(&self) -> bool {
        self.revents.contains(PollEvents::OUT)
    }
}

impl Socket {
    /// A [`PollItem`] for this socket (like the zmq crate's `Socket::as_poll_item`).
    pub fn as_poll_item(&self, events: PollEvents) -> PollItem<'_> {
        PollItem::new(self, events)
    }
}

/// Fills in every item's [`revents`](PollItem::revents); how many are ready.
fn check(items: &mut [PollItem<'_>]) -> Result<usize> {
    let mut ready = 0;
    for item in items.iter_mut() {
        item.revents = item.socket.readiness(item.events)?;
        if !item.revents.is_empty() {
            ready += 1;
        }
    }
    Ok(ready)
}

/// Waits until at least one item is ready or the timeout passes (`None`: forever;
/// `Some(Duration::ZERO)`: check once and return), like `zmq_poll`. Sets each item's
/// [`revents`](PollItem::revents) and returns how many items have some (0 on timeout).
///
/// Readiness is a promise to the thread that polled: a socket that is
/// [readable](PollItem::is_readable) has a whole message for `try_recv_multipart`
/// (unless another thread takes it first); a [writable](PollItem::is_writable) one takes a
/// message from `try_send_multipart`. Sockets of different contexts may be polled
/// together. Items may have empty `events` (never ready). Errors:
/// [`Error::Terminated`](crate::Error::Terminated) if a socket's I/O thread is gone
/// (libzmq's `ETERM`).
///
/// ```
/// use std::time::Duration;
/// use zmtp_std::{poll, Context, PollEvents, SocketType};
///
/// # fn main() -> Result<(), zmtp_std::Error> {
/// let ctx = Context::new()?;
/// let (a, b) = (ctx.socket(SocketType::Pull)?, ctx.socket(SocketType::Pull)?);
/// let push = ctx.socket(SocketType::Push)?;
/// push.connect(&b.bind("tcp://127.0.0.1:0")?)?;
/// a.bind("tcp://127.0.0.1:0")?;
/// push.send("hello")?;
///
/// let mut items = [a.as_poll_item(PollEvents::IN), b.as_poll_item(PollEvents::IN)];
/// let ready = poll(&mut items, Some(Duration::from_secs(5)))?;
/// assert_eq!(ready, 1);
/// assert!(!items[0].is_readable() && items[1].is_readable());
/// assert_eq!(b.try_recv()?, b"hello");
/// # Ok(())
/// # }
/// ```
pub fn poll(items: &mut [PollItem<'_>], timeout: Option<Duration>) -> Result<usize> {
    // A deadline too far away to represent is no deadline.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let ready = check(items)?;
    if ready > 0 || timeout == Some(Duration::ZERO) {
        return Ok(ready);
    }
    let signal = Arc::new(Signal::default());
    let mut registration = Registration {
        sockets: Vec::with_capacity(items.len()),
        signal: &signal,
    };
    for item in items.iter() {
        item.socket.shared().add_waiter(&signal);
        registration.sockets.push(item.socket);
    }
    loop {
        // Reset before looking: whatever changes from here on fires the signal again.
        signal.reset();
        let ready = check(items)?;
        if ready > 0 {
            return Ok(ready);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(0);
        }
        signal.wait(deadline);
    }
}

/// Unregisters the signal from `sockets` when the poll ends (also on an error).
struct Registration<'a, 'b> {
    sockets: Vec<&'a Socket>,
    signal: &'b Arc<Signal>,
}

impl Drop for Registration<'_, '_> {
    fn drop(&mut self) {
        for s in &self.sockets {
            s.shared().remove_waiter(self.signal);
        }
    }
}
