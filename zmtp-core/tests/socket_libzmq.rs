//! The socket layer against real libzmq: one of our sockets with several libzmq peers over
//! TCP, driven by a small non-blocking loop.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant as StdInstant};

use common::driver::{listen, zbind, zsocket};
use common::net::slots;
use zmtp_core::socket::{PeerHandle, Socket, SocketConfig};
use zmtp_core::{Config, Instant, Role, SocketType};

/// Our socket and its peers' streams.
struct Host {
    socket: Socket<'static, 'static>,
    peers: Vec<(PeerHandle, TcpStream)>,
    epoch: StdInstant,
}

impl Host {
    fn new(cfg: SocketConfig<'static>) -> Host {
        Host {
            socket: Socket::new(cfg, slots(8, 4096, 4096, 1 << 16)),
            peers: Vec::new(),
            epoch: StdInstant::now(),
        }
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn add(&mut self, stream: TcpStream, role: Role) {
        stream.set_nonblocking(true).unwrap();
        stream.set_nodelay(true).unwrap();
        let h = self.socket.add_peer(role, self.now()).unwrap();
        self.peers.push((h, stream));
    }

    fn connect(&mut self, addr: std::net::SocketAddr) {
        self.add(TcpStream::connect(addr).unwrap(), Role::Connected);
    }

    fn accept(&mut self, l: &TcpListener) {
        let (s, _) = l.accept().unwrap();
        self.add(s, Role::Accepted);
    }

    /// One round of I/O on every peer: read, then write what the input produced (the
    /// caller's duty: after any input, drain the output).
    fn pump(&mut self) {
        let now = self.now();
        for (h, stream) in self.peers.iter_mut() {
            loop {
                let w = self.socket.recv_window(*h);
                if w.is_empty() {
                    break;
                }
                match stream.read(w) {
                    Ok(0) => {
                        self.socket.handle_eof(*h);
                        break;
                    }
                    Ok(n) => self.socket.commit_received(*h, n, now).unwrap(),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        self.socket.handle_eof(*h);
                        break;
                    }
                }
            }
        }
        self.socket.handle_timeout(now);
        while self.socket.poll_event().is_some() {}
        self.flush();
    }

    fn flush(&mut self) {
        for (h, stream) in self.peers.iter_mut() {
            loop {
                let out = self.socket.poll_transmit(*h);
                if out.is_empty() {
                    break;
                }
                match stream.write(out) {
                    Ok(n) => self.socket.mark_transmitted(*h, n).unwrap(),
                    Err(_) => break,
                }
            }
        }
    }

