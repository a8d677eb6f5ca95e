//! A CURVE ROUTER socket serving CURVE DEALER sessions: each peer gets its own randomness,
//! the application authenticates each client key, messages are routed encrypted.
#![cfg(feature = "curve")]

mod common;

use common::{drain, leak, take_output, Ev};
use zmtp_core::mechanism::curve::{CurveKeyPair, CurveRandom};
use zmtp_core::socket::{AddPeerError, PeerSlot, Socket, SocketConfig, SocketEvent};
use zmtp_core::{Buffers, Config, ConfigError, Instant, Role, Security, Session, SocketType};

type Client = (zmtp_core::socket::PeerHandle, Session<'static>, Vec<Ev>);

fn counter_random(seed: u8) -> CurveRandom {
    // Tests only: a deterministic "CSPRNG".
    let mut n = seed;
    CurveRandom::from_fn(|buf| {
        for b in buf {
            n = n.wrapping_mul(31).wrapping_add(7);
            *b = n;
        }
    })
}

fn keys(seed: u8) -> &'static CurveKeyPair {
    Box::leak(Box::new(CurveKeyPair::from_secret([seed; 32])))
}

/// Moves bytes both ways between the socket and each client session, 50 rounds; the
/// socket's events.
fn pump(socket: &mut Socket<'static, 'static>, clients: &mut [Client]) -> Vec<SocketEvent> {
    let mut events = Vec::new();
    for _ in 0..50 {
        for (h, s, evs) in clients.iter_mut() {
            let out = take_output(s);
            socket.feed(*h, &out, Instant::ZERO);
            let back = socket.poll_transmit(*h).to_vec();
            socket.mark_transmitted(*h, back.len()).unwrap();
            s.feed(&back, Instant::ZERO);
            evs.extend(drain(s));
        }
        while let Some(e) = socket.poll_event() {
            events.push(e);
        }
    }
    events
}

#[test]
fn curve_router_socket_authenticates_and_routes_two_clients() {
    let server_keys = keys(1);
    let cfg =
        Config::new(SocketType::Router).with_security(Security::CurveServer { keys: server_keys });
    let slots: &'static mut [PeerSlot<'static>] = common::net::slots(4, 2048, 2048, 8192);
    let mut socket = Socket::new(SocketConfig::new(cfg), slots);
    // Without randomness a CURVE peer is refused, and the slot stays usable.
    assert_eq!(
        socket.add_peer(Role::Accepted, Instant::ZERO),
        Err(AddPeerError::Config(ConfigError::MissingRandomness))
    );
    let mut clients = Vec::new();
    for k in 0..2u8 {
        let h = socket
            .add_peer_curve(Role::Accepted, Instant::ZERO, counter_random(10 + k))
            .unwrap();
        let ccfg = Config::new(SocketType::Dealer)
            .with_identity(if k == 0 { b"c0" } else { b"c1" })
            .with_security(Security::CurveClient {
                server_key: *server_keys.public_key(),
                keys: keys(20 + k),
            });
        let s = Session::new_curve(
            &ccfg,
            Role::Connected,
            Buffers {
                rx: leak(2048),
                tx: leak(2048),
            },
            Instant::ZERO,
            counter_random(30 + k),
        )
        .unwrap();
        clients.push((h, s, Vec::<Ev>::new()));
    }
    let events = pump(&mut socket, &mut clients);
    // The application sees each client's long-term key and lets them in.
    let mut asked = 0;
    for e in &events {
        if let SocketEvent::Authenticate(h) = e {
            let req = socket.pending_auth(*h).unwrap();
            let k = clients.iter().position(|(c, _, _)| c == h).unwrap();
            assert_eq!(req.public_key, Some(*keys(20 + k as u8).public_key()));
            socket.accept_peer(*h);
            asked += 1;
        }
    }
    assert_eq!(asked, 2);
    pump(&mut socket, &mut clients);
    for (_, s, _) in &clients {
        assert!(s.is_ready());
    }
    clients[1].1.send_frame(b"hello from c1", false).unwrap();
    pump(&mut socket, &mut clients);
    let m = socket.recv().unwrap();
    let frames: Vec<Vec<u8>> = m.frames().map(<[u8]>::to_vec).collect();
    assert_eq!(frames, [b"c1".to_vec(), b"hello from c1".to_vec()]);
    socket.send(&[b"c1", b"secret reply"]).unwrap();
    socket.send(&[b"c0", b"other reply"]).unwrap();
    pump(&mut socket, &mut clients);
    assert!(clients[1]
        .2
        .contains(&Ev::Frame(b"secret reply".to_vec(), false)));
    assert!(clients[0]
        .2
        .contains(&Ev::Frame(b"other reply".to_vec(), false)));
}

