//! The smoltcp adapter: two of our sockets over smoltcp's loopback device, on virtual time.

use std::time::Duration;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use zmtp_embassy::smoltcp::{Resources, Socket};
use zmtp_embassy::{kind, Endpoint, Error, Options, SocketType};

type Res = Resources<'static, 2, 1024, 4096, 256>;

struct Net {
    device: Loopback,
    iface: Interface,
    sockets: SocketSet<'static>,
    now: Instant,
}

impl Net {
    fn new() -> Net {
        let mut device = Loopback::new(Medium::Ip);
        let mut iface =
            Interface::new(Config::new(HardwareAddress::Ip), &mut device, Instant::ZERO);
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8)).unwrap();
            a.push(IpCidr::new(IpAddress::v6(0, 0, 0, 0, 0, 0, 0, 1), 128))
                .unwrap();
        });
        Net {
            device,
            iface,
            sockets: SocketSet::new(Vec::new()),
            now: Instant::ZERO,
        }
    }

    fn tcp(&mut self) -> SocketHandle {
        let buf = || tcp::SocketBuffer::new(vec![0u8; 4096]);
        self.sockets.add(tcp::Socket::new(buf(), buf()))
    }

    fn socket(&mut self, options: Options<'static>, endpoint: Endpoint) -> Socket<'static> {
        let handles = [self.tcp(), self.tcp()];
        let res: &'static mut Res = Box::leak(Box::new(Res::new()));
        Socket::new(res, options, &[endpoint], &handles).unwrap()
    }

    /// Polls everything for `ms` milliseconds of virtual time, 1 ms per step.
    fn run(&mut self, sockets: &mut [&mut Socket<'static>], ms: u64) {
        for _ in 0..ms {
            for _ in 0..20 {
                self.iface
                    .poll(self.now, &mut self.device, &mut self.sockets);
                let mut progress = false;
                for s in sockets.iter_mut() {
                    progress |= s.poll(self.now, &mut self.iface, &mut self.sockets);
                }
                if !progress {
                    break;
                }
            }
            self.now += smoltcp::time::Duration::from_millis(1);
        }
    }

    /// Runs until `cond` holds, at most 10 s of virtual time.
    fn run_until(
        &mut self,
        sockets: &mut [&mut Socket<'static>],
        mut cond: impl FnMut(&mut [&mut Socket<'static>]) -> bool,
    ) {
        for _ in 0..10_000 {
            if cond(sockets) {
                return;
            }
            self.run(sockets, 1);
        }
        panic!("condition not met within 10 s of virtual time");
    }
}

fn local(port: u16) -> Endpoint {
    Endpoint::connect(([127, 0, 0, 1], port))
}

fn recv_frames(net: &mut Net, sockets: &mut [&mut Socket<'static>], i: usize) -> Vec<Vec<u8>> {
    let mut out = None;
    net.run_until(sockets, |s| {
        let mut buf = [0u8; 512];
        match s[i].try_recv(&mut buf) {
            Ok(m) => {
                out = Some(m.frames().map(<[u8]>::to_vec).collect());
                true
            }
            Err(Error::WouldBlock) => false,
            Err(e) => panic!("{e}"),
        }
    });
    out.unwrap()
}

#[test]
fn req_rep_over_loopback() {
    let mut net = Net::new();
    let mut rep = net.socket(Options::new(SocketType::Rep), Endpoint::Listen(5555));
    let mut req = net.socket(Options::new(SocketType::Req), local(5555));
    for i in 0..3u8 {
        let s: &mut [&mut Socket<'static>] = &mut [&mut rep, &mut req];
        net.run_until(s, |s| s[1].try_send(&[b"ping", &[i]]).is_ok());
        assert_eq!(recv_frames(&mut net, s, 0), [b"ping".to_vec(), vec![i]]);
        s[0].try_send(&[b"pong", &[i]]).unwrap();
        assert_eq!(recv_frames(&mut net, s, 1), [b"pong".to_vec(), vec![i]]);
    }
}

#[test]
fn req_rep_over_ipv6_loopback() {
    let mut net = Net::new();
    let mut rep = net.socket(Options::new(SocketType::Rep), Endpoint::Listen(5556));
    let v6 = Endpoint::connect((core::net::Ipv6Addr::LOCALHOST, 5556));
    let mut req = net.socket(Options::new(SocketType::Req), v6);
    let s: &mut [&mut Socket<'static>] = &mut [&mut rep, &mut req];
    net.run_until(s, |s| s[1].try_send(&[b"over", b"v6"]).is_ok());
    assert_eq!(
        recv_frames(&mut net, s, 0),
        [b"over".to_vec(), b"v6".to_vec()]
    );
    s[0].try_send(&[b"ok"]).unwrap();
    assert_eq!(recv_frames(&mut net, s, 1), [b"ok".to_vec()]);
}

#[test]
fn heartbeats_keep_an_idle_connection_and_pub_sub_filters() {
    let mut net = Net::new();
    let hb = Duration::from_millis(100);
    let mut publisher = net.socket(
        Options::new(SocketType::Pub).with_heartbeat(hb),
        Endpoint::Listen(6000),
    );
    let mut sub = net.socket(
        Options::new(SocketType::Sub).with_heartbeat(hb),
        local(6000),
    );
    sub.subscribe(b"a").unwrap();
    let s: &mut [&mut Socket<'static>] = &mut [&mut publisher, &mut sub];
    net.run_until(s, |s| s[0].ready_peers() == 1 && s[1].ready_peers() == 1);
    // Idle for 50 heartbeat intervals: PING/PONG keep both ends up.
    net.run(s, 5_000);
    assert_eq!((s[0].ready_peers(), s[1].ready_peers()), (1, 1));
    let mut got = None;
    net.run_until(s, |s| {
        s[0].try_send(&[b"b-no"]).unwrap();
        s[0].try_send(&[b"a-yes"]).unwrap();
        let mut buf = [0u8; 64];
        if let Ok(m) = s[1].try_recv(&mut buf) {
            got = Some(m.bytes().to_vec());
        }
        got.is_some()
    });
    assert_eq!(got.unwrap(), b"a-yes");
}

#[test]
fn dealer_reconnects_after_the_router_restarts() {
    let mut net = Net::new();
    let mut opts = Options::new(SocketType::Dealer).with_identity(b"d1");
    opts.reconnect_ivl = Duration::from_millis(10);
    let mut dealer = net.socket(opts, local(7000));
    let mut router = net.socket(Options::new(SocketType::Router), Endpoint::Listen(7000));
    {
        let s: &mut [&mut Socket<'static>] = &mut [&mut router, &mut dealer];
        net.run_until(s, |s| s[1].try_send(&[b"one"]).is_ok());
        assert_eq!(
            recv_frames(&mut net, s, 0),
            [b"d1".to_vec(), b"one".to_vec()]
        );
    }
    // The router goes away (no longer polled, its TCP sockets reset): the dealer sees the
    // connection drop.
    let handles: Vec<SocketHandle> = net.sockets.iter().map(|(h, _)| h).collect();
    for h in &handles[2..] {
        net.sockets.get_mut::<tcp::Socket<'_>>(*h).abort();
    }
    net.run_until(&mut [&mut dealer], |s| s[0].ready_peers() == 0);
    // A new router on the same port: the dealer reconnects by itself.
    for h in &handles[2..] {
        net.sockets.remove(*h);
    }
    let mut router = net.socket(Options::new(SocketType::Router), Endpoint::Listen(7000));
    let s: &mut [&mut Socket<'static>] = &mut [&mut router, &mut dealer];
    net.run_until(s, |s| s[1].try_send(&[b"two"]).is_ok());
    assert_eq!(
        recv_frames(&mut net, s, 0),
        [b"d1".to_vec(), b"two".to_vec()]
    );
}

/// A DEALER fixed at compile time and a ROUTER, connected over the loopback.
fn typed_pair(net: &mut Net, port: u16) -> (Socket<'static, kind::Dealer>, Socket<'static>) {
    let handles = [net.tcp(), net.tcp()];
    let res: &'static mut Res = Box::leak(Box::new(Res::new()));
    let opts = Options::new(SocketType::Dealer).with_identity(b"d1");
    let dealer = Socket::typed(kind::Dealer, res, opts, &[local(port)], &handles).unwrap();
    let router = net.socket(Options::new(SocketType::Router), Endpoint::Listen(port));
    (dealer, router)
}

/// One step of 1 ms of virtual time for a typed DEALER and a ROUTER.
fn poll_both(net: &mut Net, d: &mut Socket<'static, kind::Dealer>, r: &mut Socket<'static>) {
    for _ in 0..20 {
        net.iface.poll(net.now, &mut net.device, &mut net.sockets);
        d.poll(net.now, &mut net.iface, &mut net.sockets);
        r.poll(net.now, &mut net.iface, &mut net.sockets);
    }
    net.now += smoltcp::time::Duration::from_millis(1);
}

#[test]
fn a_typed_socket_refuses_options_of_another_type() {
    let mut net = Net::new();
    let handles = [net.tcp()];
    let res: &'static mut Res = Box::leak(Box::new(Res::new()));
    let r = Socket::typed(
        kind::Dealer,
        res,
        Options::new(SocketType::Router),
        &[local(1)],
        &handles,
    );
    assert_eq!(r.err(), Some(Error::KindMismatch));
}

#[test]
fn a_message_larger_than_the_buffer_stays_queued() {
    let mut net = Net::new();
    let (mut dealer, mut router) = typed_pair(&mut net, 7100);
    assert_eq!(dealer.socket_type(), SocketType::Dealer);
    let big = vec![7u8; 300];
    // The dealer says hello so that the router knows its routing id.
    let mut sent = false;
    for _ in 0..10_000 {
        poll_both(&mut net, &mut dealer, &mut router);
        if dealer.try_send(&[b"hi"]).is_ok() {
            sent = true;
            break;
        }
    }
    assert!(sent, "the dealer never connected");
    let mut buf = [0u8; 512];
    let mut got = None;
    for _ in 0..10_000 {
        poll_both(&mut net, &mut dealer, &mut router);
        if let Ok(m) = router.try_recv(&mut buf) {
            got = Some(m.frames().map(<[u8]>::to_vec).collect::<Vec<_>>());
            break;
        }
    }
    assert_eq!(got.unwrap(), [b"d1".to_vec(), b"hi".to_vec()]);

    // Three messages back: one too large for a small buffer, one with too many frames, and
    // a last one.
    router.try_send(&[b"d1", b"big", &big]).unwrap();
    let many = [&b"f"[..]; 20];
    let mut with_id: Vec<&[u8]> = vec![b"d1"];
    with_id.extend_from_slice(&many);
    router.try_send(&with_id).unwrap();
    router.try_send(&[b"d1", b"last"]).unwrap();
    let mut small = [0u8; 64];
    let mut first = None;
    for _ in 0..10_000 {
        poll_both(&mut net, &mut dealer, &mut router);
        match dealer.try_recv(&mut small) {
            Err(Error::WouldBlock) => continue,
            r => {
                first = Some(r.map(|m| m.len()));
                break;
            }
        }
    }
    assert_eq!(first, Some(Err(Error::BufferTooSmall { needed: 303 })));
    // Not lost: again the same answer, then a large enough buffer gets it.
    assert_eq!(
        dealer.try_recv(&mut small).err(),
        Some(Error::BufferTooSmall { needed: 303 })
    );
    let m = dealer.try_recv(&mut buf).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m.frame(0), Some(&b"big"[..]));
    assert_eq!(m.frame(1), Some(&big[..]));
    // Too many frames for a Message: the zero-copy receive takes it.
    assert_eq!(
        dealer.try_recv(&mut buf).err(),
        Some(Error::TooManyFrames { frames: 20 })
    );
    let n = dealer.try_recv_with(|m| m.len()).unwrap();
    assert_eq!(n, 20);
    // The last one, dropped on purpose.
    assert_eq!(
        dealer.try_recv(&mut small).unwrap().frame(0),
        Some(&b"last"[..])
    );
    router.try_send(&[b"d1", b"x", &big]).unwrap();
    let mut dropped = false;
    for _ in 0..10_000 {
        poll_both(&mut net, &mut dealer, &mut router);
        if matches!(
            dealer.try_recv(&mut small),
            Err(Error::BufferTooSmall { .. })
        ) {
            dropped = dealer.discard().unwrap();
            break;
        }
    }
    assert!(dropped);
    assert_eq!(dealer.try_recv(&mut buf).err(), Some(Error::WouldBlock));
    assert!(!dealer.discard().unwrap());
}

/// `Resources` start as all-zero bytes: a static of them goes to `.bss` (RAM only), not to
/// `.data` (a copy in flash too). Checked on this test binary's symbol table with `nm`.
#[test]
fn resources_statics_are_all_zero_and_go_to_bss() {
    use static_cell::ConstStaticCell;
    type Embassy = zmtp_embassy::Resources<'static, 2, 256, 512, 64, kind::Dealer>;
    static ZMTP_EMB_RES_BSS: ConstStaticCell<Embassy> = ConstStaticCell::new(Embassy::new());
    static ZMTP_SMOL_RES_BSS: ConstStaticCell<Res> = ConstStaticCell::new(Res::new());
    std::hint::black_box(ZMTP_EMB_RES_BSS.take());
    std::hint::black_box(ZMTP_SMOL_RES_BSS.take());
    let exe = std::env::current_exe().unwrap();
    let out = match std::process::Command::new("nm").arg(&exe).output() {
        Ok(o) => o,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipped: nm not available ({e})");
            return;
        }
        Err(e) => panic!("nm (binutils) is required: {e}"),
    };
    let table = String::from_utf8_lossy(&out.stdout);
    for name in ["ZMTP_EMB_RES_BSS", "ZMTP_SMOL_RES_BSS"] {
        let line = table
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} not in the symbol table"));
        let section = line.split_whitespace().nth(1).unwrap();
        assert!(
            section.eq_ignore_ascii_case("b"),
            "{name} is not in .bss: {line}"
        );
    }
}