    /// Pumps until `f` gives a value (5 s at most).
    fn until<T>(&mut self, what: &str, mut f: impl FnMut(&mut Host) -> Option<T>) -> T {
        let deadline = StdInstant::now() + Duration::from_secs(5);
        loop {
            self.pump();
            if let Some(t) = f(self) {
                return t;
            }
            assert!(StdInstant::now() < deadline, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn ready_peers(&self) -> usize {
        self.socket
            .peers()
            .filter(|&h| self.socket.peer_type(h).is_some())
            .count()
    }

    fn recv(&mut self) -> Vec<Vec<u8>> {
        self.until("a message", |h| {
            h.socket
                .recv()
                .ok()
                .map(|m| m.frames().map(<[u8]>::to_vec).collect())
        })
    }
}

fn zrecv(host: &mut Host, s: &zmq::Socket) -> Vec<Vec<u8>> {
    host.until("libzmq to receive", |_| {
        s.recv_multipart(zmq::DONTWAIT).ok()
    })
}

#[test]
fn our_req_round_robins_over_two_libzmq_reps() {
    let ctx = zmq::Context::new();
    let reps: Vec<zmq::Socket> = (0..2).map(|_| zsocket(&ctx, zmq::REP)).collect();
    let mut host = Host::new(SocketConfig::new(Config::new(SocketType::Req)));
    for r in &reps {
        host.connect(zbind(r));
    }
    host.until("both peers ready", |h| (h.ready_peers() == 2).then_some(()));
    let mut served = Vec::new();
    for i in 0..6u8 {
        host.socket.send(&[&[i]]).unwrap();
        host.flush();
        let (who, req) = host.until("a REP to get the request", |_| {
            reps.iter()
                .enumerate()
                .find_map(|(k, r)| r.recv_multipart(zmq::DONTWAIT).ok().map(|m| (k, m)))
        });
        assert_eq!(req, [vec![i]], "delimiter stripped by libzmq REP");
        reps[who].send(vec![i, 100 + who as u8], 0).unwrap();
        assert_eq!(host.recv(), [vec![i, 100 + who as u8]]);
        served.push(who);
    }
    assert_eq!(served, [0, 1, 0, 1, 0, 1], "round robin");
}

#[test]
fn our_router_routes_replies_to_three_libzmq_dealers_by_routing_id() {
    let ctx = zmq::Context::new();
    let (listener, ep) = listen();
    let mut host = Host::new(SocketConfig::new(Config::new(SocketType::Router)));
    let dealers: Vec<zmq::Socket> = (0..3)
        .map(|k| {
            let d = zsocket(&ctx, zmq::DEALER);
            d.set_identity(format!("dealer-{k}").as_bytes()).unwrap();
            d.connect(&ep).unwrap();
            d
        })
        .collect();
    for _ in 0..3 {
        host.accept(&listener);
    }
    host.until("three peers ready", |h| {
        (h.ready_peers() == 3).then_some(())
    });
    for (k, d) in dealers.iter().enumerate() {
        d.send_multipart([format!("from {k}").into_bytes()], 0)
            .unwrap();
    }
    let mut got: Vec<Vec<Vec<u8>>> = (0..3).map(|_| host.recv()).collect();
    got.sort();
    for (k, m) in got.iter().enumerate() {
        assert_eq!(
            m,
            &[
                format!("dealer-{k}").into_bytes(),
                format!("from {k}").into_bytes()
            ]
        );
    }
    for k in (0..3).rev() {
        host.socket
            .send(&[format!("dealer-{k}").as_bytes(), b"", b"reply"])
            .unwrap();
    }
    host.flush();
    for d in &dealers {
        assert_eq!(zrecv(&mut host, d), [b"".to_vec(), b"reply".to_vec()]);
    }
}

#[test]
fn our_pull_fair_queues_two_libzmq_pushes() {
    let ctx = zmq::Context::new();
    let pushes: Vec<zmq::Socket> = (0..2).map(|_| zsocket(&ctx, zmq::PUSH)).collect();
    let mut host = Host::new(SocketConfig::new(Config::new(SocketType::Pull)));
    for p in &pushes {
        host.connect(zbind(p));
    }
    host.until("both peers ready", |h| (h.ready_peers() == 2).then_some(()));
    for (k, p) in pushes.iter().enumerate() {
        for i in 0..200u16 {
            p.send_multipart([vec![k as u8], i.to_be_bytes().to_vec()], 0)
                .unwrap();
        }
    }
    let mut last = [None::<u16>; 2];
    for _ in 0..400 {
        let m = host.recv();
        let k = m[0][0] as usize;
        let i = u16::from_be_bytes([m[1][0], m[1][1]]);
        assert!(last[k] < Some(i), "order from push {k}");
        last[k] = Some(i);
    }
    assert_eq!(last, [Some(199), Some(199)]);
}

#[test]
fn our_pair_with_libzmq_pair_both_ways() {
    let ctx = zmq::Context::new();
    let pair = zsocket(&ctx, zmq::PAIR);
    let mut host = Host::new(SocketConfig::new(Config::new(SocketType::Pair)));
    host.connect(zbind(&pair));
    host.until("peer ready", |h| (h.ready_peers() == 1).then_some(()));
    host.socket.send(&[b"ping", b""]).unwrap();
    host.flush();
    assert_eq!(zrecv(&mut host, &pair), [b"ping".to_vec(), vec![]]);
    pair.send_multipart([&b"pong"[..]], 0).unwrap();
    assert_eq!(host.recv(), [b"pong".to_vec()]);
}
