//! PUB, SUB, XPUB and XSUB over the socket layer (RFC 29 and PROTOCOL.md "Subscriptions"),
//! each with three or more peers on virtual time, plus property tests against a naive model.

mod common;

use std::collections::BTreeSet;

use common::net::Net;
use common::{command, frame, peer_greeting, ready, Ev};
use proptest::prelude::*;
use zmtp_core::socket::trie::{self, Trie};
use zmtp_core::socket::{
    subscription_memory, PeerHandle, SocketConfig, SocketEvent, SocketRecvError, SocketSendError,
};
use zmtp_core::{CloseReason, Config, Role, SocketType};

const TRIE: usize = 64 * 1024;
const NOTES: usize = 8192;

fn cfg(ty: SocketType) -> SocketConfig<'static> {
    SocketConfig::new(Config::new(ty))
}

fn net_with(cfg: SocketConfig<'static>) -> Net {
    Net::with_subscriptions(cfg, 8, (1024, 1024, 8192), TRIE, NOTES)
}

fn net(ty: SocketType) -> Net {
    net_with(cfg(ty))
}

fn msg(frames: &[&[u8]]) -> Vec<Vec<u8>> {
    frames.iter().map(|f| f.to_vec()).collect()
}

/// The SUBSCRIBE/CANCEL a remote (a PUB session) has seen, in order.
fn subscription_events(n: &Net, i: usize) -> Vec<Ev> {
    n.remotes[i]
        .events
        .iter()
        .filter(|e| matches!(e, Ev::Subscribe(_) | Ev::Cancel(_)))
        .cloned()
        .collect()
}

fn sub(t: &[u8]) -> Ev {
    Ev::Subscribe(t.to_vec())
}

fn cancel(t: &[u8]) -> Ev {
    Ev::Cancel(t.to_vec())
}

/// Remote `i` (a SUB session) subscribes, and the bytes move.
fn remote_subscribe(n: &mut Net, i: usize, topic: &[u8]) {
    n.remotes[i].session.send_subscribe(topic).unwrap();
    n.run();
}

fn remote_cancel(n: &mut Net, i: usize, topic: &[u8]) {
    n.remotes[i].session.send_cancel(topic).unwrap();
    n.run();
}

// ------------------------------------------------------------------ PUB

#[test]
fn pub_fans_out_to_matching_subscribers_only() {
    let mut n = net(SocketType::Pub);
    for _ in 0..4 {
        n.connect(SocketType::Sub, b"");
    }
    remote_subscribe(&mut n, 0, b"a");
    remote_subscribe(&mut n, 1, b"ab");
    remote_subscribe(&mut n, 2, b"b");
    // Remote 3 subscribes to nothing.
    let sent: [&[&[u8]]; 6] = [
        &[b"abc"],
        &[b"b1"],
        &[b"c"],
        &[b"ab", b"second frame"],
        &[b"a"],
        &[b"ba", b"", b"x"],
    ];
    for m in sent {
        n.socket.send(m).unwrap();
    }
    n.run();
    assert_eq!(
        n.remotes[0].messages,
        [msg(&[b"abc"]), msg(&[b"ab", b"second frame"]), msg(&[b"a"])]
    );
    assert_eq!(
        n.remotes[1].messages,
        [msg(&[b"abc"]), msg(&[b"ab", b"second frame"])]
    );
    assert_eq!(
        n.remotes[2].messages,
        [msg(&[b"b1"]), msg(&[b"ba", b"", b"x"])]
    );
    assert!(n.remotes[3].messages.is_empty());
    assert_eq!(n.socket.recv().err(), Some(SocketRecvError::NotAllowed));
}

#[test]
fn empty_subscription_matches_everything_including_the_empty_message() {
    let mut n = net(SocketType::Pub);
    for _ in 0..3 {
        n.connect(SocketType::Sub, b"");
    }
    remote_subscribe(&mut n, 0, b"");
    remote_subscribe(&mut n, 1, b"x");
    n.socket.send(&[b""]).unwrap();
    n.socket.send(&[b"x"]).unwrap();
    n.socket.send(&[b"", b"more"]).unwrap();
    n.socket.send(&[b"yz"]).unwrap();
    n.run();
    assert_eq!(
        n.remotes[0].messages,
        [
            msg(&[b""]),
            msg(&[b"x"]),
            msg(&[b"", b"more"]),
            msg(&[b"yz"])
        ]
    );
    assert_eq!(n.remotes[1].messages, [msg(&[b"x"])]);
    assert!(n.remotes[2].messages.is_empty());
}

#[test]
fn pub_keeps_a_set_per_peer_subscribe_twice_cancel_once_leaves_nothing() {
    let mut n = net(SocketType::Pub);
    for _ in 0..3 {
        n.connect(SocketType::Sub, b"");
    }
    remote_subscribe(&mut n, 0, b"A");
    remote_subscribe(&mut n, 0, b"A");
    remote_cancel(&mut n, 0, b"A");
    remote_subscribe(&mut n, 1, b"A");
    // A cancel of something never subscribed changes nothing.
    remote_cancel(&mut n, 2, b"A");
    n.socket.send(&[b"A1"]).unwrap();
    n.run();
    assert!(n.remotes[0].messages.is_empty(), "set semantics per peer");
    assert_eq!(n.remotes[1].messages, [msg(&[b"A1"])]);
    assert!(n.remotes[2].messages.is_empty());
    assert_eq!(n.socket.subscription_stats().topics, 1);
}

