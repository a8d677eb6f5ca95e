//! The plain smoltcp adapter (`zmtp_embassy::smoltcp`) against real libzmq: a smoltcp
//! `Interface` on a TAP device (`phy::TunTapInterface`, Ethernet), driven by a `poll(now)`
//! loop as firmware runs it, inside a network namespace this test creates (and removes, also
//! on failure). No traffic leaves the namespace.
//!
//! The kernel side of the TAP has 10.78.0.1/24 (libzmq binds there); smoltcp has 10.78.0.2/24.
//! The binary re-executes itself under `ip netns exec`. Each scenario runs libzmq (with
//! heartbeats on) in a thread and our socket in the poll loop on the main thread.
//!
//! Needs root, `ip` (iproute2) and `/dev/net/tun`; fails (never skips) without them.
//! Run: `cargo test -p zmtp-embassy-hosttest --test smoltcp_tap`.

use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Medium, TunTapInterface};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SInstant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use zmtp_embassy::kind::{self, Kind};
use zmtp_embassy::smoltcp::{Resources, Socket};
use zmtp_embassy::{Endpoint, Error, Options, SocketType};

mod common;
use common::{check, monitor_counts, zsock, DEADLINE};

const NS_ENV: &str = "ZMTP_SMOLTCP_NETNS";
const TAP: &str = "zs0";
const HOST: &str = "10.78.0.1";
const DEVICE: [u8; 4] = [10, 78, 0, 2];

fn main() -> ExitCode {
    zmtp_embassy_hosttest::main("zmtp-smol", NS_ENV, TAP, &format!("{HOST}/24"), inside)
}

// ------------------------------------------------------------------ device side (smoltcp)

type Res = Resources<'static, 1, 2048, 8192, 512>;

/// The smoltcp side: one interface on the TAP, the TCP sockets of all scenarios.
struct Net {
    device: TunTapInterface,
    iface: Interface,
    sockets: SocketSet<'static>,
}

impl Net {
    fn new() -> Result<Net, String> {
        let mut device = TunTapInterface::new(TAP, Medium::Ethernet)
            .map_err(|e| format!("open the TAP device {TAP}: {e}"))?;
        let mac = EthernetAddress([0x02, 0, 0, 0x78, 0, 2]);
        let mut config = Config::new(HardwareAddress::Ethernet(mac));
        config.random_seed = 0x7a37;
        let mut iface = Interface::new(config, &mut device, SInstant::now());
        iface.update_ip_addrs(|a| {
            let [a0, a1, a2, a3] = DEVICE;
            a.push(IpCidr::new(IpAddress::v4(a0, a1, a2, a3), 24))
                .unwrap();
        });
        Ok(Net {
            device,
            iface,
            sockets: SocketSet::new(Vec::new()),
        })
    }

    fn tcp(&mut self) -> SocketHandle {
        let buf = || tcp::SocketBuffer::new(vec![0u8; 8192]);
        self.sockets.add(tcp::Socket::new(buf(), buf()))
    }

    /// One round of the firmware loop: the interface, then our socket, until nothing moves.
    fn poll<K: Kind>(&mut self, socket: &mut Socket<'static, K>) {
        for _ in 0..64 {
            let now = SInstant::now();
            self.iface.poll(now, &mut self.device, &mut self.sockets);
            if !socket.poll(now, &mut self.iface, &mut self.sockets) {
                break;
            }
        }
    }

