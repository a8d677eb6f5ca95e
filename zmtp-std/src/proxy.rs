//! The built-in proxy: [`proxy`] (`zmq_proxy`) and [`proxy_steerable`]
//! (`zmq_proxy_steerable`), and [`Proxy`] for the knobs libzmq does not have.
//!
//! A proxy moves every message that arrives at the frontend to the backend, and every
//! message that arrives at the backend to the frontend, in the calling thread. With a
//! ROUTER frontend and a DEALER backend it is a shared request queue; XSUB and XPUB make a
//! forwarder (subscriptions travel up, messages down); PULL and PUSH a streamer.
//!
//! ```
//! use std::thread;
//! use std::time::Duration;
//! use zmtp_std::{proxy_steerable, Context, ProxyStats, SocketType};
//!
//! # fn main() -> Result<(), zmtp_std::Error> {
//! let ctx = Context::new()?;
//! let frontend = ctx.socket(SocketType::Pull)?;
//! let backend = ctx.socket(SocketType::Push)?;
//! let control = ctx.socket(SocketType::Rep)?;
//! let (front_ep, back_ep) = (frontend.bind("tcp://127.0.0.1:0")?, backend.bind("tcp://127.0.0.1:0")?);
//! let control_ep = control.bind("tcp://127.0.0.1:0")?;
//! let proxy = thread::spawn(move || proxy_steerable(&frontend, &backend, None, Some(&control)));
//!
//! let (producer, consumer) = (ctx.socket(SocketType::Push)?, ctx.socket(SocketType::Pull)?);
//! producer.connect(&front_ep)?;
//! consumer.connect(&back_ep)?;
//! producer.send_multipart(["job", "42"])?;
//! assert_eq!(consumer.recv_multipart_timeout(Duration::from_secs(5))?, ["job", "42"].map(|f| f.as_bytes().to_vec()));
//!
//! let steer = ctx.socket(SocketType::Req)?;
//! steer.connect(&control_ep)?;
//! steer.send("STATISTICS")?;
//! let stats = ProxyStats::from_frames(&steer.recv_multipart()?).expect("8 counters");
//! assert_eq!((stats.frontend_in_msgs, stats.frontend_in_bytes), (2, 5)); // two frames, 5 bytes
//! steer.send("TERMINATE")?;
//! steer.recv()?; // a REP control socket answers every command
//! assert_eq!(proxy.join().unwrap()?, stats);
//! # Ok(())
//! # }
//! ```
//!
//! What it does, as libzmq 4.3.5 does:
//! - A message is read from one side only when the other side has taken the previous one:
//!   a full destination (at its high-water mark, or with no peer for PUSH or DEALER) holds
//!   the source's messages in the source's queues, and TCP pushes back on its peers.
//! - Each message read is copied to the capture socket, if any, before it is forwarded.
//! - The control socket (PAIR or REP; any type that receives) takes one-frame commands:
//!   `PAUSE` (stop forwarding; messages wait in the queues), `RESUME`, `TERMINATE` (return
//!   the [`ProxyStats`]), `STATISTICS` (answered with [`ProxyStats::to_frames`]). A REP
//!   control socket gets an empty answer to every other command, so it can take the next
//!   one. An unknown command is ignored (libzmq 4.3.4 and older abort the process).
//!
//! Where it differs from libzmq, on purpose:
//! - The capture never holds the proxy up: a copy the capture socket has no room for is
//!   dropped (libzmq blocks the proxy on a full PUSH or DEALER capture).
//! - A message its destination refuses ([`Error::EmptyMessage`]: a one-frame message for a
//!   ROUTER; [`Error::HostUnreachable`]: an unknown routing id with `router_mandatory`;
//!   [`Error::MessageTooLarge`]) is dropped with a `log` warning, so one peer cannot stop
//!   the proxy for everyone (libzmq returns the error from `zmq_proxy`).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::poll::{poll, PollEvents};
use crate::socket::Socket;
use zmtp_core::SocketType;

/// Messages read from one side before the other side and the control socket get a turn
/// (libzmq's `proxy_burst_size` is 1000).
const BURST: usize = 256;