#[test]
fn pub_drops_what_subscribers_send_and_keeps_reading_their_subscriptions() {
    let mut n = net(SocketType::Pub);
    for _ in 0..3 {
        n.connect(SocketType::Sub, b"");
    }
    // Far more than the peer's receive queue: must not wedge or close the peer.
    for i in 0..500u16 {
        n.remotes[0].send(&[&i.to_be_bytes(), &[7; 100]]);
    }
    n.run();
    remote_subscribe(&mut n, 0, b"t");
    n.socket.send(&[b"t!"]).unwrap();
    n.run();
    assert!(n.remotes[0].session.is_ready());
    assert_eq!(n.remotes[0].messages, [msg(&[b"t!"])]);
}

#[test]
fn pub_forgets_the_subscriptions_of_a_peer_that_is_gone() {
    let mut n = net(SocketType::Pub);
    for _ in 0..3 {
        n.connect(SocketType::Sub, b"");
    }
    remote_subscribe(&mut n, 0, b"only-zero");
    remote_subscribe(&mut n, 1, b"shared");
    remote_subscribe(&mut n, 0, b"shared");
    let before = n.socket.subscription_stats();
    assert_eq!(before.topics, 2);
    let h = n.remotes[0].handle;
    n.kill(0);
    n.socket.remove_peer(h);
    let after = n.socket.subscription_stats();
    assert_eq!(after.topics, 1);
    assert!(after.nodes_used < before.nodes_used, "nodes freed");
    // The slot is reused by a newcomer that has subscribed to nothing.
    let again = n.connect(SocketType::Sub, b"");
    n.socket.send(&[b"only-zero"]).unwrap();
    n.socket.send(&[b"shared"]).unwrap();
    n.run();
    assert!(n.remotes[again].messages.is_empty());
    assert_eq!(n.remotes[1].messages, [msg(&[b"shared"])]);
}

#[test]
fn pub_drops_for_a_full_subscriber_while_others_get_everything() {
    let mut c = cfg(SocketType::Pub);
    c.send_hwm = 10;
    let mut n = net_with(c);
    for i in 0..3 {
        n.connect(SocketType::Sub, b"");
        remote_subscribe(&mut n, i, b"");
    }
    n.remotes[0].reading = false; // a slow reader
    let body = [9u8; 100];
    for i in 0..300u16 {
        n.socket.send(&[&i.to_be_bytes(), &body]).unwrap(); // never blocks
        n.run();
    }
    let seqs = |n: &Net, k: usize| -> Vec<u16> {
        n.remotes[k]
            .messages
            .iter()
            .map(|m| {
                assert_eq!(m.len(), 2, "whole message");
                assert_eq!(m[1], body, "whole body");
                u16::from_be_bytes([m[0][0], m[0][1]])
            })
            .collect()
    };
    let all: Vec<u16> = (0..300).collect();
    assert_eq!(seqs(&n, 1), all);
    assert_eq!(seqs(&n, 2), all);
    n.remotes[0].reading = true;
    n.run();
    let slow = seqs(&n, 0);
    assert!(
        (10..300).contains(&slow.len()),
        "the transmit buffer and the HWM worth, the rest dropped: {}",
        slow.len()
    );
    let prefix: Vec<u16> = (0..slow.len() as u16).collect();
    assert_eq!(slow, prefix, "what it got is whole and in order");
    // Once drained it gets new messages again.
    n.socket.send(&[b"\xff\xff", &body]).unwrap();
    n.run();
    assert_eq!(seqs(&n, 0).last(), Some(&0xffff));
}

#[test]
fn pub_ignores_subscriptions_when_its_memory_is_full() {
    // Root and one node.
    let trie = subscription_memory(SocketType::Pub, 8, 2);
    let mut n = Net::with_subscriptions(cfg(SocketType::Pub), 8, (1024, 1024, 8192), trie, 0);
    for _ in 0..3 {
        n.connect(SocketType::Sub, b"");
    }
    remote_subscribe(&mut n, 0, b"a");
    remote_subscribe(&mut n, 1, b"b"); // no room: ignored
    remote_subscribe(&mut n, 2, b"a"); // an existing topic needs no node
    assert_eq!(n.socket.subscription_stats().ignored_subscriptions, 1);
    n.socket.send(&[b"a1"]).unwrap();
    n.socket.send(&[b"b1"]).unwrap();
    n.run();
    assert_eq!(n.remotes[0].messages, [msg(&[b"a1"])]);
    assert!(n.remotes[1].messages.is_empty());
    assert_eq!(n.remotes[2].messages, [msg(&[b"a1"])]);
}

#[test]
fn pub_without_subscription_memory_sends_nothing() {
    let mut n = Net::new(cfg(SocketType::Pub), 4);
    n.connect(SocketType::Sub, b"");
    remote_subscribe(&mut n, 0, b"");
    assert_eq!(n.socket.send(&[b"x"]), Ok(()));
    n.run();
    assert!(n.remotes[0].messages.is_empty());
    assert_eq!(n.socket.subscription_stats().ignored_subscriptions, 1);
}

// ------------------------------------------------------------------ SUB

