//! The I/O thread: one mio poll loop driving every socket of a context.
//!
//! Each socket is a zmtp-core [`Socket`](zmtp_core::socket::Socket) (in an [`OwnedSocket`])
//! plus the TCP listeners and streams that carry its peers. A turn of the loop:
//!
//! 1. wait in [`Poll::poll`] until a stream or listener is ready, the application wakes us
//!    (the [`mio::Waker`]), or the next deadline (the cores' heartbeat and handshake timers,
//!    reconnects, lingering closes);
//! 2. note readiness per stream (mio is edge-triggered: a stream stays "readable" until a
//!    read returns `WouldBlock`, "writable" until a write does);
//! 3. run the application's commands (open, bind, connect, close);
//! 4. service every socket: accept until `WouldBlock`, start and finish connects, then in
//!    rounds until nothing moves: read into each peer's receive window, fire the core's
//!    timers, move received messages to the application, handle peer events (ready, closed:
//!    flush, close, `remove_peer`, schedule a reconnect), move the application's messages
//!    into the core, write each peer's output. This is the core's "after any input, drain
//!    every poll" duty.
//!
//! Nothing here blocks except `poll`; no error of one connection stops the loop.
//!
//! The loop's state ([`IoThread`]) sits behind a mutex ([`Loop`]): the I/O thread runs it
//! ([`run`]) except while it has stepped aside for an application thread, which then runs
//! turns in its calls ([`lead`]; see [`Lead`](crate::shared::Lead) for who runs it when).

mod auth;

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{ErrorKind, IoSlice, Read, Write};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::{Events, Interest, Poll, Registry, Token};
use zmtp_core::socket::{Part, PeerHandle, Socket, SocketConfig, SocketEvent, SocketSendError};
use zmtp_core::{CloseReason, Config, Role, SocketType};

use crate::batch::{Batch, Spares, OWN_FRAME};
use crate::context::{Command, WAKER};
use crate::error::{Error, Result};
use crate::monitor::MonitorEvent;
use crate::options::SocketOptions;
use crate::owned::{Layout, OwnedSocket};
use crate::shared::{Shared, Spin};
use crate::transport::{Addr, Listener, Stream};

/// Reads per connection per round (so one busy peer cannot starve the others).
const READ_BUDGET: usize = 16;
/// Writes per connection per round.
const WRITE_BUDGET: usize = 16;
/// Messages moved from the application into the core per round.
const SEND_BUDGET: usize = 4096;
/// Rounds per service before going back to `poll` (with a zero timeout if work is left).
const ROUNDS: usize = 8;
/// Received data frames of this many bytes or more are read straight from the stream into
/// the `Vec` the application gets (zmtp-core's direct frames): no copy through the core's
/// buffers and queue.
const DIRECT_RECV: usize = OWN_FRAME;
/// Frames of this many bytes or more to send are written from the application's `Vec` by a
/// vectored write, with their header (zmtp-core's direct frames). Smaller ones are copied
/// into the session's transmit buffer: there, several go out in one write, which costs
/// less than a write each.
const DIRECT_SEND: usize = 32 * 1024;
/// After a direct frame, reads into the core's buffer take at most this many bytes: enough
/// for the next frame's header (and any short frames before it), not so much that most of
/// a large body that follows is copied out of the buffer instead of being read straight
/// into its `Vec`. A read that finds no large frame lifts the cap.
const AFTER_DIRECT_READ: usize = 1024;
/// A direct frame's body is allocated at most this much at a time, as its bytes come (a
/// peer announcing a huge frame gets no huge allocation before it sends the bytes).
const DIRECT_CHUNK: usize = 4 << 20;

/// The loop's state, shared by the I/O thread and the application threads that run it
/// in its place for a while (see [`Lead`](crate::shared::Lead)).
pub(crate) type Loop = Mutex<IoThread>;

/// Makes the loop (run it on a thread with [`run`]).
pub(crate) fn new_loop(
    poll: Poll,
    commands: Receiver<Command>,
    auth: Arc<crate::zap::ContextAuth>,
    spin: Arc<Spin>,
) -> Loop {
    Mutex::new(IoThread {
        poll,
        commands,
        auth,
        spin,
        epoch: Instant::now(),
        tokens: Tokens::default(),
        sockets: IdMap::default(),
        shutting_down: false,
        events: Events::with_capacity(256),
        more: false,
        busy: false,
        finished: false,
    })
}

fn lock_loop(lp: &Loop) -> MutexGuard<'_, IoThread> {
    lp.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The I/O thread's body: runs the loop until the context shuts down, stepping aside
/// while application threads run it ([`Lead`](crate::shared::Lead)).
pub(crate) fn run(lp: Arc<Loop>, spin: Arc<Spin>) {
    spin.lead.set_io_thread();
    loop {
        spin.lead.wait_turn(spin.limit());
        let mut io = lock_loop(&lp);
        loop {
            if !io.turn(None, true) {
                // Dropping the sockets: blocked application calls return `Terminated`.
                io.sockets.clear();
                return;
            }
            let lease = spin.limit();
            if !io.more && spin.lead.should_step_aside(lease) {
                spin.lead.renew(lease);
                break;
            }
        }
        drop(io);
        // A wake-up while stepping aside: take the loop back at once (`wait_turn`).
    }
}

/// An application thread runs the loop if it is free (the I/O thread stepped aside and
/// no other application thread leads): turns until `ready()` or `deadline` (`None`:
/// one turn without waiting; `Some(None)`: no deadline). Whether it ran the loop.
pub(crate) fn lead(
    lp: &Loop,
    spin: &Spin,
    ready: impl Fn() -> bool,
    deadline: Option<Option<Instant>>,
) -> bool {
    let lease = spin.limit();
    if lease.is_zero() {
        return false;
    }
    let mut io = match lp.try_lock() {
        Ok(g) => g,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return false,
    };
    if io.finished {
        // Shutting down: the I/O thread finishes (and terminates the sockets).
        drop(io);
        spin.lead.want_io();
        return false;
    }
    spin.lead.set_leading(true);
    match deadline {
        None => io.turn_without_poll(),
        Some(deadline) => {
            while !ready() {
                let cap = match deadline {
                    Some(d) => {
                        let left = d.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        Some(left)
                    }
                    None => None,
                };
                if !io.turn(cap, false) {
                    spin.lead.set_leading(false);
                    drop(io);
                    spin.lead.want_io();
                    return false;
                }
            }
        }
    }
    spin.lead.renew(lease);
    spin.lead.set_leading(false);
    drop(io);
    spin.lead.after_leaving();
    true
}

/// A map keyed by the loop's own numbers (tokens, socket ids, connect keys, peer
/// handles), which no peer chooses: hashed by one multiply per word instead of SipHash
/// (about 270 instructions less per lookup; SipHash's resistance to chosen keys buys
/// nothing here). Keys that come from the network (ROUTER routing ids) keep std's hasher.
type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// The hasher of [`IdMap`]: each integer written is mixed in by a rotate, xor and
/// multiply by an odd constant (the high bits, which hashbrown uses for its tag, depend
/// on every bit of the key).
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        // The 64-bit golden ratio: odd, its bits spread evenly.
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// Token allocation: every listener and stream gets a fresh token, mapped to its socket.
/// Tokens are never reused, so a late event for a closed stream finds nothing.
#[derive(Default)]
struct Tokens {
    next: usize,
    owner: IdMap<Token, u64>,
}

