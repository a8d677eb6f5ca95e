//! The async sockets over embassy-net.

use core::cell::RefCell;
use core::future::{pending, poll_fn};
use core::task::Poll;

use embassy_futures::join::join;
use embassy_futures::select::{select, select3, Either, Either3};
use embassy_net::tcp::{ConnectError, TcpSocket};
use embassy_net::Stack;
use embassy_sync::waitqueue::WakerRegistration;
use embassy_time::{Duration, Instant as EInstant, Timer};
use zmtp_core::socket::kind::{self, Kind};
use zmtp_core::socket::{PeerSlot, Received};
use zmtp_core::{Instant, Role, SocketType};

use crate::engine::{check_kind, plan_links, Engine, Init, Link, PeerBuffers, Plan};
use crate::fmt::{debug, warning};
use crate::{Endpoint, Error, Message, Options};

/// Everything a socket needs, in one block you allocate statically (a `StaticCell` or a
/// `ConstStaticCell`; [`Resources::new`] is `const`, so the arrays never touch the stack).
///
/// - `PEERS`: connections at once (one per `Connect` endpoint, the rest accept).
/// - `BUF`: bytes of each TCP buffer and each ZMTP buffer (4 per peer). With [`new_io`] the
///   two TCP buffers of a peer are the driver's read and write scratch buffers.
/// - `QUEUE`: bytes of each message queue (2 per peer). The largest message a peer can send
///   us is a little under `QUEUE`.
/// - `SUBS`: bytes of subscription memory (PUB, XPUB, SUB, XSUB; see
///   [`zmtp_core::socket::subscription_memory`]). XPUB uses half for notifications.
/// - `K`: the socket type fixed at compile time ([`kind::Dealer`], [`kind::Sub`], ...),
///   which leaves the other types' code out of the firmware (about 8 KiB of flash), or
///   [`kind::Any`] (the default): the type comes from [`Options`] at run time.
///
/// A `Resources` starts as all-zero bytes, so a `static` of it goes to `.bss` (RAM only,
/// nothing copied from flash at boot).
pub struct Resources<
    'd,
    const PEERS: usize,
    const BUF: usize,
    const QUEUE: usize,
    const SUBS: usize = 0,
    K: Kind = kind::Any,
> {
    peers: [PeerBuffers<BUF, QUEUE>; PEERS],
    tcp: [([u8; BUF], [u8; BUF]); PEERS],
    subs: [u8; SUBS],
    links: Init<[Link; PEERS]>,
    slots: Init<[PeerSlot<'d>; PEERS]>,
    shared: Init<Shared<'d, K>>,
}

impl<const PEERS: usize, const BUF: usize, const QUEUE: usize, const SUBS: usize, K: Kind>
    Resources<'_, PEERS, BUF, QUEUE, SUBS, K>
{
    /// Zeroed memory (`const`: place it in a `static` without building it on the stack).
    pub const fn new() -> Self {
        Resources {
            peers: [const { PeerBuffers::new() }; PEERS],
            tcp: [([0; BUF], [0; BUF]); PEERS],
            subs: [0; SUBS],
            links: Init::Empty,
            slots: Init::Empty,
            shared: Init::Empty,
        }
    }
}

impl<const PEERS: usize, const BUF: usize, const QUEUE: usize, const SUBS: usize, K: Kind> Default
    for Resources<'_, PEERS, BUF, QUEUE, SUBS, K>
{
    fn default() -> Self {
        Self::new()
    }
}

/// State shared by the handle and the runner (same executor: no locking beyond a RefCell,
/// never borrowed across an await).
pub(crate) struct Shared<'d, K: Kind> {
    pub(crate) engine: RefCell<Engine<'d, K>>,
    pub(crate) wakers: RefCell<Wakers>,
}

#[derive(Default)]
pub(crate) struct Wakers {
    /// The runner task (all its link futures run in it).
    runner: WakerRegistration,
    /// Counter bumped by the application side: links re-check for output.
    pub(crate) epoch: u32,
    /// Application tasks waiting in send/recv.
    send: WakerRegistration,
    recv: WakerRegistration,
}

impl<K: Kind> Shared<'_, K> {
    /// Something changed on the protocol side: wake everyone.
    pub(crate) fn kick(&self) {
        let mut w = self.wakers.borrow_mut();
        w.epoch = w.epoch.wrapping_add(1);
        w.runner.wake();
        w.send.wake();
        w.recv.wake();
    }

    pub(crate) fn wake_app(&self) {
        let mut w = self.wakers.borrow_mut();
        w.send.wake();
        w.recv.wake();
    }
}

