//! What an application-side [`Socket`](crate::Socket) and the I/O thread share: a bounded
//! queue of received messages (the inbox), a bounded queue of messages to send (the outbox),
//! and a few counters.
//!
//! Each queue is a [`Batch`] under a `Mutex`, with a `Condvar` for the application's
//! blocking calls (notified only when someone waits). Messages cross in batches: the
//! consumer swaps the whole queue for its own emptied batch under one lock (the I/O
//! thread takes the outbox after giving everything it took before to its core; the
//! application takes the inbox after reading everything it took before), so a steady
//! stream costs a lock and a wake-up per batch, not per message. The I/O thread never
//! blocks on them: it takes what is there and, where it had to stop (inbox full), leaves a
//! flag asking the application to wake it through the [`mio::Waker`] once there is room
//! again.
//!
//! [`Spin`] holds what a context's sockets and its loop share about who runs the loop and
//! when: the I/O thread's idle spin, and [`Lead`], application threads' turns at running
//! the loop themselves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use mio::Waker;

use crate::batch::{Batch, Spares};
use crate::error::{Error, Result};
use crate::monitor::{MonitorEvent, MonitorSender};

/// A poller's wake-up flag ([`crate::poll`]): sockets set it when they may have become
/// ready (a message came in, room appeared in the outbox, a peer became ready, the
/// socket terminated).
#[derive(Debug, Default)]
pub(crate) struct Signal {
    fired: Mutex<bool>,
    cv: Condvar,
}

impl Signal {
    /// Sets the flag and wakes the poller.
    pub(crate) fn fire(&self) {
        *lock(&self.fired) = true;
        self.cv.notify_all();
    }

    /// Clears the flag: call before looking at the sockets, so that a change made while
    /// looking is not missed.
    pub(crate) fn reset(&self) {
        *lock(&self.fired) = false;
    }

