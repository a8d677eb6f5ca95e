//! zmtp-core wrapped in tokio: async ZeroMQ sockets in under 200 lines, without zmtp-std.
//!
//! The proof, for users with a runtime of their own, that the sans-IO core needs nothing from
//! zmtp-std: this crate's `src/` is 197 lines of code (non-blank, non-comment lines as
//! rustfmt leaves them: `lib.rs` 172, the `main.rs` demo 25; CI keeps it under 200), all safe
//! code, and its tests talk to real libzmq.
//!
//! A [`ZSocket`] is a handle to one tokio task that owns a zmtp-core [`Socket`] and its peers'
//! memory (plain `Vec`s: an `async fn` may borrow its own locals across `.await`, so no
//! `'static` memory, no leak, no `unsafe`). The task does what the core asks of every caller:
//! it moves bytes between the core and its `TcpStream`s (`try_read` into the core's receive
//! window, `try_write` of its output), drains the core's events, and sleeps in one `select!`
//! on socket readiness, the core's next deadline (heartbeats, handshake timeout) and the
//! application's calls, which reach it through channels ([`ZSocket::send`] and
//! [`ZSocket::recv`]: both may wait at once, from different tasks).
//!
//! Every socket type of the core works, with its pattern (REQ/REP envelopes, ROUTER routing
//! ids, round robin, fair queueing). A bound socket takes up to [`MAX_PEERS`] peers. A message
//! may be up to 256 KiB (a larger one closes the connection: the core's queues are this
//! crate's fixed `Vec`s); frames above 64 KiB (the session's receive buffer) stream in, but
//! zmtp-core closes the connection when one arrives while the receive queue is too full to
//! take it, so keep frames under 64 KiB when the application may lag. Not here, to stay small: reconnection (a connected socket ends with
//! its connection: [`Error::Closed`] with the core's reason), ipc://, PLAIN/CURVE, options
//! beyond [`SocketConfig`]. zmtp-std has them.
//!
//! ```
//! use zmtp_tokio_example::{SocketType, ZSocket};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), zmtp_tokio_example::Error> {
//! let router = ZSocket::bind("127.0.0.1:0", SocketType::Router).await.unwrap();
//! let addr = router.local_addr().unwrap();
//! let dealer = ZSocket::connect(addr, SocketType::Dealer).await.unwrap();
//! dealer.send([&b"hello"[..], b"", b"world"]).await?; // empty frames are frames too
//! let request = router.recv().await?; // [routing id, "hello", "", "world"]
//! assert_eq!(request[1..], [b"hello".to_vec(), vec![], b"world".to_vec()]);
//! router.send([request[0].clone(), b"hi".to_vec()]).await?;
//! assert_eq!(dealer.recv().await?, [b"hi".to_vec()]);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

use std::{collections::VecDeque, io, io::ErrorKind, net::SocketAddr, task::Poll, time::Duration};
use std::{future::pending, future::poll_fn, sync::Arc, sync::OnceLock};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::{sync::mpsc, sync::oneshot, time::sleep_until, time::Instant as Clock};
use zmtp_core::socket::{PeerHandle, PeerMemory, PeerSlot, Received, Socket, SocketEvent};
pub use zmtp_core::socket::{SocketConfig, SocketRecvError, SocketSendError};
pub use zmtp_core::{CloseReason, Config, SocketType};
use zmtp_core::{Instant, Role};

/// Most peers a bound socket has at once (a connected socket has its one).
pub const MAX_PEERS: usize = 16;
/// Memory per peer: session receive and transmit buffers (larger frames stream through), and
/// each message queue (a message larger than a queue closes the connection).
const BUF: usize = 64 * 1024;
const QUEUE: usize = 256 * 1024;
/// How long a dropped socket keeps writing what it was given.
const LINGER: Duration = Duration::from_secs(1);

/// A message: its frames in order.
pub type Multipart = Vec<Vec<u8>>;
type Reply<T> = oneshot::Sender<Result<T>>;
/// What the calls return.
pub type Result<T, E = Error> = std::result::Result<T, E>;
/// Socket options: the core's own (`'static` for the task; leak a computed identity).
type Cfg = SocketConfig<'static>;
type Calls = (mpsc::Receiver<(Multipart, Reply<()>)>, mpsc::Receiver<Reply<Multipart>>);
type Why = Arc<OnceLock<CloseReason>>;

/// Why a call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The pattern refused the message (REQ sending twice, ROUTER without a routing id...).
    Send(SocketSendError),
    /// The pattern cannot receive now (REQ before sending, PUSH).
    Recv(SocketRecvError),
    /// The socket's task has ended: a connected socket's connection closed (with why), after
    /// the messages that came before it were received.
    Closed(Option<CloseReason>),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Send(e) => write!(f, "cannot send: {e:?}"),
            Error::Recv(e) => write!(f, "cannot receive: {e:?}"),
            Error::Closed(Some(why)) => write!(f, "socket closed: {why}"),
            Error::Closed(None) => f.write_str("socket closed"),
        }
    }
}
impl std::error::Error for Error {}