/// How long a control socket may take to accept an answer before it is dropped.
const CONTROL_SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// What went through a proxy, in libzmq's `STATISTICS` order. As libzmq 4.3.5 counts them,
/// the `_msgs` counters count frames (message parts: a three-frame message counts 3), and
/// the `_bytes` counters the bytes of those frames. Messages dropped by the proxy (see the
/// [module docs](mod@crate::proxy)) count as received but not sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ProxyStats {
    /// Frames received from the frontend.
    pub frontend_in_msgs: u64,
    /// Bytes received from the frontend.
    pub frontend_in_bytes: u64,
    /// Frames sent to the frontend.
    pub frontend_out_msgs: u64,
    /// Bytes sent to the frontend.
    pub frontend_out_bytes: u64,
    /// Frames received from the backend.
    pub backend_in_msgs: u64,
    /// Bytes received from the backend.
    pub backend_in_bytes: u64,
    /// Frames sent to the backend.
    pub backend_out_msgs: u64,
    /// Bytes sent to the backend.
    pub backend_out_bytes: u64,
}

impl ProxyStats {
    /// The eight counters in libzmq's order (frontend in, out; backend in, out; each as
    /// frames then bytes).
    pub fn to_array(&self) -> [u64; 8] {
        [
            self.frontend_in_msgs,
            self.frontend_in_bytes,
            self.frontend_out_msgs,
            self.frontend_out_bytes,
            self.backend_in_msgs,
            self.backend_in_bytes,
            self.backend_out_msgs,
            self.backend_out_bytes,
        ]
    }

    /// The answer to `STATISTICS`: the [eight counters](Self::to_array), each a frame of 8
    /// bytes in the host's byte order (libzmq copies a `uint64_t`; pyzmq reads them with
    /// `struct.unpack("=Q", frame)`).
    pub fn to_frames(&self) -> Vec<Vec<u8>> {
        self.to_array()
            .iter()
            .map(|v| v.to_ne_bytes().to_vec())
            .collect()
    }

    /// Reads a `STATISTICS` answer (from our proxy or libzmq's): `None` unless it is eight
    /// frames of 8 bytes.
    pub fn from_frames<F: AsRef<[u8]>>(frames: &[F]) -> Option<ProxyStats> {
        let mut v = [0u64; 8];
        if frames.len() != v.len() {
            return None;
        }
        for (slot, frame) in v.iter_mut().zip(frames) {
            *slot = u64::from_ne_bytes(frame.as_ref().try_into().ok()?);
        }
        let [fim, fib, fom, fob, bim, bib, bom, bob] = v;
        Some(ProxyStats {
            frontend_in_msgs: fim,
            frontend_in_bytes: fib,
            frontend_out_msgs: fom,
            frontend_out_bytes: fob,
            backend_in_msgs: bim,
            backend_in_bytes: bib,
            backend_out_msgs: bom,
            backend_out_bytes: bob,
        })
    }
}

/// Runs the proxy between `frontend` and `backend` in this thread, copying every message to
/// `capture` if given (`zmq_proxy`, pyzmq's `zmq.proxy(frontend, backend, capture)`).
/// It returns only with an error: [`Error::Terminated`] once a socket's context has gone.
/// See the [module docs](mod@crate::proxy) for what it does.
pub fn proxy(frontend: &Socket, backend: &Socket, capture: Option<&Socket>) -> Result<()> {
    Proxy {
        capture,
        ..Proxy::new(frontend, backend)
    }
    .run()
    .map(drop)
}

/// [`proxy`] steered by a `control` socket (`zmq_proxy_steerable`, pyzmq's
/// `zmq.proxy_steerable(frontend, backend, capture, control)`): `PAUSE`, `RESUME`,
/// `STATISTICS`, and `TERMINATE`, which makes it return the counters. Without a control
/// socket it is [`proxy`].
pub fn proxy_steerable(
    frontend: &Socket,
    backend: &Socket,
    capture: Option<&Socket>,
    control: Option<&Socket>,
) -> Result<ProxyStats> {
    Proxy {
        capture,
        control,
        ..Proxy::new(frontend, backend)
    }
    .run()
}

