//! The transport-independent part: one core socket, the links (one per TCP socket) and what
//! moves bytes and events between them. Both adapters (embassy-net, smoltcp) drive this.

use core::time::Duration;

use zmtp_core::socket::kind::Kind;
use zmtp_core::socket::{AddPeerError, PeerHandle, PeerMemory, PeerSlot, Socket, SocketEvent};
use zmtp_core::socket::{SocketRecvError, SocketSendError, SubscriptionMemory};
use zmtp_core::{CloseReason, Instant, Role, SocketType};

use crate::fmt::{debug, info, warning};
use crate::{Endpoint, Error, Message, Options, MAX_FRAMES};

/// A value set up when the socket starts, in a static that must start as all-zero bytes (so
/// that it lands in `.bss`, not `.data`: RAM only, no flash copy). `Option<T>`'s `None` is
/// whatever bit pattern the compiler picks; with `repr(u8)` the layout is a tag byte (0 for
/// `Empty`, the first variant) followed by the payload, uninitialised while `Empty`.
#[repr(u8)]
pub(crate) enum Init<T> {
    Empty = 0,
    Ready(T),
}

impl<T> Init<T> {
    /// Stores `value` and lends it out (`None` never happens: it was just stored).
    pub(crate) fn insert(&mut self, value: T) -> Option<&mut T> {
        *self = Init::Ready(value);
        match self {
            Init::Ready(v) => Some(v),
            Init::Empty => None,
        }
    }
}

/// Memory of one peer: the session's two buffers and its two message queues.
pub(crate) struct PeerBuffers<const BUF: usize, const QUEUE: usize> {
    rx: [u8; BUF],
    tx: [u8; BUF],
    recv_queue: [u8; QUEUE],
    send_queue: [u8; QUEUE],
}

impl<const BUF: usize, const QUEUE: usize> PeerBuffers<BUF, QUEUE> {
    pub(crate) const fn new() -> Self {
        PeerBuffers {
            rx: [0; BUF],
            tx: [0; BUF],
            recv_queue: [0; QUEUE],
            send_queue: [0; QUEUE],
        }
    }

    pub(crate) fn slot(&mut self) -> PeerSlot<'_> {
        PeerSlot::new(PeerMemory {
            rx: &mut self.rx,
            tx: &mut self.tx,
            recv_queue: &mut self.recv_queue,
            send_queue: &mut self.send_queue,
        })
    }
}

/// What a link does when it has no connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    Unused,
    Connect(core::net::SocketAddr),
    Listen(u16),
}

/// One TCP socket's state, as the engine sees it.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) plan: Plan,
    /// The core peer while a connection is up.
    pub(crate) peer: Option<PeerHandle>,
    /// The core reported the peer's session over (the transport goes next).
    pub(crate) closed: Option<CloseReason>,
    /// Next reconnect delay (client links).
    pub(crate) backoff: Duration,
    /// No reconnect after this close (an ERROR from the peer, a refused mechanism).
    pub(crate) stopped: bool,
}

impl Link {
    pub(crate) const fn new() -> Self {
        Link {
            plan: Plan::Unused,
            peer: None,
            closed: None,
            backoff: Duration::ZERO,
            stopped: false,
        }
    }
}

/// A compile-time kind and the options must name the same socket type.
pub(crate) fn check_kind<K: Kind>(options: &Options<'_>) -> Result<(), Error> {
    match K::TYPE {
        Some(ty) if ty != options.socket.session.socket_type => Err(Error::KindMismatch),
        _ => Ok(()),
    }
}