#[test]
fn sub_counts_subscribe_twice_two_subscribes_only_last_unsubscribe_cancels() {
    let mut n = net(SocketType::Sub);
    for _ in 0..3 {
        n.connect(SocketType::Pub, b"");
    }
    n.socket.subscribe(b"A").unwrap();
    n.socket.subscribe(b"A").unwrap();
    n.run();
    for i in 0..3 {
        assert_eq!(subscription_events(&n, i), [sub(b"A"), sub(b"A")], "{i}");
    }
    n.socket.unsubscribe(b"A").unwrap();
    n.run();
    for i in 0..3 {
        assert_eq!(subscription_events(&n, i), [sub(b"A"), sub(b"A")], "{i}");
    }
    n.socket.unsubscribe(b"A").unwrap();
    n.run();
    n.socket.unsubscribe(b"A").unwrap(); // not subscribed: nothing
    n.run();
    for i in 0..3 {
        assert_eq!(
            subscription_events(&n, i),
            [sub(b"A"), sub(b"A"), cancel(b"A")],
            "{i}"
        );
    }
    assert_eq!(n.socket.send(&[b"x"]), Err(SocketSendError::NotAllowed));
}

#[test]
fn sub_resends_its_subscriptions_to_new_and_reconnected_peers() {
    let mut n = net(SocketType::Sub);
    n.connect(SocketType::Pub, b"");
    n.socket.subscribe(b"A").unwrap();
    n.socket.subscribe(b"A").unwrap();
    n.socket.subscribe(b"B").unwrap();
    n.socket.subscribe(b"").unwrap();
    n.socket.subscribe(b"gone").unwrap();
    n.socket.unsubscribe(b"gone").unwrap();
    let long: Vec<u8> = (0..100u8).collect();
    n.socket.subscribe(&long).unwrap();
    n.run();
    let want: BTreeSet<Vec<u8>> = [b"A".to_vec(), b"B".to_vec(), b"".to_vec(), long.clone()]
        .into_iter()
        .collect();
    let once = |evs: Vec<Ev>| -> BTreeSet<Vec<u8>> {
        let topics: Vec<Vec<u8>> = evs
            .into_iter()
            .map(|e| match e {
                Ev::Subscribe(t) => t,
                e => panic!("{e:?}"),
            })
            .collect();
        let set: BTreeSet<Vec<u8>> = topics.iter().cloned().collect();
        assert_eq!(set.len(), topics.len(), "each topic once: {topics:?}");
        set
    };
    // New peers: each topic once.
    for _ in 0..2 {
        let i = n.connect(SocketType::Pub, b"");
        assert_eq!(once(subscription_events(&n, i)), want);
    }
    // A reconnect: the old connection goes, the new one gets everything again.
    let h = n.remotes[1].handle;
    n.kill(1);
    n.socket.remove_peer(h);
    let i = n.connect(SocketType::Pub, b"");
    assert_eq!(once(subscription_events(&n, i)), want);
}

#[test]
fn sub_filters_incoming_messages_by_its_own_subscriptions() {
    let mut n = net(SocketType::Sub);
    for _ in 0..3 {
        n.connect(SocketType::Pub, b"");
    }
    n.socket.subscribe(b"a").unwrap();
    n.run();
    // Publishers may send anything (a PUB that ignores subscriptions).
    n.remotes[0].send(&[b"a1"]);
    n.remotes[0].send(&[b"b1"]);
    n.remotes[1].send(&[b"a2", b"more"]);
    n.remotes[1].send(&[b""]);
    n.remotes[2].send(&[b"x", b"a"]);
    n.run();
    let mut got = n.recv_all();
    got.sort();
    assert_eq!(got, [(0, msg(&[b"a1"])), (1, msg(&[b"a2", b"more"]))]);
    n.socket.subscribe(b"").unwrap();
    n.remotes[1].send(&[b""]);
    n.remotes[2].send(&[b"x", b"a"]);
    let mut got = n.recv_all();
    got.sort();
    assert_eq!(
        got,
        [(1, msg(&[b""])), (2, msg(&[b"x", b"a"]))],
        "the empty subscription takes everything"
    );
}

#[test]
fn sub_fair_queues_between_publishers() {
    let mut n = net(SocketType::Sub);
    for _ in 0..3 {
        n.connect(SocketType::Pub, b"");
    }
    n.socket.subscribe(b"").unwrap();
    n.run();
    for k in 0..3u8 {
        for i in 0..(if k == 0 { 20 } else { 3 }) {
            n.remotes[k as usize].send(&[&[k, i]]);
        }
    }
    let got = n.recv_all();
    assert_eq!(got.len(), 26);
    let first: Vec<usize> = got.iter().take(6).map(|(w, _)| *w).collect();
    assert_eq!(first, [0, 1, 2, 0, 1, 2]);
}

