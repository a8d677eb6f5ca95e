//! Direct frames (`zmtp_core::socket::stream`): large bodies written from and read into the
//! driver's memory, with the core's routing, limits and atomicity unchanged.

use std::collections::{HashMap, VecDeque};

use zmtp_core::socket::{
    Part, PeerHandle, PeerMemory, PeerSlot, Socket, SocketConfig, SocketSendError,
};
use zmtp_core::{
    CloseReason, Config, Event, Instant, ProtocolError, Role, Session, SocketType, UsageError,
};

fn leak(n: usize) -> &'static mut [u8] {
    Box::leak(vec![0u8; n].into_boxed_slice())
}

fn socket(
    cfg: SocketConfig<'static>,
    peers: usize,
    buf: usize,
    queue: usize,
) -> Socket<'static, 'static> {
    let slots: Vec<PeerSlot<'static>> = (0..peers)
        .map(|_| {
            PeerSlot::new(PeerMemory {
                rx: leak(buf),
                tx: leak(buf),
                recv_queue: leak(queue),
                send_queue: leak(queue),
            })
        })
        .collect();
    Socket::new(cfg, Box::leak(slots.into_boxed_slice()))
}

/// One side's driver state: direct bodies to send per peer, bodies being received.
#[derive(Default)]
struct Driver {
    out: HashMap<PeerHandle, VecDeque<Vec<u8>>>,
    cur: Option<Vec<u8>>,
    done: VecDeque<Vec<u8>>,
    /// Bytes per write (a small value makes every write partial).
    write_max: usize,
}

/// Moves bytes from `a`'s peer `ha` to `b`'s peer `hb` over `wire`, the way a driver with
/// vectored writes and direct reads would. Returns whether anything moved.
fn pump(
    a: &mut Socket<'static, 'static>,
    ha: PeerHandle,
    da: &mut Driver,
    wire: &mut VecDeque<u8>,
    b: &mut Socket<'static, 'static>,
    hb: PeerHandle,
    db: &mut Driver,
) -> bool {
    let mut moved = false;
    // Write.
    loop {
        let t = a.poll_transmit_direct(ha);
        if t.is_empty() {
            break;
        }
        let head = t.bytes.to_vec();
        let direct = t.direct as usize;
        let mut out = head.clone();
        if direct > 0 {
            let body = da
                .out
                .get(&ha)
                .and_then(|q| q.front())
                .expect("a body is due");
            out.extend_from_slice(&body[body.len() - direct..]);
        }
        let n = out.len().min(da.write_max.max(1));
        wire.extend(&out[..n]);
        a.mark_transmitted_direct(ha, n).unwrap();
        if direct > 0 && n.saturating_sub(head.len()) == direct {
            da.out.get_mut(&ha).unwrap().pop_front();
        }
        moved = true;
    }
    // Read.
    let now = Instant::ZERO;
    loop {
        if let Some(d) = b.direct_body(hb) {
            let owed = d.owed() as usize;
            let body = db.cur.get_or_insert_with(Vec::new);
            let n = if !d.buffered.is_empty() {
                body.extend_from_slice(d.buffered);
                d.buffered.len()
            } else {
                let n = owed.min(wire.len()).min(db.write_max.max(1));
                body.extend(wire.drain(..n));
                n
            };
            if n == 0 {
                break;
            }
            b.commit_direct(hb, n, now).unwrap();
            if n == owed {
                db.done.push_back(db.cur.take().unwrap());
            }
            moved = true;
            continue;
        }
        let w = b.recv_window(hb);
        let n = w.len().min(wire.len());
        if n == 0 {
            break;
        }
        for (dst, src) in w.iter_mut().zip(wire.drain(..n)) {
            *dst = src;
        }
        b.commit_received(hb, n, now).unwrap();
        moved = true;
    }
    moved
}

/// Connected sockets `a` (first) and `b` (second), handshakes done.
struct Pair {
    a: Socket<'static, 'static>,
    b: Socket<'static, 'static>,
    ha: PeerHandle,
    hb: PeerHandle,
    da: Driver,
    db: Driver,
    ab: VecDeque<u8>,
    ba: VecDeque<u8>,
}

