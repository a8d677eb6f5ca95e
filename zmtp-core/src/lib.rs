//! ZeroMQ's wire protocol, ZMTP 3.1 (RFC 37), as an allocation-free, sans-IO state machine.
//!
//! `zmtp-core` does no I/O, reads no clock, draws no random numbers and never allocates: the
//! caller moves bytes between a transport and a [`Session`], passes the time in as an
//! [`Instant`], and lends the session its two buffers. The same code runs in firmware on a
//! Cortex-M and in desktop programs, and speaks byte for byte what libzmq speaks.
//!
//! # The caller's duty
//!
//! **After any input — bytes committed, end of stream, a timeout handled, a frame sent —
//! drain every `poll_*` until it has nothing left: [`Session::poll_event`] until `None`, then
//! write what [`Session::poll_transmit`] returns, then re-arm your timer from
//! [`Session::poll_timeout`].** The session does nothing on its own; whatever you do not poll
//! stays queued (PONGs, PINGs and ERRORs are only written when you ask for output).
//! Misuse (committing more than the receive window, marking more transmitted than was
//! pending) returns a [`UsageError`] and changes nothing.
//!
//! # A complete run loop over `std::net::TcpStream`
//!
//! A DEALER connects to a ROUTER (here another session on a thread, standing in for libzmq),
//! sends a two-frame message and reads the echo back.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use zmtp_core::{Buffers, Config, Event, Instant, Role, Session, SocketType};
//!
//! /// Drives one session: writes its output, reads input, hands each event to `on_event`
//! /// (which may send) until `on_event` says stop or the session closes.
//! fn run(
//!     stream: &mut TcpStream,
//!     session: &mut Session<'_>,
//!     mut on_event: impl FnMut(&Event<'_>, &mut Vec<Vec<u8>>) -> bool,
//! ) -> std::io::Result<()> {
//!     let start = std::time::Instant::now();
//!     let now = || Instant::from_micros(start.elapsed().as_micros() as u64);
//!     let mut outgoing: Vec<Vec<u8>> = Vec::new();
//!     loop {
//!         // 1. Drain events.
//!         let mut done = false;
//!         while let Some(ev) = session.poll_event() {
//!             done |= !on_event(&ev, &mut outgoing) || matches!(ev, Event::Closed(_));
//!         }
//!         for frame in outgoing.drain(..) {
//!             session.send_frame(&frame, false).expect("fits the buffer");
//!         }
//!         // 2. Drain output.
//!         loop {
//!             let out = session.poll_transmit();
//!             if out.is_empty() {
//!                 break;
//!             }
//!             let n = stream.write(out)?;
//!             session.mark_transmitted(n).expect("n <= pending");
//!         }
//!         if done {
//!             return Ok(());
//!         }
//!         // 3. Wait for input (a real loop would also wake at session.poll_timeout()).
//!         let n = stream.read(session.recv_window())?;
//!         if n == 0 {
//!             session.handle_eof();
//!         } else {
//!             session.commit_received(n, now()).expect("n <= window");
//!         }
//!         session.handle_timeout(now());
//!     }
//! }
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let server = std::thread::spawn(move || -> std::io::Result<()> {
//!     let (mut stream, _) = listener.accept()?;
//!     let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
//!     let cfg = Config::new(SocketType::Router);
//!     let buffers = Buffers { rx: &mut rx, tx: &mut tx };
//!     let mut s = Session::new(&cfg, Role::Accepted, buffers, Instant::ZERO).unwrap();
//!     let mut got = 0;
//!     run(&mut stream, &mut s, |ev, out| {
//!         if let Event::Frame { data, .. } = ev {
//!             out.push(data.to_vec()); // echo each frame back
//!             got += 1;
//!         }
//!         got < 2
//!     })
//! });
//!
//! let mut stream = TcpStream::connect(addr)?;
//! let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
//! let cfg = Config::new(SocketType::Dealer).with_identity(b"device-7");
//! let buffers = Buffers { rx: &mut rx, tx: &mut tx };
//! let mut s = Session::new(&cfg, Role::Connected, buffers, Instant::ZERO).unwrap();
//! let mut echoed = Vec::new();
//! run(&mut stream, &mut s, |ev, out| match ev {
//!     Event::HandshakeComplete(peer) => {
//!         assert_eq!(peer.socket_type, SocketType::Router);
//!         out.push(b"hello".to_vec());
//!         out.push(b"world".to_vec());
//!         true
//!     }
//!     Event::Frame { data, .. } => {
//!         echoed.push(data.to_vec());
//!         echoed.len() < 2
//!     }
//!     _ => true,
//! })?;
//! assert_eq!(echoed, [b"hello".to_vec(), b"world".to_vec()]);
//! server.join().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Layers
//!
//! Dependencies run one way: `wire` <- `mechanism` <- `session` <- `socket`.
//!
//! - [`wire`]: bytes to values and back, no state (greeting, frames, commands, metadata).
//! - [`mechanism`]: NULL and (feature `plain`) PLAIN, with authentication decided by the
//!   application ([`Event::Authenticate`]).
//! - [`Session`]: one connection: handshake, framing, heartbeats, limits.
//! - [`socket`]: a ZeroMQ socket: one routing pattern (REQ, REP, DEALER, ROUTER, PUSH, PULL,
//!   PAIR, ...) over many sessions held in caller-provided [`socket::PeerSlot`]s, with
//!   per-peer message queues and high-water marks, messages atomic end to end.
//!
//! # Memory
//!
//! Everything lives in memory the caller lends: a session needs a receive and a transmit
//! buffer (at least [`MIN_RX_BUFFER`] bytes to receive; the transmit buffer must hold the
//! greeting and our handshake, see [`Config::min_tx_buffer`]); a socket peer adds a receive
//! and a send queue. Frames larger than the receive buffer are delivered as chunks
//! ([`Event::FrameChunk`]), so a 1 KiB buffer can receive a 1 MiB message.
//!
//! Large bodies need not pass through that memory at all: with direct frames
//! ([`socket::stream`], [`Session::set_direct_threshold`]) the driver writes a frame's body
//! from its own buffer right after the header the core gives it (a vectored write) and reads
//! a received body straight into its own buffer, while the core keeps routing, limits and
//! message atomicity. The module's docs have a complete example.
//!
//! # What is enforced
//!
//! The rules of `PROTOCOL.md` (the project's reading of RFC 37 against libzmq's behaviour),
//! each with a test named after it: greetings of ZMTP 1.0/2.0 and other mechanisms are
//! refused, reserved frame flags and COMMAND+MORE close the connection, sizes are checked
//! against the limits before a body is read, PINGs are answered with their exact context, a
//! peer's TTL and our heartbeat timeout are enforced, and a READY from an incompatible socket
//! type is answered with ERROR.
//!
//! # Features
//!
//! - `defmt`: log through defmt and implement `defmt::Format` for the public types.
//! - `log`: log through the `log` facade. Exclusive with `defmt`.
//! - `plain`: the PLAIN mechanism (RFC 24), client and server.
//! - `curve`: the CURVE mechanism (RFC 25/26), client and server, with Z85 keys (RFC 32); see
//!   `mechanism::curve`. Still `no_std` and allocation-free; the caller supplies the
//!   randomness (`Session::new_curve`).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo
    )
)]

mod fmt;

pub mod error;
#[cfg(feature = "_fuzz")]
#[doc(hidden)]
pub mod fuzzing;
pub mod mechanism;
mod session;
pub mod socket;
mod time;
pub mod wire;

pub use error::{CloseReason, ConfigError, CurveError, ProtocolError, SendError, UsageError};
pub use mechanism::{AuthRequest, Security};
#[cfg(feature = "curve")]
pub use session::curve_max_frame_body;
pub use session::{
    Buffers, Chunk, Config, DirectBody, Event, PeerInfo, Role, Session, MIN_RX_BUFFER,
};
pub use time::Instant;
pub use wire::SocketType;