/// A proxy with options: [`proxy`] and [`proxy_steerable`] are `Proxy::new(f, b)` with a
/// [`capture`](Self::capture) and a [`control`](Self::control) socket.
/// [`stop_when`](Self::stop_when) adds a condition checked in the proxy's thread (a Ctrl-C
/// flag, a deadline), for programs that have no control socket to send `TERMINATE` on.
///
/// ```no_run
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::time::Duration;
/// use zmtp_std::{Context, Proxy, SocketType};
///
/// static STOP: AtomicBool = AtomicBool::new(false);
///
/// # fn main() -> Result<(), zmtp_std::Error> {
/// let ctx = Context::new()?;
/// let (xsub, xpub) = (ctx.socket(SocketType::XSub)?, ctx.socket(SocketType::XPub)?);
/// xsub.connect("tcp://upstream:5556")?;
/// xpub.bind("tcp://*:5557")?;
/// let stats = Proxy::new(&xsub, &xpub)
///     .stop_when(Duration::from_millis(100), || STOP.load(Ordering::Relaxed))
///     .run()?;
/// println!("forwarded {} frames", stats.backend_out_msgs);
/// # Ok(())
/// # }
/// ```
pub struct Proxy<'a> {
    frontend: &'a Socket,
    backend: &'a Socket,
    capture: Option<&'a Socket>,
    control: Option<&'a Socket>,
    stop: Option<(Duration, Box<dyn FnMut() -> bool + 'a>)>,
}

impl std::fmt::Debug for Proxy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("frontend", &self.frontend.socket_type())
            .field("backend", &self.backend.socket_type())
            .field("capture", &self.capture.map(Socket::socket_type))
            .field("control", &self.control.map(Socket::socket_type))
            .field("stop_every", &self.stop.as_ref().map(|s| s.0))
            .finish()
    }
}

/// One way through the proxy: `from` to `to`, and the message `to` has not taken yet.
struct Direction<'a> {
    from: &'a Socket,
    to: &'a Socket,
    /// Whether the socket types let anything flow this way (a PUSH frontend sends nothing
    /// back, a SUB backend takes nothing).
    open: bool,
    pending: Option<Vec<Vec<u8>>>,
}

fn can_recv(ty: SocketType) -> bool {
    !matches!(ty, SocketType::Push | SocketType::Pub)
}

fn can_send(ty: SocketType) -> bool {
    !matches!(ty, SocketType::Pull | SocketType::Sub)
}

fn count(msg: &[Vec<u8>]) -> (u64, u64) {
    let bytes = msg.iter().map(|f| f.len() as u64).sum();
    (msg.len() as u64, bytes)
}

/// Which counters a direction moves: (received from `from`, sent to `to`), each
/// (frames, bytes).
type Counters<'s> = ((&'s mut u64, &'s mut u64), (&'s mut u64, &'s mut u64));

impl<'a> Proxy<'a> {
    /// A proxy between `frontend` and `backend`, with no capture, control or stop
    /// condition.
    pub fn new(frontend: &'a Socket, backend: &'a Socket) -> Self {
        Proxy {
            frontend,
            backend,
            capture: None,
            control: None,
            stop: None,
        }
    }

    /// Copies every message read from either side to `capture` (PUB, PUSH, DEALER, PAIR,
    /// ...). A copy it has no room for is dropped.
    pub fn capture(mut self, capture: &'a Socket) -> Self {
        self.capture = Some(capture);
        self
    }

    /// Takes `PAUSE`, `RESUME`, `TERMINATE` and `STATISTICS` on `control` (PAIR or REP).
    pub fn control(mut self, control: &'a Socket) -> Self {
        self.control = Some(control);
        self
    }

    /// Checks `stop` at least every `every` (and after each batch of messages); once it
    /// returns true, [`run`](Self::run) returns the counters as after `TERMINATE`.
    pub fn stop_when(mut self, every: Duration, stop: impl FnMut() -> bool + 'a) -> Self {
        self.stop = Some((every, Box::new(stop)));
        self
    }