    /// Runs the poll loop until `step` (called once a round, after the socket's poll) says
    /// the scenario is over, or fails after [`DEADLINE`]. Between rounds it waits for a frame
    /// on the TAP, at most until the interface's or the socket's next deadline (and 5 ms, so
    /// that `step` sees what the libzmq thread did).
    fn drive<K: Kind>(
        &mut self,
        socket: &mut Socket<'static, K>,
        mut step: impl FnMut(&mut Socket<'static, K>, Instant) -> Option<Result<(), String>>,
    ) -> Result<(), String> {
        let start = Instant::now();
        loop {
            self.poll(socket);
            if let Some(r) = step(socket, Instant::now()) {
                // Let what the last step queued go out.
                self.poll(socket);
                return r;
            }
            // What `step` sent: into TCP now, not after the wait.
            self.poll(socket);
            if start.elapsed() > DEADLINE {
                return Err(format!("device side did not finish in {DEADLINE:?}"));
            }
            let now = SInstant::now();
            let cap = now + smoltcp::time::Duration::from_millis(5);
            let at = [self.iface.poll_at(now, &self.sockets), socket.poll_at()]
                .into_iter()
                .flatten()
                .fold(cap, SInstant::min);
            let wait = if at > now {
                at - now
            } else {
                smoltcp::time::Duration::ZERO
            };
            smoltcp::phy::wait(self.device.as_raw_fd(), Some(wait))
                .map_err(|e| format!("wait on the TAP: {e}"))?;
        }
    }

    /// Resets and frees a scenario's TCP sockets.
    fn release(&mut self, handles: &[SocketHandle]) {
        for h in handles {
            self.sockets.get_mut::<tcp::Socket<'_>>(*h).abort();
        }
        // The RSTs go out.
        self.iface
            .poll(SInstant::now(), &mut self.device, &mut self.sockets);
        for h in handles {
            self.sockets.remove(*h);
        }
    }
}

fn options(ty: SocketType) -> Options<'static> {
    let mut o = Options::new(ty).with_heartbeat(Duration::from_millis(200));
    o.reconnect_ivl = Duration::from_millis(50);
    o.reconnect_ivl_max = Duration::from_millis(400);
    o
}

fn connect(port: u16) -> Endpoint {
    Endpoint::connect(core::net::SocketAddrV4::new(HOST.parse().unwrap(), port))
}

/// A socket of type `K` connected to libzmq on `port`, over a new TCP socket of `net`.
fn socket<K: Kind>(
    net: &mut Net,
    kind: K,
    options: Options<'static>,
    port: u16,
) -> (Socket<'static, K>, SocketHandle) {
    let handle = net.tcp();
    let res: &'static mut Res = Box::leak(Box::new(Res::new()));
    let socket = Socket::typed(kind, res, options, &[connect(port)], &[handle]).unwrap();
    (socket, handle)
}

/// The next message's frames, if one is queued.
fn try_frames<K: Kind>(s: &mut Socket<'static, K>) -> Result<Option<Vec<Vec<u8>>>, String> {
    let mut buf = [0u8; 512];
    match s.try_recv(&mut buf) {
        Ok(m) => Ok(Some(m.frames().map(<[u8]>::to_vec).collect())),
        Err(Error::WouldBlock) => Ok(None),
        Err(e) => Err(format!("recv: {e}")),
    }
}

// ------------------------------------------------------------------ libzmq side

fn bind(ctx: &zmq::Context, ty: zmq::SocketType, port: u16) -> zmq::Socket {
    let s = zsock(ctx, ty);
    s.bind(&format!("tcp://{HOST}:{port}")).unwrap();
    s
}

/// Runs `peer` (the libzmq side, given a flag that is set once the device side is over) in a
/// thread and `device` here; both must succeed.
fn scenario(
    net: &mut Net,
    peer: impl FnOnce(&AtomicBool) -> Result<(), String> + Send + 'static,
    device: impl FnOnce(&mut Net) -> Result<(), String>,
) -> Result<(), String> {
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let peer = std::thread::spawn(move || peer(&flag));
    let d = device(net);
    done.store(true, Ordering::Relaxed);
    let p = peer
        .join()
        .unwrap_or_else(|_| Err("libzmq side panicked".into()));
    match (d, p) {
        (Ok(()), Ok(())) => Ok(()),
        (d, p) => Err(format!("device: {d:?}; libzmq: {p:?}")),
    }
}

// ------------------------------------------------------------------ scenarios