/// Assigns endpoints to links: one link per `Connect`, every other link listens on the
/// `Listen` port (if any).
pub(crate) fn plan_links(
    links: &mut [Link],
    endpoints: &[Endpoint],
    options: &Options<'_>,
) -> Result<(), Error> {
    let mut it = links.iter_mut();
    let mut listen = None;
    for e in endpoints {
        match *e {
            Endpoint::Connect(addr) => {
                if addr.is_ipv6() && !cfg!(feature = "ipv6") {
                    return Err(Error::Ipv6Disabled);
                }
                let link = it.next().ok_or(Error::TooManyEndpoints)?;
                link.plan = Plan::Connect(addr);
                link.backoff = options.reconnect_ivl;
            }
            Endpoint::Listen(port) => {
                if listen.is_some() {
                    return Err(Error::TooManyEndpoints);
                }
                listen = Some(port);
            }
        }
    }
    if let Some(port) = listen {
        let mut any = false;
        for link in it {
            link.plan = Plan::Listen(port);
            any = true;
        }
        if !any {
            return Err(Error::TooManyEndpoints);
        }
    }
    if endpoints.is_empty() {
        return Err(Error::NoEndpoint);
    }
    Ok(())
}

/// The core socket and its links.
pub(crate) struct Engine<'d, K: Kind> {
    pub(crate) socket: Socket<'d, 'd, K>,
    pub(crate) links: &'d mut [Link],
    options: Options<'d>,
    ready: usize,
    #[cfg(feature = "curve")]
    pub(crate) rng: Option<&'d mut (dyn rand_core::CryptoRng + Send)>,
}