impl Tokens {
    fn alloc(&mut self, socket: u64) -> Token {
        let t = Token(self.next);
        self.next = self.next.wrapping_add(1);
        self.owner.insert(t, socket);
        t
    }

    fn free(&mut self, t: Token) {
        self.owner.remove(&t);
    }
}

/// What a socket's service needs from the loop.
struct Env<'a> {
    registry: &'a Registry,
    tokens: &'a mut Tokens,
    now: Instant,
    /// `now` on the cores' clock, worked out once.
    core_now: zmtp_core::Instant,
}

impl<'a> Env<'a> {
    /// The environment of one pass, at the current time.
    fn new(registry: &'a Registry, tokens: &'a mut Tokens, epoch: Instant) -> Env<'a> {
        let now = Instant::now();
        let us = now.saturating_duration_since(epoch).as_micros();
        Env {
            registry,
            tokens,
            now,
            core_now: zmtp_core::Instant::from_micros(u64::try_from(us).unwrap_or(u64::MAX)),
        }
    }

    /// `now` on the cores' clock (microseconds since the thread started).
    fn core_now(&self) -> zmtp_core::Instant {
        self.core_now
    }
}

pub(crate) struct IoThread {
    poll: Poll,
    commands: Receiver<Command>,
    epoch: Instant,
    tokens: Tokens,
    sockets: IdMap<u64, IoSocket>,
    shutting_down: bool,
    /// The context's allow-list and ZAP thread.
    auth: Arc<crate::zap::ContextAuth>,
    /// The idle spin's flags and length, shared with the sockets and the context.
    spin: Arc<Spin>,
    events: Events,
    /// The last service left work that needs no event.
    more: bool,
    /// The last turn had work (events, a poke): spin before sleeping.
    busy: bool,
    /// Shut down (or the poller failed): no more turns.
    finished: bool,
}

impl IoThread {
    /// A turn without asking the poller for events (a `send` run by the application: its
    /// message goes out now; readiness news waits for the next turn that polls).
    fn turn_without_poll(&mut self) {
        if self.finished {
            return;
        }
        self.spin.lead.turn_starts();
        self.run_commands();
        self.more = self.service();
        if self.shutting_down && self.sockets.is_empty() {
            self.finished = true;
        }
    }

    /// One turn of the loop: waits for events (at most `cap`; the I/O thread spins first
    /// if `may_spin`), runs the commands, services every socket. `false` once the context
    /// has shut down.
    fn turn(&mut self, cap: Option<Duration>, may_spin: bool) -> bool {
        if self.finished {
            return false;
        }
        let mut timeout = if self.more {
            Some(Duration::ZERO)
        } else {
            self.next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()))
        };
        if let Some(c) = cap {
            timeout = Some(timeout.map_or(c, |t| t.min(c)));
        }
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        // Spinning got events or a poke: no need to sleep in `poll` (which would clear
        // the events).
        let spun = may_spin
            && self.busy
            && timeout != Some(Duration::ZERO)
            && self.spin(&mut events, timeout);
        let r = if spun {
            Ok(())
        } else {
            self.poll.poll(&mut events, timeout)
        };
        if let Err(e) = r {
            self.events = events;
            if e.kind() == ErrorKind::Interrupted {
                return true;
            }
            log::error!("zmtp-std: poll failed, stopping the I/O thread: {e}");
            self.finished = true;
            return false;
        }
        // Wake-ups made until now are served by this turn.
        self.spin.lead.turn_starts();
        self.busy = spun || !events.is_empty();
        for ev in events.iter() {
            self.dispatch(ev);
        }
        self.events = events;
        self.run_commands();
        self.more = self.service();
        if self.shutting_down && self.sockets.is_empty() {
            self.finished = true;
            return false;
        }
        true
    }

    /// Polls without sleeping for up to the context's spin time (and at most `timeout`),
    /// until an event comes (left in `events`) or an application pokes; whether either
    /// happened. An application that sends or reads just after the I/O thread's work is
    /// then served without a system call and a thread wake-up: in a request-reply
    /// exchange, most hand-offs come within microseconds of the last. Costs CPU time only
    /// after work, never when idle.
    fn spin(&mut self, events: &mut Events, timeout: Option<Duration>) -> bool {
        events.clear();
        let spin_for = self.spin.limit();
        let limit = timeout.map_or(spin_for, |t| t.min(spin_for));
        if limit.is_zero() {
            return false;
        }
        let until = Instant::now() + limit;
        self.spin.set_spinning(true);
        let mut poked = false;
        loop {
            if self.spin.take_poke() {
                poked = true;
                break;
            }
            match self.poll.poll(events, Some(Duration::ZERO)) {
                Ok(()) if events.is_empty() => {}
                // Events (or an error, which the sleeping poll will see again).
                _ => break,
            }
            if Instant::now() >= until {
                break;
            }
            // Let a thread that shares this CPU (the application woken a moment ago) run
            // first: spinning must not delay what it waits for.
            std::thread::yield_now();
        }
        self.spin.set_spinning(false);
        // A poke between the last look and `set_spinning(false)`.
        poked |= self.spin.take_poke();
        poked || !events.is_empty()
    }

    fn dispatch(&mut self, ev: &Event) {
        let token = ev.token();
        if token == WAKER {
            // Commands and the sockets' outboxes are looked at on every turn.
            return;
        }
        let Some(id) = self.tokens.owner.get(&token) else {
            return;
        };
        let Some(s) = self.sockets.get_mut(id) else {
            return;
        };
        if let Some(c) = s.conns.get_mut(&token) {
            let err = ev.is_error();
            if ev.is_readable() || ev.is_read_closed() || err {
                c.readable = true;
            }
            if ev.is_read_closed() || err {
                // The end of the stream (or an error) is already in: no further event
                // will come for it, so reading goes on until a read says so.
                c.read_closed = true;
            }
            if ev.is_writable() || ev.is_write_closed() || err {
                c.writable = true;
            }
        } else if s.listeners.contains_key(&token) {
            s.accept_ready = true;
        }
    }

    fn run_commands(&mut self) {
        loop {
            let cmd = match self.commands.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.shutting_down = true;
                    return;
                }
            };
            let mut env = Env::new(self.poll.registry(), &mut self.tokens, self.epoch);
            match cmd {
                Command::Open {
                    id,
                    ty,
                    opts,
                    shared,
                } => {
                    let mut s = IoSocket::new(id, ty, *opts, shared);
                    s.auth.context = Some(Arc::clone(&self.auth));
                    self.sockets.insert(id, s);
                }
                Command::Bind { id, addr, reply } => {
                    let r = match self.sockets.get_mut(&id) {
                        Some(s) => s.bind(&mut env, addr),
                        None => Err(Error::Terminated),
                    };
                    // The application may have given up waiting: nothing to do then.
                    let _ = reply.send(r);
                }
                Command::Subscribe {
                    id,
                    subscribe,
                    topic,
                    reply,
                } => {
                    let r = match self.sockets.get_mut(&id) {
                        Some(s) => s.change_subscription(subscribe, &topic),
                        None => Err(Error::Terminated),
                    };
                    match reply {
                        // The application may have given up waiting: nothing to do then.
                        Some(reply) => {
                            let _ = reply.send(r);
                        }
                        None => {
                            if let Err(e) = r {
                                log::warn!("zmtp-std: subscription {topic:?} failed: {e}");
                            }
                        }
                    }
                }
                Command::Connect {
                    id,
                    endpoint,
                    addrs,
                } => {
                    if let Some(s) = self.sockets.get_mut(&id) {
                        s.add_connect(endpoint, addrs, env.now);
                    }
                }
                Command::Unbind {
                    id,
                    endpoint,
                    addr,
                    reply,
                } => {
                    let r = match self.sockets.get_mut(&id) {
                        Some(s) => s.unbind(&mut env, &endpoint, addr.as_ref()),
                        None => Err(Error::Terminated),
                    };
                    let _ = reply.send(r);
                }
                Command::Disconnect {
                    id,
                    endpoint,
                    reply,
                } => {
                    let r = match self.sockets.get_mut(&id) {
                        Some(s) => s.disconnect(&mut env, &endpoint),
                        None => Err(Error::Terminated),
                    };
                    let _ = reply.send(r);
                }
                Command::Close { id, linger } => {
                    if let Some(s) = self.sockets.get_mut(&id) {
                        s.begin_close(&mut env, linger);
                    }
                }
                Command::ZapReply { id, request, reply } => {
                    if let Some(s) = self.sockets.get_mut(&id) {
                        s.zap_reply(request, &reply);
                    }
                }
                Command::Shutdown => {
                    self.shutting_down = true;
                    // Every handle is gone, so every socket is closing already; a leaked
                    // one (`mem::forget`) is closed without linger.
                    for s in self.sockets.values_mut() {
                        s.begin_close(&mut env, Some(Duration::ZERO));
                    }
                }
            }
        }
    }

    /// Services every socket; whether work is left that needs no event.
    fn service(&mut self) -> bool {
        let mut env = Env::new(self.poll.registry(), &mut self.tokens, self.epoch);
        let mut more = false;
        let mut finished = Vec::new();
        for (id, s) in self.sockets.iter_mut() {
            more |= s.service(&mut env);
            if s.linger_over(&env) {
                finished.push(*id);
            }
        }
        for id in finished {
            if let Some(s) = self.sockets.remove(&id) {
                s.finish(&mut env);
            }
        }
        more
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        let epoch = self.epoch;
        self.sockets
            .values_mut()
            .filter_map(|s| s.next_deadline(epoch))
            .min()
    }
}