/// DEALER (typed, `kind::Dealer`) -> libzmq ROUTER: five round trips, idle for several libzmq
/// heartbeat timeouts after the third; libzmq must see one connection and no disconnect. Our
/// own heartbeats are off here: only our PONGs to libzmq's PINGs keep the connection.
fn dealer_router(net: &mut Net) -> Result<(), String> {
    const PORT: u16 = 7201;
    let mut opts = options(SocketType::Dealer).with_identity(b"dev-1");
    opts.socket.session.heartbeat_interval = None;
    opts.socket.session.heartbeat_timeout = None;
    opts.socket.session.heartbeat_ttl = None;
    let (mut s, handle) = socket(net, kind::Dealer, opts, PORT);
    let peer = |_: &AtomicBool| {
        let ctx = zmq::Context::new();
        // The monitor outlives the socket: libzmq's I/O thread blocks on a monitor event
        // that has no reader.
        let mon = ctx.socket(zmq::PAIR).unwrap();
        let router = bind(&ctx, zmq::ROUTER, PORT);
        router
            .monitor("inproc://mon-router", zmq::SocketEvent::ALL as i32)
            .unwrap();
        mon.connect("inproc://mon-router").unwrap();
        for i in 0..5u8 {
            let m = router
                .recv_multipart(0)
                .map_err(|e| format!("request {i}: {e}"))?;
            check(
                m == [b"dev-1".to_vec(), b"ping".to_vec(), vec![i]],
                format!("request {i}: {m:?}"),
            )?;
            router
                .send_multipart([&b"dev-1"[..], b"pong", &[i]], 0)
                .unwrap();
        }
        let (accepted, disconnected) = monitor_counts(&mon);
        check(
            accepted == 1 && disconnected == 0,
            format!(
                "libzmq saw {accepted} connections and {disconnected} disconnects \
                 (heartbeats not answered?)"
            ),
        )
    };
    let device = |net: &mut Net| {
        let mut i = 0u8;
        let mut sent = false;
        let mut idle_until: Option<Instant> = None;
        net.drive(&mut s, |s, now| {
            if let Some(until) = idle_until {
                // Idle: only PING/PONG keep the connection; it must stay up throughout.
                if s.ready_peers() != 1 {
                    return Some(Err("connection lost while idle".into()));
                }
                if now < until {
                    return None;
                }
                idle_until = None;
            }
            if !sent {
                sent = s.try_send(&[b"ping", &[i]]).is_ok();
                return None;
            }
            match try_frames(s) {
                Err(e) => Some(Err(e)),
                Ok(None) => None,
                Ok(Some(m)) if m != [b"pong".to_vec(), vec![i]] => {
                    Some(Err(format!("reply {i}: {m:?}")))
                }
                Ok(Some(_)) => {
                    i += 1;
                    sent = false;
                    if i == 3 {
                        idle_until = Some(now + Duration::from_millis(1500));
                    }
                    (i == 5).then_some(Ok(()))
                }
            }
        })
    };
    let r = scenario(net, peer, device);
    net.release(&[handle]);
    r
}

/// SUB with a filter <- libzmq PUB publishing two topics.
fn sub_pub(net: &mut Net) -> Result<(), String> {
    const PORT: u16 = 7202;
    let (mut s, handle) = socket(net, kind::Sub, options(SocketType::Sub), PORT);
    s.subscribe(b"temp").unwrap();
    let peer = |done: &AtomicBool| {
        let ctx = zmq::Context::new();
        let publisher = bind(&ctx, zmq::PUB, PORT);
        let start = Instant::now();
        let mut n = 0;
        // A PUB drops what it sends before the subscription arrives: publish until the
        // device has what it waits for.
        while !done.load(Ordering::Relaxed) {
            if start.elapsed() > DEADLINE {
                return Err("device did not finish".into());
            }
            publisher.send(format!("humid {n}").as_bytes(), 0).unwrap();
            publisher.send(format!("temp {n}").as_bytes(), 0).unwrap();
            n += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    };
    let device = |net: &mut Net| {
        let mut got = 0;
        let mut last: Option<u32> = None;
        net.drive(&mut s, |s, _| match try_frames(s) {
            Err(e) => Some(Err(e)),
            Ok(None) => None,
            Ok(Some(m)) => {
                let text = String::from_utf8_lossy(&m.concat()).into_owned();
                let Some(n) = text
                    .strip_prefix("temp ")
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    return Some(Err(format!("not filtered: {text:?}")));
                };
                if last.is_some_and(|l| n <= l) {
                    return Some(Err(format!("out of order: {n} after {last:?}")));
                }
                last = Some(n);
                got += 1;
                (got == 3).then_some(Ok(()))
            }
        })
    };
    let r = scenario(net, peer, device);
    net.release(&[handle]);
    r
}