/// A CURVE ROUTER (2 KiB transmit buffer) with one DEALER client, handshake done.
fn one_client() -> (Socket<'static, 'static>, Vec<Client>) {
    let server_keys = keys(1);
    let cfg =
        Config::new(SocketType::Router).with_security(Security::CurveServer { keys: server_keys });
    let slots: &'static mut [PeerSlot<'static>] = common::net::slots(1, 2048, 2048, 8192);
    let mut socket = Socket::new(SocketConfig::new(cfg), slots);
    let h = socket
        .add_peer_curve(Role::Accepted, Instant::ZERO, counter_random(10))
        .unwrap();
    let ccfg = Config::new(SocketType::Dealer)
        .with_identity(b"c0")
        .with_security(Security::CurveClient {
            server_key: *server_keys.public_key(),
            keys: keys(20),
        });
    let s = Session::new_curve(
        &ccfg,
        Role::Connected,
        Buffers {
            rx: leak(4096),
            tx: leak(2048),
        },
        Instant::ZERO,
        counter_random(30),
    )
    .unwrap();
    let mut clients = vec![(h, s, Vec::<Ev>::new())];
    for e in pump(&mut socket, &mut clients) {
        if let SocketEvent::Authenticate(h) = e {
            socket.accept_peer(h);
        }
    }
    pump(&mut socket, &mut clients);
    assert!(clients[0].1.is_ready());
    (socket, clients)
}

#[test]
fn curve_frame_larger_than_the_transmit_buffer_allows_is_refused_at_send() {
    // CURVE seals each frame whole (RFC 26), so a frame must fit the transmit buffer: a
    // larger one is refused when sent, instead of waiting in the queue for ever (and
    // holding up every message behind it).
    let (mut socket, mut clients) = one_client();
    let max = zmtp_core::curve_max_frame_body(2048);
    let too_big = vec![7u8; max + 1];
    assert_eq!(
        socket.send(&[b"c0", &too_big]),
        Err(zmtp_core::socket::SocketSendError::TooLarge)
    );
    // The largest that fits goes, and so does what follows it.
    let largest = vec![8u8; max];
    socket.send(&[b"c0", &largest]).unwrap();
    socket.send(&[b"c0", b"after"]).unwrap();
    pump(&mut socket, &mut clients);
    let frames: Vec<&Ev> = clients[0]
        .2
        .iter()
        .filter(|e| matches!(e, Ev::Frame(..)))
        .collect();
    assert_eq!(
        frames,
        [
            &Ev::Frame(largest, false),
            &Ev::Frame(b"after".to_vec(), false)
        ]
    );
}

#[test]
fn curve_message_of_many_frames_filling_the_buffer_arrives_whole() {
    // Ten 180-byte frames: 1 890 bytes with plain headers, which fit the 2 KiB transmit
    // buffer's frame space, but 2 220 once each travels in a MESSAGE (33 bytes more). The
    // socket must count that overhead and queue the message, not write the first frames
    // and lose the rest.
    let (mut socket, mut clients) = one_client();
    let bodies: Vec<Vec<u8>> = (0..10u8).map(|k| vec![k; 180]).collect();
    let mut msg: Vec<&[u8]> = vec![b"c0"];
    msg.extend(bodies.iter().map(Vec::as_slice));
    socket.send(&msg).unwrap();
    socket.send(&[b"c0", b"next"]).unwrap();
    pump(&mut socket, &mut clients);
    let got: Vec<Ev> = clients[0]
        .2
        .iter()
        .filter(|e| matches!(e, Ev::Frame(..)))
        .cloned()
        .collect();
    let mut want: Vec<Ev> = bodies
        .iter()
        .enumerate()
        .map(|(k, b)| Ev::Frame(b.clone(), k < 9))
        .collect();
    want.push(Ev::Frame(b"next".to_vec(), false));
    assert_eq!(got, want);
}