// ================================================================================ sockets

/// One stream (TCP or IPC) of a socket.
struct Conn {
    stream: Stream,
    /// The core's peer; `None` while the connect is in progress.
    peer: Option<PeerHandle>,
    /// The connect endpoint it belongs to (key in `IoSocket::connects`); `None` if
    /// accepted.
    origin: Option<usize>,
    /// The listener that accepted it.
    listener: Option<Token>,
    /// The endpoint connected to, or of the listener that accepted it (for monitors).
    endpoint: String,
    /// Readiness not yet used up (edge-triggered).
    readable: bool,
    /// An event reported the end of the stream or an error: a short read does not mean
    /// the stream has nothing more (the end is still to be read, and no new event comes).
    read_closed: bool,
    writable: bool,
    /// End of stream or a transport error was given to the core: no more I/O.
    dead: bool,
    /// The handshake is done (counted in `Shared`).
    ready: bool,
    /// ROUTER: the peer's routing id, once ready.
    routing_id: Option<Vec<u8>>,
    /// The last frame read was a direct one: read little into the core's buffer
    /// ([`AFTER_DIRECT_READ`]).
    after_direct: bool,
}

impl Conn {
    fn new(
        stream: Stream,
        peer: Option<PeerHandle>,
        origin: Option<usize>,
        endpoint: String,
    ) -> Conn {
        Conn {
            stream,
            peer,
            origin,
            listener: None,
            endpoint,
            // A new stream may be ready already; finding out costs one `WouldBlock`.
            readable: peer.is_some(),
            read_closed: false,
            writable: peer.is_some(),
            dead: false,
            ready: false,
            routing_id: None,
            after_direct: false,
        }
    }