pub(crate) fn now() -> Instant {
    Instant::from_micros(EInstant::now().as_micros())
}

/// Creates a socket over `stack` in `resources`: the handle for the application and the
/// runner to spawn. `endpoints`: one or more `Connect`, at most one `Listen`.
///
/// Errors: [`Error::TooManyEndpoints`], [`Error::NoEndpoint`], [`Error::Config`] when `BUF`
/// cannot hold the handshake (the identity, PLAIN credentials or CURVE need more),
/// [`Error::KindMismatch`] when `options` names another type than the resources' `K`.
pub fn new<
    'd,
    const PEERS: usize,
    const BUF: usize,
    const QUEUE: usize,
    const SUBS: usize,
    K: Kind,
>(
    stack: Stack<'d>,
    resources: &'d mut Resources<'d, PEERS, BUF, QUEUE, SUBS, K>,
    options: Options<'d>,
    endpoints: &[Endpoint],
) -> Result<(Socket<'d, K>, Runner<'d, PEERS, K>), Error> {
    let (shared, tcp) = start(resources, options, Some(endpoints))?;
    let tcp = tcp.each_mut().map(|(rx, tx)| {
        let mut s = TcpSocket::new(stack, rx, tx);
        s.set_nagle_enabled(false);
        s
    });
    Ok((Socket { shared }, Runner { shared, tcp }))
}

/// [`new`] for another transport: the socket and a [`crate::io::Driver`] that runs
/// connections you open yourself over any `embedded-io-async` byte stream (a UART, a TLS
/// stream, ...). The TCP buffers of `resources` become the driver's per-connection scratch
/// buffers (input is read into one, output written from the other).
pub fn new_io<
    'd,
    const PEERS: usize,
    const BUF: usize,
    const QUEUE: usize,
    const SUBS: usize,
    K: Kind,
>(
    resources: &'d mut Resources<'d, PEERS, BUF, QUEUE, SUBS, K>,
    options: Options<'d>,
) -> Result<(Socket<'d, K>, crate::io::Driver<'d, PEERS, K>), Error> {
    let (shared, tcp) = start(resources, options, None)?;
    let scratch = tcp
        .each_mut()
        .map(|(rx, tx)| Some((&mut rx[..], &mut tx[..])));
    Ok((Socket { shared }, crate::io::Driver::new(shared, scratch)))
}

/// Each peer's TCP receive and transmit buffers.
type TcpBuffers<const PEERS: usize, const BUF: usize> = [([u8; BUF], [u8; BUF]); PEERS];

/// What [`new`] and [`new_io`] share: checks the buffers, plans the endpoints (`None`: the
/// caller opens connections itself), builds the engine in `resources` and hands back the
/// shared state with the TCP buffer pairs.
#[allow(clippy::type_complexity)]
fn start<
    'd,
    const PEERS: usize,
    const BUF: usize,
    const QUEUE: usize,
    const SUBS: usize,
    K: Kind,
>(
    resources: &'d mut Resources<'d, PEERS, BUF, QUEUE, SUBS, K>,
    options: Options<'d>,
    endpoints: Option<&[Endpoint]>,
) -> Result<(&'d Shared<'d, K>, &'d mut TcpBuffers<PEERS, BUF>), Error> {
    check_kind::<K>(&options)?;
    options
        .socket
        .session
        .check_buffers(BUF, BUF)
        .map_err(Error::Config)?;
    let Resources {
        peers,
        tcp,
        subs,
        links,
        slots,
        shared,
    } = resources;
    // `insert` lends out what it just stored: the `None`s cannot happen.
    let links = links
        .insert([const { Link::new() }; PEERS])
        .ok_or(Error::NoFreeSlot)?;
    if let Some(endpoints) = endpoints {
        plan_links(links, endpoints, &options)?;
    }
    let slots = slots
        .insert(peers.each_mut().map(PeerBuffers::slot))
        .ok_or(Error::NoFreeSlot)?;
    let engine = Engine::new(options, slots, subs, links);
    let shared: &'d Shared<'d, K> = shared
        .insert(Shared {
            engine: RefCell::new(engine),
            wakers: RefCell::new(Wakers::default()),
        })
        .ok_or(Error::NoFreeSlot)?;
    Ok((shared, tcp))
}