#[test]
fn sub_subscribe_fails_cleanly_when_its_memory_is_full() {
    // Root and two nodes.
    let trie = subscription_memory(SocketType::Sub, 8, 3);
    let mut n = Net::with_subscriptions(cfg(SocketType::Sub), 8, (1024, 1024, 8192), trie, 0);
    for _ in 0..3 {
        n.connect(SocketType::Pub, b"");
    }
    n.socket.subscribe(b"abcdefghijk").unwrap(); // one node (11 bytes)
    n.socket.subscribe(b"x").unwrap();
    assert_eq!(
        n.socket.subscribe(b"y"),
        Err(SocketSendError::SubscriptionsFull)
    );
    assert_eq!(
        n.socket.subscribe(b"abcZ"),
        Err(SocketSendError::SubscriptionsFull),
        "a split needs two nodes"
    );
    n.socket.subscribe(b"x").unwrap(); // no new node
    n.run();
    for i in 0..3 {
        assert_eq!(
            subscription_events(&n, i),
            [sub(b"abcdefghijk"), sub(b"x"), sub(b"x")]
        );
    }
    n.socket.unsubscribe(b"x").unwrap();
    n.socket.unsubscribe(b"x").unwrap();
    n.socket.subscribe(b"y").unwrap();
    n.remotes[0].send(&[b"y!"]);
    n.remotes[0].send(&[b"x!"]);
    assert_eq!(n.recv_all(), [(0, msg(&[b"y!"]))]);
    assert_eq!(
        Net::new(cfg(SocketType::Sub), 2).socket.subscribe(b""),
        Err(SocketSendError::SubscriptionsFull),
        "no memory at all"
    );
}

#[test]
fn sub_refuses_a_topic_larger_than_a_send_queue() {
    let mut n = Net::with_subscriptions(cfg(SocketType::Sub), 2, (1024, 1024, 256), TRIE, 0);
    n.connect(SocketType::Pub, b"");
    assert_eq!(
        n.socket.subscribe(&[b'x'; 300]),
        Err(SocketSendError::TooLarge)
    );
    assert_eq!(n.socket.subscription_stats().topics, 0);
    assert_eq!(
        Net::new(cfg(SocketType::Pub), 2).socket.subscribe(b"a"),
        Err(SocketSendError::NotAllowed)
    );
}

#[test]
fn sub_keeps_subscriptions_in_order_when_a_publisher_reads_slowly() {
    // Small transmit buffer: most subscriptions wait in the send queue.
    let mut n = Net::with_subscriptions(cfg(SocketType::Sub), 4, (1024, 256, 1024), TRIE, 0);
    for _ in 0..3 {
        n.connect(SocketType::Pub, b"");
    }
    n.remotes[0].reading = false;
    let topics: Vec<Vec<u8>> = (0..40)
        .map(|i| format!("topic-{i:02}").into_bytes())
        .collect();
    for t in &topics {
        n.socket.subscribe(t).unwrap();
    }
    n.socket.unsubscribe(&topics[3]).unwrap();
    n.run();
    let mut want: Vec<Ev> = topics.iter().map(|t| sub(t)).collect();
    want.push(cancel(&topics[3]));
    assert_eq!(subscription_events(&n, 1), want);
    n.remotes[0].reading = true;
    n.run();
    assert_eq!(subscription_events(&n, 0), want, "same order, nothing lost");
}

#[test]
fn sub_resyncs_a_publisher_whose_queue_overflowed_and_closes_it_on_a_lost_cancel() {
    let mut n = Net::with_subscriptions(cfg(SocketType::Sub), 4, (1024, 256, 512), TRIE, 0);
    for _ in 0..3 {
        n.connect(SocketType::Pub, b"");
    }
    n.remotes[0].reading = false;
    let topics: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("topic-{i:03}").into_bytes())
        .collect();
    for t in &topics {
        n.socket.subscribe(t).unwrap(); // overflows peer 0's queue: resend later
        n.run(); // the others keep up
    }
    n.remotes[0].reading = true;
    n.run();
    // Peer 0 ends up with every topic (some twice: set semantics make that harmless).
    let mut set = BTreeSet::new();
    for e in subscription_events(&n, 0) {
        let Ev::Subscribe(t) = e else { panic!() };
        set.insert(t);
    }
    assert_eq!(set, topics.iter().cloned().collect::<BTreeSet<_>>());
    assert_eq!(
        subscription_events(&n, 1).len(),
        200,
        "the other peers got exactly what was asked"
    );
    // Now a cancel that cannot be queued: the connection is closed.
    n.remotes[0].reading = false;
    for t in &topics {
        n.socket.unsubscribe(t).unwrap();
        n.run();
    }
    let h = n.remotes[0].handle;
    assert!(
        n.socket_events
            .contains(&SocketEvent::PeerClosed(h, CloseReason::Local)),
        "{:?}",
        n.socket_events
    );
    // The others saw every cancel after the subscribes.
    let evs = subscription_events(&n, 2);
    let cancels: Vec<Ev> = topics.iter().map(|t| cancel(t)).collect();
    assert_eq!(evs[200..], cancels);
}

#[test]
fn sub_holds_input_back_while_the_application_does_not_read() {
    // 2 KiB receive queue, 100 messages of 100 bytes: the rest waits in the session.
    let mut n = Net::with_subscriptions(cfg(SocketType::Sub), 4, (512, 1024, 2048), TRIE, 0);
    n.connect(SocketType::Pub, b"");
    n.socket.subscribe(b"").unwrap();
    n.run();
    for i in 0..100u8 {
        n.remotes[0].send(&[&[i; 100]]);
    }
    n.run();
    assert!(n.remotes[0].session.is_ready(), "not closed");
    let got = n.recv_all();
    let want: Vec<(usize, Vec<Vec<u8>>)> = (0..100u8).map(|i| (0, vec![vec![i; 100]])).collect();
    assert!(got == want, "all 100 in order ({} got)", got.len());
}

// ------------------------------------------------------------------ XPUB

/// Every message an XPUB delivers now, with the index of the remote it came from.
fn xpub_recv(n: &mut Net) -> Vec<(usize, Vec<Vec<u8>>)> {
    n.recv_all()
}

