//! What an application-side [`Socket`](crate::Socket) and the I/O thread share: a bounded
//! queue of received messages (the inbox), a bounded queue of messages to send (the outbox),
//! and a few counters.
//!
//! Each queue is a `Mutex<VecDeque>` with a `Condvar` for the application's blocking calls.
//! The I/O thread never blocks on them: it takes what is there and, where it had to stop
//! (inbox full), leaves a flag asking the application to wake it through the
//! [`mio::Waker`] once there is room again.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use mio::Waker;

use crate::error::{Error, Result};

/// A multipart message.
pub(crate) type Msg = Vec<Vec<u8>>;

/// How long an application call may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// Not at all: [`Error::WouldBlock`].
    No,
    /// Until it can be done.
    Forever,
    /// Until then: [`Error::Timeout`].
    Until(Instant),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves consistent data (every critical
    // section is a few pushes and pops): carry on.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct Inbox {
    /// Messages, each with the number of messages the I/O thread had taken from the
    /// outbox when it received it (a REQ tells stale replies by it).
    queue: VecDeque<(Msg, u64)>,
    /// Messages (0: no limit).
    cap: usize,
    /// The I/O thread stopped taking messages because the queue was full.
    stalled: bool,
    terminated: bool,
}

#[derive(Debug, Default)]
struct Outbox {
    queue: VecDeque<Msg>,
    /// Messages (0: no limit).
    cap: usize,
    /// The I/O thread has been woken and has not looked at the queue since.
    wake_pending: bool,
    terminated: bool,
}

/// Shared between one application socket and the I/O thread.
#[derive(Debug)]
pub(crate) struct Shared {
    inbox: Mutex<Inbox>,
    inbox_cv: Condvar,
    outbox: Mutex<Outbox>,
    outbox_cv: Condvar,
    /// Peers whose handshake is done.
    ready_peers: AtomicUsize,
    /// ROUTER: routing ids of ready peers (with a count, for a handover's overlap).
    routing_ids: Mutex<HashMap<Vec<u8>, usize>>,
    waker: std::sync::Arc<Waker>,
    /// Allow-list and handshake failures (PLAIN, CURVE).
    pub(crate) security: crate::security::SocketSecurity,
}

impl Shared {
    pub(crate) fn new(waker: std::sync::Arc<Waker>, send_cap: usize, recv_cap: usize) -> Self {
        Shared {
            inbox: Mutex::new(Inbox {
                cap: recv_cap,
                ..Inbox::default()
            }),
            inbox_cv: Condvar::new(),
            outbox: Mutex::new(Outbox {
                cap: send_cap,
                ..Outbox::default()
            }),
            outbox_cv: Condvar::new(),
            ready_peers: AtomicUsize::new(0),
            routing_ids: Mutex::new(HashMap::new()),
            waker,
            security: Default::default(),
        }
    }

    fn wake(&self) -> Result<()> {
        self.waker.wake().map_err(Error::Io)
    }

    // ------------------------------------------------------------ application side

    /// Sets the queue limits (before the socket starts).
    pub(crate) fn set_caps(&self, send_cap: usize, recv_cap: usize) {
        lock(&self.outbox).cap = send_cap;
        lock(&self.inbox).cap = recv_cap;
    }

    /// Takes the next received message, with the number of messages sent before it came
    /// (see [`deliver`](Self::deliver)).
    pub(crate) fn recv(&self, wait: Wait) -> Result<(Msg, u64)> {
        let mut g = lock(&self.inbox);
        loop {
            if let Some(m) = g.queue.pop_front() {
                let wake = std::mem::take(&mut g.stalled);
                drop(g);
                if wake {
                    self.wake()?;
                }
                return Ok(m);
            }
            if g.terminated {
                return Err(Error::Terminated);
            }
            g = wait_on(&self.inbox_cv, g, wait)?;
        }
    }

    /// Queues a message for the I/O thread.
    pub(crate) fn send(&self, msg: Msg, wait: Wait) -> Result<()> {
        let mut g = lock(&self.outbox);
        loop {
            if g.terminated {
                return Err(Error::Terminated);
            }
            if g.cap == 0 || g.queue.len() < g.cap {
                g.queue.push_back(msg);
                let wake = !std::mem::replace(&mut g.wake_pending, true);
                drop(g);
                if wake {
                    self.wake()?;
                }
                return Ok(());
            }
            g = wait_on(&self.outbox_cv, g, wait)?;
        }
    }