/// Moves bytes between the TCP sockets and the protocol core, connects, accepts, reconnects
/// and keeps the heartbeats. Spawn a task that awaits [`run`](Self::run).
pub struct Runner<'d, const PEERS: usize, K: Kind = kind::Any> {
    shared: &'d Shared<'d, K>,
    tcp: [TcpSocket<'d>; PEERS],
}

impl<'d, const PEERS: usize, K: Kind> Runner<'d, PEERS, K> {
    /// CURVE: the cryptographic RNG each new connection draws its transient key and nonces
    /// from (a hardware TRNG, or a CSPRNG seeded from one). Without it CURVE connections fail
    /// with [`zmtp_core::ConfigError::MissingRandomness`] (logged) and are retried.
    #[cfg(feature = "curve")]
    pub fn set_rng(&mut self, rng: &'d mut (dyn rand_core::CryptoRng + Send)) {
        self.shared.engine.borrow_mut().rng = Some(rng);
    }

    /// Runs the socket forever. Not cancel-safe in the sense that dropping it stops the
    /// socket (connections stall); it is meant to run in its own task.
    pub async fn run(mut self) -> ! {
        let shared = self.shared;
        // One future per link plus the protocol timer, all polled by this task.
        let mut i = 0;
        let futs = self.tcp.each_mut().map(|tcp| {
            let f = link_loop(shared, i, tcp);
            i += 1;
            f
        });
        join(embassy_futures::join::join_array(futs), timer_loop(shared)).await;
        pending().await
    }
}

/// Fires the core's timers (heartbeats, handshake timeouts) at its next deadline.
pub(crate) async fn timer_loop<K: Kind>(shared: &Shared<'_, K>) -> ! {
    loop {
        let deadline = shared.engine.borrow().poll_timeout();
        let seen = shared.wakers.borrow().epoch;
        let timer = async {
            match deadline {
                Some(d) => Timer::at(EInstant::from_micros(d.as_micros())).await,
                None => pending().await,
            }
        };
        // Re-arm when the application or a link changed something (a new deadline).
        match select(timer, changed(shared, seen)).await {
            Either::First(()) => {
                shared.engine.borrow_mut().handle_timeout(now());
                shared.kick();
            }
            Either::Second(()) => {}
        }
    }
}

/// Resolves once `epoch` moved past `seen`.
pub(crate) async fn changed<K: Kind>(shared: &Shared<'_, K>, seen: u32) {
    poll_fn(move |cx| {
        let mut w = shared.wakers.borrow_mut();
        if w.epoch != seen {
            Poll::Ready(())
        } else {
            w.runner.register(cx.waker());
            Poll::Pending
        }
    })
    .await
}

/// embassy-net's form of an address (`None`: IPv6 without the `ipv6` feature).
fn ip_endpoint(addr: core::net::SocketAddr) -> Option<embassy_net::IpEndpoint> {
    use embassy_net::IpAddress;
    let ip = match addr {
        core::net::SocketAddr::V4(a) => IpAddress::Ipv4(*a.ip()),
        #[cfg(feature = "ipv6")]
        core::net::SocketAddr::V6(a) => IpAddress::Ipv6(*a.ip()),
        #[cfg(not(feature = "ipv6"))]
        core::net::SocketAddr::V6(_) => return None,
    };
    Some(embassy_net::IpEndpoint::new(ip, addr.port()))
}