fn note(tag: u8, topic: &[u8]) -> Vec<Vec<u8>> {
    let mut f = vec![tag];
    f.extend_from_slice(topic);
    vec![f]
}

fn xpub_script(n: &mut Net) {
    for _ in 0..3 {
        n.connect(SocketType::Sub, b"");
    }
    remote_subscribe(n, 0, b"A");
    remote_subscribe(n, 1, b"A");
    remote_subscribe(n, 0, b"A");
    remote_cancel(n, 1, b"A");
    remote_cancel(n, 0, b"A");
}

#[test]
fn xpub_shows_first_subscriptions_and_last_cancels() {
    let mut n = net(SocketType::XPub);
    xpub_script(&mut n);
    assert_eq!(
        xpub_recv(&mut n),
        [(0, note(1, b"A")), (0, note(0, b"A"))],
        "duplicates filtered"
    );
}

#[test]
fn xpub_verbose_shows_every_subscription() {
    let mut c = cfg(SocketType::XPub);
    c.xpub_verbose = true;
    let mut n = net_with(c);
    xpub_script(&mut n);
    assert_eq!(
        xpub_recv(&mut n),
        [
            (0, note(1, b"A")),
            (1, note(1, b"A")),
            (0, note(1, b"A")),
            (0, note(0, b"A"))
        ]
    );
    let mut c = cfg(SocketType::XPub);
    c.xpub_verboser = true;
    let mut n = net_with(c);
    xpub_script(&mut n);
    assert_eq!(
        xpub_recv(&mut n),
        [
            (0, note(1, b"A")),
            (1, note(1, b"A")),
            (0, note(1, b"A")),
            (1, note(0, b"A")),
            (0, note(0, b"A"))
        ]
    );
}

#[test]
fn xpub_shows_cancels_for_the_topics_of_a_departed_peer() {
    let mut n = net(SocketType::XPub);
    for _ in 0..3 {
        n.connect(SocketType::Sub, b"");
    }
    remote_subscribe(&mut n, 2, b"only-two");
    remote_subscribe(&mut n, 2, b"shared");
    remote_subscribe(&mut n, 0, b"shared");
    let long: Vec<u8> = (0..200u8).collect();
    remote_subscribe(&mut n, 2, &long);
    assert_eq!(
        xpub_recv(&mut n),
        [
            (2, note(1, b"only-two")),
            (2, note(1, b"shared")),
            (2, note(1, &long))
        ]
    );
    n.kill(2);
    let mut got = xpub_recv(&mut n);
    got.sort();
    assert_eq!(got, [(2, note(0, &long)), (2, note(0, b"only-two"))]);
    // Publishing still reaches the one left on "shared".
    n.socket.send(&[b"shared!"]).unwrap();
    n.run();
    assert_eq!(n.remotes[0].messages, [msg(&[b"shared!"])]);
}

#[test]
fn xpub_passes_other_messages_from_subscribers_to_the_application() {
    let mut n = net(SocketType::XPub);
    for _ in 0..3 {
        n.connect(SocketType::Sub, b"");
    }
    remote_subscribe(&mut n, 0, b"t");
    n.remotes[1].send(&[b"\x01not a subscription", b"two frames"]);
    n.remotes[2].send(&[b"\x02hello"]);
    let mut got = xpub_recv(&mut n);
    assert_eq!(got.remove(0), (0, note(1, b"t")), "notifications first");
    got.sort();
    assert_eq!(
        got,
        [
            (1, msg(&[b"\x01not a subscription", b"two frames"])),
            (2, msg(&[b"\x02hello"]))
        ]
    );
    n.socket.send(&[b"t1"]).unwrap();
    n.run();
    assert_eq!(n.remotes[0].messages, [msg(&[b"t1"])]);
}

#[test]
fn xpub_stops_reading_peers_while_its_notification_queue_is_full() {
    let mut n = Net::with_subscriptions(
        cfg(SocketType::XPub),
        4,
        (256, 1024, 8192),
        TRIE,
        // Room for a few notifications only.
        300,
    );
    for _ in 0..3 {
        n.connect(SocketType::Sub, b"");
    }
    let topics: Vec<Vec<u8>> = (0..60).map(|i| format!("t{i:02}").into_bytes()).collect();
    for (k, t) in topics.iter().enumerate() {
        n.remotes[k % 3].session.send_subscribe(t).unwrap();
    }
    n.run();
    let got = xpub_recv(&mut n);
    let shown: Vec<Vec<u8>> = got.iter().map(|(_, m)| m[0][1..].to_vec()).collect();
    let mut sorted = shown.clone();
    sorted.sort();
    assert_eq!(sorted, topics, "every notification, none lost");
    assert_eq!(n.socket.subscription_stats().lost_notifications, 0);
    // Per peer, in the order sent.
    for k in 0..3 {
        let mine: Vec<&Vec<u8>> = got
            .iter()
            .filter(|(w, _)| *w == k)
            .map(|(_, m)| &m[0])
            .collect();
        assert!(mine.windows(2).all(|w| w[0] < w[1]));
    }
}

// ------------------------------------------------------------------ XSUB