    /// Peers whose handshake is done.
    pub(crate) fn ready_peers(&self) -> usize {
        self.ready_peers.load(Ordering::Relaxed)
    }

    /// ROUTER: whether a ready peer has this routing id.
    pub(crate) fn knows_routing_id(&self, id: &[u8]) -> bool {
        lock(&self.routing_ids).contains_key(id)
    }

    // ------------------------------------------------------------ I/O thread side

    /// How many messages the inbox can take now (`usize::MAX`: no limit). When none, the
    /// application is asked to wake the I/O thread after its next receive.
    pub(crate) fn inbox_room(&self) -> usize {
        let mut g = lock(&self.inbox);
        let room = if g.cap == 0 {
            usize::MAX
        } else {
            g.cap.saturating_sub(g.queue.len())
        };
        if room == 0 {
            g.stalled = true;
        }
        room
    }

    /// Hands received messages to the application (past the limit if need be: the limit is
    /// checked with [`inbox_room`](Self::inbox_room)). `sent` is how many messages the I/O
    /// thread has taken from the outbox so far.
    pub(crate) fn deliver(&self, msgs: impl IntoIterator<Item = Msg>, sent: u64) {
        let mut g = lock(&self.inbox);
        let before = g.queue.len();
        g.queue.extend(msgs.into_iter().map(|m| (m, sent)));
        if g.queue.len() > before {
            drop(g);
            self.inbox_cv.notify_all();
        }
    }

    /// Drops undelivered received messages (the application closed the socket).
    pub(crate) fn clear_inbox(&self) {
        lock(&self.inbox).queue.clear();
    }

    /// Offers queued messages, oldest first, to `send` (at most `budget`): each one it
    /// takes (`true`) leaves the queue; the first it refuses stays at the front. Returns how
    /// many were taken. A message leaves the queue only when the core has it, so the
    /// queue's limit is exact.
    pub(crate) fn send_queued(&self, budget: usize, mut send: impl FnMut(&Msg) -> bool) -> usize {
        let mut g = lock(&self.outbox);
        g.wake_pending = false;
        let mut taken = 0;
        while taken < budget {
            let Some(front) = g.queue.front() else { break };
            if !send(front) {
                break;
            }
            g.queue.pop_front();
            taken += 1;
        }
        drop(g);
        if taken > 0 {
            self.outbox_cv.notify_all();
        }
        taken
    }

    /// Whether messages wait to be taken.
    pub(crate) fn has_outgoing(&self) -> bool {
        !lock(&self.outbox).queue.is_empty()
    }

    /// Drops messages not yet taken (linger over).
    pub(crate) fn clear_outbox(&self) {
        lock(&self.outbox).queue.clear();
    }

    pub(crate) fn peer_ready(&self, routing_id: Option<&[u8]>) {
        self.ready_peers.fetch_add(1, Ordering::Relaxed);
        if let Some(id) = routing_id {
            *lock(&self.routing_ids).entry(id.to_vec()).or_insert(0) += 1;
        }
    }

    pub(crate) fn peer_gone(&self, routing_id: Option<&[u8]>) {
        // Never below zero, whatever the order of events.
        let _ = self
            .ready_peers
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if let Some(id) = routing_id {
            let mut ids = lock(&self.routing_ids);
            if let Some(n) = ids.get_mut(id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    ids.remove(id);
                }
            }
        }
    }

    /// The I/O thread is done with this socket: every blocked call returns
    /// [`Error::Terminated`].
    pub(crate) fn terminate(&self) {
        lock(&self.inbox).terminated = true;
        lock(&self.outbox).terminated = true;
        self.ready_peers.store(0, Ordering::Relaxed);
        self.inbox_cv.notify_all();
        self.outbox_cv.notify_all();
    }
}

/// Waits on `cv` as `wait` says: not at all (`WouldBlock`), until woken, or until a deadline
/// (`Timeout` once it has passed). A poisoned lock is taken over: the queues stay consistent.
fn wait_on<'a, T>(cv: &Condvar, g: MutexGuard<'a, T>, wait: Wait) -> Result<MutexGuard<'a, T>> {
    match wait {
        Wait::No => Err(Error::WouldBlock),
        Wait::Forever => Ok(cv.wait(g).unwrap_or_else(PoisonError::into_inner)),
        Wait::Until(t) => {
            let left = t.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout);
            }
            Ok(cv
                .wait_timeout(g, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0)
        }
    }
}