    /// One `read` into `buf`, sorted into what the loop does next.
    ///
    /// A read that returns less than `buf` holds took everything the kernel had for a
    /// stream socket, so on Unix (epoll, kqueue: edge-triggered, a new edge for any byte
    /// that arrives later) it uses up the readiness, without the `read` that would only
    /// say `WouldBlock`: one system call fewer per message on a request-reply path. Not
    /// once an event has reported the stream's end or an error ([`read_closed`](Self::read_closed)):
    /// the end that came with the last bytes is seen by the next read only, and no new
    /// event would come for it. Elsewhere mio emulates edge triggering and needs that
    /// `WouldBlock` to arm the next event, so the loop reads on.
    fn read_some(&mut self, buf: &mut [u8]) -> ReadOutcome {
        let len = buf.len();
        match self.stream.read(buf) {
            Ok(0) => ReadOutcome::Closed,
            Ok(n) => {
                if cfg!(unix) && n < len && !self.read_closed {
                    self.readable = false;
                }
                ReadOutcome::Got(n)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => ReadOutcome::Drained,
            Err(e) if e.kind() == ErrorKind::Interrupted => ReadOutcome::Again,
            Err(e) => {
                log::debug!("zmtp-std: read failed: {e}");
                ReadOutcome::Closed
            }
        }
    }

    /// Ends a burst of reads that `end` (not `Got` or `Again`) stopped: the readiness is
    /// used up, or the stream is over and the core is told. Returns whether that is
    /// progress (the core has something new to act on).
    fn stop_reading(
        &mut self,
        core: &mut Socket<'static, 'static>,
        h: PeerHandle,
        end: ReadOutcome,
    ) -> bool {
        if matches!(end, ReadOutcome::Drained) {
            self.readable = false;
            false
        } else {
            self.dead = true;
            core.handle_eof(h);
            true
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnectState {
    /// (Re)connect at this time.
    Waiting(Instant),
    /// A stream exists (connecting or connected).
    Active,
    /// Not reconnecting (reconnects off, or the peer said not to).
    Stopped,
}

/// A `connect()`ed endpoint.
struct Connect {
    /// As given to `connect` (what `disconnect` names).
    endpoint: String,
    addrs: Vec<Addr>,
    /// Address to try next (they are tried in turn after failures).
    next: usize,
    state: ConnectState,
    /// Wait before the next attempt (grows with `reconnect_interval_max`).
    backoff: Duration,
}

struct Closing {
    /// Linger deadline; `None`: no limit.
    deadline: Option<Instant>,
}

/// The I/O thread's side of a socket.
struct IoSocket {
    id: u64,
    ty: SocketType,
    opts: SocketOptions,
    core: OwnedSocket,
    shared: Arc<Shared>,
    listeners: IdMap<Token, Listener>,
    /// A listener reported a connection.
    accept_ready: bool,
    conns: IdMap<Token, Conn>,
    /// `connect()`ed endpoints by a key never reused.
    connects: IdMap<usize, Connect>,
    next_connect: usize,
    /// REP: a request is with the application; take no other until its reply came (the
    /// core would otherwise route that reply to the next requester).
    rep_busy: bool,
    /// Messages taken from the application's outbox so far (tags received messages, so a
    /// correlating REQ can tell replies to requests it has since replaced).
    sent: u64,
    /// Messages taken from the outbox in one batch and not all given to the core yet.
    outgoing: Batch,
    /// Given to the core from `outgoing` since the outbox last counted them.
    outgoing_done: usize,
    /// Received messages being collected for the inbox (empty between turns).
    incoming: Batch,
    closing: Option<Closing>,
    /// PLAIN/CURVE server: clients waiting for the ZAP handler.
    auth: auth::AuthState,
    /// The core takes messages with direct frames ([`DIRECT_SEND`]).
    direct_send: bool,
    /// Bodies of direct frames queued in the core, per peer, in the order it writes them.
    direct_out: IdMap<PeerHandle, VecDeque<Vec<u8>>>,
    /// Bodies of direct frames received, per peer.
    direct_in: IdMap<PeerHandle, DirectIn>,
    /// `read_all`'s list of streams to read, kept for its capacity.
    read_tokens: Vec<Token>,
}

/// A peer's received direct frame bodies.
#[derive(Default)]
struct DirectIn {
    /// The body being read, and how many of its bytes are in (the rest is zeroes).
    cur: Option<(Vec<u8>, usize)>,
    /// Complete bodies, in the order of the core's placeholders for them.
    done: VecDeque<Vec<u8>>,
}

impl DirectIn {
    /// Room for the next bytes of a body of `len` bytes owing `owed`: the unfilled part of
    /// its `Vec` (a spare body if there is one, see [`Spares`]), grown by at most
    /// [`DIRECT_CHUNK`] when full.
    fn room(&mut self, len: u64, owed: u64, spares: &Spares) -> &mut [u8] {
        let first = usize::try_from(len).map_or(DIRECT_CHUNK, |l| l.min(DIRECT_CHUNK));
        let (body, filled) = self.cur.get_or_insert_with(|| {
            let body = match spares.get(first) {
                // Only what it lacks of `first` is zeroed (its old bytes are overwritten
                // before anybody sees them: only the filled part is handed on).
                Some(mut body) => {
                    body.resize(first, 0);
                    body
                }
                None => vec![0u8; first],
            };
            (body, 0)
        });
        if *filled == body.len() {
            let more = usize::try_from(owed).map_or(DIRECT_CHUNK, |o| o.min(DIRECT_CHUNK));
            body.resize(filled.saturating_add(more), 0);
        }
        body.get_mut(*filled..).unwrap_or(&mut [])
    }

    /// Records `n` more bytes in; a complete body (nothing `owed` after) moves to `done`.
    fn filled(&mut self, n: usize, complete: bool) {
        if let Some((_, filled)) = self.cur.as_mut() {
            *filled = filled.saturating_add(n);
        }
        if complete {
            if let Some((mut body, filled)) = self.cur.take() {
                body.truncate(filled);
                self.done.push_back(body);
            }
        }
    }
}

/// What one `read` from a connection's stream came to.
enum ReadOutcome {
    /// `n` bytes (never 0) are in the buffer.
    Got(usize),
    /// Interrupted by a signal: read again.
    Again,
    /// Nothing more until the stream is readable again.
    Drained,
    /// End of stream, or an error that ends the connection.
    Closed,
}

fn random_u32(salt: u64) -> u32 {
    use std::hash::BuildHasher;
    // libzmq starts routing and request ids at random values; a std hasher's random keys
    // are random enough for that.
    std::collections::hash_map::RandomState::new().hash_one((salt, Instant::now())) as u32
}

impl IoSocket {
    fn new(id: u64, ty: SocketType, opts: SocketOptions, shared: Arc<Shared>) -> IoSocket {
        let mut session = Config::new(ty);
        // A message must fit in a queue (SocketOptions::max_message_size), direct frames
        // or not (the core's limit without direct frames).
        session.max_message_size = opts
            .max_message_size
            .or(Some(u64::try_from(opts.queue_size).unwrap_or(u64::MAX)));
        session.heartbeat_interval = opts.heartbeat_interval;
        session.heartbeat_timeout = opts.heartbeat_timeout;
        session.heartbeat_ttl = opts.heartbeat_ttl;
        session.handshake_timeout = opts.handshake_timeout;
        let mut cfg = SocketConfig::new(session);
        cfg.send_hwm = opts.send_hwm;
        cfg.recv_hwm = opts.recv_hwm;
        cfg.router_mandatory = opts.router_mandatory;
        cfg.router_handover = opts.router_handover;
        cfg.req_relaxed = opts.req_relaxed;
        cfg.req_correlate = opts.req_correlate;
        cfg.router_first_id = random_u32(id);
        cfg.req_first_id = random_u32(id.wrapping_add(1));
        cfg.xpub_verbose = opts.xpub_verbose || opts.xpub_verboser;
        cfg.xpub_verboser = opts.xpub_verboser;
        cfg.direct_threshold = Some(DIRECT_RECV as u64);
        let notifications = if ty == SocketType::XPub {
            opts.queue_size
        } else {
            0
        };
        let layout = Layout {
            peers: opts.max_peers,
            buffer: opts.buffer_size,
            queue: opts.queue_size,
            trie: opts.subscription_memory(ty).saturating_sub(notifications),
            notifications,
        };
        let mut core = OwnedSocket::with_security(
            cfg,
            &opts.routing_id,
            layout,
            Some(opts.security.material()),
        );
        let direct_send = ty != SocketType::Pull && core.core().supports_direct();
        // Whole one-frame messages go from the session's buffer straight into the batch
        // for the inbox (`take_inbound`), not through the core's queue (PULL, DEALER, PAIR,
        // SUB, XSUB: the others' `recv` does more).
        core.core().set_take_messages(true);
        IoSocket {
            id,
            ty,
            core,
            opts,
            shared,
            listeners: IdMap::default(),
            accept_ready: false,
            conns: IdMap::default(),
            connects: IdMap::default(),
            next_connect: 0,
            rep_busy: false,
            sent: 0,
            outgoing: Batch::default(),
            outgoing_done: 0,
            incoming: Batch::default(),
            closing: None,
            auth: auth::AuthState::default(),
            direct_send,
            direct_out: IdMap::default(),
            direct_in: IdMap::default(),
            read_tokens: Vec::new(),
        }
    }

    // ------------------------------------------------------------ commands

    fn bind(&mut self, env: &mut Env<'_>, addr: Addr) -> Result<Addr> {
        let r = self.try_bind(env, &addr);
        match &r {
            Ok(local) => self.shared.emit(|| MonitorEvent::Listening {
                endpoint: local.to_string(),
            }),
            Err(e) => self.shared.emit(|| MonitorEvent::BindFailed {
                endpoint: addr.to_string(),
                error: e.to_string(),
            }),
        }
        r
    }

    fn try_bind(&mut self, env: &mut Env<'_>, addr: &Addr) -> Result<Addr> {
        let mut l = Listener::bind(addr)?;
        let local = l.addr.clone();
        let t = env.tokens.alloc(self.id);
        if let Err(e) = env.registry.register(&mut l, t, Interest::READABLE) {
            env.tokens.free(t);
            return Err(e.into());
        }
        self.listeners.insert(t, l);
        self.accept_ready = true;
        Ok(local)
    }

    /// Stops polling a listener and closes it (an `ipc://` file is removed).
    fn close_listener(&mut self, env: &mut Env<'_>, t: Token, mut l: Listener) {
        let _ = env.registry.deregister(&mut l);
        env.tokens.free(t);
        self.shared.emit(|| MonitorEvent::Closed {
            endpoint: l.addr.to_string(),
        });
    }

    /// SUB, XSUB: the core sends the (un)subscription to the ready peers (the next
    /// `service` writes it out) and keeps it for peers to come.
    fn change_subscription(&mut self, subscribe: bool, topic: &[u8]) -> Result<()> {
        let core = self.core.core();
        let r = if subscribe {
            core.subscribe(topic)
        } else {
            core.unsubscribe(topic)
        };
        r.map_err(|e| match e {
            SocketSendError::SubscriptionsFull => Error::SubscriptionsFull,
            SocketSendError::TooLarge => Error::MessageTooLarge,
            _ => Error::State,
        })
    }

    fn add_connect(&mut self, endpoint: String, addrs: Vec<Addr>, now: Instant) {
        let key = self.next_connect;
        self.next_connect = key.wrapping_add(1);
        self.connects.insert(
            key,
            Connect {
                endpoint,
                addrs,
                next: 0,
                state: ConnectState::Waiting(now),
                backoff: self.opts.reconnect_interval.unwrap_or_default(),
            },
        );
    }

    /// Closes the listener bound as `addr` (the address `bind` returned: a wildcard port
    /// or `ipc://*` matches nothing, as in libzmq) and the connections it accepted (as
    /// libzmq's `zmq_unbind`). Their queued messages go with them.
    fn unbind(&mut self, env: &mut Env<'_>, endpoint: &str, addr: Option<&Addr>) -> Result<()> {
        let found = self
            .listeners
            .iter()
            .find(|(_, l)| addr == Some(&l.addr))
            .map(|(t, _)| *t);
        let Some(lt) = found else {
            return Err(Error::EndpointNotFound(endpoint.to_owned()));
        };
        if let Some(l) = self.listeners.remove(&lt) {
            self.close_listener(env, lt, l);
        }
        let accepted: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.listener == Some(lt))
            .map(|(t, _)| *t)
            .collect();
        for t in accepted {
            self.close_conn(env, t);
        }
        Ok(())
    }

    /// Forgets the `connect` made with the text `endpoint`: closes its connection (queued
    /// messages go with it) and stops reconnecting (as libzmq's `zmq_disconnect`).
    fn disconnect(&mut self, env: &mut Env<'_>, endpoint: &str) -> Result<()> {
        let Some(key) = self
            .connects
            .iter()
            .filter(|(_, c)| c.endpoint == endpoint)
            .map(|(k, _)| *k)
            .min()
        else {
            return Err(Error::EndpointNotFound(endpoint.to_owned()));
        };
        self.connects.remove(&key);
        let conns: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.origin == Some(key))
            .map(|(t, _)| *t)
            .collect();
        for t in conns {
            self.close_conn(env, t);
        }
        Ok(())
    }

    /// Closes one connection at once, as if the peer had gone (without reconnecting if
    /// its endpoint is gone).
    fn close_conn(&mut self, env: &mut Env<'_>, t: Token) {
        let Some(c) = self.conns.get(&t) else { return };
        match c.peer {
            Some(h) => {
                if !c.dead {
                    // Stop reading: the peer is leaving now.
                    self.core.core().handle_eof(h);
                }
                self.peer_closed(env, h, CloseReason::Local);
            }
            None => {
                if let Some(c) = self.conns.remove(&t) {
                    close_stream(env, t, c.stream);
                }
            }
        }
    }

    fn begin_close(&mut self, env: &mut Env<'_>, linger: Option<Duration>) {
        if self.closing.is_some() {
            return;
        }
        self.closing = Some(Closing {
            deadline: linger.and_then(|d| env.now.checked_add(d)),
        });
        // Stop listening at once (the port is free again); connections stay to deliver.
        let listeners: Vec<(Token, Listener)> = self.listeners.drain().collect();
        for (t, l) in listeners {
            self.close_listener(env, t, l);
        }
        self.shared.clear_inbox();
        // A REP keeps its turn: a reply the application sent before closing still goes to
        // the peer that asked, or nowhere if it has gone (never to a newcomer).
    }

    /// Whether a closing socket is done: everything queued went out, or linger is over.
    fn linger_over(&mut self, env: &Env<'_>) -> bool {
        let Some(closing) = &self.closing else {
            return false;
        };
        if closing.deadline.is_some_and(|d| env.now >= d) {
            return true;
        }
        if self.shared.has_outgoing() {
            return false;
        }
        let core = self.core.core();
        self.conns.values().all(|c| {
            c.peer
                .is_none_or(|h| c.dead || core.poll_transmit_direct(h).is_empty())
        })
    }

    /// Closes every stream; dropping `self` then frees the core socket and its memory.
    fn finish(mut self, env: &mut Env<'_>) {
        for (t, c) in self.conns.drain() {
            close_stream(env, t, c.stream);
        }
        let listeners: Vec<(Token, Listener)> = self.listeners.drain().collect();
        for (t, l) in listeners {
            self.close_listener(env, t, l);
        }
        self.shared.clear_outbox();
    }

    fn next_deadline(&mut self, epoch: Instant) -> Option<Instant> {
        let core = self
            .core
            .core()
            .poll_timeout()
            .and_then(|t| epoch.checked_add(Duration::from_micros(t.as_micros())));
        let reconnect = self
            .connects
            .values()
            .filter_map(|c| match c.state {
                ConnectState::Waiting(at) => Some(at),
                _ => None,
            })
            .min();
        let linger = self.closing.as_ref().and_then(|c| c.deadline);
        let zap = self.zap_deadline();
        [core, reconnect, linger, zap].into_iter().flatten().min()
    }

    // ------------------------------------------------------------ service

    /// Does all the work there is without waiting; whether work is left that needs no
    /// event (a budget ran out).
    fn service(&mut self, env: &mut Env<'_>) -> bool {
        self.accept_all(env);
        self.start_connects(env);
        self.finish_connects(env);
        let mut more = false;
        for _ in 0..ROUNDS {
            let mut progress = self.read_all(env, &mut more);
            self.core.core().handle_timeout(env.core_now());
            progress |= self.expire_zap(env.now);
            progress |= self.take_inbound(false);
            progress |= self.handle_events(env);
            progress |= self.push_outbound(&mut more);
            progress |= self.write_all(&mut more);
            if !progress {
                return more;
            }
        }
        true
    }

    fn accept_all(&mut self, env: &mut Env<'_>) {
        if !std::mem::take(&mut self.accept_ready) {
            return;
        }
        let tokens: Vec<Token> = self.listeners.keys().copied().collect();
        for lt in tokens {
            while let Some(l) = self.listeners.get(&lt) {
                match l.accept() {
                    Ok((stream, from)) => self.add_accepted(env, lt, stream, from),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        log::warn!("zmtp-std: accept failed: {e}");
                        self.shared.emit(|| MonitorEvent::AcceptFailed {
                            endpoint: l.addr.to_string(),
                            error: e.to_string(),
                        });
                        break;
                    }
                }
            }
        }
    }

    fn add_accepted(&mut self, env: &mut Env<'_>, lt: Token, mut stream: Stream, from: String) {
        stream.configure(&self.opts);
        let endpoint = self
            .listeners
            .get(&lt)
            .map(|l| l.addr.to_string())
            .unwrap_or_default();
        let t = env.tokens.alloc(self.id);
        if let Err(e) =
            env.registry
                .register(&mut stream, t, Interest::READABLE | Interest::WRITABLE)
        {
            log::warn!("zmtp-std: cannot poll the connection from {from}: {e}");
            env.tokens.free(t);
            self.shared.emit(|| MonitorEvent::AcceptFailed {
                endpoint,
                error: e.to_string(),
            });
            return;
        }
        match auth::add_peer(
            &mut self.core,
            self.opts.security.mechanism(),
            Role::Accepted,
            env.core_now(),
        ) {
            Ok(h) => {
                self.shared.emit(|| MonitorEvent::Accepted {
                    endpoint: endpoint.clone(),
                    peer: from,
                });
                let mut c = Conn::new(stream, Some(h), None, endpoint);
                c.listener = Some(lt);
                self.conns.insert(t, c);
            }
            Err(e) => {
                log::warn!("zmtp-std: refusing the connection from {from}: {e:?}");
                close_stream(env, t, stream);
                self.shared.emit(|| MonitorEvent::AcceptFailed {
                    endpoint,
                    error: format!("no free connection slot (max_peers): {e:?}"),
                });
            }
        }
    }

    fn start_connects(&mut self, env: &mut Env<'_>) {
        let keys: Vec<usize> = self.connects.keys().copied().collect();
        for i in keys {
            let Some(c) = self.connects.get_mut(&i) else {
                continue;
            };
            let ConnectState::Waiting(at) = c.state else {
                continue;
            };
            if at > env.now || c.addrs.is_empty() {
                continue;
            }
            let Some(addr) = c.addrs.get(c.next % c.addrs.len()) else {
                continue;
            };
            let endpoint = c.endpoint.clone();
            let mut stream = match Stream::connect(addr) {
                Ok(s) => s,
                Err(e) => {
                    log::debug!("zmtp-std: connect to {addr} failed: {e}");
                    self.shared.emit(|| MonitorEvent::ConnectFailed {
                        endpoint,
                        error: e.to_string(),
                    });
                    self.connect_failed(i, env.now);
                    continue;
                }
            };
            let t = env.tokens.alloc(self.id);
            if let Err(e) =
                env.registry
                    .register(&mut stream, t, Interest::READABLE | Interest::WRITABLE)
            {
                log::warn!("zmtp-std: cannot poll the connection to {addr}: {e}");
                env.tokens.free(t);
                self.connect_failed(i, env.now);
                continue;
            }
            c.state = ConnectState::Active;
            self.shared.emit(|| MonitorEvent::ConnectDelayed {
                endpoint: endpoint.clone(),
            });
            self.conns
                .insert(t, Conn::new(stream, None, Some(i), endpoint));
        }
    }

    /// Connections in progress that had an event: connected (start the ZMTP session) or
    /// failed (try again later).
    fn finish_connects(&mut self, env: &mut Env<'_>) {
        let pending: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.peer.is_none() && (c.readable || c.writable))
            .map(|(t, _)| *t)
            .collect();
        for t in pending {
            let Some(c) = self.conns.get_mut(&t) else {
                continue;
            };
            let outcome = c.stream.connect_outcome();
            match outcome {
                Ok(false) => {
                    // Not yet: wait for the next event.
                    c.readable = false;
                    c.writable = false;
                }
                Ok(true) => {
                    c.stream.configure(&self.opts);
                    match auth::add_peer(
                        &mut self.core,
                        self.opts.security.mechanism(),
                        Role::Connected,
                        env.core_now(),
                    ) {
                        Ok(h) => {
                            c.peer = Some(h);
                            c.readable = true;
                            c.writable = true;
                            self.shared.emit(|| MonitorEvent::Connected {
                                endpoint: c.endpoint.clone(),
                            });
                        }
                        Err(e) => {
                            log::warn!("zmtp-std: no room for a new connection: {e:?}");
                            self.shared.emit(|| MonitorEvent::ConnectFailed {
                                endpoint: c.endpoint.clone(),
                                error: format!("no free connection slot (max_peers): {e:?}"),
                            });
                            self.drop_connecting(env, t);
                        }
                    }
                }
                Err(e) => {
                    log::debug!("zmtp-std: connect failed: {e}");
                    self.shared.emit(|| MonitorEvent::ConnectFailed {
                        endpoint: c.endpoint.clone(),
                        error: e.to_string(),
                    });
                    self.drop_connecting(env, t);
                }
            }
        }
    }