impl<'d, K: Kind> Engine<'d, K> {
    pub(crate) fn new(
        options: Options<'d>,
        slots: &'d mut [PeerSlot<'d>],
        subs: &'d mut [u8],
        links: &'d mut [Link],
    ) -> Self {
        // A constant when `K` fixes the type: the other types' branches fold away.
        let ty = K::TYPE.unwrap_or(options.socket.session.socket_type);
        let memory = match ty {
            SocketType::XPub => {
                // XPUB: half the memory for the trie, half for notifications.
                let (trie, notes) = subs.split_at_mut(subs.len() / 2);
                SubscriptionMemory::new(trie).with_notifications(notes)
            }
            SocketType::Pub | SocketType::Sub | SocketType::XSub => SubscriptionMemory::new(subs),
            _ => SubscriptionMemory::new(&mut []),
        };
        let socket = Socket::typed_with_subscriptions(K::default(), options.socket, slots, memory);
        Engine {
            socket,
            links,
            options,
            ready: 0,
            #[cfg(feature = "curve")]
            rng: None,
        }
    }

    pub(crate) fn options(&self) -> &Options<'d> {
        &self.options
    }

    /// Peers whose handshake is done.
    pub(crate) fn ready(&self) -> usize {
        self.ready
    }

    /// A transport came up on `link`: start a session over it.
    pub(crate) fn attach(&mut self, link: usize, role: Role, now: Instant) -> Result<(), Error> {
        #[cfg(feature = "curve")]
        let added = if self.options.socket.session.security.is_curve() {
            match self.rng.as_deref_mut() {
                Some(rng) => {
                    let random = zmtp_core::mechanism::curve::CurveRandom::generate(rng);
                    self.socket.add_peer_curve(role, now, random)
                }
                None => Err(AddPeerError::Config(
                    zmtp_core::ConfigError::MissingRandomness,
                )),
            }
        } else {
            self.socket.add_peer(role, now)
        };
        #[cfg(not(feature = "curve"))]
        let added = self.socket.add_peer(role, now);
        let h = added.map_err(|e| match e {
            AddPeerError::Config(c) => Error::Config(c),
            _ => Error::NoFreeSlot,
        })?;
        if let Some(l) = self.links.get_mut(link) {
            l.peer = Some(h);
            l.closed = None;
        }
        Ok(())
    }

    fn peer(&self, link: usize) -> Option<PeerHandle> {
        self.links.get(link).and_then(|l| l.peer)
    }

    /// Bytes read from `link`'s transport; returns how many were taken (fewer when the
    /// peer's receive queue is full: the rest stays in the transport, back-pressure).
    pub(crate) fn input(&mut self, link: usize, data: &[u8], now: Instant) -> usize {
        let Some(h) = self.peer(link) else { return 0 };
        let mut taken = 0;
        while let Some(rest) = data.get(taken..).filter(|r| !r.is_empty()) {
            let n = self.socket.feed(h, rest, now);
            if n == 0 {
                break;
            }
            taken += n;
        }
        self.drain_events();
        taken
    }

    /// Whether the peer on `link` can take input now.
    pub(crate) fn wants_input(&mut self, link: usize) -> bool {
        self.peer(link)
            .is_some_and(|h| !self.socket.recv_window(h).is_empty())
    }

    /// Whether `link` has bytes to write.
    pub(crate) fn has_output(&mut self, link: usize) -> bool {
        self.peer(link)
            .is_some_and(|h| !self.socket.poll_transmit(h).is_empty())
    }

    /// Copies output for `link` into `buf`; returns the bytes written.
    pub(crate) fn output(&mut self, link: usize, buf: &mut [u8]) -> usize {
        let Some(h) = self.peer(link) else { return 0 };
        let mut done = 0;
        loop {
            let out = self.socket.poll_transmit(h);
            let Some(dst) = buf.get_mut(done..) else {
                break;
            };
            let n = out.len().min(dst.len());
            if n == 0 {
                break;
            }
            if let (Some(d), Some(s)) = (dst.get_mut(..n), out.get(..n)) {
                d.copy_from_slice(s);
            }
            let _ = self.socket.mark_transmitted(h, n);
            done += n;
        }
        done
    }

    /// `link`'s transport ended (end of stream, reset, or error).
    pub(crate) fn eof(&mut self, link: usize) {
        if let Some(h) = self.peer(link) {
            self.socket.handle_eof(h);
            self.drain_events();
            if let Some(l) = self.links.get_mut(link) {
                l.closed.get_or_insert(CloseReason::Eof);
            }
        }
    }

    /// The session on `link` is over and its last bytes were written: close the transport.
    pub(crate) fn finished(&self, link: usize) -> bool {
        self.links.get(link).is_some_and(|l| {
            l.peer.is_some()
                && l.closed.is_some()
                && l.peer.is_none_or(|h| self.socket.is_finished(h))
        })
    }

    /// Why the session on `link` ended (end of stream if not known).
    #[cfg(feature = "embassy")]
    pub(crate) fn close_reason(&self, link: usize) -> CloseReason {
        self.links
            .get(link)
            .and_then(|l| l.closed)
            .unwrap_or(CloseReason::Eof)
    }

    /// The transport of `link` is closed: free the peer. Returns the delay before the next
    /// connection attempt (client links), `None` for no reconnect.
    pub(crate) fn detach(&mut self, link: usize) -> Option<Duration> {
        let max = self.options.reconnect_ivl_max;
        let first = self.options.reconnect_ivl;
        let l = self.links.get_mut(link)?;
        let reason = l.closed.take().unwrap_or(CloseReason::Eof);
        if let Some(h) = l.peer.take() {
            self.socket.remove_peer(h);
        }
        if !reason.should_reconnect() && matches!(l.plan, Plan::Connect(_)) {
            warning!("zmtp: link {} will not reconnect: {}", link, reason);
            l.stopped = true;
            return None;
        }
        let delay = l.backoff;
        // Exponential backoff, capped (libzmq's ZMQ_RECONNECT_IVL / ZMQ_RECONNECT_IVL_MAX).
        l.backoff = (l.backoff.saturating_mul(2)).min(max.max(first));
        Some(delay)
    }

    /// A connection attempt on `link` failed: the delay before the next one.
    pub(crate) fn connect_failed(&mut self, link: usize) -> Duration {
        let max = self.options.reconnect_ivl_max;
        let first = self.options.reconnect_ivl;
        let Some(l) = self.links.get_mut(link) else {
            return first;
        };
        let delay = l.backoff;
        l.backoff = (l.backoff.saturating_mul(2)).min(max.max(first));
        delay
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.socket.handle_timeout(now);
        self.drain_events();
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.socket.poll_timeout()
    }

    /// Dispatches the core's events to the links.
    pub(crate) fn drain_events(&mut self) {
        while let Some(ev) = self.socket.poll_event() {
            match ev {
                SocketEvent::PeerReady(h) => {
                    self.ready += 1;
                    let first = self.options.reconnect_ivl;
                    if let Some(l) = self.links.iter_mut().find(|l| l.peer == Some(h)) {
                        l.backoff = first;
                    }
                    info!("zmtp: peer {} ready", h.index());
                }
                SocketEvent::Authenticate(h) => {
                    let verdict = match (self.options.authenticate, self.socket.pending_auth(h)) {
                        (Some(f), Some(req)) => f(&req),
                        // libzmq without a ZAP handler lets every client in.
                        (None, _) => true,
                        (Some(_), None) => false,
                    };
                    if verdict {
                        self.socket.accept_peer(h);
                    } else {
                        debug!("zmtp: peer {} rejected", h.index());
                        self.socket.reject_peer(h, b"400");
                    }
                }
                SocketEvent::PeerClosed(h, reason) => {
                    if self.socket.peer_type(h).is_some() {
                        self.ready = self.ready.saturating_sub(1);
                    }
                    debug!("zmtp: peer {} closed: {}", h.index(), reason);
                    if let Some(l) = self.links.iter_mut().find(|l| l.peer == Some(h)) {
                        l.closed = Some(reason);
                    }
                }
                _ => {}
            }
        }
    }

    // ------------------------------------------------------------ application side

    pub(crate) fn try_send(&mut self, frames: &[&[u8]]) -> Result<(), Error> {
        let r = self.socket.send(frames).map_err(Error::from);
        self.drain_events();
        r
    }

    /// Whether the next message fits a buffer of `len` bytes (then [`try_recv`] takes it);
    /// the message stays queued either way.
    pub(crate) fn check_fits(&mut self, len: usize) -> Result<(), Error> {
        let r = match self.socket.peek() {
            Ok(m) => fits(m.frames(), len),
            Err(e) => Err(Error::from(e)),
        };
        self.drain_events();
        r
    }

    /// The next message copied into `buf`; one that does not fit stays queued
    /// ([`Error::BufferTooSmall`], [`Error::TooManyFrames`]).
    pub(crate) fn try_recv<'m>(&mut self, buf: &'m mut [u8]) -> Result<Message<'m>, Error> {
        self.check_fits(buf.len())?;
        let r = match self.socket.recv() {
            Ok(m) => copy_message(m.frames(), buf),
            Err(e) => Err(Error::from(e)),
        };
        self.drain_events();
        r
    }

    /// Drops the next message; whether there was one.
    pub(crate) fn discard(&mut self) -> Result<bool, Error> {
        let r = match self.socket.recv() {
            Ok(_) => Ok(true),
            Err(e) => match Error::from(e) {
                Error::WouldBlock => Ok(false),
                e => Err(e),
            },
        };
        self.drain_events();
        r
    }

    pub(crate) fn try_recv_with<R>(
        &mut self,
        f: impl FnOnce(&zmtp_core::socket::Received<'_>) -> R,
    ) -> Result<R, Error> {
        let r = match self.socket.recv() {
            Ok(m) => Ok(f(&m)),
            Err(e) => Err(Error::from(e)),
        };
        self.drain_events();
        r
    }
}

