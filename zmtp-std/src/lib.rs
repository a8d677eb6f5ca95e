//! ZeroMQ sockets for desktop programs: [`zmtp-core`](zmtp_core)'s ZMTP 3.1 state machine
//! driven over TCP or Unix domain sockets by a background I/O thread, behind an API shaped like libzmq's and pyzmq's.
//! It speaks byte for byte what libzmq speaks, and is tested against it.
//!
//! ```
//! use std::thread;
//! use zmtp_std::{Context, SocketType};
//!
//! # fn main() -> Result<(), zmtp_std::Error> {
//! let ctx = Context::new()?;
//!
//! // A REP server on a port the system picks.
//! let server = ctx.socket(SocketType::Rep)?;
//! let endpoint = server.bind("tcp://127.0.0.1:0")?; // e.g. "tcp://127.0.0.1:37519"
//! let worker = thread::spawn(move || -> Result<(), zmtp_std::Error> {
//!     for _ in 0..3 {
//!         let request = server.recv_multipart()?;
//!         let mut reply = b"re: ".to_vec();
//!         reply.extend_from_slice(&request[0]);
//!         server.send(reply)?;
//!     }
//!     Ok(())
//! });
//!
//! // A REQ client. `connect` returns at once; the connection comes up in the background.
//! let client = ctx.socket(SocketType::Req)?;
//! client.connect(&endpoint)?;
//! for name in ["ann", "bob", "cy"] {
//!     client.send(name)?;
//!     let reply = client.recv()?;
//!     assert_eq!(reply, format!("re: {name}").into_bytes());
//! }
//! worker.join().unwrap()?;
//!
//! // Multipart messages, non-blocking and timed calls:
//! let pull = ctx.socket(SocketType::Pull)?;
//! let push = ctx.socket(SocketType::Push)?;
//! push.connect(&pull.bind("tcp://127.0.0.1:0")?)?;
//! push.send_multipart([&b"key"[..], b"", b"value"])?;
//! let msg = pull.recv_multipart_timeout(std::time::Duration::from_secs(5))?;
//! assert_eq!(msg, [b"key".to_vec(), vec![], b"value".to_vec()]);
//! assert!(matches!(pull.try_recv_multipart(), Err(zmtp_std::Error::WouldBlock)));
//! # Ok(())
//! # }
//! ```
//!
//! Every ZMTP socket type is supported: PAIR, REQ, REP, DEALER, ROUTER, PUSH, PULL, and
//! publish-subscribe's PUB, SUB, XPUB and XSUB:
//!
//! ```
//! use std::time::Duration;
//! use zmtp_std::{Context, SocketType};
//!
//! # fn main() -> Result<(), zmtp_std::Error> {
//! let ctx = Context::new()?;
//! let publisher = ctx.socket(SocketType::Pub)?;
//! let subscriber = ctx.socket(SocketType::Sub)?;
//! subscriber.subscribe("weather.")?; // any time, before or after connect
//! subscriber.connect(&publisher.bind("tcp://127.0.0.1:0")?)?;
//! // A subscription takes a moment to reach the publisher, and what is published before
//! // that is lost to this subscriber (the "slow joiner"): publish until it arrives.
//! let msg = loop {
//!     publisher.send_multipart(["sports.", "0:0"])?; // filtered out by the publisher
//!     publisher.send_multipart(["weather.", "sunny"])?;
//!     if let Ok(m) = subscriber.recv_multipart_timeout(Duration::from_millis(10)) {
//!         break m;
//!     }
//! };
//! assert_eq!(msg, [b"weather.".to_vec(), b"sunny".to_vec()]);
//! # Ok(())
//! # }
//! ```
//!
//! # From pyzmq
//!
//! | pyzmq | zmtp-std |
//! | --- | --- |
//! | `ctx = zmq.Context()` | `let ctx = Context::new()?;` |
//! | `s = ctx.socket(zmq.DEALER)` | `let s = ctx.socket(SocketType::Dealer)?;` |
//! | `s.bind("tcp://*:5555")` | `s.bind("tcp://*:5555")?;` (returns the endpoint bound) |
//! | `s.bind_to_random_port("tcp://127.0.0.1")` | `s.bind("tcp://127.0.0.1:0")?` |
//! | `s.getsockopt(zmq.LAST_ENDPOINT)` | `s.last_endpoint()` |
//! | `s.connect("tcp://host:5555")` | `s.connect("tcp://host:5555")?;` |
//! | `s.bind("ipc:///tmp/feed")`, `s.connect(..)` | the same (Unix domain sockets; on Unix systems) |
//! | `s.unbind(ep)` / `s.disconnect(ep)` | `s.unbind(&ep)?;` / `s.disconnect(&ep)?;` ([`Error::EndpointNotFound`] for `ENOENT`) |
//! | `s.send(b"x")` | `s.send(b"x")?;` |
//! | `s.send_multipart([a, b])` | `s.send_multipart([a, b])?;` |
//! | `s.send(b"x", zmq.NOBLOCK)` | `s.try_send(b"x")` → `Err(Error::WouldBlock)` |
//! | `s.recv()` / `s.getsockopt(zmq.RCVMORE)` | `s.recv()?` / `s.has_more()` |
//! | `s.recv_multipart()` | `s.recv_multipart()?` |
//! | `s.recv_multipart(zmq.NOBLOCK)` | `s.try_recv_multipart()` |
//! | `s.recv_into(buf)` (a reused buffer) | `s.recv_into(&mut buf)?` (a reused `Vec<u8>`, grown, never truncated) |
//! | `s.recv_multipart(copy=False)` in a loop | `s.recv_multipart_into(&mut frames)?` (reuses the frames' allocations) |
//! | `s.RCVTIMEO = 500; s.recv_multipart()` | `s.recv_multipart_timeout(Duration::from_millis(500))` → `Err(Error::Timeout)` |
//! | `s.setsockopt(zmq.ROUTING_ID, b"id")` | `s.set_routing_id(b"id")?;` |
//! | `s.SNDHWM = n` / `s.RCVHWM = n` | `s.set_send_hwm(n)?;` / `s.set_recv_hwm(n)?;` |
//! | `s.LINGER = 0` | `s.set_linger(Some(Duration::ZERO));` |
//! | `s.RECONNECT_IVL`, `RECONNECT_IVL_MAX` | `set_reconnect_interval`, `set_reconnect_interval_max` |
//! | `s.HANDSHAKE_IVL` | `set_handshake_timeout` |
//! | `s.HEARTBEAT_IVL`, `_TIMEOUT`, `_TTL` | `set_heartbeat_interval`, `_timeout`, `_ttl` |
//! | `s.MAXMSGSIZE` | `set_max_message_size` |
//! | `s.IMMEDIATE = 1` | `set_immediate(true)` |
//! | `s.TCP_KEEPALIVE`, `_IDLE`, `_INTVL`, `_CNT` | `set_tcp_keepalive(Some(true))`, `set_tcp_keepalive_idle`, `_interval`, `_count` |
//! | `s.ROUTER_MANDATORY`, `ROUTER_HANDOVER` | `set_router_mandatory`, `set_router_handover` |
//! | `s.REQ_RELAXED`, `REQ_CORRELATE` | `set_req_relaxed`, `set_req_correlate` |
//! | `s.setsockopt(zmq.SUBSCRIBE, b"t")` / `s.subscribe(b"t")` | `s.subscribe(b"t")?;` (SUB, XSUB; any time) |
//! | `s.setsockopt(zmq.UNSUBSCRIBE, b"t")` / `s.unsubscribe(b"t")` | `s.unsubscribe(b"t")?;` |
//! | XSUB `s.send(b"\x01t")` / XPUB `s.recv()` → `b"\x01t"` | the same: `send`, `recv` |
//! | `s.XPUB_VERBOSE`, `XPUB_VERBOSER` | `set_xpub_verbose`, `set_xpub_verboser` |
//! | `poller = zmq.Poller(); poller.register(s, zmq.POLLIN)` | `let mut items = [s.as_poll_item(PollEvents::IN)];` |
//! | `poller.poll(timeout_ms)` / `zmq_poll(items, n, timeout)` | [`poll(&mut items, Some(timeout))?`](poll) (`None`: forever) → number ready |
//! | `dict(poller.poll())[s] & zmq.POLLIN`, `POLLOUT` | `items[0].is_readable()`, `is_writable()`, `revents()` |
//! | `zmq.proxy(frontend, backend, capture)` / `zmq.proxy_steerable(f, b, capture, control)` | [`proxy(&f, &b, Some(&capture))?`](proxy()) / [`proxy_steerable(&f, &b, None, Some(&control))?`](proxy_steerable) → [`ProxyStats`] on `TERMINATE` |
//! | `s.get_monitor_socket()` / `zmq_socket_monitor` | `let events = s.monitor()?;` (a channel of typed [`MonitorEvent`]s) |
//! | `s.close(linger=0)` | `s.set_linger(Some(Duration::ZERO)); s.close();` (or drop) |
//! | `ctx.term()` | drop the last `Context` clone and socket |
//! | `zmq.Again`, `zmq.ZMQError(EFSM)`, `EHOSTUNREACH` | [`Error::WouldBlock`]/[`Error::Timeout`], [`Error::State`], [`Error::HostUnreachable`] |
//!
//! Durations are [`Duration`](std::time::Duration)s, and "off" or "no limit" is `None`
//! where libzmq uses `-1` or `0`. Options are fixed once a socket binds or connects
//! (except linger): set them first. Subscriptions are not options: `subscribe` and
//! `unsubscribe` work at any time.
//!
//! # Security: PLAIN and CURVE
//!
//! The options are libzmq's. A CURVE server needs its key pair; a client needs its own and
//! the server's public key. Keys are 32 bytes or 40 Z85 characters;
//! [`curve_keypair`] makes a pair from the operating system's RNG. Secrets are wiped from
//! memory when the socket is closed and never shown by `Debug`.
//!
//! ```
//! use zmtp_std::{Context, SocketType};
//!
//! # fn main() -> Result<(), zmtp_std::Error> {
//! let ctx = Context::new()?;
//! let (server_public, server_secret) = zmtp_std::curve_keypair()?;
//! let (client_public, client_secret) = zmtp_std::curve_keypair()?;
//!
//! let server = ctx.socket(SocketType::Rep)?;
//! server.set_curve_server(true)?;
//! server.set_curve_secretkey(&*server_secret)?;
//! server.allow_curve_key(&client_public)?; // without a list or ZAP handler: any client key
//! let endpoint = server.bind("tcp://127.0.0.1:0")?;
//!
//! let client = ctx.socket(SocketType::Req)?;
//! client.set_curve_serverkey(&server_public)?;
//! client.set_curve_secretkey(&*client_secret)?;
//! client.connect(&endpoint)?;
//! client.send("hello")?;
//! assert_eq!(server.recv()?, b"hello");
//!
//! // PLAIN, with a ZAP handler (RFC 27) deciding for every server socket of the context.
//! ctx.set_zap_handler(|req: &zmtp_std::zap::ZapRequest| match &req.credentials {
//!     zmtp_std::zap::Credentials::Plain { username, password }
//!         if username == b"admin" && password.expose() == b"secret" =>
//!     {
//!         zmtp_std::zap::ZapReply::accept("admin")
//!     }
//!     _ => zmtp_std::zap::ZapReply::deny("who are you?"),
//! })?;
//! let plain_server = ctx.socket(SocketType::Pull)?;
//! plain_server.set_plain_server(true)?;
//! let endpoint = plain_server.bind("tcp://127.0.0.1:0")?;
//! let plain_client = ctx.socket(SocketType::Push)?;
//! plain_client.set_plain_username("admin")?;
//! plain_client.set_plain_password("secret")?;
//! plain_client.connect(&endpoint)?;
//! plain_client.send("in")?;
//! assert_eq!(plain_server.recv()?, b"in");
//! # Ok(())
//! # }
//! ```
//!
//! Who a server lets in (allow-lists, a ZAP handler function or socket, or everyone as
//! libzmq without ZAP), and how that differs from libzmq's `inproc://zeromq.zap.01`, is in
//! [`zap`]. Refused and failed security handshakes are reported by
//! [`Socket::auth_failures`]; a client the server refused does not reconnect. A socket
//! uses one mechanism for all its connections: a peer with another one is disconnected (no
//! downgrade).
//!
//! | pyzmq | zmtp-std |
//! | --- | --- |
//! | `public, secret = zmq.curve_keypair()` | `let (public, secret) = zmtp_std::curve_keypair()?;` |
//! | `zmq.curve_public(secret)` | `zmtp_std::curve_public(&secret)?` |
//! | `s.curve_server = True` | `s.set_curve_server(true)?;` |
//! | `s.curve_secretkey = secret` / `s.curve_publickey = public` | `s.set_curve_secretkey(&secret)?;` / `s.set_curve_publickey(&public)?;` |
//! | `s.curve_serverkey = server_public` | `s.set_curve_serverkey(&server_public)?;` |
//! | `s.plain_server = True` | `s.set_plain_server(true)?;` |
//! | `s.plain_username = b"u"; s.plain_password = b"p"` | `s.set_plain_username("u")?; s.set_plain_password("p")?;` |
//! | `s.zap_domain = b"global"` | `s.set_zap_domain("global")?;` |
//! | `s.getsockopt(zmq.MECHANISM)` | `s.mechanism()` |
//! | `ThreadAuthenticator(ctx).allow(...)`, `configure_plain`, `configure_curve` | `s.allow_plain(u, p)`, `s.allow_curve_key(k)?` (or on the `Context`) |
//! | a REP bound at `inproc://zeromq.zap.01` | `ctx.set_zap_handler(f)?` or `ctx.set_zap_endpoint("tcp://...")?` |
//! | monitor `EVENT_HANDSHAKE_FAILED_AUTH` / `_PROTOCOL` | `s.auth_failures()` |
//!
//! # Defaults
//!
//! | option | default | libzmq |
//! | --- | --- | --- |
//! | send / receive high-water mark | 1000 messages | same |
//! | linger | 30 s | forever (-1) |
//! | reconnect interval | 100 ms, no backoff (`reconnect_interval_max` off) | same |
//! | handshake timeout | 30 s | same |
//! | heartbeats | off (we still answer PINGs) | same |
//! | largest message received | [`queue_size`](SocketOptions::queue_size) (1 MiB + 64 KiB) | unlimited |
//! | ROUTER mandatory / handover, REQ relaxed / correlate | off | same |
//! | connections per socket ([`max_peers`](SocketOptions::max_peers)) | 64 | unlimited |
//! | buffers per connection | 64 KiB receive + 64 KiB transmit | 8 KiB batches |
//! | subscriptions ([`subscription_nodes`](SocketOptions::subscription_nodes)) | 16384 tree nodes (≥ 8191 topics) | unlimited |
//! | XPUB verbose / verboser | off | same |
//! | immediate (queue only for completed connections) | off | same |
//! | TCP keepalive (and its idle, interval, count) | system default (`None`) | same (-1) |
//!
//! A finite linger keeps a program whose peer has gone from hanging at exit; set `None` for
//! libzmq's behaviour.
//!
//! # Design
//!
//! A [`Context`] owns one I/O thread running a [mio](https://docs.rs/mio) poll loop (which
//! application threads run in its place for a while, see below). That loop owns every
//! socket: the zmtp-core [`Socket`](zmtp_core::socket::Socket), its
//! memory, its listeners and streams (TCP or Unix domain). The application's [`Socket`] is a handle that
//! talks to it:
//!
//! ```text
//!  application threads                         I/O thread (mio::Poll)
//!  ───────────────────                         ──────────────────────
//!  bind/connect/close ── command channel ──►   listeners, connects, reconnect timers
//!  send_multipart ────── outbox (bounded) ──►  zmtp-core Socket::send ─► TCP streams
//!  recv_multipart ◄───── inbox (bounded) ────  zmtp-core Socket::recv ◄─ TCP streams
//!        └─────────────── mio::Waker ────────► wakes the poll loop
//! ```
//!
//! The loop follows zmtp-core's duty: after any input (bytes read, a timer, a message from
//! the application) it drains every `poll_*`: events, received messages, output. It sets
//! its poll timeout from the core's `poll_timeout` (heartbeats, handshake limits), the
//! reconnect timers and linger deadlines. Streams are registered for both readiness kinds
//! once (edge-triggered) and read or written until `WouldBlock`; listeners accept until
//! `WouldBlock`.
//!
//! Messages cross between the application and the I/O thread in batches. Each queue is
//! one buffer of frames back to back (frames of 8 KiB and more keep their own allocation
//! and move without a copy), and the consumer swaps the whole queue for its own emptied
//! buffer under one lock: the I/O thread takes every queued message at once and gives
//! them to its core, the application takes every received message at once and reads
//! them one by one without locking the queue again. So a stream of small messages costs
//! no allocation per message on the sending side (and none on the receiving side with
//! [`Socket::recv_into`]; one with [`Socket::recv`]: the `Vec` it returns), and a lock and
//! a wake-up per batch. The application
//! wakes the I/O thread (a [`mio::Waker`] write) only when it has looked at the outbox
//! since the last wake-up, and the I/O thread wakes a blocked application only when one
//! waits.
//!
//! Large frames skip zmtp-core's buffers and queues (its direct frames,
//! `zmtp_core::socket::stream`) on NULL and PLAIN PUSH, PULL, DEALER, ROUTER and PAIR
//! sockets: a frame of 32 KiB or more is written from the message's `Vec` by one vectored
//! write together with its header, and a received frame of 8 KiB or more is read from the
//! stream straight into the `Vec` that [`Socket::recv`] returns, allocated as its bytes
//! come (at most 4 MiB ahead) once its header has passed the message size limit. A 64 KiB
//! message then costs one pass over its body on each side instead of three and two.
//! Each socket keeps up to 4 MiB of such bodies for reuse (each of 8 KiB to 1 MiB): the
//! allocation a long frame replaces in [`Socket::recv_into`]'s buffer becomes the next
//! body read, a written body the next long frame `send` copies. A stream of long messages
//! then makes no allocation per message on the receiving side with `recv_into` (nor
//! zeroing: a reused body already as long as the next is read into as it is, and only the
//! bytes read are handed on), and few on the sending side.
//!
//! After a turn with work the I/O thread keeps polling without sleeping for a short while
//! ([`Context::set_io_spin`], 200 µs by default), yielding the CPU between polls: a
//! message sent, or a reply arriving, within that time is taken without a system call and
//! a thread wake-up. An idle context does not spin.
//!
//! **Application threads run the loop while the I/O thread steps aside.** The loop's state
//! (every socket's core, streams, listeners) sits behind one mutex; the I/O thread holds
//! it while it runs. When it hands a message to an application thread blocked in `recv`,
//! it releases the loop and parks for the spin time (the lease). Until the lease runs out,
//! that application's calls run the loop themselves if it is free: [`Socket::send`] does
//! one turn (its message is written to the TCP stream before `send` returns), and a
//! blocking [`Socket::recv`] with an empty inbox runs turns, sleeping in `epoll_wait`
//! itself, until its message is in: the kernel then wakes the application thread directly,
//! as a blocking read on a plain TCP socket would, instead of waking the I/O thread, which
//! would wake the application (two hand-offs per message on each side). Each call renews
//! the lease. When it runs out (the application computes, or waits on something else) the
//! I/O thread takes the loop back, so heartbeats, accepts and reconnects go on while the
//! application does not call in (tests: `app_led.rs`). It also takes it back at once for
//! a command (bind, connect, close), for a wake-up nobody else would see, and when the
//! leaving application thread sees other threads blocked on the context's sockets or in
//! [`poll`]; a thread that finds the loop taken waits for its message as before. A
//! stream of requests and replies thus runs with the I/O thread parked; a PUSH that only
//! sends never waits in `recv` and keeps the I/O thread working alongside it.
//!
//! Measured (`zmtp-bench`, separate processes over loopback TCP, 2 vCPUs shared with other
//! work, BENCHMARKS.md): a REQ/REP round trip takes 24–27 µs at the median (1 B and 1
//! KiB) in most runs, up to 46 µs in some, with application threads running the loop,
//! against 40–60 µs in the same windows when only the I/O thread does (libzmq: 63–107 µs;
//! raw blocking TCP: 17–30 µs); on the latest main 27–29 µs in four full runs of five, about
//! 8 µs above raw TCP. PUSH → PULL moves 64-byte messages at 2.5–3.0x libzmq's rate, 1 KiB
//! messages at 3.6–3.7x and 64 KiB ones at 2.7–2.8 GB/s (full runs on a quiet machine;
//! single runs vary 2x under load). Callgrind: a 64-byte message costs about 405
//! instructions on the receiving side (both threads) with [`Socket::recv_into`] on a PULL
//! (one-frame messages go from the connection's buffer into the inbox in one copy), 885 on
//! the sending side.