    /// Drops a stream that never became a peer and schedules the next attempt.
    fn drop_connecting(&mut self, env: &mut Env<'_>, t: Token) {
        if let Some(c) = self.conns.remove(&t) {
            close_stream(env, t, c.stream);
            if let Some(i) = c.origin {
                self.connect_failed(i, env.now);
            }
        }
    }

    fn connect_failed(&mut self, i: usize, now: Instant) {
        if let Some(c) = self.connects.get_mut(&i) {
            c.next = c.next.wrapping_add(1);
        }
        self.schedule_reconnect(i, now);
    }

    /// Next attempt after the current backoff, which then doubles up to
    /// `reconnect_interval_max` (reset when a connection gets through its handshake).
    fn schedule_reconnect(&mut self, i: usize, now: Instant) {
        let Some(c) = self.connects.get_mut(&i) else {
            return;
        };
        let Some(ivl) = self.opts.reconnect_interval else {
            c.state = ConnectState::Stopped;
            return;
        };
        let wait = c.backoff.max(ivl);
        c.state = ConnectState::Waiting(now.checked_add(wait).unwrap_or(now));
        self.shared.emit(|| MonitorEvent::ReconnectScheduled {
            endpoint: c.endpoint.clone(),
            after: wait,
        });
        if let Some(max) = self.opts.reconnect_interval_max {
            if max > ivl {
                c.backoff = wait.saturating_mul(2).min(max);
            }
        }
    }

