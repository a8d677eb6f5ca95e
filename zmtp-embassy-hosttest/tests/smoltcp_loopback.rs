//! The smoltcp adapter: two of our sockets over smoltcp's loopback device, on virtual time.

use std::time::Duration;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use zmtp_embassy::smoltcp::{Resources, Socket};
use zmtp_embassy::{Endpoint, Error, Options, SocketType};

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
    Endpoint::Connect(core::net::SocketAddrV4::new([127, 0, 0, 1].into(), port))
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