/// Whether frames fit a buffer of `len` bytes and a [`Message`].
pub(crate) fn fits<'a>(frames: impl Iterator<Item = &'a [u8]>, len: usize) -> Result<(), Error> {
    let (mut needed, mut count) = (0usize, 0usize);
    for f in frames {
        needed = needed.saturating_add(f.len());
        count = count.saturating_add(1);
    }
    if count > MAX_FRAMES {
        Err(Error::TooManyFrames { frames: count })
    } else if needed > len {
        Err(Error::BufferTooSmall { needed })
    } else {
        Ok(())
    }
}

/// Copies a message's frames into `buf`, back to back.
pub(crate) fn copy_message<'a, 'm>(
    frames: impl Iterator<Item = &'a [u8]>,
    buf: &'m mut [u8],
) -> Result<Message<'m>, Error> {
    let mut ends = heapless::Vec::<usize, MAX_FRAMES>::new();
    let (mut at, mut count, mut fit) = (0usize, 0usize, true);
    for f in frames {
        let end = at.saturating_add(f.len());
        count = count.saturating_add(1);
        if fit {
            match buf.get_mut(at..end) {
                Some(dst) if ends.push(end).is_ok() => dst.copy_from_slice(f),
                // Keep counting: the error says what the whole message needs.
                _ => fit = false,
            }
        }
        at = end;
    }
    if count > MAX_FRAMES {
        return Err(Error::TooManyFrames { frames: count });
    }
    if !fit {
        return Err(Error::BufferTooSmall { needed: at });
    }
    let data: &'m [u8] = buf;
    Ok(Message {
        data: data.get(..at).unwrap_or(&[]),
        ends,
    })
}