    /// Waits until the flag is set (at once if it is) or the deadline passes (`None`:
    /// no deadline).
    pub(crate) fn wait(&self, deadline: Option<Instant>) {
        let mut g = lock(&self.fired);
        while !*g {
            match deadline {
                None => g = self.cv.wait(g).unwrap_or_else(PoisonError::into_inner),
                Some(t) => {
                    let left = t.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return;
                    }
                    g = self
                        .cv
                        .wait_timeout(g, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
    }
}

/// The I/O thread's idle spin, shared by a context's sockets and its I/O thread: after a
/// turn with work, the I/O thread polls without sleeping for a short while (see
/// `io::IoThread::spin`). While it does, [`Shared`] raises `poked` instead of writing to the
/// [`mio::Waker`] (a system call, and a thread to wake).
#[derive(Debug)]
pub(crate) struct Spin {
    spinning: AtomicBool,
    poked: AtomicBool,
    /// The application threads' turn at running the loop themselves (see
    /// [`Lead`]).
    pub(crate) lead: Lead,
    /// How long to spin, in microseconds ([`crate::Context::set_io_spin`]).
    limit_us: AtomicU64,
}

/// The default of [`crate::Context::set_io_spin`].
pub(crate) const DEFAULT_SPIN: Duration = Duration::from_micros(200);

impl Default for Spin {
    fn default() -> Self {
        Spin {
            spinning: AtomicBool::new(false),
            poked: AtomicBool::new(false),
            lead: Lead::default(),
            limit_us: AtomicU64::new(DEFAULT_SPIN.as_micros() as u64),
        }
    }
}

impl Spin {
    /// How long the I/O thread spins after a turn with work.
    pub(crate) fn limit(&self) -> Duration {
        Duration::from_micros(self.limit_us.load(Ordering::Relaxed))
    }

    pub(crate) fn set_limit(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.limit_us.store(us, Ordering::Relaxed);
    }

    /// Wakes a spinning I/O thread without a system call; `false` if it is not spinning
    /// (then use the waker).
    fn poke(&self) -> bool {
        if !self.spinning.load(Ordering::SeqCst) {
            return false;
        }
        self.poked.store(true, Ordering::SeqCst);
        // Still spinning after the poke: it will see it (it clears `spinning` before its
        // last look at `poked`).
        self.spinning.load(Ordering::SeqCst)
    }

    /// I/O thread: starts or stops spinning.
    pub(crate) fn set_spinning(&self, on: bool) {
        self.spinning.store(on, Ordering::SeqCst);
    }

    /// I/O thread: whether it was poked (and clears the flag).
    pub(crate) fn take_poke(&self) -> bool {
        self.poked.load(Ordering::Relaxed) && self.poked.swap(false, Ordering::SeqCst)
    }
}

/// Who runs the I/O loop. Normally the I/O thread; but after it has handed a message to
/// an application thread that waited for it, it steps aside (parks) for the spin time
/// ([`Spin::limit`]), and the application's next calls run the loop themselves if it is
/// free: a `send` does one turn without waiting (its message is written at once), a
/// blocking `recv` runs turns, sleeping in `epoll_wait`, until its message is in (the
/// kernel then wakes the application thread itself, as a blocking read on a plain TCP
/// socket would). Every such call renews the lease; when it runs out (the application
/// computes, or waits in something else) the I/O thread takes the loop back, so
/// heartbeats, accepts and reconnects go on while the application does not call in.
#[derive(Debug, Default)]
pub(crate) struct Lead {
    /// The I/O thread, to unpark it.
    io_thread: std::sync::OnceLock<std::thread::Thread>,
    /// An application thread runs the loop now.
    leading: AtomicBool,
    /// The I/O thread steps aside until then (microseconds since `epoch`).
    lease_until: AtomicU64,
    /// Something needs the loop run now (a command, a wake-up nobody may see): the I/O
    /// thread takes it back at once.
    io_wanted: AtomicBool,
    /// Application threads the I/O thread's last turn woke with a message.
    app_woken: AtomicUsize,
    /// Application threads blocked on a queue or registered by a poll (they need
    /// somebody to run the loop).
    blocked: AtomicUsize,
    /// Leads so far (the I/O thread tells one long lead from many short ones).
    leads: AtomicU64,
    /// The I/O thread is parked until then (microseconds since `epoch`; 0: not parked).
    park_until: AtomicU64,
    epoch: std::sync::OnceLock<Instant>,
}

impl Lead {
    fn now_us(&self) -> u64 {
        let epoch = *self.epoch.get_or_init(Instant::now);
        u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// I/O thread: at start.
    pub(crate) fn set_io_thread(&self) {
        let _ = self.io_thread.set(std::thread::current());
    }

    /// Has the I/O thread take the loop back now.
    pub(crate) fn want_io(&self) {
        self.io_wanted.store(true, Ordering::SeqCst);
        if let Some(t) = self.io_thread.get() {
            t.unpark();
        }
    }

    /// Whoever runs the loop: about to take a turn, which serves every wake-up made so far.
    pub(crate) fn turn_starts(&self) {
        if self.io_wanted.load(Ordering::Relaxed) {
            self.io_wanted.store(false, Ordering::SeqCst);
        }
    }

    /// I/O thread: whether to step aside after this turn (and clears the note).
    /// Only if no other application thread is blocked (it would wait for the lease to run
    /// out, unless the woken thread runs the loop meanwhile) and nobody asked for the I/O
    /// thread.
    pub(crate) fn should_step_aside(&self, lease: Duration) -> bool {
        let woken = self.app_woken.swap(0, Ordering::Relaxed);
        woken > 0
            && !lease.is_zero()
            && self.blocked.load(Ordering::SeqCst) <= woken
            && !self.io_wanted.load(Ordering::SeqCst)
    }

    /// Starts (or renews) the lease: the I/O thread stays aside for `lease` from now.
    pub(crate) fn renew(&self, lease: Duration) {
        let until = self
            .now_us()
            .saturating_add(u64::try_from(lease.as_micros()).unwrap_or(u64::MAX));
        self.lease_until.store(until, Ordering::SeqCst);
    }

    /// I/O thread: parks while an application thread leads or the lease runs. While one
    /// application thread leads without a break (a blocking `recv` on a quiet socket: it
    /// serves the timers itself meanwhile), the I/O thread looks less and less often, up
    /// to [`LONG_PARK`]; a leader that leaves while the I/O thread is parked for longer
    /// than the lease unparks it ([`after_leaving`](Self::after_leaving)).
    pub(crate) fn wait_turn(&self, lease: Duration) {
        let lease_us = u64::try_from(lease.as_micros()).unwrap_or(u64::MAX).max(1);
        let mut backoff = lease_us;
        let mut seen = self.leads.load(Ordering::SeqCst);
        loop {
            if self.io_wanted.swap(false, Ordering::SeqCst) {
                return;
            }
            let now = self.now_us();
            let until = self.lease_until.load(Ordering::SeqCst);
            let park_us = if self.leading.load(Ordering::SeqCst) {
                let leads = self.leads.load(Ordering::SeqCst);
                if leads == seen {
                    backoff = backoff.saturating_mul(2).min(LONG_PARK_US);
                } else {
                    // Short leads, one after the other: an exchange goes on.
                    seen = leads;
                    backoff = lease_us;
                }
                backoff
            } else if now >= until {
                return;
            } else {
                until - now
            };
            self.park_until
                .store(now.saturating_add(park_us), Ordering::SeqCst);
            // Looked at again after the wait: a leader may leave meanwhile.
            if !self.io_wanted.load(Ordering::SeqCst) {
                std::thread::park_timeout(Duration::from_micros(park_us));
            }
            self.park_until.store(0, Ordering::SeqCst);
        }
    }

    /// Application: now leading (or done, `false`).
    pub(crate) fn set_leading(&self, on: bool) {
        if on {
            self.leads.fetch_add(1, Ordering::Relaxed);
        }
        self.leading.store(on, Ordering::SeqCst);
    }

    /// Application, after leaving the loop: if somebody needs the loop run (a wake-up
    /// that came while this thread was leaving, another application thread blocked on a
    /// queue), the I/O thread takes it back now.
    pub(crate) fn after_leaving(&self) {
        if self.io_wanted.load(Ordering::SeqCst) || self.blocked.load(Ordering::SeqCst) > 0 {
            self.want_io();
            return;
        }
        // Parked past the lease (a long lead): it would take the loop back late.
        let park_until = self.park_until.load(Ordering::SeqCst);
        if park_until > self.lease_until.load(Ordering::SeqCst) {
            if let Some(t) = self.io_thread.get() {
                t.unpark();
            }
        }
    }
}

/// The longest the I/O thread parks while an application thread leads the loop.
const LONG_PARK_US: u64 = 50_000;

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
    /// Received messages, each tagged with the number of messages the I/O thread had
    /// taken from the outbox when it received it (a REQ tells stale replies by it).
    batch: Batch,
    /// Messages of the batch the application took last: they count against the limit
    /// until it has read them all and comes back (see [`Shared::refill`]).
    held: usize,
    /// Messages (0: no limit).
    cap: usize,
    /// Application threads waiting on `inbox_cv` (notified only if any).
    waiting: usize,
    terminated: bool,
}

#[derive(Debug, Default)]
struct Outbox {
    batch: Batch,
    /// Messages in `batch` plus those the I/O thread has taken and not given to its core
    /// yet: the limit applies to these.
    queued: usize,
    /// Messages (0: no limit).
    cap: usize,
    /// The I/O thread has been woken and has not looked at the queue since.
    wake_pending: bool,
    /// Application threads waiting on `outbox_cv` (notified only if any).
    waiting: usize,
    terminated: bool,
}

impl Outbox {
    fn has_room(&self) -> bool {
        self.cap == 0 || self.queued < self.cap
    }
}

/// Shared between one application socket and the I/O thread.
#[derive(Debug)]
pub(crate) struct Shared {
    inbox: Mutex<Inbox>,
    inbox_cv: Condvar,
    /// The I/O thread stopped taking messages because the inbox was full: the application
    /// wakes it when it has read what it holds. Set and cleared under the inbox's lock;
    /// read without it as a hint.
    inbox_stalled: AtomicBool,
    /// The inbox has messages or has terminated: a hint for an application thread running
    /// the loop itself ([`Lead`]), set and cleared under the inbox's lock.
    inbox_ready: AtomicBool,
    outbox: Mutex<Outbox>,
    outbox_cv: Condvar,
    /// Peers whose handshake is done.
    ready_peers: AtomicUsize,
    /// ROUTER: routing ids of ready peers (with a count, for a handover's overlap).
    routing_ids: Mutex<HashMap<Vec<u8>, usize>>,
    waker: std::sync::Arc<Waker>,
    spin: Arc<Spin>,
    /// Pollers waiting on this socket.
    waiters: Mutex<Vec<Arc<Signal>>>,
    /// `waiters.len()`, read without the lock on the I/O thread's hot paths.
    waiter_count: AtomicUsize,
    /// The monitor channel, if the application asked for one.
    monitor: Mutex<Option<MonitorSender>>,
    /// `monitor.is_some()`, read without the lock.
    monitored: AtomicBool,
    /// Allow-list and handshake failures (PLAIN, CURVE).
    pub(crate) security: crate::security::SocketSecurity,
    /// Long frames' bodies to use again (see [`Spares`]).
    pub(crate) spares: Spares,
}

impl Shared {
    pub(crate) fn new(
        waker: std::sync::Arc<Waker>,
        spin: Arc<Spin>,
        send_cap: usize,
        recv_cap: usize,
    ) -> Self {
        Shared {
            inbox: Mutex::new(Inbox {
                cap: recv_cap,
                ..Inbox::default()
            }),
            inbox_cv: Condvar::new(),
            inbox_stalled: AtomicBool::new(false),
            inbox_ready: AtomicBool::new(false),
            outbox: Mutex::new(Outbox {
                cap: send_cap,
                ..Outbox::default()
            }),
            outbox_cv: Condvar::new(),
            ready_peers: AtomicUsize::new(0),
            routing_ids: Mutex::new(HashMap::new()),
            waker,
            spin,
            waiters: Mutex::new(Vec::new()),
            waiter_count: AtomicUsize::new(0),
            monitor: Mutex::new(None),
            monitored: AtomicBool::new(false),
            security: Default::default(),
            spares: Spares::default(),
        }
    }

    /// Sends the socket's events to `monitor` from now on (replacing an earlier one).
    pub(crate) fn set_monitor(&self, monitor: MonitorSender) {
        *lock(&self.monitor) = Some(monitor);
        self.monitored.store(true, Ordering::SeqCst);
    }

    /// Reports an event to the monitor, if there is one (the event is only built then).
    /// Never waits: see [`MonitorSender::send`].
    pub(crate) fn emit(&self, ev: impl FnOnce() -> MonitorEvent) {
        if !self.monitored.load(Ordering::Relaxed) {
            return;
        }
        let mut g = lock(&self.monitor);
        if let Some(m) = g.as_mut() {
            if !m.send(ev()) {
                // The application dropped the receiver.
                *g = None;
                self.monitored.store(false, Ordering::SeqCst);
            }
        }
    }

    /// Wakes the pollers waiting on this socket (it may have become ready).
    fn notify_waiters(&self) {
        if self.waiter_count.load(Ordering::SeqCst) == 0 {
            return;
        }
        for w in lock(&self.waiters).iter() {
            w.fire();
        }
    }

    /// A poller starts waiting on this socket.
    pub(crate) fn add_waiter(&self, w: &Arc<Signal>) {
        let mut g = lock(&self.waiters);
        g.push(Arc::clone(w));
        self.waiter_count.store(g.len(), Ordering::SeqCst);
        self.spin.lead.blocked.fetch_add(1, Ordering::SeqCst);
    }

    /// A poller is done waiting on this socket.
    pub(crate) fn remove_waiter(&self, w: &Arc<Signal>) {
        let mut g = lock(&self.waiters);
        if let Some(i) = g.iter().position(|x| Arc::ptr_eq(x, w)) {
            g.swap_remove(i);
            self.spin.lead.blocked.fetch_sub(1, Ordering::SeqCst);
        }
        self.waiter_count.store(g.len(), Ordering::SeqCst);
    }

    /// Whether [`send`](Self::send) would queue a message now; `Err` once terminated.
    pub(crate) fn outbox_has_room(&self) -> Result<bool> {
        let g = lock(&self.outbox);
        if g.terminated {
            return Err(Error::Terminated);
        }
        Ok(g.has_room())
    }

    /// Wakes whoever runs the loop: a spinning I/O thread by a flag, a sleeping one (or
    /// an application thread leading it) through the waker; and has a parked I/O thread
    /// take the loop back ([`Lead`]).
    pub(crate) fn wake(&self) -> Result<()> {
        if self.spin.poke() {
            return Ok(());
        }
        self.spin.lead.io_wanted.store(true, Ordering::SeqCst);
        self.waker.wake().map_err(Error::Io)?;
        if let Some(t) = self.spin.lead.io_thread.get() {
            t.unpark();
        }
        Ok(())
    }

    // ------------------------------------------------------------ application side

    /// Sets the queue limits (before the socket starts).
    pub(crate) fn set_caps(&self, send_cap: usize, recv_cap: usize) {
        lock(&self.outbox).cap = send_cap;
        lock(&self.inbox).cap = recv_cap;
    }

    /// Whether the I/O thread waits for the application to read what it holds (a hint:
    /// then [`refill`](Self::refill) as soon as the local batch is read).
    pub(crate) fn inbox_stalled(&self) -> bool {
        self.inbox_stalled.load(Ordering::Relaxed)
    }

    /// The application has read all of `local` (its batch of received messages): gives it
    /// the inbox's messages, all at once, waiting for some as `wait` says. The messages
    /// read count no more against the limit, and a stalled I/O thread is woken.
    pub(crate) fn refill(&self, local: &mut Batch, wait: Wait) -> Result<()> {
        let mut g = lock(&self.inbox);
        local.clear();
        g.held = 0;
        if self.inbox_stalled.swap(false, Ordering::Relaxed) {
            self.wake()?;
        }
        loop {
            if !g.batch.is_empty() {
                std::mem::swap(local, &mut g.batch);
                g.held = local.len();
                self.inbox_ready.store(g.terminated, Ordering::Relaxed);
                return Ok(());
            }
            if g.terminated {
                return Err(Error::Terminated);
            }
            g.waiting += 1;
            self.spin.lead.blocked.fetch_add(1, Ordering::SeqCst);
            let (g2, r) = wait_on(&self.inbox_cv, g, wait);
            self.spin.lead.blocked.fetch_sub(1, Ordering::SeqCst);
            g = g2;
            g.waiting -= 1;
            r?;
        }
    }

    /// The application has read `n` more messages of the batch it holds (and will go on
    /// reading it): they count no more against the limit, and a stalled I/O thread is woken
    /// to fill the inbox meanwhile.
    pub(crate) fn release(&self, n: usize) -> Result<()> {
        let mut g = lock(&self.inbox);
        g.held = g.held.saturating_sub(n);
        drop(g);
        if self.inbox_stalled.swap(false, Ordering::Relaxed) {
            self.wake()?;
        }
        Ok(())
    }

    /// Whether the inbox has messages (or has terminated): a hint, without the lock.
    pub(crate) fn inbox_ready(&self) -> bool {
        self.inbox_ready.load(Ordering::Acquire)
    }

    /// Waits, as `wait` says, until the inbox has a message for [`refill`](Self::refill)
    /// (call that first: it releases what the application held).
    pub(crate) fn wait_incoming(&self, wait: Wait) -> Result<()> {
        let mut g = lock(&self.inbox);
        loop {
            if !g.batch.is_empty() {
                return Ok(());
            }
            if g.terminated {
                return Err(Error::Terminated);
            }
            g.waiting += 1;
            self.spin.lead.blocked.fetch_add(1, Ordering::SeqCst);
            let (g2, r) = wait_on(&self.inbox_cv, g, wait);
            self.spin.lead.blocked.fetch_sub(1, Ordering::SeqCst);
            g = g2;
            g.waiting -= 1;
            r?;
        }
    }

    /// Queues a message for the I/O thread (`push` adds it to the batch); with
    /// `needs_peer` (`immediate`), only while some peer's handshake is done. Never waits:
    /// [`Error::WouldBlock`] when full (then see [`wait_room`](Self::wait_room)). `true`:
    /// the loop must be woken (or run) to take it.
    pub(crate) fn send(&self, needs_peer: bool, push: impl FnOnce(&mut Batch)) -> Result<bool> {
        let mut g = lock(&self.outbox);
        if g.terminated {
            return Err(Error::Terminated);
        }
        let peer_ok = !needs_peer || self.ready_peers() > 0;
        if !(peer_ok && g.has_room()) {
            return Err(Error::WouldBlock);
        }
        push(&mut g.batch);
        g.queued += 1;
        let wake = !std::mem::replace(&mut g.wake_pending, true);
        Ok(wake)
    }

    /// Waits until [`send`](Self::send) may succeed, as `wait` says.
    pub(crate) fn wait_room(&self, wait: Wait, needs_peer: bool) -> Result<()> {
        let mut g = lock(&self.outbox);
        loop {
            if g.terminated {
                return Err(Error::Terminated);
            }
            let peer_ok = !needs_peer || self.ready_peers() > 0;
            if peer_ok && g.has_room() {
                return Ok(());
            }
            g.waiting += 1;
            self.spin.lead.blocked.fetch_add(1, Ordering::SeqCst);
            let (g2, r) = wait_on(&self.outbox_cv, g, wait);
            self.spin.lead.blocked.fetch_sub(1, Ordering::SeqCst);
            g = g2;
            g.waiting -= 1;
            r?;
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
    /// application is asked to wake the I/O thread once it has read what it holds.
    pub(crate) fn inbox_room(&self) -> usize {
        let g = lock(&self.inbox);
        let room = if g.cap == 0 {
            usize::MAX
        } else {
            g.cap.saturating_sub(g.batch.len().saturating_add(g.held))
        };
        if room == 0 {
            self.inbox_stalled.store(true, Ordering::Relaxed);
        }
        room
    }

    /// Hands received messages (tagged, see [`Inbox`]) to the application, past the
    /// limit if need be (the limit is checked with [`inbox_room`](Self::inbox_room));
    /// `msgs` is left empty.
    pub(crate) fn deliver(&self, msgs: &mut Batch) {
        if msgs.is_empty() {
            return;
        }
        let mut g = lock(&self.inbox);
        g.batch.append(msgs);
        self.inbox_ready.store(true, Ordering::Release);
        let waiting = g.waiting > 0;
        if waiting {
            self.spin
                .lead
                .app_woken
                .fetch_add(g.waiting, Ordering::Relaxed);
        }
        drop(g);
        if waiting {
            self.inbox_cv.notify_all();
        }
        self.notify_waiters();
    }

    /// Drops undelivered received messages (the application closed the socket).
    pub(crate) fn clear_inbox(&self) {
        let mut g = lock(&self.inbox);
        g.batch.clear();
        self.inbox_ready.store(g.terminated, Ordering::Relaxed);
    }

    /// The I/O thread has given `done` more messages to its core (or dropped them): they
    /// leave the queue's count. If it has also given all of `local` to its core, the queued
    /// messages move there, all at once. A message counts against the limit until the
    /// core has it, so the limit is exact.
    pub(crate) fn take_outgoing(&self, local: &mut Batch, done: usize) {
        let mut g = lock(&self.outbox);
        g.wake_pending = false;
        g.queued = g.queued.saturating_sub(done);
        if local.is_empty() {
            local.clear();
            std::mem::swap(local, &mut g.batch);
        }
        let waiting = g.waiting > 0;
        drop(g);
        if done > 0 {
            if waiting {
                self.outbox_cv.notify_all();
            }
            self.notify_waiters();
        }
    }

    /// Whether messages wait to be given to the core.
    pub(crate) fn has_outgoing(&self) -> bool {
        lock(&self.outbox).queued > 0
    }

    /// Drops messages not yet taken (linger over).
    pub(crate) fn clear_outbox(&self) {
        let mut g = lock(&self.outbox);
        g.batch.clear();
        g.queued = 0;
    }

    pub(crate) fn peer_ready(&self, routing_id: Option<&[u8]>) {
        // The routing id first: whoever sees the peer counted can address it.
        if let Some(id) = routing_id {
            *lock(&self.routing_ids).entry(id.to_vec()).or_insert(0) += 1;
        }
        {
            // Under the outbox lock, so a sender that found no peer is waiting already.
            let _g = lock(&self.outbox);
            self.ready_peers.fetch_add(1, Ordering::SeqCst);
        }
        self.outbox_cv.notify_all();
        self.notify_waiters();
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
        {
            let mut g = lock(&self.inbox);
            g.terminated = true;
            self.inbox_ready.store(true, Ordering::Release);
        }
        lock(&self.outbox).terminated = true;
        // The monitor's channel ends: its receiver sees the sender gone.
        self.monitored.store(false, Ordering::SeqCst);
        lock(&self.monitor).take();
        self.ready_peers.store(0, Ordering::Relaxed);
        self.inbox_cv.notify_all();
        self.outbox_cv.notify_all();
        self.notify_waiters();
    }
}

/// Waits on `cv` as `wait` says: not at all (`WouldBlock`), until woken, or until a deadline
/// (`Timeout` once it has passed). A poisoned lock is taken over: the queues stay consistent.
/// The guard comes back either way (the caller keeps count of waiters).
fn wait_on<'a, T>(
    cv: &Condvar,
    g: MutexGuard<'a, T>,
    wait: Wait,
) -> (MutexGuard<'a, T>, Result<()>) {
    match wait {
        Wait::No => (g, Err(Error::WouldBlock)),
        Wait::Forever => (cv.wait(g).unwrap_or_else(PoisonError::into_inner), Ok(())),
        Wait::Until(t) => {
            let left = t.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (g, Err(Error::Timeout));
            }
            let g = cv
                .wait_timeout(g, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            (g, Ok(()))
        }
    }
}