impl Pair {
    fn new(a: SocketConfig<'static>, b: SocketConfig<'static>, buf: usize, queue: usize) -> Pair {
        let mut a = socket(a, 1, buf, queue);
        let mut b = socket(b, 1, buf, queue);
        let ha = a.add_peer(Role::Connected, Instant::ZERO).unwrap();
        let hb = b.add_peer(Role::Accepted, Instant::ZERO).unwrap();
        let mut p = Pair {
            a,
            b,
            ha,
            hb,
            da: Driver {
                write_max: usize::MAX,
                ..Driver::default()
            },
            db: Driver {
                write_max: usize::MAX,
                ..Driver::default()
            },
            ab: VecDeque::new(),
            ba: VecDeque::new(),
        };
        p.run();
        while p.a.poll_event().is_some() {}
        while p.b.poll_event().is_some() {}
        p
    }

    fn run(&mut self) {
        for _ in 0..100_000 {
            let x = pump(
                &mut self.a,
                self.ha,
                &mut self.da,
                &mut self.ab,
                &mut self.b,
                self.hb,
                &mut self.db,
            );
            let y = pump(
                &mut self.b,
                self.hb,
                &mut self.db,
                &mut self.ba,
                &mut self.a,
                self.ha,
                &mut self.da,
            );
            if !x && !y {
                return;
            }
        }
        panic!("no quiescence");
    }

    /// Sends from `a` with the direct bodies given to its driver.
    fn send(
        &mut self,
        frames: &[Vec<u8>],
        direct_min: usize,
    ) -> Result<Option<PeerHandle>, SocketSendError> {
        let parts: Vec<Part<'_>> = frames
            .iter()
            .map(|f| {
                if f.len() >= direct_min {
                    Part::Direct(f.len() as u64)
                } else {
                    Part::Bytes(f)
                }
            })
            .collect();
        let r = self.a.send_parts(&parts);
        if let Ok(Some(peer)) = r {
            let q = self.da.out.entry(peer).or_default();
            q.extend(frames.iter().filter(|f| f.len() >= direct_min).cloned());
        }
        r
    }

    /// The next message received by `b`, direct bodies put back in place.
    fn recv(&mut self) -> Option<Vec<Vec<u8>>> {
        let m = self.b.recv().ok()?;
        let mut out = Vec::new();
        for p in m.parts() {
            out.push(match p {
                Part::Bytes(b) => b.to_vec(),
                Part::Direct(len) => {
                    let body = self.db.done.pop_front().expect("a received body");
                    assert_eq!(body.len() as u64, len);
                    body
                }
            });
        }
        Some(out)
    }
}

fn body(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|k| seed.wrapping_add((k % 251) as u8))
        .collect()
}

fn cfg(ty: SocketType, direct: Option<u64>) -> SocketConfig<'static> {
    let mut c = SocketConfig::new(Config::new(ty));
    c.direct_threshold = direct;
    c
}

#[test]
fn push_to_pull_mixing_small_and_direct_frames_both_ways_of_receiving() {
    for recv_direct in [Some(1000), None] {
        for write_max in [usize::MAX, 7, 1] {
            let mut p = Pair::new(
                cfg(SocketType::Push, None),
                cfg(SocketType::Pull, recv_direct),
                2048,
                64 * 1024,
            );
            p.da.write_max = write_max;
            p.db.write_max = write_max;
            let msgs = vec![
                vec![body(1, 5000)],
                vec![
                    body(2, 10),
                    body(3, 3000),
                    Vec::new(),
                    body(4, 1500),
                    body(5, 999),
                ],
                vec![body(6, 100), body(7, 20)],
                vec![body(8, 1000), body(9, 1001)],
            ];
            for m in &msgs {
                assert!(p.send(m, 1500).unwrap().is_some());
            }
            p.run();
            for (i, m) in msgs.iter().enumerate() {
                assert_eq!(
                    p.recv().as_ref(),
                    Some(m),
                    "{recv_direct:?} {write_max} message {i}"
                );
            }
            assert!(p.recv().is_none());
            assert!(
                p.da.out.values().all(VecDeque::is_empty),
                "every body written"
            );
            assert!(p.db.done.is_empty(), "every body delivered");
        }
    }
}

#[test]
fn direct_frames_are_not_queued_bodies_so_large_messages_pass_small_queues() {
    // 4 KiB queues, a 1 MiB direct frame each way: only its record takes queue room.
    let mut p = Pair::new(
        cfg(SocketType::Pair, Some(4096)),
        cfg(SocketType::Pair, Some(4096)),
        1024,
        4096,
    );
    let m = vec![body(1, 1 << 20), body(2, 100)];
    assert!(p.send(&m, 4096).unwrap().is_some());
    p.run();
    assert_eq!(p.recv(), Some(m));
}