    fn read_all(&mut self, env: &Env<'_>, more: &mut bool) -> bool {
        let now = env.core_now();
        let mut progress = false;
        let core = self.core.core();
        // Readable streams, and those with a direct frame's body already read into the
        // core's buffer (started when the core took buffered input on its own).
        // (Into a vector kept between rounds: no allocation per round.)
        let mut tokens = std::mem::take(&mut self.read_tokens);
        tokens.clear();
        tokens.extend(
            self.conns
                .iter()
                .filter(|(_, c)| {
                    !c.dead
                        && c.peer.is_some_and(|h| {
                            c.readable
                                || core.direct_body(h).is_some_and(|d| !d.buffered.is_empty())
                        })
                })
                .map(|(t, _)| *t),
        );
        for &t in &tokens {
            let mut budget = READ_BUDGET;
            loop {
                let core = self.core.core();
                let Some(c) = self.conns.get_mut(&t) else {
                    break;
                };
                let Some(h) = c.peer else { break };
                if let Some(d) = core.direct_body(h) {
                    // A large frame: its body goes into the `Vec` the application will get.
                    let (len, owed) = (d.len, d.owed());
                    let into = self.direct_in.entry(h).or_default();
                    if !d.buffered.is_empty() {
                        // What came in with its header: the only copy.
                        let n = d.buffered.len();
                        let room = into.room(len, owed, &self.shared.spares);
                        let k = n.min(room.len());
                        if let (Some(dst), Some(src)) = (room.get_mut(..k), d.buffered.get(..k)) {
                            dst.copy_from_slice(src);
                        }
                        // Cannot fail: `k` is at most what is owed.
                        let _ = core.commit_direct(h, k, now);
                        into.filled(k, k as u64 == owed);
                        progress = true;
                    } else {
                        if !c.readable {
                            break;
                        }
                        if budget == 0 {
                            *more = true;
                            break;
                        }
                        budget -= 1;
                        let room = into.room(len, owed, &self.shared.spares);
                        let cap = usize::try_from(owed).map_or(room.len(), |o| o.min(room.len()));
                        match c.read_some(room.get_mut(..cap).unwrap_or(&mut [])) {
                            ReadOutcome::Got(n) => {
                                // Cannot fail: `n` is at most what is owed.
                                let _ = core.commit_direct(h, n, now);
                                into.filled(n, n as u64 == owed);
                                progress = true;
                            }
                            ReadOutcome::Again => {}
                            end => {
                                progress |= c.stop_reading(core, h, end);
                                break;
                            }
                        }
                    }
                    if core.direct_body(h).is_none() {
                        c.after_direct = true;
                        self.take_inbound(false);
                    }
                    continue;
                }
                if !c.readable {
                    break;
                }
                let window = core.recv_window(h);
                let window = if c.after_direct {
                    let n = window.len().min(AFTER_DIRECT_READ);
                    window.get_mut(..n).unwrap_or(&mut [])
                } else {
                    window
                };
                if window.is_empty() {
                    // Back-pressure (the peer's queue is full) or the session is over: the
                    // readiness is kept for later.
                    break;
                }
                if budget == 0 {
                    *more = true;
                    break;
                }
                budget -= 1;
                match c.read_some(window) {
                    ReadOutcome::Got(n) => {
                        // Cannot fail: `n` is at most the window.
                        let _ = core.commit_received(h, n, now);
                        c.after_direct = core.direct_body(h).is_some();
                        progress = true;
                        // Hand over what this completed before reading on: the end of the
                        // stream may come with the next read, and a closed peer's REQ
                        // reply would then be dropped by the core.
                        self.take_inbound(false);
                    }
                    ReadOutcome::Again => {}
                    end => {
                        progress |= c.stop_reading(core, h, end);
                        break;
                    }
                }
            }
        }
        self.read_tokens = tokens;
        progress
    }

