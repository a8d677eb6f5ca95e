//! Options with effects outside the ZMTP session: `immediate` (ZMQ_IMMEDIATE) and TCP
//! keepalive (ZMQ_TCP_KEEPALIVE*).

use std::thread;
use std::time::{Duration, Instant};

use zmtp_std::{poll, Context, Error, PollEvents, SocketType};

mod common;
use common::STEP;

fn free_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("tcp://{}", l.local_addr().unwrap())
}

#[test]
fn immediate_queues_only_for_completed_connections() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    for ty in [
        SocketType::Push,
        SocketType::Dealer,
        SocketType::Req,
        SocketType::Pair,
    ] {
        let s = ctx.socket(ty).unwrap();
        s.set_immediate(true).unwrap();
        s.connect(&free_endpoint()).unwrap();
        // Nobody there: nothing is queued.
        assert!(matches!(s.try_send("x"), Err(Error::WouldBlock)), "{ty}");
        assert!(matches!(
            s.send_timeout("x", Duration::from_millis(20)),
            Err(Error::Timeout)
        ));
        let mut items = [s.as_poll_item(PollEvents::OUT)];
        assert_eq!(poll(&mut items, Some(Duration::ZERO)).unwrap(), 0, "{ty}");
    }
    // Without it, a connecting PUSH queues up to its high-water mark.
    let plain = ctx.socket(SocketType::Push).unwrap();
    plain.set_linger(Some(Duration::ZERO));
    plain.connect(&free_endpoint()).unwrap();
    plain.try_send("queued").unwrap();

    // A blocked send goes out once a peer (libzmq's) completes its handshake; poll wakes.
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_immediate(true).unwrap();
    let pull = zctx.socket(zmq::PULL).unwrap();
    pull.set_rcvtimeo(STEP.as_millis() as i32).unwrap();
    pull.set_linger(0).unwrap();
    let ep = free_endpoint();
    push.connect(&ep).unwrap();
    thread::scope(|scope| {
        let sender = scope.spawn(|| push.send_timeout("waited", STEP));
        let poller = scope.spawn(|| {
            let mut items = [push.as_poll_item(PollEvents::OUT)];
            poll(&mut items, Some(STEP)).unwrap()
        });
        pull.bind(&ep).unwrap();
        sender.join().unwrap().unwrap();
        assert_eq!(poller.join().unwrap(), 1);
    });
    assert_eq!(pull.recv_bytes(0).unwrap(), b"waited");
    push.try_send("now").unwrap();
    assert_eq!(pull.recv_bytes(0).unwrap(), b"now");
}

#[test]
fn keepalive_values_are_checked() {
    let ctx = Context::new().unwrap();
    let s = ctx.socket(SocketType::Dealer).unwrap();
    s.set_tcp_keepalive_idle(Some(Duration::from_millis(500)))
        .unwrap();
    assert!(matches!(
        s.connect(&free_endpoint()),
        Err(Error::InvalidOption {
            option: "tcp_keepalive_idle",
            ..
        })
    ));
    s.set_tcp_keepalive_idle(None).unwrap();
    s.set_tcp_keepalive_count(Some(0)).unwrap();
    assert!(matches!(
        s.connect(&free_endpoint()),
        Err(Error::InvalidOption {
            option: "tcp_keepalive_count",
            ..
        })
    ));
}

/// The keepalive timer of the connection between local port `ours` and `theirs`, from
/// /proc/net/tcp: (timer kind, time left in clock ticks). Kind 2 is the keepalive timer.
#[cfg(target_os = "linux")]
fn tcp_timer(ours: u16, theirs: u16) -> Option<(u32, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let port = |a: &str| u16::from_str_radix(a.rsplit(':').next()?, 16).ok();
        if port(f[1])? != ours || port(f[2])? != theirs {
            return None;
        }
        let (kind, when) = f[5].split_once(':')?;
        Some((
            u32::from_str_radix(kind, 16).ok()?,
            u64::from_str_radix(when, 16).ok()?,
        ))
    })
}

#[cfg(target_os = "linux")]
#[test]
fn tcp_keepalive_arms_the_kernel_timer() {
    let ctx = Context::new().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("tcp://{}", listener.local_addr().unwrap());
    let theirs = listener.local_addr().unwrap().port();
    let mut timers = Vec::new();
    for keepalive in [Some(true), None, Some(false)] {
        let s = ctx.socket(SocketType::Dealer).unwrap();
        s.set_tcp_keepalive(keepalive).unwrap();
        s.set_tcp_keepalive_idle(Some(Duration::from_secs(7)))
            .unwrap();
        s.set_tcp_keepalive_interval(Some(Duration::from_secs(3)))
            .unwrap();
        s.set_tcp_keepalive_count(Some(4)).unwrap();
        s.connect(&ep).unwrap();
        let (raw, from) = listener.accept().unwrap();
        // Our greeting arrives once the I/O thread has set the connection up (and its
        // options with it).
        let mut greeting = [0u8; 10];
        raw.set_read_timeout(Some(STEP)).unwrap();
        std::io::Read::read_exact(&mut &raw, &mut greeting).unwrap();
        let deadline = Instant::now() + STEP;
        let timer = loop {
            if let Some(t) = tcp_timer(from.port(), theirs) {
                break t;
            }
            assert!(Instant::now() < deadline, "connection not in /proc/net/tcp");
            thread::sleep(Duration::from_millis(1));
        };
        timers.push(timer);
        drop(s);
    }
    // On: the keepalive timer runs, due within the 7 s idle time (in 1/100 s ticks).
    let (kind, when) = timers[0];
    assert_eq!(kind, 2, "{timers:?}");
    assert!(when > 0 && when <= 700, "{timers:?}");
    // System default (off on Linux) and off: no timer on an idle connection.
    assert_eq!(timers[1].0, 0, "{timers:?}");
    assert_eq!(timers[2].0, 0, "{timers:?}");
}
