//! The application's side of a socket.

mod security;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use zmtp_core::socket::stored_len;
use zmtp_core::{Config, SocketType, MIN_RX_BUFFER};

use crate::batch::{Batch, OWN_FRAME};
use crate::context::{Command, Inner};
use crate::endpoint;
use crate::error::{Error, Result};
use crate::options::SocketOptions;
use crate::poll::PollEvents;
use crate::shared::{Shared, Wait};

/// REQ/REP turn-taking, checked here so the application gets [`Error::State`] at once
/// (libzmq's `EFSM`). The I/O thread's zmtp-core socket keeps the same state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Turn {
    /// REQ: may send. REP: may receive.
    Idle,
    /// REQ: request sent, may receive the reply. REP: request received, may reply.
    Busy,
}

#[derive(Debug)]
struct State {
    opts: SocketOptions,
    /// The I/O thread has built the socket: options are fixed.
    started: bool,
    last_endpoint: Option<String>,
    turn: Turn,
    /// Received messages taken from the inbox in one batch and not read yet (the
    /// front one possibly partly, with [`Socket::recv`]).
    inbox: Batch,
    /// Messages queued for the I/O thread so far (see `Shared::deliver`).
    sent: u64,
    /// SUB, XSUB: subscriptions (`true`) and unsubscriptions made before the socket
    /// started, in order; handed to the I/O thread when it does.
    early_subscriptions: Vec<(bool, Vec<u8>)>,
}

/// A ZeroMQ socket, made by [`Context::socket`](crate::Context::socket).
///
/// All methods take `&self`; the socket is `Send` and `Sync`, but like a libzmq socket it is
/// meant to be used by one thread at a time (concurrent callers are serialised, and REQ/REP
/// turn-taking across threads is theirs to arrange).
///
/// Dropping it is [`close`](Self::close).
pub struct Socket {
    ctx: Arc<Inner>,
    id: u64,
    ty: SocketType,
    shared: Arc<Shared>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("type", &self.ty)
            .finish_non_exhaustive()
    }
}

fn deadline(timeout: Duration) -> Wait {
    // A timeout too far away to represent is no timeout.
    Instant::now()
        .checked_add(timeout)
        .map_or(Wait::Forever, Wait::Until)
}

fn invalid(option: &'static str, reason: &'static str) -> Error {
    Error::InvalidOption { option, reason }
}

/// Checks a whole set of options for a socket of type `ty`.
fn validate(ty: SocketType, o: &SocketOptions) -> Result<()> {
    let cfg = Config::new(ty).with_identity(&o.routing_id);
    if o.routing_id.len() > 255 || o.routing_id.first() == Some(&0) {
        return Err(invalid(
            "routing_id",
            "must be 0-255 bytes, not starting with a zero byte",
        ));
    }
    if o.max_peers == 0 || o.max_peers > usize::from(u16::MAX) {
        return Err(invalid("max_peers", "must be from 1 to 65535"));
    }
    if o.buffer_size < MIN_RX_BUFFER || cfg.check_buffers(o.buffer_size, o.buffer_size).is_err() {
        return Err(invalid(
            "buffer_size",
            "too small for the ZMTP handshake (at least 512 bytes)",
        ));
    }
    for (option, d) in [
        ("tcp_keepalive_idle", o.tcp_keepalive_idle),
        ("tcp_keepalive_interval", o.tcp_keepalive_interval),
    ] {
        if d.is_some_and(|d| d.as_secs() == 0 || d.as_secs() > i32::MAX as u64) {
            return Err(invalid(option, "must be from 1 second to 2^31 - 1 seconds"));
        }
    }
    if o.tcp_keepalive_count == Some(0) || o.tcp_keepalive_count > Some(i32::MAX as u32) {
        return Err(invalid("tcp_keepalive_count", "must be from 1 to 2^31 - 1"));
    }
    if o.queue_size <= o.buffer_size {
        return Err(invalid("queue_size", "must be larger than buffer_size"));
    }
    let pubsub = matches!(
        ty,
        SocketType::Pub | SocketType::Sub | SocketType::XPub | SocketType::XSub
    );
    o.security.validate()?;
    if pubsub && (o.subscription_nodes < 2 || o.subscription_nodes > u32::MAX as usize) {
        return Err(invalid(
            "subscription_nodes",
            "must be from 2 to 4294967295",
        ));
    }
    Ok(())
}