    /// Runs the proxy in this thread until `TERMINATE` on the control socket or the stop
    /// condition (`Ok` with the counters), or an error on one of the sockets (for example
    /// [`Error::Terminated`] once their context has gone).
    pub fn run(mut self) -> Result<ProxyStats> {
        let (frontend, backend) = (self.frontend, self.backend);
        // zmq_proxy(s, s, ...): one socket echoing to itself, one direction.
        let same = std::ptr::eq(frontend, backend);
        let (ft, bt) = (frontend.socket_type(), backend.socket_type());
        let mut ways = [
            Direction {
                from: frontend,
                to: backend,
                open: can_recv(ft) && can_send(bt),
                pending: None,
            },
            Direction {
                from: backend,
                to: frontend,
                open: !same && can_recv(bt) && can_send(ft),
                pending: None,
            },
        ];
        let mut stats = ProxyStats::default();
        let mut paused = false;
        loop {
            if let Some((_, stop)) = self.stop.as_mut() {
                if stop() {
                    return Ok(stats);
                }
            }
            // Wait for a message to read, or for room for the one the destination refused.
            let (mut front_ev, mut back_ev) = (PollEvents::empty(), PollEvents::empty());
            if !paused {
                for (i, way) in ways.iter().enumerate().filter(|(_, w)| w.open) {
                    let (ev, on_front) = match way.pending {
                        Some(_) => (PollEvents::OUT, i == 1 || same),
                        None => (PollEvents::IN, i == 0),
                    };
                    if on_front {
                        front_ev |= ev;
                    } else {
                        back_ev |= ev;
                    }
                }
            }
            let mut items = Vec::with_capacity(3);
            items.push(frontend.as_poll_item(front_ev));
            if !same {
                items.push(backend.as_poll_item(back_ev));
            }
            if let Some(c) = self.control {
                items.push(c.as_poll_item(PollEvents::IN));
            }
            poll(&mut items, self.stop.as_ref().map(|s| s.0))?;
            drop(items);

            if let Some(c) = self.control {
                while let Some(cmd) = recv_now(c)? {
                    match Command::parse(&cmd) {
                        Command::Pause => paused = true,
                        Command::Resume => paused = false,
                        Command::Terminate => {
                            answer_rep(c)?;
                            return Ok(stats);
                        }
                        Command::Statistics => {
                            if can_send(c.socket_type()) {
                                reply(c, stats.to_frames())?;
                            }
                            continue;
                        }
                        Command::Unknown => log::warn!(
                            "proxy: unknown control command {:?} ignored",
                            String::from_utf8_lossy(cmd.first().map_or(&[][..], |f| f))
                        ),
                    }
                    answer_rep(c)?;
                }
            }
            if paused {
                continue;
            }
            let [forth, back] = &mut ways;
            if forth.open {
                let counters = (
                    (&mut stats.frontend_in_msgs, &mut stats.frontend_in_bytes),
                    (&mut stats.backend_out_msgs, &mut stats.backend_out_bytes),
                );
                forward(forth, self.capture, counters)?;
            }
            if back.open {
                let counters = (
                    (&mut stats.backend_in_msgs, &mut stats.backend_in_bytes),
                    (&mut stats.frontend_out_msgs, &mut stats.frontend_out_bytes),
                );
                forward(back, self.capture, counters)?;
            }
        }
    }
}

/// A control command (one frame).
enum Command {
    Pause,
    Resume,
    Terminate,
    Statistics,
    Unknown,
}

impl Command {
    fn parse(msg: &[Vec<u8>]) -> Command {
        match msg {
            [one] => match one.as_slice() {
                b"PAUSE" => Command::Pause,
                b"RESUME" => Command::Resume,
                b"TERMINATE" => Command::Terminate,
                b"STATISTICS" => Command::Statistics,
                _ => Command::Unknown,
            },
            _ => Command::Unknown,
        }
    }
}