impl From<SocketSendError> for Error {
    fn from(e: SocketSendError) -> Self {
        match e {
            SocketSendError::WouldBlock => Error::WouldBlock,
            SocketSendError::HostUnreachable => Error::HostUnreachable,
            SocketSendError::NotAllowed => Error::NotAllowed,
            SocketSendError::Empty => Error::Empty,
            SocketSendError::SubscriptionsFull => Error::SubscriptionsFull,
            _ => Error::TooLarge,
        }
    }
}

impl From<SocketRecvError> for Error {
    fn from(e: SocketRecvError) -> Self {
        match e {
            SocketRecvError::NotAllowed => Error::NotAllowed,
            _ => Error::WouldBlock,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used)]

    use super::*;
    use core::net::{Ipv4Addr, SocketAddrV4};

    fn addr(port: u16) -> Endpoint {
        Endpoint::Connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into())
    }

    #[test]
    fn endpoints_take_one_link_each_and_listen_takes_the_rest() {
        let o = Options::new(SocketType::Dealer);
        let mut links = [Link::new(), Link::new(), Link::new()];
        plan_links(&mut links, &[addr(1), Endpoint::Listen(9)], &o).unwrap();
        assert!(matches!(links[0].plan, Plan::Connect(a) if a.port() == 1));
        assert_eq!(links[1].plan, Plan::Listen(9));
        assert_eq!(links[2].plan, Plan::Listen(9));
        assert_eq!(links[0].backoff, o.reconnect_ivl);
    }

    #[test]
    fn endpoint_errors() {
        let o = Options::new(SocketType::Dealer);
        let mut one = [Link::new()];
        assert_eq!(
            plan_links(&mut one, &[addr(1), addr(2)], &o),
            Err(Error::TooManyEndpoints)
        );
        let mut one = [Link::new()];
        assert_eq!(
            plan_links(&mut one, &[addr(1), Endpoint::Listen(9)], &o),
            Err(Error::TooManyEndpoints)
        );
        let mut two = [Link::new(), Link::new()];
        assert_eq!(
            plan_links(&mut two, &[Endpoint::Listen(8), Endpoint::Listen(9)], &o),
            Err(Error::TooManyEndpoints)
        );
        assert_eq!(plan_links(&mut two, &[], &o), Err(Error::NoEndpoint));
        let v6 = Endpoint::connect((core::net::Ipv6Addr::LOCALHOST, 5555));
        let mut one = [Link::new()];
        let r = plan_links(&mut one, &[v6], &o);
        if cfg!(feature = "ipv6") {
            assert_eq!(r, Ok(()));
        } else {
            assert_eq!(r, Err(Error::Ipv6Disabled));
        }
    }

    #[test]
    fn messages_copy_into_the_callers_buffer_or_fail_typed() {
        let frames: [&[u8]; 3] = [b"id", b"", b"body"];
        let mut buf = [0u8; 6];
        let m = copy_message(frames.iter().copied(), &mut buf).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m.frame(0), Some(&b"id"[..]));
        assert_eq!(m.frame(1), Some(&b""[..]));
        assert_eq!(m.frame(2), Some(&b"body"[..]));
        assert_eq!(m.bytes(), b"idbody");
        let mut small = [0u8; 5];
        assert_eq!(
            copy_message(frames.iter().copied(), &mut small),
            Err(Error::BufferTooSmall { needed: 6 })
        );
        let many = [&b""[..]; MAX_FRAMES + 1];
        let mut buf = [0u8; 4];
        assert_eq!(
            copy_message(many.iter().copied(), &mut buf),
            Err(Error::TooManyFrames {
                frames: MAX_FRAMES + 1
            })
        );
    }
}