/// One TCP socket: connect or accept, pump bytes while the session lives, close, repeat.
async fn link_loop<K: Kind>(shared: &Shared<'_, K>, i: usize, tcp: &mut TcpSocket<'_>) -> ! {
    let (plan, connect_timeout) = {
        let e = shared.engine.borrow();
        let plan = e.links.get(i).map_or(Plan::Unused, |l| l.plan);
        (plan, e.options().connect_timeout)
    };
    let connect_timeout = Duration::from_micros(connect_timeout.as_micros() as u64);
    loop {
        let role = match plan {
            Plan::Unused => pending().await,
            Plan::Connect(addr) => {
                debug!("zmtp: link {} connecting", i);
                let Some(remote) = ip_endpoint(addr) else {
                    // Refused by `new` (Error::Ipv6Disabled): never reached.
                    pending().await
                };
                match embassy_time::with_timeout(connect_timeout, tcp.connect(remote)).await {
                    Ok(Ok(())) => Role::Connected,
                    r => {
                        let why = match r {
                            Ok(Err(ConnectError::NoRoute)) => "no route",
                            Ok(Err(ConnectError::InvalidState)) => "invalid state",
                            Ok(_) => "refused or reset",
                            Err(_) => "timed out",
                        };
                        debug!("zmtp: link {} connect failed: {}", i, why);
                        tcp.abort();
                        let _ = tcp.flush().await;
                        let delay = shared.engine.borrow_mut().connect_failed(i);
                        Timer::after(Duration::from_micros(delay.as_micros() as u64)).await;
                        continue;
                    }
                }
            }
            Plan::Listen(port) => match tcp.accept(port).await {
                Ok(()) => Role::Accepted,
                Err(_) => {
                    tcp.abort();
                    let _ = tcp.flush().await;
                    continue;
                }
            },
        };
        let attached = shared.engine.borrow_mut().attach(i, role, now());
        if let Err(e) = attached {
            warning!("zmtp: link {} cannot start a session: {}", i, e);
            tcp.abort();
            let _ = tcp.flush().await;
            Timer::after(Duration::from_secs(1)).await;
            continue;
        }
        shared.kick();
        pump(shared, i, tcp).await;
        // Session over: flush what the core had left, then close the transport.
        tcp.close();
        let _ = embassy_time::with_timeout(Duration::from_secs(1), tcp.flush()).await;
        tcp.abort();
        let _ = tcp.flush().await;
        let delay = shared.engine.borrow_mut().detach(i);
        shared.kick();
        match (plan, delay) {
            (Plan::Connect(_), Some(d)) => {
                Timer::after(Duration::from_micros(d.as_micros() as u64)).await;
            }
            (Plan::Connect(_), None) => pending().await,
            _ => {}
        }
    }
}

/// Moves bytes both ways until the session is over and its output written.
async fn pump<K: Kind>(shared: &Shared<'_, K>, i: usize, tcp: &mut TcpSocket<'_>) {
    let (mut reader, mut writer) = tcp.split();
    loop {
        let (wants_in, has_out, done) = {
            let mut e = shared.engine.borrow_mut();
            (e.wants_input(i), e.has_output(i), e.finished(i))
        };
        if done {
            return;
        }
        let seen = shared.wakers.borrow().epoch;
        let read = async {
            if wants_in {
                reader
                    .read_with(|buf| {
                        let n = shared.engine.borrow_mut().input(i, buf, now());
                        (n, ())
                    })
                    .await
            } else {
                pending().await
            }
        };
        let write = async {
            if has_out {
                writer
                    .write_with(|buf| {
                        let n = shared.engine.borrow_mut().output(i, buf);
                        (n, ())
                    })
                    .await
            } else {
                pending().await
            }
        };
        match select3(read, write, changed(shared, seen)).await {
            Either3::First(Ok(())) | Either3::Second(Ok(())) => shared.kick(),
            Either3::First(Err(_)) | Either3::Second(Err(_)) => {
                // End of stream or reset: the session ends, nothing more can be written.
                shared.engine.borrow_mut().eof(i);
                shared.kick();
                return;
            }
            Either3::Third(()) => {}
        }
        shared.wake_app();
    }
}

/// A ZeroMQ socket: send and receive whole multipart messages. Created by [`new`] (or
/// [`new_io`]); its [`Runner`] (or [`crate::io::Driver`]) must be running. Use it from tasks
/// on the runner's executor (it is not `Send`); to share it between tasks, put it in an
/// `embassy_sync::mutex::Mutex`.
///
/// Every async fn here is cancel-safe: dropping its future before it completes leaves the
/// socket as if it had not been called (no message half sent, none taken).
pub struct Socket<'d, K: Kind = kind::Any> {
    shared: &'d Shared<'d, K>,
}

impl<'d, K: Kind> Socket<'d, K> {
    /// The socket type.
    pub fn socket_type(&self) -> SocketType {
        self.shared.engine.borrow().socket.socket_type()
    }

    /// Peers whose handshake is done.
    pub fn ready_peers(&self) -> usize {
        self.shared.engine.borrow().ready()
    }

