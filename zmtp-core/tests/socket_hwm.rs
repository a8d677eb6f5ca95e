//! High-water marks: drop or block per pattern, as libzmq does (PROTOCOL.md, issue 3).

mod common;

use common::net::Net;
use zmtp_core::socket::{SocketConfig, SocketSendError};
use zmtp_core::{Config, SocketType};

fn full_peer_net(ty: SocketType, mandatory: bool) -> Net {
    let mut cfg = SocketConfig::new(Config::new(ty));
    cfg.send_hwm = 3;
    cfg.router_mandatory = mandatory;
    let mut n = Net::with_memory(cfg, 4, 1024, 256, 4096);
    n.connect(SocketType::Dealer, b"slow");
    n.connect(SocketType::Dealer, b"fast");
    n.remotes[0].reading = false;
    n
}

#[test]
fn router_drops_messages_for_a_peer_at_its_hwm_and_keeps_serving_others() {
    let mut n = full_peer_net(SocketType::Router, false);
    let body = [1u8; 100];
    for _ in 0..50 {
        // Never blocks, never errors: the slow peer's excess is dropped.
        assert_eq!(n.socket.send(&[b"slow", &body]), Ok(()));
        assert_eq!(n.socket.send(&[b"fast", &body]), Ok(()));
        n.run();
    }
    assert_eq!(
        n.remotes[1].messages.len(),
        50,
        "the fast peer got everything"
    );
    n.remotes[0].reading = true;
    n.run();
    let slow = n.remotes[0].messages.len();
    assert!(
        (3..50).contains(&slow),
        "slow peer got its HWM's worth, not all: {slow}"
    );
    assert!(
        n.remotes[0].messages.iter().all(|m| m == &[body.to_vec()]),
        "whole messages only"
    );
}

#[test]
fn router_mandatory_would_blocks_instead_of_dropping() {
    let mut n = full_peer_net(SocketType::Router, true);
    let body = [1u8; 100];
    let mut blocked = false;
    for _ in 0..50 {
        match n.socket.send(&[b"slow", &body]) {
            Ok(()) => {}
            Err(SocketSendError::WouldBlock) => {
                blocked = true;
                break;
            }
            Err(e) => panic!("{e:?}"),
        }
        n.run();
    }
    assert!(blocked, "ROUTER_MANDATORY reports a full peer");
    assert_eq!(n.socket.send(&[b"fast", &body]), Ok(()));
}

#[test]
fn dealer_blocks_when_its_only_peer_is_full_and_loses_nothing() {
    let mut cfg = SocketConfig::new(Config::new(SocketType::Dealer));
    cfg.send_hwm = 3;
    let mut n = Net::with_memory(cfg, 2, 1024, 256, 4096);
    n.connect(SocketType::Router, b"");
    n.remotes[0].reading = false;
    let mut sent = 0;
    while n.socket.send(&[&[sent as u8; 100]]).is_ok() {
        sent += 1;
        n.run();
        assert!(sent < 100);
    }
    assert_eq!(n.socket.send(&[b"x"]), Err(SocketSendError::WouldBlock));
    n.remotes[0].reading = true;
    n.run();
    let got: Vec<u8> = n.remotes[0].messages.iter().map(|m| m[0][0]).collect();
    assert_eq!(got, (0..sent as u8).collect::<Vec<_>>());
}
