//! The context: one I/O thread and the channel to it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::{Poll, Waker};
use zmtp_core::SocketType;

use crate::error::{Error, Result};
use crate::options::SocketOptions;
use crate::shared::Shared;
use crate::socket::Socket;
use crate::transport::Addr;

/// The waker's token; every other token names a listener or a connection.
pub(crate) const WAKER: mio::Token = mio::Token(usize::MAX);

/// What the application asks of the I/O thread.
pub(crate) enum Command {
    /// Build the socket (first bind or connect): allocate its memory.
    Open {
        id: u64,
        ty: SocketType,
        opts: Box<SocketOptions>,
        shared: Arc<Shared>,
    },
    /// Listen on `addr`; answer with the address bound (port 0 resolved).
    Bind {
        id: u64,
        addr: Addr,
        reply: mpsc::SyncSender<Result<Addr>>,
    },
    /// Stop listening on the endpoint bound as `addr` (or bound with the text `endpoint`)
    /// and close the connections accepted there.
    Unbind {
        id: u64,
        endpoint: String,
        addr: Option<Addr>,
        reply: mpsc::SyncSender<Result<()>>,
    },
    /// Drop the `connect` made with the text `endpoint`: its connection and reconnects.
    Disconnect {
        id: u64,
        endpoint: String,
        reply: mpsc::SyncSender<Result<()>>,
    },
    /// SUB, XSUB: subscribe to (`subscribe`) or drop one use of `topic`; answer if asked.
    Subscribe {
        id: u64,
        subscribe: bool,
        topic: Vec<u8>,
        reply: Option<mpsc::SyncSender<Result<()>>>,
    },
    /// Connect to the first of `addrs` that answers, and keep reconnecting. `endpoint` is
    /// the text given to `connect`, for `disconnect`.
    Connect {
        id: u64,
        endpoint: String,
        addrs: Vec<Addr>,
    },
    /// The application is done with the socket: deliver what is queued for up to `linger`
    /// (`None`: no limit), then free everything.
    Close { id: u64, linger: Option<Duration> },
    /// Every handle is gone: finish lingering sockets, then stop.
    Shutdown,
    /// The ZAP thread's answer to a socket's authentication request.
    ZapReply {
        id: u64,
        request: u64,
        reply: crate::zap::ZapReply,
    },
}

/// The part of a context that sockets share.
pub(crate) struct Inner {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    /// The I/O thread's idle spin (see `Shared`).
    spin: Arc<crate::shared::Spin>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The loop the I/O thread runs, and application threads in its place for a while
    /// (see `shared::Lead`).
    lp: Arc<crate::io::Loop>,
    next_id: AtomicU64,
    /// Allow-lists and the ZAP handler (shared with the I/O thread).
    pub(crate) auth: Arc<crate::zap::ContextAuth>,
}

impl Inner {
    /// Sends a command and wakes the I/O thread.
    pub(crate) fn command(&self, c: Command) -> Result<()> {
        self.commands.send(c).map_err(|_| Error::Terminated)?;
        self.waker.wake().map_err(Error::Io)?;
        // Stepped aside for an application thread: take the loop back now.
        self.spin.lead.want_io();
        Ok(())
    }

    /// Runs the loop on this thread if it is free (see `io::lead`).
    pub(crate) fn lead(
        &self,
        ready: impl Fn() -> bool,
        deadline: Option<Option<std::time::Instant>>,
    ) -> bool {
        crate::io::lead(&self.lp, &self.spin, ready, deadline)
    }

    pub(crate) fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    pub(crate) fn spin(&self) -> Arc<crate::shared::Spin> {
        Arc::clone(&self.spin)
    }

    /// For the ZAP thread's answers.
    pub(crate) fn command_sender(&self) -> Sender<Command> {
        self.commands.clone()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last context handle or socket is gone. The I/O thread holds no `Inner`, so this
        // never runs on it and the join cannot wait for itself.
        let _ = self.command(Command::Shutdown);
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            if t.join().is_err() {
                log::error!("zmtp-std I/O thread panicked");
            }
        }
    }
}

/// A ZeroMQ context: the I/O thread that runs every socket made from it.
///
/// Cheap to clone (all clones share the thread). The thread stops when the last clone and
/// the last socket are gone, after the sockets' linger: dropping the last handle blocks
/// until then, like libzmq's `zmq_ctx_term`.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    /// Starts a context and its I/O thread.
    ///
    /// Fails only if the operating system refuses a poller or a thread.
    pub fn new() -> Result<Context> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = mpsc::channel();
        let auth = Arc::new(crate::zap::ContextAuth::default());
        let io_auth = Arc::clone(&auth);
        let spin = Arc::new(crate::shared::Spin::default());
        let io_spin = Arc::clone(&spin);
        let lp = Arc::new(crate::io::new_loop(poll, rx, io_auth, Arc::clone(&spin)));
        let io_lp = Arc::clone(&lp);
        let thread = std::thread::Builder::new()
            .name("zmtp-io".into())
            .spawn(move || crate::io::run(io_lp, io_spin))?;
        Ok(Context {
            inner: Arc::new(Inner {
                commands: tx,
                waker,
                spin,
                thread: Mutex::new(Some(thread)),
                lp,
                next_id: AtomicU64::new(1),
                auth,
            }),
        })
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// How long the I/O thread keeps polling without sleeping after it has had work (default
    /// 200 µs; `Duration::ZERO`: never). May be changed at any time.
    ///
    /// A message the application sends, or a reply that arrives, within that time after
    /// the I/O thread's last work is taken at once, without waking a sleeping thread: on
    /// a loaded 2-vCPU machine this took the REQ/REP round trip from about 60 µs to 31–36
    /// µs at the median (see BENCHMARKS.md). The spin yields the CPU between polls, so
    /// threads sharing it still run first. The price is CPU time: an I/O thread with
    /// messages every few hundred microseconds never sleeps. An idle context never spins.
    /// Set it to zero for many contexts on few cores, or where power matters more than
    /// latency.
    ///
    /// The same time is the application's lease on the loop (see "Design" in the crate
    /// docs): after the I/O thread has handed a message to an application thread waiting
    /// in `recv`, it steps aside for this long, and that thread's next `send`/`recv` run
    /// the loop themselves (renewing the lease) instead of handing over to the I/O thread.
    /// Zero turns that off too.
    pub fn set_io_spin(&self, spin: Duration) {
        self.inner.spin.set_limit(spin);
    }

    /// A new socket of type `ty`, with default options.
    ///
    /// Every ZMTP socket type is supported: PAIR, REQ, REP, DEALER, ROUTER, PUSH, PULL,
    /// PUB, SUB, XPUB and XSUB. (The `Result` is kept for types a future core may add.)
    pub fn socket(&self, ty: SocketType) -> Result<Socket> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        Ok(Socket::new(Arc::clone(&self.inner), id, ty))
    }
}