#[test]
fn xsub_sends_subscriptions_as_messages_and_receives_everything() {
    let mut n = net(SocketType::XSub);
    for _ in 0..3 {
        n.connect(SocketType::Pub, b"");
    }
    n.socket.send(&[b"\x01A"]).unwrap();
    n.socket.send(&[b"\x01A"]).unwrap();
    n.socket.send(&[b"\x00A"]).unwrap(); // count 2 -> 1: no CANCEL
    n.socket.send(&[b"\x00A"]).unwrap();
    n.socket.send(&[b"\x01B"]).unwrap();
    // Multi-frame: data, even if it starts with 01.
    n.socket.send(&[b"\x01C", b"data"]).unwrap();
    n.socket.send(&[b"hello"]).unwrap();
    n.run();
    for i in 0..3 {
        assert_eq!(
            subscription_events(&n, i),
            [sub(b"A"), sub(b"A"), cancel(b"A"), sub(b"B")]
        );
        assert_eq!(
            n.remotes[i].messages,
            [msg(&[b"\x01C", b"data"]), msg(&[b"hello"])]
        );
    }
    // No filtering on receive.
    n.remotes[1].send(&[b"zzz"]);
    n.remotes[2].send(&[b"", b"x"]);
    assert_eq!(n.recv_all(), [(1, msg(&[b"zzz"])), (2, msg(&[b"", b"x"]))]);
    // A new peer gets the live subscriptions.
    let i = n.connect(SocketType::Pub, b"");
    assert_eq!(subscription_events(&n, i), [sub(b"B")]);
}

// ------------------------------------------------------------------ ZMTP 3.0 peers

/// A byte-level peer of type `ty` whose greeting says ZMTP 3.`minor`, handshake done.
/// Returns its handle and what it received after our greeting and READY.
fn raw_peer(n: &mut Net, minor: u8, ty: &str) -> (PeerHandle, Vec<u8>) {
    let h = n.socket.add_peer(Role::Accepted, n.now).unwrap();
    let mut input = peer_greeting();
    input[11] = minor;
    input.extend(ready(&[(b"Socket-Type", ty.as_bytes())]));
    assert_eq!(n.socket.feed(h, &input, n.now), input.len());
    let out = raw_output(n, h);
    assert_eq!(out[..2], [0xff, 0]);
    assert_eq!(out[64], 0x04, "READY follows the greeting");
    let ready_end = 64 + 2 + out[65] as usize;
    (h, out[ready_end..].to_vec())
}

/// All the socket's output for a raw peer now.
fn raw_output(n: &mut Net, h: PeerHandle) -> Vec<u8> {
    let mut v = Vec::new();
    loop {
        let out = n.socket.poll_transmit(h);
        if out.is_empty() {
            return v;
        }
        let len = out.len();
        v.extend_from_slice(out);
        n.socket.mark_transmitted(h, len).unwrap();
    }
}

#[test]
fn zmtp30_peer_gets_01_and_00_messages_instead_of_commands() {
    for ty in [SocketType::Sub, SocketType::XSub] {
        let mut n = net(ty);
        // Subscribed before the peers come: resent after their handshake.
        n.socket.subscribe(b"X").unwrap();
        let (old, rest_old) = raw_peer(&mut n, 0, "PUB");
        let (new, rest_new) = raw_peer(&mut n, 1, "XPUB");
        n.connect(SocketType::Pub, b""); // and a third, ordinary peer
        assert_eq!(rest_old, frame(0x00, b"\x01X"), "3.0: a message");
        assert_eq!(rest_new, command(b"SUBSCRIBE", b"X"), "3.1: a command");
        n.socket.subscribe(b"AB").unwrap();
        n.socket.unsubscribe(b"AB").unwrap();
        let mut want_old = frame(0x00, b"\x01AB");
        want_old.extend(frame(0x00, b"\x00AB"));
        let mut want_new = command(b"SUBSCRIBE", b"AB");
        want_new.extend(command(b"CANCEL", b"AB"));
        assert_eq!(raw_output(&mut n, old), want_old, "{ty}");
        assert_eq!(raw_output(&mut n, new), want_new, "{ty}");
        n.run();
        assert_eq!(
            subscription_events(&n, 0),
            [sub(b"X"), sub(b"AB"), cancel(b"AB")]
        );
    }
}

#[test]
fn pub_takes_01_and_00_messages_from_zmtp30_and_31_subscribers() {
    let mut n = net(SocketType::Pub);
    let (old, _) = raw_peer(&mut n, 0, "SUB");
    let (new, _) = raw_peer(&mut n, 1, "SUB");
    let (cmd, _) = raw_peer(&mut n, 1, "SUB");
    n.socket.feed(old, &frame(0x00, b"\x01A"), n.now);
    n.socket.feed(new, &frame(0x00, b"\x01A"), n.now);
    n.socket.feed(cmd, &command(b"SUBSCRIBE", b"A"), n.now);
    n.socket.send(&[b"A1"]).unwrap();
    n.socket.send(&[b"B1"]).unwrap();
    for h in [old, new, cmd] {
        assert_eq!(raw_output(&mut n, h), frame(0x00, b"A1"));
    }
    n.socket.feed(old, &frame(0x00, b"\x00A"), n.now);
    n.socket.feed(cmd, &command(b"CANCEL", b"A"), n.now);
    n.socket.send(&[b"A2"]).unwrap();
    assert_eq!(raw_output(&mut n, old), b"");
    assert_eq!(raw_output(&mut n, new), frame(0x00, b"A2"));
    assert_eq!(raw_output(&mut n, cmd), b"");
}

