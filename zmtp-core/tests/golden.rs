//! Golden bytes: libzmq 4.3.5's greeting and READY for every socket type, and RFC 37's
//! worked example.

mod common;

use common::*;
use zmtp_core::{Config, Role, SocketType};

const VECTORS: &str = include_str!("vectors/libzmq435_null_greeting_ready.json");

#[test]
fn our_greeting_and_ready_equal_libzmq_435_for_every_socket_type() {
    let v: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 11);
    for (name, entry) in obj {
        let ty = SocketType::from_bytes(name.as_bytes()).unwrap();
        let libzmq_greeting = hex(entry["greeting"].as_str().unwrap());
        let libzmq_ready = hex(entry["ready_frame"].as_str().unwrap());
        let mut s = session(&Config::new(ty), Role::Connected, 1024, 1024);
        let greeting = take_output(&mut s);
        // Before the peer's greeting only our greeting goes out; READY is held.
        assert_eq!(greeting.len(), 64, "{name}");
        // libzmq puts the identity length + 1 into byte 8 (`01`); we send the RFC's zero
        // padding. Everything else is identical.
        let mut expected = libzmq_greeting.clone();
        expected[8] = 0;
        assert_eq!(greeting, expected, "{name} greeting");
        s.feed(&libzmq_greeting, ms(0));
        assert!(drain(&mut s).is_empty());
        assert_eq!(take_output(&mut s), libzmq_ready, "{name} READY");
    }
}

#[test]
fn rfc37_worked_example_dealer_ready() {
    let mut s = session(
        &Config::new(SocketType::Dealer),
        Role::Connected,
        1024,
        1024,
    );
    take_output(&mut s);
    s.feed(&peer_greeting(), ms(0));
    assert!(drain(&mut s).is_empty());
    let mut want = vec![0x04, 0x29, 0x05];
    want.extend_from_slice(b"READY");
    want.push(0x0b);
    want.extend_from_slice(b"Socket-Type");
    want.extend_from_slice(&[0, 0, 0, 6]);
    want.extend_from_slice(b"DEALER");
    want.push(0x08);
    want.extend_from_slice(b"Identity");
    want.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(take_output(&mut s), want);
}

#[test]
fn rfc37_worked_example_dealer_to_router_handshake() {
    let mut p = Pair::new(
        &Config::new(SocketType::Dealer),
        &Config::new(SocketType::Router),
    );
    p.handshake();
    assert_eq!(
        p.server_events,
        [Ev::Ready {
            socket_type: SocketType::Dealer,
            identity: vec![],
            minor: 1,
            metadata: vec![
                (b"Socket-Type".to_vec(), b"DEALER".to_vec()),
                (b"Identity".to_vec(), vec![])
            ],
        }]
    );
    p.client.send_frame(b"", true).unwrap();
    p.client.send_frame(b"hello", false).unwrap();
    p.run();
    assert_eq!(
        &p.server_events[1..],
        [Ev::Frame(vec![], true), Ev::Frame(b"hello".to_vec(), false)]
    );
}