//! Why a thread, and not the alternatives:
//!
//! - *Only I/O inside the application's calls* (the socket does its reads and writes when
//!   you call `send` or `recv`): simplest, but nothing happens while the application
//!   computes. PINGs go unanswered and a libzmq peer with `ZMQ_HEARTBEAT_TIMEOUT` drops
//!   us; handshakes, accepts and reconnects stall. libzmq has the same answer: its own I/O
//!   threads. The thread's cost is the hand-off: raw blocking TCP does a round trip in
//!   about 17 µs on the benchmark machine, where two sleeping threads per process took
//!   about 60 µs, 31–54 µs with the spin; hence the lease above, which does the I/O in
//!   the application's calls while they come often and leaves it to the thread
//!   otherwise (24–27 µs in most runs).
//! - *An async runtime* (tokio): imposes a runtime on every user and colours the API. An
//!   async adapter can come as its own crate over the same core.
//! - *A thread per connection*: many threads, and a socket's patterns (round robin, fair
//!   queueing) span connections, so they would share the core socket under a lock.
//!
//! One thread serves every socket of a context; make more contexts to use more cores.
//!
//! zmtp-core borrows its memory from the caller. Here each connection's memory is
//! allocated when the connection arrives (accepted, or connected, before its handshake):
//! two buffers ([`buffer_size`](SocketOptions::buffer_size)) and two message queues
//! ([`queue_size`](SocketOptions::queue_size)), about 2.3 MiB with the defaults
//! ([`memory_per_peer`](SocketOptions::memory_per_peer)), in one zeroed allocation, so the
//! system maps its pages only as the connection uses them: a connection with few, small
//! messages costs little RAM. When the connection goes its memory is kept for the next one
//! (up to two connections' worth per socket) or freed. A socket without connections holds
//! only its `max_peers` empty slots (a few hundred bytes each), so binding is cheap and
//! `max_peers` bounds memory rather than reserving it. Raise `queue_size` for messages over
//! 1 MiB. PUB, SUB, XPUB and XSUB allocate their subscription tree when the socket first
//! binds or connects ([`subscription_memory`](SocketOptions::subscription_memory): 448-512
//! KiB with the defaults), and an XPUB a `queue_size` queue for subscription notifications.
//! The one `unsafe` module of the crate gives the core `'static` references to this memory,
//! takes each connection's back when it closes, and frees the rest after the core socket is
//! gone.
//!
//! # High-water marks
//!
//! A message sent waits in the socket's outbox, which holds at most `send_hwm` messages,
//! until the I/O thread's core socket takes it; the core takes it while some peer is
//! connected and below its own `send_hwm` (per peer, and within
//! [`queue_size`](SocketOptions::queue_size) bytes). So `send_hwm` messages in the outbox
//! plus `send_hwm` per peer are buffered before [`Socket::send_multipart`] blocks and
//! [`Socket::try_send_multipart`] returns [`Error::WouldBlock`] (plus whatever the
//! transmit buffer and the system's TCP buffers hold, as with libzmq). A PUSH, DEALER or
//! REQ with no peer yet queues `send_hwm` messages and then blocks, as libzmq does for a
//! connecting socket; a message leaves the outbox only when the core has it, so the
//! outbox limit is exact.
//!
//! Received messages wait in the socket's inbox (at most `recv_hwm`) and before that in
//! the core's per-peer queue (`recv_hwm`); when both are full the I/O thread stops reading
//! that peer and TCP pushes back on it. (PULL, DEALER, PAIR, SUB and XSUB keep one-frame
//! messages in the connection's receive buffer instead of that queue, and copy them from
//! there straight into the inbox: [`buffer_size`](SocketOptions::buffer_size) bytes of
//! them at most.) A ROUTER drops messages for a peer at its
//! high-water mark, as libzmq does, unless `router_mandatory` is set: then they wait.
//! PUB, XPUB and XSUB never wait for a subscriber either: a message is dropped for each
//! one at its high-water mark (RFC 29, as libzmq), so their outbox drains as fast as the
//! I/O thread runs.
//!
//! # Connections
//!
//! `connect` resolves the host name at once and connects in the background; a refused or
//! lost connection is retried after the reconnect interval (doubling per failure up to
//! `reconnect_interval_max`, reset when a handshake succeeds). It is not retried when the
//! peer said not to come back (an ERROR command, an incompatible socket type: see
//! [`CloseReason::should_reconnect`](zmtp_core::CloseReason::should_reconnect)). A peer
//! that disconnects mid-message leaves nothing of that message behind. Messages already
//! queued for a peer that goes away are lost with it, as in libzmq.
//!
//! Closing a socket (or dropping it) returns at once; the I/O thread keeps delivering what
//! was sent for up to the linger time, and dropping the context's last handle waits for
//! that.
//!
//! # Not yet
//!
//! - Publish-subscribe: `ZMQ_XPUB_MANUAL`, `XPUB_WELCOME_MSG`, `XPUB_NODROP`, `CONFLATE`,
//!   `INVERT_MATCHING`. A SUB's messages already received into the socket when it
//!   unsubscribes are still delivered (libzmq filters them again on `recv`).
//! - The `inproc://` transport, abstract-namespace `ipc://@name` addresses; GSSAPI; ZAP
//!   user ids and metadata as message properties.
//! - Options after bind/connect; messages larger than `queue_size`.
//! - Zero-copy sends from the caller's memory: `send(&[u8])` copies the message into a
//!   `Vec` once (frames of 32 KiB and more are then written from that `Vec`, see above);
//!   a `send` that takes the caller's `Vec` would save that copy. With CURVE, and for PUB,
//!   XPUB, SUB, XSUB, REQ and REP sockets, large frames still go through zmtp-core's queues
//!   and buffers.
// No panics on I/O errors or bad input: errors are values. (`unsafe` is denied in
// Cargo.toml and allowed only in `owned.rs`.)
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo
    )
)]

mod batch;
mod context;
mod endpoint;
mod error;
mod io;
mod monitor;
mod options;
mod owned;
mod poll;
pub mod proxy;
mod security;
mod shared;
mod socket;
mod transport;
pub mod zap;

pub use context::Context;
pub use error::{Error, Result};
pub use monitor::{MonitorEvent, MONITOR_CAPACITY};
pub use options::{
    SocketOptions, DEFAULT_BUFFER_SIZE, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_LINGER,
    DEFAULT_MAX_PEERS, DEFAULT_QUEUE_SIZE, DEFAULT_RECONNECT_INTERVAL, DEFAULT_SUBSCRIPTION_NODES,
};
pub use poll::{poll, PollEvents, PollItem};
pub use proxy::{proxy, proxy_steerable, Proxy, ProxyStats};
pub use security::{
    curve_keypair, curve_public, AuthFailure, AuthFailureKind, Mechanism, SecretBytes,
    SecurityOptions,
};
pub use socket::Socket;
pub use zeroize::Zeroizing;
pub use zmtp_core::{CloseReason, ProtocolError, SocketType};