// ------------------------------------------------------------------ property tests

#[derive(Clone, Debug)]
enum PubOp {
    Subscribe(usize, Vec<u8>),
    Cancel(usize, Vec<u8>),
    Publish(Vec<u8>),
    /// A remote goes away and a fresh one takes its place.
    Replace(usize),
}

fn small_topic() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![b'a', b'b']), 0..4)
}

fn pub_op() -> impl Strategy<Value = PubOp> {
    prop_oneof![
        4 => (0..3usize, small_topic()).prop_map(|(k, t)| PubOp::Subscribe(k, t)),
        3 => (0..3usize, small_topic()).prop_map(|(k, t)| PubOp::Cancel(k, t)),
        5 => small_topic().prop_map(PubOp::Publish),
        1 => (0..3usize).prop_map(PubOp::Replace),
    ]
}

/// XPUB against a model: per-peer sets of topics (linear scan), a message goes to peer k iff
/// one of k's topics prefixes it; notifications for topics' first subscriber / last cancel.
fn xpub_model(ops: Vec<PubOp>) {
    let mut n = Net::with_subscriptions(cfg(SocketType::XPub), 8, (512, 512, 4096), TRIE, NOTES);
    let mut slot = [0usize; 3]; // remote index for each of the 3 logical peers
    for s in slot.iter_mut() {
        *s = n.connect_with(SocketType::Sub, b"", 1024, 8192);
    }
    let mut sets: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 3];
    let mut expected: Vec<Vec<u16>> = vec![Vec::new(); n.remotes.len()];
    let mut notes: Vec<Vec<u8>> = Vec::new();
    let mut got_notes: Vec<Vec<u8>> = Vec::new();
    let holders = |sets: &Vec<Vec<Vec<u8>>>, t: &[u8]| {
        sets.iter().filter(|s| s.iter().any(|x| x == t)).count()
    };
    let mut seq = 0u16;
    for op in ops {
        match op {
            PubOp::Subscribe(k, t) => {
                remote_subscribe(&mut n, slot[k], &t);
                if holders(&sets, &t) == 0 {
                    notes.push([&[1u8][..], &t].concat());
                }
                if !sets[k].contains(&t) {
                    sets[k].push(t);
                }
            }
            PubOp::Cancel(k, t) => {
                remote_cancel(&mut n, slot[k], &t);
                if let Some(p) = sets[k].iter().position(|x| *x == t) {
                    sets[k].remove(p);
                    if holders(&sets, &t) == 0 {
                        notes.push([&[0u8][..], &t].concat());
                    }
                }
            }
            PubOp::Publish(key) => {
                n.socket.send(&[&key, &seq.to_be_bytes()]).unwrap();
                n.run();
                for k in 0..3 {
                    if sets[k].iter().any(|t| key.starts_with(t)) {
                        expected[slot[k]].push(seq);
                    }
                }
                seq += 1;
            }
            PubOp::Replace(k) => {
                let h = n.remotes[slot[k]].handle;
                n.kill(slot[k]);
                n.socket.remove_peer(h);
                let mine = std::mem::take(&mut sets[k]);
                let mut gone: Vec<Vec<u8>> = mine
                    .into_iter()
                    .filter(|t| holders(&sets, t) == 0)
                    .map(|t| [&[0u8][..], &t].concat())
                    .collect();
                // Departure cancels come in trie order: compare as sets.
                gone.sort();
                let mut shown: Vec<Vec<u8>> = Vec::new();
                while let Ok(m) = n.socket.recv() {
                    shown.push(m.frames().next().unwrap().to_vec());
                }
                shown.sort();
                assert_eq!(shown, gone);
                slot[k] = n.connect_with(SocketType::Sub, b"", 1024, 8192);
                expected.push(Vec::new());
                continue;
            }
        }
        while let Ok(m) = n.socket.recv() {
            got_notes.push(m.frames().next().unwrap().to_vec());
        }
    }
    n.run();
    // Departure notes were checked as they came; the rest in order.
    assert_eq!(got_notes, notes);
    for (i, r) in n.remotes.iter().enumerate() {
        let seqs: Vec<u16> = r
            .messages
            .iter()
            .map(|m| u16::from_be_bytes([m[1][0], m[1][1]]))
            .collect();
        assert_eq!(seqs, expected[i], "remote {i}");
    }
}

#[derive(Clone, Debug)]
enum SubOp {
    Subscribe(Vec<u8>),
    Unsubscribe(Vec<u8>),
    Publish(usize, Vec<u8>),
}

fn sub_op() -> impl Strategy<Value = SubOp> {
    prop_oneof![
        3 => small_topic().prop_map(SubOp::Subscribe),
        3 => small_topic().prop_map(SubOp::Unsubscribe),
        5 => (0..3usize, small_topic()).prop_map(|(k, t)| SubOp::Publish(k, t)),
    ]
}

