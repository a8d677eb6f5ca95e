//! Slots whose memory comes with each peer (`PeerSlot::empty`, `Socket::add_peer_with`) and
//! goes back when it is removed (`Socket::remove_peer`).

mod common;

use common::leak;
use common::net::Net;
use zmtp_core::socket::{AddPeerError, PeerMemory, PeerSlot, Socket, SocketConfig, SocketEvent};
use zmtp_core::{Config, ConfigError, Instant, Role, SocketType};

fn memory(rx: usize, queue: usize) -> PeerMemory<'static> {
    PeerMemory {
        rx: leak(rx),
        tx: leak(1024),
        recv_queue: leak(queue),
        send_queue: leak(queue),
    }
}

/// Addresses of the four buffers, to check the same memory came back.
fn addrs(m: &PeerMemory<'_>) -> [(usize, usize); 4] {
    [
        (m.rx.as_ptr() as usize, m.rx.len()),
        (m.tx.as_ptr() as usize, m.tx.len()),
        (m.recv_queue.as_ptr() as usize, m.recv_queue.len()),
        (m.send_queue.as_ptr() as usize, m.send_queue.len()),
    ]
}

fn empty_slots(n: usize) -> &'static mut [PeerSlot<'static>] {
    Box::leak((0..n).map(|_| PeerSlot::empty()).collect())
}

fn net(ty: SocketType, slots: &'static mut [PeerSlot<'static>]) -> Net {
    Net {
        socket: Socket::new(SocketConfig::new(Config::new(ty)), slots),
        remotes: Vec::new(),
        now: Instant::ZERO,
        socket_events: Vec::new(),
    }
}

#[test]
fn memory_comes_with_the_peer_and_goes_back_when_it_is_removed() {
    let mut n = net(SocketType::Pull, empty_slots(2));
    assert_eq!(
        n.socket.add_peer(Role::Accepted, Instant::ZERO),
        Err(AddPeerError::NoFreeSlot),
        "an empty slot takes no peer without memory"
    );
    for round in 0..3 {
        // Sizes differ per connection.
        let m = memory(1024 * (round + 1), 8192 * (round + 1));
        let given = addrs(&m);
        let h = n
            .socket
            .add_peer_with(m, Role::Accepted, Instant::ZERO)
            .unwrap();
        let r = n.attach(h, SocketType::Push, b"", 4096, 1 << 16);
        let big = vec![round as u8; 5000 * (round + 1)];
        n.remotes[r].send(&[b"hello", &big]);
        n.run();
        let m = n.socket.recv().unwrap();
        assert_eq!(m.frames().collect::<Vec<_>>(), [&b"hello"[..], &big]);
        n.kill(r);
        assert!(n
            .socket_events
            .iter()
            .any(|e| matches!(e, SocketEvent::PeerClosed(p, _) if *p == h)));
        let back = n.socket.remove_peer(h).expect("the memory comes back");
        assert_eq!(addrs(&back), given, "the same memory");
        assert_eq!(n.socket.remove_peer(h).map(|m| addrs(&m)), None, "once");
        assert_eq!(n.socket.peers().count(), 0);
    }
}

#[test]
fn refused_memory_comes_back_with_the_error() {
    let mut socket = Socket::new(
        SocketConfig::new(Config::new(SocketType::Dealer)),
        empty_slots(1),
    );
    let small = memory(16, 64);
    let given = addrs(&small);
    let (e, back) = socket
        .add_peer_with(small, Role::Connected, Instant::ZERO)
        .unwrap_err();
    assert_eq!(e, AddPeerError::Config(ConfigError::RxBufferTooSmall));
    assert_eq!(addrs(&back), given);
    // The slot is still free for memory that works.
    let h = socket
        .add_peer_with(memory(1024, 4096), Role::Connected, Instant::ZERO)
        .unwrap();
    assert!(!socket.poll_transmit(h).is_empty(), "greeting queued");
    let m = memory(1024, 4096);
    let given = addrs(&m);
    let (e, back) = socket
        .add_peer_with(m, Role::Connected, Instant::ZERO)
        .unwrap_err();
    assert_eq!(e, AddPeerError::NoFreeSlot);
    assert_eq!(addrs(&back), given);
}

#[test]
fn slots_with_and_without_their_own_memory_mix() {
    let mut slots: Vec<PeerSlot<'static>> = common::net::slots(1, 1024, 1024, 8192)
        .iter_mut()
        .map(|s| std::mem::replace(s, PeerSlot::empty()))
        .collect();
    slots.push(PeerSlot::empty());
    let mut n = net(SocketType::Dealer, Box::leak(slots.into_boxed_slice()));
    let a = n.socket.add_peer(Role::Accepted, Instant::ZERO).unwrap();
    let b = n
        .socket
        .add_peer_with(memory(1024, 8192), Role::Accepted, Instant::ZERO)
        .unwrap();
    assert_ne!(a.index(), b.index());
    let ra = n.attach(a, SocketType::Dealer, b"", 4096, 1 << 16);
    let rb = n.attach(b, SocketType::Dealer, b"", 4096, 1 << 16);
    n.socket.send(&[b"one"]).unwrap();
    n.socket.send(&[b"two"]).unwrap();
    n.run();
    assert_eq!(n.remotes[ra].messages, [vec![b"one".to_vec()]]);
    assert_eq!(n.remotes[rb].messages, [vec![b"two".to_vec()]]);
    n.kill(ra);
    n.kill(rb);
    assert!(
        n.socket.remove_peer(a).is_none(),
        "a slot keeps its own memory"
    );
    assert!(n.socket.remove_peer(b).is_some());
    // The slot that owns memory takes a peer again.
    assert!(n.socket.add_peer(Role::Accepted, Instant::ZERO).is_ok());
}

#[test]
fn a_subscriber_with_empty_slots_subscribes_before_any_peer() {
    let slots = empty_slots(2);
    let memory_bytes = zmtp_core::socket::subscription_memory(SocketType::Sub, 2, 16);
    let subs = zmtp_core::socket::SubscriptionMemory::new(leak(memory_bytes));
    let mut n = Net {
        socket: Socket::with_subscriptions(
            SocketConfig::new(Config::new(SocketType::Sub)),
            slots,
            subs,
        ),
        remotes: Vec::new(),
        now: Instant::ZERO,
        socket_events: Vec::new(),
    };
    n.socket.subscribe(b"news").unwrap();
    let h = n
        .socket
        .add_peer_with(memory(1024, 8192), Role::Connected, Instant::ZERO)
        .unwrap();
    let r = n.attach(h, SocketType::Pub, b"", 4096, 1 << 16);
    n.run();
    assert!(
        n.remotes[r]
            .events
            .contains(&common::Ev::Subscribe(b"news".to_vec())),
        "{:?}",
        n.remotes[r].events
    );
}