/// DEALER -> libzmq ROUTER echoing; the ROUTER is closed after three echoes and a new one
/// binds the same endpoint: our socket sees the connection drop, reconnects by itself and
/// gets three more echoes.
fn restart(net: &mut Net) -> Result<(), String> {
    const PORT: u16 = 7203;
    let (mut s, handle) = socket(
        net,
        kind::Any,
        options(SocketType::Dealer).with_identity(b"dev-r"),
        PORT,
    );
    let peer = |done: &AtomicBool| {
        let ctx = zmq::Context::new();
        // One request echoed (`Ok(false)`: none within the receive timeout).
        let echo = |router: &zmq::Socket| -> Result<bool, String> {
            let m = match router.recv_multipart(0) {
                Ok(m) => m,
                Err(zmq::Error::EAGAIN) => return Ok(false),
                Err(e) => return Err(e.to_string()),
            };
            check(
                m.len() == 3 && m[0] == b"dev-r" && m[1] == b"m",
                format!("{m:?}"),
            )?;
            router.send_multipart(&m, 0).map_err(|e| e.to_string())?;
            Ok(true)
        };
        let first = bind(&ctx, zmq::ROUTER, PORT);
        for i in 0..3 {
            check(echo(&first)?, format!("request {i}: none"))?;
        }
        drop(first);
        // The same endpoint again, a new libzmq socket. libzmq closes the old listener in
        // the background: retry the bind until the port is free.
        let second = zsock(&ctx, zmq::ROUTER);
        let start = Instant::now();
        while let Err(e) = second.bind(&format!("tcp://{HOST}:{PORT}")) {
            if start.elapsed() > DEADLINE {
                return Err(format!("rebind: {e}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Echo until the device has what it waits for (it may ask more than three times:
        // a request sent while the first ROUTER closed is lost and asked again).
        second.set_rcvtimeo(50).unwrap();
        let mut echoed = 0;
        while !done.load(Ordering::Relaxed) {
            if start.elapsed() > DEADLINE {
                return Err("device did not finish".into());
            }
            echoed += usize::from(echo(&second)?);
        }
        check(echoed >= 3, format!("the new ROUTER echoed {echoed} times"))
    };
    let device = |net: &mut Net| {
        let mut i = 0u32;
        // When the unanswered request went out.
        let mut asked: Option<Instant> = None;
        let (mut before, mut after) = (0, 0);
        // The first request sent once the connection was seen down: echoes of it and later
        // ones came through the new connection.
        let mut first_after: Option<u32> = None;
        let mut was_up = false;
        net.drive(&mut s, |s, now| {
            match s.ready_peers() {
                0 if was_up && first_after.is_none() => first_after = Some(i),
                0 => {}
                _ => was_up = true,
            }
            // A request sent to a ROUTER that went away is lost: ask again after a while.
            if asked.is_none_or(|t| now - t > Duration::from_millis(300))
                && s.try_send(&[b"m", &i.to_be_bytes()]).is_ok()
            {
                i += 1;
                asked = Some(now);
            }
            let m = match try_frames(s) {
                Err(e) => return Some(Err(e)),
                Ok(None) => return None,
                Ok(Some(m)) => m,
            };
            let n = match &m[..] {
                [m0, n] if m0 == b"m" => <[u8; 4]>::try_from(&n[..]).map(u32::from_be_bytes),
                _ => return Some(Err(format!("echo: {m:?}"))),
            };
            let Ok(n) = n else {
                return Some(Err(format!("echo: {m:?}")));
            };
            asked = None;
            if first_after.is_some_and(|f| n >= f) {
                after += 1;
            } else {
                before += 1;
            }
            // libzmq closes the first ROUTER with linger 0: its last echo may be lost.
            (after == 3).then(|| {
                check(
                    (2..=3).contains(&before),
                    format!("{before} echoes before the restart, not 2 or 3"),
                )
            })
        })
    };
    let r = scenario(net, peer, device);
    net.release(&[handle]);
    r
}

fn inside() -> ExitCode {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut net = match Net::new() {
        Ok(n) => n,
        Err(e) => {
            println!("test result: FAILED: {e}");
            return ExitCode::FAILURE;
        }
    };
    type Scenario = fn(&mut Net) -> Result<(), String>;
    let tests: [(&str, Scenario); 3] = [
        (
            "smoltcp_dealer_to_libzmq_router_with_heartbeats",
            dealer_router,
        ),
        ("smoltcp_sub_with_filter_from_libzmq_pub", sub_pub),
        ("smoltcp_reconnect_after_libzmq_restart", restart),
    ];
    common::run_all(tests, |f| f(&mut net))
}