    fn write_all(&mut self, more: &mut bool) -> bool {
        let core = self.core.core();
        let mut progress = false;
        for c in self.conns.values_mut() {
            let Some(h) = c.peer else { continue };
            if !c.writable || c.dead {
                continue;
            }
            let mut budget = WRITE_BUDGET;
            loop {
                let out = core.poll_transmit_direct(h);
                if out.is_empty() {
                    break;
                }
                if budget == 0 {
                    *more = true;
                    break;
                }
                budget -= 1;
                let (head, direct) = (out.bytes.len(), out.direct);
                let r = if direct == 0 {
                    c.stream.write(out.bytes)
                } else {
                    // A large frame: its header (and what precedes it) and its body from
                    // the application's `Vec`, in one vectored write.
                    let body = self.direct_out.get(&h).and_then(VecDeque::front);
                    let rest = body.and_then(|b| {
                        let off = usize::try_from(direct).ok()?;
                        b.get(b.len().checked_sub(off)?..)
                    });
                    match rest {
                        Some(rest) => c
                            .stream
                            .write_vectored(&[IoSlice::new(out.bytes), IoSlice::new(rest)]),
                        None => {
                            // Never: the core asks for the bodies in the order it took them.
                            log::error!("zmtp-std: a direct frame's body is missing");
                            Ok(0)
                        }
                    }
                };
                match r {
                    Ok(n) if n > 0 => {
                        // Cannot fail: `n` is at most what `poll_transmit_direct` gave.
                        let _ = core.mark_transmitted_direct(h, n);
                        if direct > 0 && n.saturating_sub(head) as u64 == direct {
                            let written = self.direct_out.get_mut(&h).and_then(VecDeque::pop_front);
                            if let Some(body) = written {
                                // The application copies its next long frame into it.
                                self.shared.spares.put(body);
                            }
                        }
                        progress = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        c.writable = false;
                        break;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    other => {
                        if let Err(e) = other {
                            log::debug!("zmtp-std: write failed: {e}");
                        }
                        c.dead = true;
                        core.handle_eof(h);
                        progress = true;
                        break;
                    }
                }
            }
        }
        progress
    }

    /// Moves received messages from the core to the application, while it has room (or
    /// all of them with `force`).
    fn take_inbound(&mut self, force: bool) -> bool {
        if matches!(self.ty, SocketType::Push | SocketType::Pub) {
            return false;
        }
        let core = self.core.core();
        if self.closing.is_some() {
            if self.ty == SocketType::Rep {
                // Taking a request would make the core serve that peer, and a reply still
                // in the outbox would go to it: leave requests where they are.
                return false;
            }
            // Nobody will read them: drop them, so the peers are not held back.
            let mut n = core.take_messages(usize::MAX, |_, _| {});
            while let Ok(m) = core.recv() {
                let direct = m.parts().filter(|p| matches!(p, Part::Direct(_))).count();
                if let Some(d) = self.direct_in.get_mut(&m.peer) {
                    d.done.drain(..direct.min(d.done.len()));
                }
                n += 1;
            }
            return n > 0;
        }
        if self.rep_busy {
            return false;
        }
        let room = if force {
            usize::MAX
        } else {
            self.shared.inbox_room()
        };
        let mut got = 0;
        // Queued messages (`recv`) and, on the types that have them, one-frame messages
        // held in the sessions (`Socket::take_messages`: one copy, from the receive buffer
        // into the batch). While the core has queued messages the two alternate message by
        // message (fair queuing: their peers take turns); then the held ones come in bulk
        // (the core gives each peer its turn).
        let mut queued = true;
        while got < room {
            if queued {
                match core.recv() {
                    Ok(m) => {
                        for p in m.parts() {
                            match p {
                                Part::Bytes(f) => self.incoming.push_frame(f),
                                // Read straight into its own `Vec` (`read_all`): moved, not
                                // copied.
                                Part::Direct(_) => {
                                    let body = self
                                        .direct_in
                                        .get_mut(&m.peer)
                                        .and_then(|d| d.done.pop_front())
                                        .unwrap_or_default();
                                    self.incoming.push_frame_vec(body);
                                }
                            }
                        }
                        self.incoming.end_msg(self.sent);
                        got += 1;
                        if self.ty == SocketType::Rep {
                            self.rep_busy = true;
                            break;
                        }
                    }
                    Err(_) => queued = false,
                }
            }
            if got >= room {
                break;
            }
            let want = if queued { 1 } else { room - got };
            let (incoming, tag) = (&mut self.incoming, self.sent);
            let k = core.take_messages(want, |_, f| incoming.push_msg(f, tag));
            got += k;
            if k > 0 {
                // What followed them may have been queued.
                queued = true;
            } else if !queued {
                break;
            }
        }
        self.shared.deliver(&mut self.incoming);
        got > 0
    }

    /// Moves the application's messages into the core while it takes them: the outbox's
    /// messages come over in batches (see [`Shared::take_outgoing`]).
    fn push_outbound(&mut self, more: &mut bool) -> bool {
        let core = self.core.core();
        let mut blocked = false;
        let mut taken = 0usize;
        while taken < SEND_BUDGET {
            if self.outgoing.is_empty() {
                // Counts what went to the core and takes the next batch.
                self.shared
                    .take_outgoing(&mut self.outgoing, std::mem::take(&mut self.outgoing_done));
                if self.outgoing.is_empty() {
                    break;
                }
            }
            let sent = if self.direct_send && self.outgoing.front_has_own(DIRECT_SEND) {
                // Large frames stay in their `Vec`s, written from there (`write_all`).
                match self
                    .outgoing
                    .with_front_parts(DIRECT_SEND, |parts| core.send_parts(parts))
                {
                    Some(Ok(Some(peer))) => {
                        let out = self.direct_out.entry(peer).or_default();
                        self.outgoing.take_front_own(DIRECT_SEND, out);
                        Some(Ok(()))
                    }
                    Some(Ok(None)) => Some(Ok(())),
                    Some(Err(e)) => Some(Err(e)),
                    None => None,
                }
            } else {
                self.outgoing.with_front(|frames| core.send(frames))
            };
            match sent {
                None | Some(Ok(())) => {}
                Some(Err(SocketSendError::WouldBlock)) => {
                    blocked = true;
                    break;
                }
                Some(Err(e)) => {
                    // The application's checks make this rare: a REP whose requester left
                    // (libzmq drops the reply too), a message larger than the core allows.
                    log::debug!("zmtp-std: dropping a message the socket refused: {e:?}");
                }
            }
            self.outgoing.skip_front();
            self.outgoing_done += 1;
            taken += 1;
            if self.ty == SocketType::Rep {
                self.rep_busy = false;
            }
        }
        if self.outgoing_done > 0 {
            // Room in the outbox for senders waiting (and the next batch, if any).
            self.shared
                .take_outgoing(&mut self.outgoing, std::mem::take(&mut self.outgoing_done));
        }
        self.sent = self.sent.wrapping_add(taken as u64);
        if taken >= SEND_BUDGET && !blocked {
            *more = true;
        }
        taken > 0
    }

    fn handle_events(&mut self, env: &mut Env<'_>) -> bool {
        let mut progress = false;
        while let Some(ev) = self.core.core().poll_event() {
            progress = true;
            match ev {
                SocketEvent::PeerReady(h) => self.peer_ready(h),
                SocketEvent::PeerClosed(h, reason) => self.peer_closed(env, h, reason),
                // PLAIN/CURVE server: allow-lists, the ZAP handler, or everyone (auth.rs).
                SocketEvent::Authenticate(h) => self.authenticate(h, env.now),
                _ => {}
            }
        }
        progress
    }

    fn peer_ready(&mut self, h: PeerHandle) {
        let routing_id = if self.ty == SocketType::Router {
            self.core.core().peer_routing_id(h).map(<[u8]>::to_vec)
        } else {
            None
        };
        let peer_type = self.core.core().peer_type(h);
        let Some(c) = self.conns.values_mut().find(|c| c.peer == Some(h)) else {
            return;
        };
        c.ready = true;
        // Counted (and a ROUTER's id known) before the event goes out: an application that
        // sends when it sees the event finds the peer.
        self.shared.peer_ready(routing_id.as_deref());
        self.shared.emit(|| MonitorEvent::HandshakeSucceeded {
            endpoint: c.endpoint.clone(),
            peer_type,
        });
        c.routing_id = routing_id;
        if let (Some(i), Some(ivl)) = (c.origin, self.opts.reconnect_interval) {
            if let Some(k) = self.connects.get_mut(&i) {
                k.backoff = ivl;
            }
        }
    }

    /// The core's duty list for a closed peer: write out what it still has for it, close
    /// the transport, `remove_peer`; then reconnect if it was ours to reconnect.
    fn peer_closed(&mut self, env: &mut Env<'_>, h: PeerHandle, reason: CloseReason) {
        self.note_closed(h, &reason);
        // Messages the peer sent before it went wait in its queue and go with its slot:
        // hand them over first, past the application's limit if need be.
        self.take_inbound(true);
        let token = self
            .conns
            .iter()
            .find(|(_, c)| c.peer == Some(h))
            .map(|(t, _)| *t);
        let mut origin = None;
        if let Some(c) = token.and_then(|t| self.conns.remove(&t).map(|c| (t, c))) {
            let (t, mut c) = c;
            // Last words (an ERROR command), as far as the transport takes them now.
            let core = self.core.core();
            while !c.dead {
                let out = core.poll_transmit(h);
                if out.is_empty() {
                    break;
                }
                match c.stream.write(out) {
                    Ok(n) if n > 0 => {
                        let _ = core.mark_transmitted(h, n);
                    }
                    _ => break,
                }
            }
            close_stream(env, t, c.stream);
            if c.ready {
                self.shared.peer_gone(c.routing_id.as_deref());
            }
            let endpoint = c.endpoint;
            self.shared.emit(|| {
                if c.ready {
                    MonitorEvent::Disconnected { endpoint, reason }
                } else {
                    MonitorEvent::HandshakeFailed { endpoint, reason }
                }
            });
            origin = c.origin;
        }
        self.core.remove_peer(h);
        // Bodies of direct frames it had not sent, or of a message it left unfinished.
        self.direct_out.remove(&h);
        self.direct_in.remove(&h);
        log::debug!("zmtp-std: peer closed: {reason}");
        if let Some(i) = origin {
            if reason.should_reconnect() {
                self.schedule_reconnect(i, env.now);
            } else if let Some(c) = self.connects.get_mut(&i) {
                log::warn!("zmtp-std: not reconnecting: {reason}");
                c.state = ConnectState::Stopped;
            }
        }
    }
}

impl Drop for IoSocket {
    fn drop(&mut self) {
        self.shared.terminate();
    }
}

/// Stops polling a stream and closes it. Input still pending is read and dropped first:
/// closing a socket with unread input makes the system reset the connection, which can
/// destroy output the peer has not read yet.
fn close_stream(env: &mut Env<'_>, t: Token, mut stream: Stream) {
    let mut scratch = [0u8; 4096];
    for _ in 0..64 {
        match stream.read(&mut scratch) {
            Ok(n) if n > 0 => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            _ => break,
        }
    }
    let _ = env.registry.deregister(&mut stream);
    env.tokens.free(t);
}