#[test]
fn send_hwm_counts_messages_with_direct_frames() {
    let mut a = cfg(SocketType::Push, None);
    a.send_hwm = 2;
    let mut p = Pair::new(a, cfg(SocketType::Pull, Some(512)), 1024, 64 * 1024);
    // Nothing moves: the first message's header goes into the session (it is out of the
    // queue), two more fill the queue to its HWM.
    let m = vec![body(1, 10_000)];
    let mut sent = 0;
    while p.send(&m, 512).is_ok() {
        sent += 1;
        // The session took the first message, then two fill the queue to its HWM.
        let _ = p.a.poll_transmit_direct(p.ha);
        assert!(sent < 10, "the HWM holds");
    }
    assert_eq!(p.send(&m, 512), Err(SocketSendError::WouldBlock));
    p.run();
    for _ in 0..sent {
        assert_eq!(p.recv(), Some(m.clone()));
    }
    assert!(p.send(&m, 512).unwrap().is_some(), "room again once sent");
}

#[test]
fn router_routes_direct_messages_by_id_and_drops_unknown_ones() {
    let mut router = cfg(SocketType::Router, Some(1000));
    router.router_first_id = 7;
    let mut p = Pair::new(router, cfg(SocketType::Dealer, Some(1000)), 2048, 64 * 1024);
    let id = p.a.peer_routing_id(p.ha).unwrap().to_vec();
    assert_eq!(
        p.a.send_parts(&[Part::Bytes(b"nobody"), Part::Direct(5000)]),
        Ok(None),
        "unknown id: dropped"
    );
    let m = vec![body(1, 5000), body(2, 7)];
    let parts = [Part::Bytes(&id), Part::Direct(5000), Part::Bytes(&m[1])];
    assert_eq!(p.a.send_parts(&parts), Ok(Some(p.ha)));
    p.da.out.entry(p.ha).or_default().push_back(m[0].clone());
    p.run();
    assert_eq!(p.recv(), Some(m));
    // Back: the ROUTER shows the direct frame after the routing id.
    let back = [Part::Direct(3000)];
    assert!(p.b.send_parts(&back).unwrap().is_some());
    p.db.out.entry(p.hb).or_default().push_back(body(3, 3000));
    p.run();
    let got = p.a.recv().unwrap();
    assert_eq!(
        got.parts().collect::<Vec<_>>(),
        [Part::Bytes(&id), Part::Direct(3000)]
    );
    assert_eq!(p.da.done.pop_front(), Some(body(3, 3000)));
}

#[test]
fn direct_frames_need_a_type_that_supports_them() {
    let mut pubs = socket(cfg(SocketType::Pub, None), 1, 1024, 4096);
    assert!(!pubs.supports_direct());
    assert_eq!(
        pubs.send_parts(&[Part::Direct(10)]),
        Err(SocketSendError::NotAllowed)
    );
    let mut req = socket(cfg(SocketType::Req, None), 1, 1024, 4096);
    assert_eq!(
        req.send_parts(&[Part::Direct(10)]),
        Err(SocketSendError::NotAllowed)
    );
    let mut push = socket(cfg(SocketType::Push, None), 1, 1024, 4096);
    assert!(push.supports_direct());
    assert_eq!(
        push.send_parts(&[Part::Direct(0)]),
        Err(SocketSendError::Empty)
    );
    assert_eq!(push.send_parts(&[]), Err(SocketSendError::Empty));
    // No peer yet.
    assert_eq!(
        push.send_parts(&[Part::Direct(10)]),
        Err(SocketSendError::WouldBlock)
    );
}

// ------------------------------------------------------------------ session level

fn session(ty: SocketType, max: Option<u64>) -> Session<'static> {
    let mut c = Config::new(ty);
    c.max_message_size = max;
    let mut s = Session::new(
        &c,
        Role::Accepted,
        zmtp_core::Buffers {
            rx: leak(1024),
            tx: leak(1024),
        },
        Instant::ZERO,
    )
    .unwrap();
    s.set_direct_threshold(Some(100));
    s
}

/// A NULL greeting and READY from a PUSH client.
fn handshake_bytes() -> Vec<u8> {
    let mut g = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 3, 1];
    g.extend_from_slice(b"NULL");
    g.resize(64, 0);
    let mut cmd = vec![5];
    cmd.extend_from_slice(b"READY");
    cmd.push(11);
    cmd.extend_from_slice(b"Socket-Type");
    cmd.extend_from_slice(&4u32.to_be_bytes());
    cmd.extend_from_slice(b"PUSH");
    g.extend_from_slice(&[0x04, cmd.len() as u8]);
    g.extend_from_slice(&cmd);
    g
}