    /// Waits until at least one peer's handshake is done.
    ///
    /// Cancel-safe.
    pub async fn wait_ready(&mut self) {
        poll_fn(|cx| {
            if self.shared.engine.borrow().ready() > 0 {
                return Poll::Ready(());
            }
            self.shared.wakers.borrow_mut().send.register(cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Sends a multipart message (frames in order), waiting while no peer can take it
    /// (none connected, or all at their high-water mark). Routing follows the socket type
    /// ([`zmtp_core::socket::Socket::send`]): round robin (DEALER, PUSH, REQ), by routing id
    /// (ROUTER: first frame), to every subscriber (PUB: never waits, drops for full peers).
    ///
    /// Cancel-safe: the message is queued whole when this completes, not at all if it is
    /// dropped before.
    pub async fn send(&mut self, frames: &[&[u8]]) -> Result<(), Error> {
        poll_fn(|cx| match self.try_send(frames) {
            Err(Error::WouldBlock) => {
                self.shared.wakers.borrow_mut().send.register(cx.waker());
                Poll::Pending
            }
            r => Poll::Ready(r),
        })
        .await
    }

    /// Sends now or fails with [`Error::WouldBlock`].
    pub fn try_send(&mut self, frames: &[&[u8]]) -> Result<(), Error> {
        let r = self.shared.engine.borrow_mut().try_send(frames);
        if r.is_ok() {
            self.shared.kick();
        }
        r
    }

    /// Receives the next message, its frames copied back to back into `buf`, waiting for
    /// one. ROUTER: the sender's routing id is the first frame; REQ/REP: without the envelope.
    ///
    /// A message larger than `buf` fails with [`Error::BufferTooSmall`] (saying how many
    /// bytes it needs), one with more than [`MAX_FRAMES`](crate::MAX_FRAMES) frames with
    /// [`Error::TooManyFrames`]. Nothing is lost: the message stays first in line, for a
    /// call with a larger buffer, for [`recv_with`](Self::recv_with) (no copy, no limits),
    /// or for [`discard`](Self::discard). (A loop that ignores these errors and calls again
    /// with the same buffer gets the same error again.)
    ///
    /// Cancel-safe: a message is taken only when this completes with `Ok`.
    pub async fn recv<'b>(&mut self, buf: &'b mut [u8]) -> Result<Message<'b>, Error> {
        let len = buf.len();
        let mut buf = Some(buf);
        poll_fn(|cx| {
            let fits = self.shared.engine.borrow_mut().check_fits(len);
            match fits {
                Err(Error::WouldBlock) => {
                    self.shared.wakers.borrow_mut().recv.register(cx.waker());
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(e)),
                Ok(()) => match buf.take() {
                    Some(buf) => Poll::Ready(self.try_recv(buf)),
                    None => Poll::Pending,
                },
            }
        })
        .await
    }

    /// Receives now or fails with [`Error::WouldBlock`] (other errors as
    /// [`recv`](Self::recv): a message that does not fit stays queued).
    pub fn try_recv<'b>(&mut self, buf: &'b mut [u8]) -> Result<Message<'b>, Error> {
        let r = self.shared.engine.borrow_mut().try_recv(buf);
        self.shared.kick();
        r
    }

    /// Drops the next message without reading it (after [`Error::BufferTooSmall`] or
    /// [`Error::TooManyFrames`]: the one that did not fit). Returns whether there was one;
    /// never waits. REQ: the reply counts as received; REP: the request is taken and must
    /// be answered.
    pub fn discard(&mut self) -> Result<bool, Error> {
        let r = self.shared.engine.borrow_mut().discard();
        self.shared.kick();
        r
    }

    /// Receives the next message without copying: `f` sees it in the socket's queue.
    /// `f` runs with the socket borrowed: it must not call the socket.
    ///
    /// Cancel-safe: a message is taken only when this completes.
    pub async fn recv_with<R>(&mut self, f: impl FnOnce(&Received<'_>) -> R) -> Result<R, Error> {
        let mut f = Some(f);
        poll_fn(|cx| {
            let r = {
                let mut e = self.shared.engine.borrow_mut();
                e.try_recv_with(|m| f.take().map(|f| f(m)))
            };
            match r {
                Err(Error::WouldBlock) => {
                    self.shared.wakers.borrow_mut().recv.register(cx.waker());
                    Poll::Pending
                }
                Ok(Some(v)) => {
                    self.shared.kick();
                    Poll::Ready(Ok(v))
                }
                Ok(None) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            }
        })
        .await
    }

    /// SUB, XSUB: receive messages whose first frame starts with `topic` (empty: all).
    pub fn subscribe(&mut self, topic: &[u8]) -> Result<(), Error> {
        let r = self.shared.engine.borrow_mut().socket.subscribe(topic);
        self.shared.kick();
        r.map_err(Error::from)
    }

    /// SUB, XSUB: drop one use of `topic`.
    pub fn unsubscribe(&mut self, topic: &[u8]) -> Result<(), Error> {
        let r = self.shared.engine.borrow_mut().socket.unsubscribe(topic);
        self.shared.kick();
        r.map_err(Error::from)
    }
}