/// An async ZeroMQ socket.
///
/// Clones share the socket. When the last one is dropped, the task writes out what it was
/// given (for up to a second, libzmq's `ZMQ_LINGER`) and closes the connections.
///
/// Cancelling a call (dropping its future, as `tokio::time::timeout` does) while it waits is
/// safe: a `send` not yet queued is not sent, a `recv` takes no message. Only a `recv`
/// cancelled in the instant its message is being handed over loses that message, as with
/// any reply channel: in a `select!` loop, prefer a task that owns the receiving.
#[derive(Clone, Debug)]
pub struct ZSocket {
    sends: mpsc::Sender<(Multipart, Reply<()>)>,
    recvs: mpsc::Sender<Reply<Multipart>>,
    why: Why,
    local: Option<SocketAddr>,
}

impl ZSocket {
    /// Connects a socket of type `ty` to a ZeroMQ peer at `addr` (`host:port`, as in `tcp://`).
    pub async fn connect(addr: impl ToSocketAddrs, ty: SocketType) -> io::Result<Self> {
        Self::connect_with(addr, SocketConfig::new(Config::new(ty))).await
    }
    /// [`connect`](Self::connect) with options (identity, heartbeats, high-water marks...).
    pub async fn connect_with(addr: impl ToSocketAddrs, cfg: Cfg) -> io::Result<Self> {
        Ok(Self::spawn(cfg, Some(TcpStream::connect(addr).await?), None))
    }
    /// Binds a socket of type `ty` to `addr`; peers connect to [`local_addr`](Self::local_addr).
    pub async fn bind(addr: impl ToSocketAddrs, ty: SocketType) -> io::Result<Self> {
        Self::bind_with(addr, SocketConfig::new(Config::new(ty))).await
    }
    /// [`bind`](Self::bind) with options.
    pub async fn bind_with(addr: impl ToSocketAddrs, cfg: Cfg) -> io::Result<Self> {
        Ok(Self::spawn(cfg, None, Some(TcpListener::bind(addr).await?)))
    }
    fn spawn(cfg: Cfg, conn: Option<TcpStream>, lis: Option<TcpListener>) -> Self {
        let ((sends, send_rx), (recvs, recv_rx)) = (mpsc::channel(1), mpsc::channel(1));
        let (why, local) = (Why::default(), lis.as_ref().and_then(|l| l.local_addr().ok()));
        tokio::spawn(run(cfg, conn, lis, (send_rx, recv_rx), Arc::clone(&why)));
        ZSocket { sends, recvs, why, local }
    }
    /// The bound address (with the port the system chose for port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }
    /// Queues a message for the pattern's next peer, waiting while none can take it (no peer
    /// yet, or every one at its high-water mark), like a blocking `zmq_send`.
    pub async fn send<F: Into<Vec<u8>>>(&self, frames: impl IntoIterator<Item = F>) -> Result<()> {
        let msg = frames.into_iter().map(Into::into).collect();
        self.call(&self.sends, |reply| (msg, reply)).await
    }
    /// The next message the pattern lets through (ROUTER: routing id first; REQ, REP: without
    /// the envelope), waiting for one.
    pub async fn recv(&self) -> Result<Multipart> {
        self.call(&self.recvs, |reply| reply).await
    }
    async fn call<T, C>(&self, to: &mpsc::Sender<C>, cmd: impl FnOnce(Reply<T>) -> C) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let closed = || Error::Closed(self.why.get().copied());
        to.send(cmd(reply)).await.map_err(|_| closed())?;
        answer.await.unwrap_or_else(|_| Err(closed()))
    }
}