/// A whole message if one is there, without waiting.
fn recv_now(s: &Socket) -> Result<Option<Vec<Vec<u8>>>> {
    match s.try_recv_multipart() {
        Ok(m) => Ok(Some(m)),
        Err(Error::WouldBlock) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The empty answer a REP control socket owes for a command other than `STATISTICS`.
fn answer_rep(c: &Socket) -> Result<()> {
    if c.socket_type() == SocketType::Rep {
        reply(c, vec![Vec::new()])?;
    }
    Ok(())
}

/// Answers on the control socket; an answer it cannot take within a second is dropped (a
/// PAIR control socket whose peer has gone must not stop the proxy).
fn reply(c: &Socket, msg: Vec<Vec<u8>>) -> Result<()> {
    match c.send_multipart_timeout(msg, CONTROL_SEND_TIMEOUT) {
        Ok(()) => Ok(()),
        Err(Error::Timeout | Error::WouldBlock) => {
            log::warn!("proxy: the control socket did not take an answer; dropped");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Moves up to [`BURST`] messages one way: first the one the destination refused last
/// time, then new ones, each copied to the capture. Stops at the first message the
/// destination has no room for, and keeps it.
fn forward(way: &mut Direction<'_>, capture: Option<&Socket>, c: Counters<'_>) -> Result<()> {
    let ((in_msgs, in_bytes), (out_msgs, out_bytes)) = c;
    for _ in 0..BURST {
        let msg = match way.pending.take() {
            Some(m) => m,
            None => {
                let Some(m) = recv_now(way.from)? else {
                    return Ok(());
                };
                let (frames, bytes) = count(&m);
                *in_msgs += frames;
                *in_bytes += bytes;
                if let Some(cap) = capture {
                    match cap.try_send_multipart(&m) {
                        Ok(()) | Err(Error::WouldBlock) => {}
                        Err(e) => return Err(e),
                    }
                }
                m
            }
        };
        match way.to.try_send_multipart(&msg) {
            Ok(()) => {
                let (frames, bytes) = count(&msg);
                *out_msgs += frames;
                *out_bytes += bytes;
            }
            Err(Error::WouldBlock) => {
                way.pending = Some(msg);
                return Ok(());
            }
            Err(e @ (Error::EmptyMessage | Error::HostUnreachable | Error::MessageTooLarge)) => {
                log::warn!(
                    "proxy: a {} did not take a message of {} frames ({e}); dropped",
                    way.to.socket_type(),
                    msg.len()
                );
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_frames_round_trip() {
        let s = ProxyStats {
            frontend_in_msgs: 1,
            frontend_in_bytes: 2,
            frontend_out_msgs: 3,
            frontend_out_bytes: 4,
            backend_in_msgs: 5,
            backend_in_bytes: 6,
            backend_out_msgs: 7,
            backend_out_bytes: u64::MAX,
        };
        let frames = s.to_frames();
        assert_eq!(frames.len(), 8);
        assert!(frames.iter().all(|f| f.len() == 8));
        assert_eq!(ProxyStats::from_frames(&frames), Some(s));
        assert_eq!(ProxyStats::from_frames(&frames[..7]), None);
        let mut short = frames.clone();
        short[3].pop();
        assert_eq!(ProxyStats::from_frames(&short), None);
    }

    #[test]
    fn commands_are_one_exact_frame() {
        let parse = |m: &[&[u8]]| Command::parse(&m.iter().map(|f| f.to_vec()).collect::<Vec<_>>());
        assert!(matches!(parse(&[b"PAUSE"]), Command::Pause));
        assert!(matches!(parse(&[b"RESUME"]), Command::Resume));
        assert!(matches!(parse(&[b"TERMINATE"]), Command::Terminate));
        assert!(matches!(parse(&[b"STATISTICS"]), Command::Statistics));
        assert!(matches!(parse(&[b"pause"]), Command::Unknown));
        assert!(matches!(parse(&[b"PAUSE", b""]), Command::Unknown));
        assert!(matches!(parse(&[]), Command::Unknown));
    }
}