impl Socket {
    pub(crate) fn new(ctx: Arc<Inner>, id: u64, ty: SocketType) -> Socket {
        let opts = SocketOptions::default();
        let shared = Arc::new(Shared::new(
            ctx.waker(),
            ctx.spin(),
            opts.send_hwm,
            opts.recv_hwm,
        ));
        Socket {
            ctx,
            id,
            ty,
            shared,
            state: Mutex::new(State {
                opts,
                started: false,
                last_endpoint: None,
                turn: Turn::Idle,
                inbox: Batch::default(),
                sent: 0,
                early_subscriptions: Vec::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The socket type.
    pub fn socket_type(&self) -> SocketType {
        self.ty
    }

    fn can_send(&self) -> bool {
        !matches!(self.ty, SocketType::Pull | SocketType::Sub)
    }

    fn can_recv(&self) -> bool {
        !matches!(self.ty, SocketType::Push | SocketType::Pub)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// `immediate`: a send waits for a peer whose handshake is done (the types that
    /// queue for absent peers; the others drop or route by id).
    fn needs_ready_peer(&self, opts: &SocketOptions) -> bool {
        matches!(
            self.ty,
            SocketType::Push | SocketType::Dealer | SocketType::Req | SocketType::Pair
        ) && opts.immediate
    }

    /// Makes the front of the local batch the next message to read: drops replies to
    /// earlier requests (a correlating REQ, see `recv_with`) and takes the inbox's messages
    /// when the batch is read to the end. Whether a message is there; never waits.
    fn next_local(&self, st: &mut State) -> Result<bool> {
        loop {
            if st.inbox.mid_message() {
                return Ok(true);
            }
            if self.ty == SocketType::Req && st.opts.req_correlate {
                let sent = st.sent;
                while st.inbox.front_tag().is_some_and(|t| t != sent) {
                    st.inbox.skip_front();
                }
            }
            if !st.inbox.is_empty() {
                return Ok(true);
            }
            match self.shared.refill(&mut st.inbox, Wait::No) {
                Ok(()) => {}
                Err(Error::WouldBlock) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// Which of `wanted` could be done now without waiting: [`PollEvents::IN`], a whole
    /// message (or the rest of one) can be received; [`PollEvents::OUT`], a message can be
    /// sent (the socket's state allows it and the outbox has room). [`Error::Terminated`]
    /// once the I/O thread is done with the socket.
    pub(crate) fn readiness(&self, wanted: PollEvents) -> Result<PollEvents> {
        let mut st = self.state();
        let rest = st.inbox.mid_message();
        let has_msg = self.can_recv() && self.next_local(&mut st)?;
        let (turn, relaxed) = (st.turn, st.opts.req_relaxed);
        let needs_peer = self.needs_ready_peer(&st.opts);
        let room = self.shared.outbox_has_room()? && (!needs_peer || self.shared.ready_peers() > 0);
        let mut ready = PollEvents::empty();
        if wanted.contains(PollEvents::IN) && self.can_recv() {
            let turn_ok = !matches!(
                (self.ty, turn),
                (SocketType::Req, Turn::Idle) | (SocketType::Rep, Turn::Busy)
            );
            if rest || (turn_ok && has_msg) {
                ready |= PollEvents::IN;
            }
        }
        if wanted.contains(PollEvents::OUT) && self.can_send() {
            let turn_ok = match (self.ty, turn) {
                (SocketType::Req, Turn::Busy) => relaxed,
                (SocketType::Rep, Turn::Idle) => false,
                _ => true,
            };
            if turn_ok && room {
                ready |= PollEvents::OUT;
            }
        }
        Ok(ready)
    }

    // ------------------------------------------------------------ endpoints

    /// Has the I/O thread build the socket, once.
    fn start(&self, st: &mut State) -> Result<()> {
        if st.started {
            return Ok(());
        }
        validate(self.ty, &st.opts)?;
        self.ctx.command(Command::Open {
            id: self.id,
            ty: self.ty,
            opts: Box::new(st.opts.clone()),
            shared: Arc::clone(&self.shared),
        })?;
        st.started = true;
        // Errors (a full subscription tree) are logged by the I/O thread: these calls
        // returned long ago.
        for (subscribe, topic) in std::mem::take(&mut st.early_subscriptions) {
            self.ctx.command(Command::Subscribe {
                id: self.id,
                subscribe,
                topic,
                reply: None,
            })?;
        }
        Ok(())
    }

    /// Listens on `endpoint` (`tcp://127.0.0.1:5555`, `tcp://*:5555`, `tcp://[::1]:5555`;
    /// port `0` or `*` picks a free port; `ipc:///path/to/socket`, `ipc://*` for a fresh
    /// path in the temporary directory) and returns the endpoint actually bound, which
    /// [`last_endpoint`](Self::last_endpoint) also returns afterwards. A socket may bind
    /// and connect several times.
    ///
    /// `ipc://`: a socket file left behind by a process that died is replaced; a socket
    /// file someone accepts on is an [`Error::Io`] (`AddrInUse`), and a path taken by
    /// anything else is an [`Error::InvalidEndpoint`]: neither is touched. The file is
    /// removed on [`unbind`](Self::unbind) and when the socket closes.
    pub fn bind(&self, endpoint: &str) -> Result<String> {
        let addr = endpoint::parse_bind(endpoint)?;
        let mut st = self.state();
        self.start(&mut st)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.ctx.command(Command::Bind {
            id: self.id,
            addr,
            reply: tx,
        })?;
        let bound = rx.recv().map_err(|_| Error::Terminated)??;
        let ep = bound.to_string();
        st.last_endpoint = Some(ep.clone());
        Ok(ep)
    }

    /// Connects to `endpoint` (`tcp://host:port`, `ipc:///path`). Returns at once: the connection is made
    /// in the background, and remade after it drops (see
    /// [`SocketOptions::reconnect_interval`]). Messages sent before a peer is there wait in
    /// the socket (see "High-water marks" in the crate docs). A host name is resolved here;
    /// its addresses are tried in turn.
    pub fn connect(&self, endpoint: &str) -> Result<()> {
        let addrs = endpoint::parse_connect(endpoint)?;
        let mut st = self.state();
        self.start(&mut st)?;
        self.ctx.command(Command::Connect {
            id: self.id,
            endpoint: endpoint.to_owned(),
            addrs,
        })?;
        st.last_endpoint = Some(endpoint.to_owned());
        Ok(())
    }

    /// Stops listening on `endpoint`, as returned by [`bind`](Self::bind) (with the port
    /// the system chose: `tcp://127.0.0.1:0` itself names no listener, as in libzmq), and
    /// closes the connections accepted there; messages queued for them are dropped
    /// (`zmq_unbind`). An `ipc://` socket file is removed. The port or path is free again
    /// when this returns.
    ///
    /// [`Error::EndpointNotFound`] if the socket is not bound there.
    pub fn unbind(&self, endpoint: &str) -> Result<()> {
        // Text that parses to no address (or resolves differently now) names nothing.
        let addr = endpoint::parse_bind(endpoint).ok();
        let started = self.state().started;
        if !started {
            return Err(Error::EndpointNotFound(endpoint.to_owned()));
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.ctx.command(Command::Unbind {
            id: self.id,
            endpoint: endpoint.to_owned(),
            addr,
            reply: tx,
        })?;
        rx.recv().map_err(|_| Error::Terminated)?
    }

    /// Forgets a [`connect`](Self::connect), named by the same text: closes its
    /// connection and stops reconnecting; messages queued for that peer are dropped
    /// (`zmq_disconnect`). If the same endpoint was connected several times, one of them
    /// goes.
    ///
    /// [`Error::EndpointNotFound`] if the socket has no such connect.
    pub fn disconnect(&self, endpoint: &str) -> Result<()> {
        let started = self.state().started;
        if !started {
            return Err(Error::EndpointNotFound(endpoint.to_owned()));
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.ctx.command(Command::Disconnect {
            id: self.id,
            endpoint: endpoint.to_owned(),
            reply: tx,
        })?;
        rx.recv().map_err(|_| Error::Terminated)?
    }

    /// The endpoint of the last [`bind`](Self::bind) (with the port actually bound) or
    /// [`connect`](Self::connect) (`ZMQ_LAST_ENDPOINT`).
    pub fn last_endpoint(&self) -> Option<String> {
        self.state().last_endpoint.clone()
    }

    /// Starts watching the socket's listeners and connections: returns a channel of
    /// [`MonitorEvent`](crate::MonitorEvent)s (listening, accepted, connected, handshake
    /// succeeded or failed and why, disconnected and why, reconnect scheduled, ...), like
    /// libzmq's `zmq_socket_monitor` without the PAIR socket. May be called before or
    /// after bind and connect; a second call replaces the first channel (whose receiver
    /// then sees it end). The channel ends when the socket has closed and its linger is
    /// over.
    ///
    /// The I/O thread never waits for the reader: once [`MONITOR_CAPACITY`] events are
    /// unread, further ones are dropped and a
    /// [`MonitorEvent::Lagged`](crate::MonitorEvent::Lagged) says how many.
    ///
    /// ```
    /// use zmtp_std::{Context, MonitorEvent, SocketType};
    ///
    /// # fn main() -> Result<(), zmtp_std::Error> {
    /// let ctx = Context::new()?;
    /// let rep = ctx.socket(SocketType::Rep)?;
    /// let events = rep.monitor()?;
    /// let ep = rep.bind("tcp://127.0.0.1:0")?;
    /// let req = ctx.socket(SocketType::Req)?;
    /// req.connect(&ep)?;
    /// let timeout = std::time::Duration::from_secs(5);
    /// assert_eq!(
    ///     events.recv_timeout(timeout).unwrap(),
    ///     MonitorEvent::Listening { endpoint: ep.clone() }
    /// );
    /// assert!(matches!(events.recv_timeout(timeout).unwrap(), MonitorEvent::Accepted { .. }));
    /// assert!(matches!(
    ///     events.recv_timeout(timeout).unwrap(),
    ///     MonitorEvent::HandshakeSucceeded { .. }
    /// ));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`MONITOR_CAPACITY`]: crate::MONITOR_CAPACITY
    pub fn monitor(&self) -> Result<std::sync::mpsc::Receiver<crate::MonitorEvent>> {
        let (tx, rx) = crate::monitor::MonitorSender::channel();
        self.shared.set_monitor(tx);
        Ok(rx)
    }

    /// Peers whose ZMTP handshake is done (connections that can carry messages now).
    pub fn connected_peers(&self) -> usize {
        self.shared.ready_peers()
    }

    /// Closes the socket: same as dropping it. Messages already sent are still delivered for
    /// up to [`SocketOptions::linger`] in the background; the context's last handle waits
    /// for that when it is dropped.
    pub fn close(self) {
        drop(self);
    }

    // ------------------------------------------------------------ subscriptions

    fn change_subscription(&self, subscribe: bool, topic: &[u8]) -> Result<()> {
        if !matches!(self.ty, SocketType::Sub | SocketType::XSub) {
            return Err(invalid(
                if subscribe {
                    "subscribe"
                } else {
                    "unsubscribe"
                },
                "only SUB and XSUB sockets subscribe",
            ));
        }
        let mut st = self.state();
        // Resends to a new peer go through its send queue: the topic must fit one.
        if stored_len(1, topic.len().saturating_add(1)) > st.opts.queue_size {
            return Err(Error::MessageTooLarge);
        }
        if !st.started {
            st.early_subscriptions.push((subscribe, topic.to_vec()));
            return Ok(());
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.ctx.command(Command::Subscribe {
            id: self.id,
            subscribe,
            topic: topic.to_vec(),
            reply: Some(tx),
        })?;
        drop(st);
        rx.recv().map_err(|_| Error::Terminated)?
    }

    /// SUB, XSUB: receive messages whose first frame starts with `topic` (the empty topic:
    /// every message), like pyzmq's `s.setsockopt(zmq.SUBSCRIBE, topic)` or
    /// `s.subscribe(topic)`. May be called at any time, before or after bind and connect,
    /// unlike the options. Subscriptions are counted: each call needs its own
    /// [`unsubscribe`](Self::unsubscribe). Peers connected now are told at once, peers that
    /// connect later (or reconnect) when their handshake completes.
    ///
    /// A SUB starts with no subscription and receives nothing. As with libzmq, messages
    /// published before the publisher has the subscription are lost to this subscriber
    /// ("slow joiner"). An XSUB's subscriptions are not a filter: it receives everything
    /// its publishers send it; it may also subscribe by [`send`](Self::send)ing
    /// `\x01topic`.
    ///
    /// Errors: [`Error::InvalidOption`] for other socket types;
    /// [`Error::SubscriptionsFull`] when
    /// [`subscription_nodes`](SocketOptions::subscription_nodes) has no room (before the
    /// first bind or connect this is only logged, when the socket starts);
    /// [`Error::MessageTooLarge`] for a topic that cannot fit
    /// [`queue_size`](SocketOptions::queue_size).
    pub fn subscribe(&self, topic: impl AsRef<[u8]>) -> Result<()> {
        self.change_subscription(true, topic.as_ref())
    }

    /// SUB, XSUB: drop one use of `topic` (pyzmq's `setsockopt(zmq.UNSUBSCRIBE, topic)`);
    /// the last one tells the peers. Unsubscribing a topic not subscribed does nothing.
    /// Messages already received into the socket are still delivered.
    pub fn unsubscribe(&self, topic: impl AsRef<[u8]>) -> Result<()> {
        self.change_subscription(false, topic.as_ref())
    }

    // ------------------------------------------------------------ send

    /// Checks and queues one message (its frames are copied into the outbox).
    fn send_msg(&self, frames: &[&[u8]], wait: Wait) -> Result<()> {
        if !self.can_send() {
            return Err(Error::State);
        }
        let min_frames = if self.ty == SocketType::Router { 2 } else { 1 };
        if frames.len() < min_frames {
            return Err(Error::EmptyMessage);
        }
        let mut long: Option<Vec<u8>> = None;
        loop {
            // One lock of the state for the checks and the turn; the outbox's lock inside
            // it (the I/O thread never takes the state's).
            let mut st = self.state();
            check_size(self.ty, &st.opts, frames)?;
            match (self.ty, st.turn) {
                (SocketType::Req, Turn::Busy) if !st.opts.req_relaxed => return Err(Error::State),
                (SocketType::Rep, Turn::Idle) => return Err(Error::State),
                _ => {}
            }
            if self.ty == SocketType::Router && st.opts.router_mandatory {
                let known = frames
                    .first()
                    .is_some_and(|id| self.shared.knows_routing_id(id));
                if !known {
                    return Err(Error::HostUnreachable);
                }
            }
            let needs_peer = self.needs_ready_peer(&st.opts);
            // A long one-frame message is copied before taking the outbox's lock, so the
            // I/O thread is not held up by the copy; into a spare body if there is one (no
            // allocation), and once (it is kept while waiting for room).
            if long.is_none() {
                if let [f] = frames {
                    if f.len() >= OWN_FRAME {
                        long = Some(match self.shared.spares.get(f.len()) {
                            Some(mut body) => {
                                body.clear();
                                body.extend_from_slice(f);
                                body
                            }
                            None => f.to_vec(),
                        });
                    }
                }
            }
            let queued = self.shared.send(needs_peer, |b| {
                match long.take() {
                    Some(v) => b.push_frame_vec(v),
                    None => {
                        for f in frames {
                            b.push_frame(f);
                        }
                    }
                }
                b.end_msg(0);
            });
            match queued {
                Ok(wake) => {
                    if wake && !self.ctx.lead(|| true, None) {
                        // Not the loop's runner now: wake whoever is.
                        self.shared.wake()?;
                    }
                }
                Err(Error::WouldBlock) if !matches!(wait, Wait::No) => {
                    // Full (or no peer yet): wait without the state's lock, then check
                    // again.
                    drop(st);
                    self.shared.wait_room(wait, needs_peer)?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            st.sent = st.sent.wrapping_add(1);
            match self.ty {
                SocketType::Req => st.turn = Turn::Busy,
                SocketType::Rep => {
                    st.turn = Turn::Idle;
                    // Unread frames of the request go.
                    if st.inbox.mid_message() {
                        st.inbox.skip_front();
                    }
                }
                _ => {}
            }
            return Ok(());
        }
    }

    /// [`send_msg`](Self::send_msg) for any frames (their slices on the stack for up to 8).
    fn send_frames<I>(&self, frames: I, wait: Wait) -> Result<()>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let items: Vec<I::Item> = frames.into_iter().collect();
        let mut on_stack: [&[u8]; 8] = [&[]; 8];
        let on_heap: Vec<&[u8]>;
        let refs: &[&[u8]] = match on_stack.get_mut(..items.len()) {
            Some(refs) => {
                for (r, f) in refs.iter_mut().zip(items.iter()) {
                    *r = f.as_ref();
                }
                refs
            }
            None => {
                on_heap = items.iter().map(AsRef::as_ref).collect();
                &on_heap
            }
        };
        self.send_msg(refs, wait)
    }

    /// Sends a multipart message, waiting while the socket is at its high-water mark or
    /// (PUSH, DEALER, REQ, PAIR) no peer has connected yet.
    ///
    /// Frames are anything byte-like: `&[b"key".as_slice(), b"", b"value"]`, `vec![v1, v2]`,
    /// `["a", "b"]`. A ROUTER's first frame is the routing id of the peer to send to.
    /// PUB and XPUB send to each subscriber whose subscriptions match the first frame and
    /// never wait for one (a subscriber at its high-water mark loses the message). An
    /// XSUB's one-frame `\x01topic` / `\x00topic` subscribes / unsubscribes.
    pub fn send_multipart<I>(&self, frames: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.send_frames(frames, Wait::Forever)
    }

    /// [`send_multipart`](Self::send_multipart) without waiting: [`Error::WouldBlock`] if
    /// the message cannot be queued now (`ZMQ_DONTWAIT`).
    pub fn try_send_multipart<I>(&self, frames: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.send_frames(frames, Wait::No)
    }

    /// [`send_multipart`](Self::send_multipart) waiting at most `timeout`:
    /// [`Error::Timeout`] after that (`ZMQ_SNDTIMEO`).
    pub fn send_multipart_timeout<I>(&self, frames: I, timeout: Duration) -> Result<()>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.send_frames(frames, deadline(timeout))
    }

    /// Sends a one-frame message (see [`send_multipart`](Self::send_multipart)).
    pub fn send(&self, data: impl AsRef<[u8]>) -> Result<()> {
        self.send_msg(&[data.as_ref()], Wait::Forever)
    }

    /// Sends a one-frame message without waiting ([`Error::WouldBlock`]).
    pub fn try_send(&self, data: impl AsRef<[u8]>) -> Result<()> {
        self.send_msg(&[data.as_ref()], Wait::No)
    }

    /// Sends a one-frame message, waiting at most `timeout` ([`Error::Timeout`]).
    pub fn send_timeout(&self, data: impl AsRef<[u8]>, timeout: Duration) -> Result<()> {
        self.send_msg(&[data.as_ref()], deadline(timeout))
    }

    // ------------------------------------------------------------ receive

    /// Takes the next message from the local batch with `take` (the rest of one partly
    /// read, or a whole new one), waiting for one as `wait` says.
    fn recv_with<R>(&self, wait: Wait, mut take: impl FnMut(&mut Batch) -> Option<R>) -> Result<R> {
        loop {
            let mut st = self.state();
            if !st.inbox.mid_message() {
                if !self.can_recv() {
                    return Err(Error::State);
                }
                match (self.ty, st.turn) {
                    (SocketType::Req, Turn::Idle) | (SocketType::Rep, Turn::Busy) => {
                        return Err(Error::State)
                    }
                    _ => {}
                }
                // A correlating REQ wants the reply to its latest request only. The I/O
                // thread's core drops older replies once it has that request, but one may
                // have come in while the request was still on its way to the I/O thread:
                // `next_local` drops it here.
                if !self.next_local(&mut st)? {
                    if matches!(wait, Wait::No) {
                        return Err(Error::WouldBlock);
                    }
                    // Wait without the state's lock (another thread may send meanwhile):
                    // running the loop here if the I/O thread has stepped aside (see
                    // `shared::Lead`; the kernel then wakes this thread itself), else
                    // until the I/O thread hands the message over.
                    drop(st);
                    let deadline = match wait {
                        Wait::Until(t) => Some(t),
                        _ => None,
                    };
                    let shared = &self.shared;
                    if !self.ctx.lead(|| shared.inbox_ready(), Some(deadline)) {
                        self.shared.wait_incoming(wait)?;
                    } else if let Wait::Until(t) = wait {
                        if Instant::now() >= t && !shared.inbox_ready() {
                            return Err(Error::Timeout);
                        }
                    }
                    continue;
                }
                match self.ty {
                    SocketType::Req => st.turn = Turn::Idle,
                    SocketType::Rep => st.turn = Turn::Busy,
                    _ => {}
                }
            }
            let Some(r) = take(&mut st.inbox) else {
                // Not reached: `next_local` found a message.
                continue;
            };
            if self.shared.inbox_stalled() {
                // The I/O thread waits for room: give back what was read now rather than at
                // the next call, and from half of the batch on, so that the I/O thread
                // fills the inbox while the rest is read. (Errors show at the next call.)
                if st.inbox.is_empty() {
                    let _ = self.shared.refill(&mut st.inbox, Wait::No);
                } else if let Some(n) = st.inbox.take_read() {
                    let _ = self.shared.release(n);
                }
            }
            return Ok(r);
        }
    }

    /// Receives a whole multipart message, waiting for one. A ROUTER gets the sender's
    /// routing id as the first frame; REQ and REP get the message without its envelope.
    /// An XPUB gets its subscribers' subscriptions as one-frame messages `\x01topic` and
    /// `\x00topic` (a topic's first subscription and last cancel, or every one with
    /// [`set_xpub_verbose`](Self::set_xpub_verbose)), before other messages.
    pub fn recv_multipart(&self) -> Result<Vec<Vec<u8>>> {
        self.recv_with(Wait::Forever, Batch::take_msg)
    }

    /// [`recv_multipart`](Self::recv_multipart) without waiting: [`Error::WouldBlock`] if
    /// nothing has arrived (`ZMQ_DONTWAIT`).
    pub fn try_recv_multipart(&self) -> Result<Vec<Vec<u8>>> {
        self.recv_with(Wait::No, Batch::take_msg)
    }

    /// [`recv_multipart`](Self::recv_multipart) waiting at most `timeout`:
    /// [`Error::Timeout`] after that (`ZMQ_RCVTIMEO`).
    pub fn recv_multipart_timeout(&self, timeout: Duration) -> Result<Vec<Vec<u8>>> {
        self.recv_with(deadline(timeout), Batch::take_msg)
    }

    fn recv_frame(&self, wait: Wait) -> Result<Vec<u8>> {
        self.recv_with(wait, |b| b.take_frame().map(|(f, _)| f))
    }

    /// Receives one frame, like pyzmq's `recv()`: the first frame of the next message, or
    /// the next frame of the message being read; [`has_more`](Self::has_more) tells whether
    /// more frames of it follow.
    pub fn recv(&self) -> Result<Vec<u8>> {
        self.recv_frame(Wait::Forever)
    }

    /// [`recv`](Self::recv) without waiting ([`Error::WouldBlock`]).
    pub fn try_recv(&self) -> Result<Vec<u8>> {
        self.recv_frame(Wait::No)
    }

    /// [`recv`](Self::recv) waiting at most `timeout` ([`Error::Timeout`]).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Vec<u8>> {
        self.recv_frame(deadline(timeout))
    }

    /// [`recv`](Self::recv) into a buffer of the caller's: `buf`'s contents are replaced by
    /// the frame, in its allocation (grown if need be), and the frame's length is returned.
    /// A loop that keeps one buffer makes no allocation per message, as libzmq's loops that
    /// reuse one `zmq_msg_t`. (Frames of 8 KiB and more arrive in an allocation of their
    /// own, which replaces `buf`'s: no copy. `buf`'s old allocation, if that long, is
    /// kept by the socket and the next long frame is read into it, so a loop receiving
    /// long messages makes no allocation per message either.) Unlike libzmq's `zmq_recv`
    /// and pyzmq's `recv_into`, nothing is truncated.
    ///
    /// [`has_more`](Self::has_more) tells whether more frames of the message follow. On an
    /// error `buf` is left as it was.
    ///
    /// ```
    /// use zmtp_std::{Context, SocketType};
    ///
    /// # fn main() -> Result<(), zmtp_std::Error> {
    /// let ctx = Context::new()?;
    /// let pull = ctx.socket(SocketType::Pull)?;
    /// let push = ctx.socket(SocketType::Push)?;
    /// push.connect(&pull.bind("tcp://127.0.0.1:0")?)?;
    /// for word in ["one", "two", "three"] {
    ///     push.send(word)?;
    /// }
    /// let mut buf = Vec::with_capacity(256);
    /// let mut words = Vec::new();
    /// for _ in 0..3 {
    ///     let n = pull.recv_into(&mut buf)?; // no allocation: `buf` is reused
    ///     assert_eq!(n, buf.len());
    ///     words.push(String::from_utf8_lossy(&buf).into_owned());
    /// }
    /// assert_eq!(words, ["one", "two", "three"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn recv_into(&self, buf: &mut Vec<u8>) -> Result<usize> {
        self.recv_frame_into(Wait::Forever, buf)
    }

    /// [`recv_into`](Self::recv_into) without waiting ([`Error::WouldBlock`]).
    pub fn try_recv_into(&self, buf: &mut Vec<u8>) -> Result<usize> {
        self.recv_frame_into(Wait::No, buf)
    }

    /// [`recv_into`](Self::recv_into) waiting at most `timeout` ([`Error::Timeout`]).
    pub fn recv_into_timeout(&self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        self.recv_frame_into(deadline(timeout), buf)
    }

    fn recv_frame_into(&self, wait: Wait, buf: &mut Vec<u8>) -> Result<usize> {
        // The long allocation a long frame replaced in `buf`: the I/O thread reads the next
        // long frame into it (see `batch::Spares`).
        let mut spare = None;
        let r = self.recv_with(wait, |b| b.take_frame_into(buf, &mut spare).map(|_| ()));
        if let Some(body) = spare {
            self.shared.spares.put(body);
        }
        r.map(|()| buf.len())
    }

    /// [`recv_with`](Self::recv_with) for `recv_multipart_into`.
    fn recv_msg_into(&self, wait: Wait, msg: &mut Vec<Vec<u8>>) -> Result<()> {
        let mut spare = Vec::new();
        let r = self.recv_with(wait, |b| b.take_msg_into(msg, &mut spare));
        for body in spare {
            self.shared.spares.put(body);
        }
        r
    }

    /// [`recv_multipart`](Self::recv_multipart) into the caller's frames: `msg` ends up
    /// holding exactly the message's frames, each written into the allocation of the frame
    /// that was at its place (new ones are added, extra ones dropped; frames of 8 KiB and
    /// more replace the allocation, as in [`recv_into`](Self::recv_into), and the socket
    /// keeps the old one for the next long frame). A loop that keeps one `msg` makes no
    /// allocation per message once its frames are large enough. On an error `msg` is left
    /// as it was.
    ///
    /// ```
    /// use zmtp_std::{Context, SocketType};
    ///
    /// # fn main() -> Result<(), zmtp_std::Error> {
    /// let ctx = Context::new()?;
    /// let pull = ctx.socket(SocketType::Pull)?;
    /// let push = ctx.socket(SocketType::Push)?;
    /// push.connect(&pull.bind("tcp://127.0.0.1:0")?)?;
    /// push.send_multipart(["key", "value"])?;
    /// push.send("alone")?;
    /// let mut msg = Vec::new();
    /// pull.recv_multipart_into(&mut msg)?;
    /// assert_eq!(msg, [b"key".to_vec(), b"value".to_vec()]);
    /// pull.recv_multipart_into(&mut msg)?; // reuses the first frame's allocation
    /// assert_eq!(msg, [b"alone".to_vec()]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn recv_multipart_into(&self, msg: &mut Vec<Vec<u8>>) -> Result<()> {
        self.recv_msg_into(Wait::Forever, msg)
    }

    /// [`recv_multipart_into`](Self::recv_multipart_into) without waiting
    /// ([`Error::WouldBlock`]).
    pub fn try_recv_multipart_into(&self, msg: &mut Vec<Vec<u8>>) -> Result<()> {
        self.recv_msg_into(Wait::No, msg)
    }

    /// [`recv_multipart_into`](Self::recv_multipart_into) waiting at most `timeout`
    /// ([`Error::Timeout`]).
    pub fn recv_multipart_into_timeout(
        &self,
        msg: &mut Vec<Vec<u8>>,
        timeout: Duration,
    ) -> Result<()> {
        self.recv_msg_into(deadline(timeout), msg)
    }

    /// Whether the message last read with [`recv`](Self::recv) has more frames
    /// (`ZMQ_RCVMORE`).
    pub fn has_more(&self) -> bool {
        self.state().inbox.mid_message()
    }

    // ------------------------------------------------------------ options

    /// A copy of the socket's options.
    pub fn options(&self) -> SocketOptions {
        self.state().opts.clone()
    }

    /// Changes options that are fixed once the socket has bound or connected.
    fn set(&self, option: &'static str, f: impl FnOnce(&mut SocketOptions)) -> Result<()> {
        let mut st = self.state();
        if st.started {
            return Err(invalid(option, "cannot be changed after bind or connect"));
        }
        f(&mut st.opts);
        self.shared.set_caps(st.opts.send_hwm, st.opts.recv_hwm);
        Ok(())
    }

    /// Sets every option at once, before bind and connect. The values are checked when the
    /// socket first binds or connects.
    pub fn set_options(&self, options: SocketOptions) -> Result<()> {
        let mut st = self.state();
        if st.started {
            return Err(invalid(
                "options",
                "cannot be changed after bind or connect",
            ));
        }
        self.shared.set_caps(options.send_hwm, options.recv_hwm);
        st.opts = options;
        Ok(())
    }

    /// Our identity, sent to peers (`ZMQ_ROUTING_ID`; a ROUTER peer addresses us by it):
    /// 0-255 bytes, not starting with a zero byte.
    pub fn set_routing_id(&self, id: &[u8]) -> Result<()> {
        if id.len() > 255 || id.first() == Some(&0) {
            return Err(invalid(
                "routing_id",
                "must be 0-255 bytes, not starting with a zero byte",
            ));
        }
        self.set("routing_id", |o| o.routing_id = id.to_vec())
    }

    /// Same as [`set_routing_id`](Self::set_routing_id) (libzmq's older name, `ZMQ_IDENTITY`).
    pub fn set_identity(&self, id: &[u8]) -> Result<()> {
        self.set_routing_id(id)
    }

    /// Send high-water mark in messages (`ZMQ_SNDHWM`; 0: no limit).
    pub fn set_send_hwm(&self, hwm: usize) -> Result<()> {
        self.set("send_hwm", |o| o.send_hwm = hwm)
    }

    /// Receive high-water mark in messages (`ZMQ_RCVHWM`; 0: no limit).
    pub fn set_recv_hwm(&self, hwm: usize) -> Result<()> {
        self.set("recv_hwm", |o| o.recv_hwm = hwm)
    }

    /// How long closing keeps delivering queued messages (`ZMQ_LINGER`; `None`: until
    /// delivered). May be changed at any time.
    pub fn set_linger(&self, linger: Option<Duration>) {
        self.state().opts.linger = linger;
    }

    /// Wait before reconnecting (`ZMQ_RECONNECT_IVL`; `None`: never reconnect).
    pub fn set_reconnect_interval(&self, ivl: Option<Duration>) -> Result<()> {
        self.set("reconnect_interval", |o| o.reconnect_interval = ivl)
    }

    /// Cap of the exponential reconnect backoff (`ZMQ_RECONNECT_IVL_MAX`; `None`: no
    /// backoff).
    pub fn set_reconnect_interval_max(&self, max: Option<Duration>) -> Result<()> {
        self.set("reconnect_interval_max", |o| o.reconnect_interval_max = max)
    }

    /// Limit for the ZMTP handshake (`ZMQ_HANDSHAKE_IVL`; `None`: none).
    pub fn set_handshake_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        self.set("handshake_timeout", |o| o.handshake_timeout = timeout)
    }

    /// PUSH, DEALER, REQ, PAIR: queue messages only for peers whose handshake is done
    /// (`ZMQ_IMMEDIATE`; see [`SocketOptions::immediate`]).
    pub fn set_immediate(&self, on: bool) -> Result<()> {
        self.set("immediate", |o| o.immediate = on)
    }

    /// TCP keepalive (`ZMQ_TCP_KEEPALIVE`): `Some(true)` on, `Some(false)` off, `None` the
    /// system's default.
    pub fn set_tcp_keepalive(&self, on: Option<bool>) -> Result<()> {
        self.set("tcp_keepalive", |o| o.tcp_keepalive = on)
    }

    /// Idle time before the first keepalive probe (`ZMQ_TCP_KEEPALIVE_IDLE`).
    pub fn set_tcp_keepalive_idle(&self, idle: Option<Duration>) -> Result<()> {
        self.set("tcp_keepalive_idle", |o| o.tcp_keepalive_idle = idle)
    }

    /// Time between keepalive probes (`ZMQ_TCP_KEEPALIVE_INTVL`).
    pub fn set_tcp_keepalive_interval(&self, ivl: Option<Duration>) -> Result<()> {
        self.set("tcp_keepalive_interval", |o| o.tcp_keepalive_interval = ivl)
    }

    /// Unanswered probes before the connection is dropped (`ZMQ_TCP_KEEPALIVE_CNT`).
    pub fn set_tcp_keepalive_count(&self, count: Option<u32>) -> Result<()> {
        self.set("tcp_keepalive_count", |o| o.tcp_keepalive_count = count)
    }

    /// PING interval (`ZMQ_HEARTBEAT_IVL`; `None`: no heartbeats).
    pub fn set_heartbeat_interval(&self, ivl: Option<Duration>) -> Result<()> {
        self.set("heartbeat_interval", |o| o.heartbeat_interval = ivl)
    }

    /// Silence after a PING that closes the connection (`ZMQ_HEARTBEAT_TIMEOUT`; `None`: the
    /// interval).
    pub fn set_heartbeat_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        self.set("heartbeat_timeout", |o| o.heartbeat_timeout = timeout)
    }

    /// TTL the peer is asked to enforce (`ZMQ_HEARTBEAT_TTL`).
    pub fn set_heartbeat_ttl(&self, ttl: Option<Duration>) -> Result<()> {
        self.set("heartbeat_ttl", |o| o.heartbeat_ttl = ttl)
    }

    /// Largest message accepted from a peer (`ZMQ_MAXMSGSIZE`; `None`: the queue size).
    pub fn set_max_message_size(&self, max: Option<u64>) -> Result<()> {
        self.set("max_message_size", |o| o.max_message_size = max)
    }

    /// ROUTER: unknown routing ids are an error (`ZMQ_ROUTER_MANDATORY`).
    pub fn set_router_mandatory(&self, on: bool) -> Result<()> {
        self.set("router_mandatory", |o| o.router_mandatory = on)
    }

    /// ROUTER: a newcomer takes over a routing id in use (`ZMQ_ROUTER_HANDOVER`).
    pub fn set_router_handover(&self, on: bool) -> Result<()> {
        self.set("router_handover", |o| o.router_handover = on)
    }

    /// REQ: requests may be sent without waiting for the reply (`ZMQ_REQ_RELAXED`).
    pub fn set_req_relaxed(&self, on: bool) -> Result<()> {
        self.set("req_relaxed", |o| o.req_relaxed = on)
    }

    /// XPUB: every subscription reaches the application, not only a topic's first
    /// (`ZMQ_XPUB_VERBOSE`).
    pub fn set_xpub_verbose(&self, on: bool) -> Result<()> {
        self.set("xpub_verbose", |o| o.xpub_verbose = on)
    }

    /// XPUB: every unsubscription too (`ZMQ_XPUB_VERBOSER`; implies `xpub_verbose`).
    pub fn set_xpub_verboser(&self, on: bool) -> Result<()> {
        self.set("xpub_verboser", |o| o.xpub_verboser = on)
    }

    /// Room for subscriptions, in subscription-tree nodes (see
    /// [`SocketOptions::subscription_nodes`]).
    pub fn set_subscription_nodes(&self, nodes: usize) -> Result<()> {
        self.set("subscription_nodes", |o| o.subscription_nodes = nodes)
    }

    /// REQ: replies are matched to requests by id (`ZMQ_REQ_CORRELATE`).
    pub fn set_req_correlate(&self, on: bool) -> Result<()> {
        self.set("req_correlate", |o| o.req_correlate = on)
    }

    /// Most connections at once (see [`SocketOptions::max_peers`]).
    pub fn set_max_peers(&self, n: usize) -> Result<()> {
        self.set("max_peers", |o| o.max_peers = n)
    }

    /// Size of each connection's receive and transmit buffer (see
    /// [`SocketOptions::buffer_size`]).
    pub fn set_buffer_size(&self, bytes: usize) -> Result<()> {
        self.set("buffer_size", |o| o.buffer_size = bytes)
    }

    /// Size of each connection's two message queues, the largest message (see
    /// [`SocketOptions::queue_size`]).
    pub fn set_queue_size(&self, bytes: usize) -> Result<()> {
        self.set("queue_size", |o| o.queue_size = bytes)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let st = self.state();
        if !st.started {
            return;
        }
        let linger = st.opts.linger;
        drop(st);
        // Fails only if the I/O thread is gone, and then there is nothing left to close.
        let _ = self.ctx.command(Command::Close {
            id: self.id,
            linger,
        });
    }
}

/// Whether the message could ever be queued for a peer: into an empty send queue, or whole
/// into an empty transmit buffer (zmtp-core's rule), envelope included; with CURVE, whether
/// each frame fits the transmit buffer (zmtp-core seals frames whole).
fn check_size(ty: SocketType, o: &SocketOptions, msg: &[&[u8]]) -> Result<()> {
    let body = if ty == SocketType::Router {
        msg.get(1..).unwrap_or(&[])
    } else {
        msg
    };
    // RFC 26: each frame travels in one MESSAGE, sealed whole in the transmit buffer. A
    // larger frame could never leave (the envelope frames the socket adds are tiny).
    if o.security.mechanism() == crate::security::Mechanism::Curve {
        let max = zmtp_core::curve_max_frame_body(o.buffer_size);
        if body.iter().any(|f| f.len() > max) {
            return Err(Error::MessageTooLarge);
        }
    }
    // Envelope frames and bytes the socket adds (REP: usually one empty delimiter).
    let (env_frames, env_bytes) = match ty {
        SocketType::Req if o.req_correlate => (2, 4),
        SocketType::Req | SocketType::Rep => (1, 0),
        _ => (0, 0),
    };
    let frames = body.len().saturating_add(env_frames);
    let bytes = body
        .iter()
        .map(|f| f.len())
        .fold(env_bytes, usize::saturating_add);
    let wire = bytes.saturating_add(frames.saturating_mul(9));
    if stored_len(frames, bytes) <= o.queue_size || wire.saturating_add(40) <= o.buffer_size {
        Ok(())
    } else {
        Err(Error::MessageTooLarge)
    }
}