/// The socket's task: all of its I/O, timers and calls.
async fn run(cfg: Cfg, conn: Option<TcpStream>, lis: Option<TcpListener>, calls: Calls, why: Why) {
    let (mut sends, mut recvs) = calls;
    let n = if lis.is_some() { MAX_PEERS } else { 1 };
    let mut mem: Vec<_> = (0..n).map(|_| [BUF, BUF, QUEUE, QUEUE].map(|n| vec![0; n])).collect();
    let mut slots: Vec<_> = (mem.iter_mut())
        .map(|[rx, tx, r, s]| PeerSlot::new(PeerMemory { rx, tx, recv_queue: r, send_queue: s }))
        .collect();
    let mut socket = Socket::new(cfg, &mut slots);
    let owned = |m: Received<'_>| m.frames().map(<[u8]>::to_vec).collect::<Multipart>();
    let epoch = Clock::now();
    let now = || Instant::from_micros(epoch.elapsed().as_micros() as u64);
    let (mut conns, mut inbox) = (Vec::<(PeerHandle, TcpStream)>::new(), VecDeque::new());
    let mut fresh = conn.map(|s| (s, Role::Connected));
    let mut send: Option<(Multipart, Reply<()>)> = None;
    let (mut recv, mut linger): (Option<Reply<Multipart>>, _) = (None, None);
    loop {
        // New peers, input and output, the events they caused, then the pending calls.
        // No free slot: the connection is refused (dropped).
        let added = fresh.take().and_then(|(s, r)| Some((socket.add_peer(r, now()).ok()?, s)));
        conns.extend(added.inspect(|(_, s)| drop(s.set_nodelay(true))));
        socket.handle_timeout(now());
        for (h, s) in &conns {
            pump(&mut socket, *h, s, now());
        }
        while let Some(event) = socket.poll_event() {
            if let SocketEvent::PeerClosed(h, reason) = event {
                let _ = why.set(reason);
                // What the peer sent before it went goes with its slot: take it out first.
                inbox.extend(std::iter::from_fn(|| socket.recv().ok().map(owned)));
                if let Some(i) = conns.iter().position(|c| c.0 == h) {
                    pump(&mut socket, h, &conns.swap_remove(i).1, now()); // our ERROR, best effort
                }
                socket.remove_peer(h);
            }
        }
        let orphan = conns.is_empty() && lis.is_none(); // no connection, and none to come
        if let Some((msg, reply)) = send.take().filter(|(_, r)| !r.is_closed()) {
            let res = socket.send(&msg.iter().map(Vec::as_slice).collect::<Vec<_>>());
            let err = |e| if orphan { Error::Closed(why.get().copied()) } else { Error::Send(e) };
            match res {
                Err(SocketSendError::WouldBlock) if !orphan => send = Some((msg, reply)), // no room
                res => drop(reply.send(res.map_err(err))),
            }
        }
        if let Some(reply) = recv.take().filter(|r| !r.is_closed()) {
            match inbox.pop_front().map(Ok).unwrap_or_else(|| socket.recv().map(owned)) {
                Err(SocketRecvError::WouldBlock) => recv = Some(reply),
                res => drop(reply.send(res.map_err(Error::Recv))),
            }
        }
        let flushed = conns.iter_mut().all(|(h, _)| socket.poll_transmit(*h).is_empty());
        // Lingering done, or a connected socket's connection gone and what came before received.
        if linger.is_some_and(|t| flushed || t <= Clock::now()) || (orphan && inbox.is_empty()) {
            return; // pending calls see their reply dropped: Error::Closed
        }
        // Every handle dropped: finish writing (for a while), then end.
        linger = linger.or(sends.is_closed().then(|| Clock::now() + LINGER));
        let takes = (linger.is_none() && send.is_none(), linger.is_none() && recv.is_none());
        let deadline = socket.poll_timeout().map(|t| epoch + Duration::from_micros(t.as_micros()));
        let wake = deadline.into_iter().chain(linger).min();
        // A socket we wait on is ready, or a caller gave up (its future was dropped).
        let ready = poll_fn(|cx| {
            let io = conns.iter().any(|(h, s)| {
                let (r, w) =
                    (!socket.recv_window(*h).is_empty(), !socket.poll_transmit(*h).is_empty());
                (r && s.poll_read_ready(cx).is_ready()) || (w && s.poll_write_ready(cx).is_ready())
            });
            let gone = send.as_mut().is_some_and(|(_, r)| r.poll_closed(cx).is_ready())
                || recv.as_mut().is_some_and(|r| r.poll_closed(cx).is_ready());
            (io || gone).then_some(()).map_or(Poll::Pending, Poll::Ready)
        });
        tokio::select! {
            m = sends.recv(), if takes.0 => send = m,
            r = recvs.recv(), if takes.1 => recv = r,
            a = async { match &lis { Some(l) => l.accept().await, None => pending().await } } => {
                fresh = a.ok().map(|(s, _)| (s, Role::Accepted));
            }
            _ = sleep_until(wake.unwrap_or(epoch)), if wake.is_some() => {}
            _ = ready => {}
        }
    }
}

/// Writes the peer's output until the kernel takes no more, then reads into its receive window
/// until the kernel has no more or the window is full (the core's back-pressure: the window
/// reopens when the application receives; a closed session has none).
fn pump(socket: &mut Socket<'_, '_>, h: PeerHandle, s: &TcpStream, now: Instant) {
    while let out @ [_, ..] = socket.poll_transmit(h) {
        match s.try_write(out) {
            Ok(n) => drop(socket.mark_transmitted(h, n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return socket.handle_eof(h),
        }
    }
    while let window @ [_, ..] = socket.recv_window(h) {
        match s.try_read(window) {
            Ok(n @ 1..) => drop(socket.commit_received(h, n, now)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            _ => return socket.handle_eof(h), // end of stream, or the connection failed
        }
    }
}