/// SUB against a model: a list of subscriptions with repeats (linear scan); the wire sees a
/// SUBSCRIBE per subscribe and a CANCEL per last unsubscribe; a message is received iff a
/// subscription prefixes it.
fn sub_model(ops: Vec<SubOp>) {
    let mut n = Net::with_subscriptions(cfg(SocketType::Sub), 4, (512, 512, 4096), TRIE, 0);
    for _ in 0..3 {
        n.connect_with(SocketType::Pub, b"", 1024, 8192);
    }
    let mut subs: Vec<Vec<u8>> = Vec::new();
    let mut wire: Vec<Ev> = Vec::new();
    let mut seq = 0u16;
    for op in ops {
        match op {
            SubOp::Subscribe(t) => {
                n.socket.subscribe(&t).unwrap();
                wire.push(Ev::Subscribe(t.clone()));
                subs.push(t);
            }
            SubOp::Unsubscribe(t) => {
                n.socket.unsubscribe(&t).unwrap();
                if let Some(p) = subs.iter().position(|x| *x == t) {
                    subs.remove(p);
                    if !subs.contains(&t) {
                        wire.push(Ev::Cancel(t));
                    }
                }
            }
            SubOp::Publish(k, key) => {
                n.run();
                n.remotes[k].send(&[&key, &seq.to_be_bytes()]);
                let got = n.recv_all();
                let want = subs.iter().any(|t| key.starts_with(t));
                let expect: Vec<(usize, Vec<Vec<u8>>)> = if want {
                    vec![(k, vec![key.clone(), seq.to_be_bytes().to_vec()])]
                } else {
                    vec![]
                };
                assert_eq!(got, expect, "subs {subs:?}");
                seq += 1;
            }
        }
    }
    n.run();
    for i in 0..3 {
        assert_eq!(subscription_events(&n, i), wire);
    }
}

/// The trie against a naive list, longer topics (labels split and merge), counted and sets.
#[derive(Clone, Debug)]
enum TrieOp {
    Add(Vec<u8>),
    Remove(Vec<u8>),
    Member(usize, Vec<u8>, bool),
}

fn long_topic() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c']), 0..30)
}

fn trie_op() -> impl Strategy<Value = TrieOp> {
    prop_oneof![
        3 => long_topic().prop_map(TrieOp::Add),
        2 => long_topic().prop_map(TrieOp::Remove),
        3 => (0..12usize, long_topic(), any::<bool>()).prop_map(|(m, t, on)| TrieOp::Member(m, t, on)),
    ]
}

fn trie_model(ops: Vec<TrieOp>, keys: Vec<Vec<u8>>) {
    let mut cmem = vec![0u8; trie::counted_memory(4096)];
    let mut counted = Trie::counted(&mut cmem);
    let mut smem = vec![0u8; trie::sets_memory(12, 4096)];
    let mut sets = Trie::sets(&mut smem, 12);
    let mut list: Vec<Vec<u8>> = Vec::new();
    let mut members: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut probes: Vec<Vec<u8>> = keys;
    for op in ops {
        match op {
            TrieOp::Add(t) => {
                let c = counted.add(&t).unwrap();
                list.push(t.clone());
                assert_eq!(c as usize, list.iter().filter(|x| **x == t).count());
                probes.push(t);
            }
            TrieOp::Remove(t) => {
                let had = list.iter().position(|x| *x == t);
                let r = counted.remove(&t);
                match had {
                    Some(p) => {
                        list.remove(p);
                        assert_eq!(r, Some(list.iter().filter(|x| **x == t).count() as u32));
                    }
                    None => assert_eq!(r, None),
                }
            }
            TrieOp::Member(m, t, on) => {
                let had = members.contains(&(m, t.clone()));
                if on {
                    let a = sets.insert_member(&t, m).unwrap();
                    assert_eq!(a.already_member, had);
                    assert_eq!(a.new_topic, !members.iter().any(|(_, x)| *x == t));
                    if !had {
                        members.push((m, t.clone()));
                    }
                } else {
                    let r = sets.remove_member(&t, m);
                    assert_eq!(r.was_member, had);
                    members.retain(|x| *x != (m, t.clone()));
                    if had {
                        assert_eq!(r.topic_gone, !members.iter().any(|(_, x)| *x == t));
                    }
                }
                probes.push(t);
            }
        }
        let distinct: BTreeSet<&Vec<u8>> = list.iter().collect();
        assert_eq!(counted.topics(), distinct.len());
        for k in &probes {
            for cut in [k.len(), k.len() / 2] {
                let key = &k[..cut];
                let naive = list.iter().any(|t| key.starts_with(t));
                assert_eq!(counted.matches(key), naive, "{key:?} in {list:?}");
                let mut want = [0u8; 2];
                for (m, t) in &members {
                    if key.starts_with(t) {
                        want[m / 8] |= 1 << (m % 8);
                    }
                }
                assert_eq!(sets.match_members(key), want, "{key:?}");
            }
        }
    }
    for t in list.clone() {
        counted.remove(&t).unwrap();
    }
    assert_eq!(counted.nodes_used(), 1, "every node freed");
    for m in 0..12 {
        sets.remove_member_everywhere(m, |_, _, _| {});
    }
    assert_eq!(sets.nodes_used(), 1, "every node freed");
    assert_eq!(sets.topics(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn xpub_delivery_and_notifications_match_a_naive_model(
        ops in prop::collection::vec(pub_op(), 1..60)
    ) {
        xpub_model(ops);
    }

    #[test]
    fn sub_delivery_and_wire_match_a_naive_model(
        ops in prop::collection::vec(sub_op(), 1..60)
    ) {
        sub_model(ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn trie_matches_a_linear_scan(
        ops in prop::collection::vec(trie_op(), 1..80),
        keys in prop::collection::vec(long_topic(), 0..8),
    ) {
        trie_model(ops, keys);
    }
}