fn ready_session(max: Option<u64>) -> Session<'static> {
    let mut s = session(SocketType::Pull, max);
    s.feed(&handshake_bytes(), Instant::ZERO);
    assert!(matches!(s.poll_event(), Some(Event::HandshakeComplete(_))));
    s
}

fn long_frame(len: u64, more: bool) -> Vec<u8> {
    let mut f = vec![if more { 3 } else { 2 }];
    f.extend_from_slice(&len.to_be_bytes());
    f
}

#[test]
fn session_announces_a_direct_frame_and_lets_the_caller_take_its_body() {
    let mut s = ready_session(None);
    let mut input = vec![0x01, 3, b'a', b'b', b'c'];
    input.extend(long_frame(300, false));
    input.extend([7u8; 120]);
    s.feed(&input, Instant::ZERO);
    assert_eq!(
        s.poll_event(),
        Some(Event::Frame {
            data: b"abc",
            more: true
        })
    );
    assert_eq!(
        s.poll_event(),
        Some(Event::DirectFrame {
            len: 300,
            more: false
        })
    );
    assert_eq!(s.poll_event(), None, "nothing until the body is taken");
    let d = s.direct_body().unwrap();
    assert_eq!(
        (d.len, d.offset, d.buffered.len(), d.owed()),
        (300, 0, 120, 300)
    );
    // Too much: refused, nothing changes.
    assert_eq!(
        s.commit_direct(301, Instant::ZERO),
        Err(UsageError::CommitExceedsWindow)
    );
    s.commit_direct(120, Instant::ZERO).unwrap();
    let d = s.direct_body().unwrap();
    assert_eq!((d.offset, d.buffered.len(), d.owed()), (120, 0, 180));
    // The rest read by the caller from its transport.
    s.commit_direct(180, Instant::ZERO).unwrap();
    assert!(s.direct_body().is_none());
    // The next frame comes normally.
    s.feed(&[0x00, 1, b'z'], Instant::ZERO);
    assert_eq!(
        s.poll_event(),
        Some(Event::Frame {
            data: b"z",
            more: false
        })
    );
}

#[test]
fn a_huge_announced_direct_frame_is_refused_on_its_header() {
    let mut s = ready_session(Some(1 << 20));
    s.feed(&long_frame(1 << 62, false), Instant::ZERO);
    assert_eq!(
        s.poll_event(),
        Some(Event::Closed(CloseReason::Protocol(
            ProtocolError::MessageTooLarge
        )))
    );
    assert!(s.direct_body().is_none());
}

#[test]
fn a_direct_body_already_buffered_survives_the_end_of_the_stream() {
    let mut s = ready_session(None);
    let mut input = long_frame(150, false);
    input.extend([1u8; 150]);
    s.feed(&input, Instant::ZERO);
    s.handle_eof();
    assert_eq!(
        s.poll_event(),
        Some(Event::DirectFrame {
            len: 150,
            more: false
        })
    );
    assert_eq!(s.poll_event(), None, "the body is still to take");
    s.commit_direct(150, Instant::ZERO).unwrap();
    assert_eq!(s.poll_event(), Some(Event::Closed(CloseReason::Eof)));
}

#[test]
fn body_written_by_the_caller_needs_the_header_out_first() {
    let mut s = session(SocketType::Push, None);
    // The other side's handshake, as a PULL.
    let mut hs = handshake_bytes();
    let at = hs.len() - 4;
    hs.splice(at.., b"PULL".iter().copied());
    s.feed(&hs, Instant::ZERO);
    while s.poll_event().is_some() {}
    let pending = s.poll_transmit().len();
    s.mark_transmitted(pending).unwrap();
    s.start_frame(5000, false).unwrap();
    assert_eq!(s.poll_transmit().len(), 9);
    assert_eq!(
        s.mark_body_transmitted(10),
        Err(UsageError::TransmitExceedsPending),
        "header first"
    );
    s.mark_transmitted(9).unwrap();
    assert_eq!(
        s.mark_body_transmitted(5001),
        Err(UsageError::TransmitExceedsPending)
    );
    s.mark_body_transmitted(4000).unwrap();
    assert_eq!(s.frame_body_remaining(), 1000);
    s.mark_body_transmitted(1000).unwrap();
    assert_eq!(s.frame_body_remaining(), 0);
    s.send_frame(b"next", false).unwrap();
}
