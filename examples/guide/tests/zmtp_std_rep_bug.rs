//! A zmtp-std REP bug found by the Lazy Pirate tests, kept here as a reproduction until
//! zmtp-std fixes it: a REP's reply to a peer that disconnected while the request was
//! being handled reaches the next peer to connect (libzmq drops it). Run with
//! `cargo test -p zmtp-guide --test zmtp_std_rep_bug -- --ignored`.

use std::time::Duration;

use zmtp_std::{Context, SocketType};

#[test]
#[ignore = "zmtp-std bug: a REP reply to a gone peer is delivered to its successor"]
fn rep_reply_to_gone_peer_is_dropped() {
    let ctx = Context::new().unwrap();
    let rep = ctx.socket(SocketType::Rep).unwrap();
    let ep = rep.bind("tcp://127.0.0.1:0").unwrap();
    let server = std::thread::spawn(move || {
        for cycle in 1..=4 {
            let r = rep.recv().unwrap();
            if cycle % 2 == 0 {
                std::thread::sleep(Duration::from_millis(400)); // the client gives up
            }
            rep.send(format!("{}-cycle{cycle}", String::from_utf8_lossy(&r)))
                .unwrap();
        }
        // rep is dropped here: it answers nothing more.
    });
    let mut replies = Vec::new();
    let mut c = ctx.socket(SocketType::Req).unwrap();
    c.set_linger(Some(Duration::ZERO));
    c.connect(&ep).unwrap();
    for n in 1..=3 {
        c.send(n.to_string()).unwrap();
        let mut tries = 0;
        loop {
            match c.recv_timeout(Duration::from_millis(300)) {
                Ok(r) => {
                    replies.push(String::from_utf8(r).unwrap());
                    break;
                }
                Err(_) if tries < 2 => {
                    tries += 1;
                    drop(c);
                    c = ctx.socket(SocketType::Req).unwrap();
                    c.set_linger(Some(Duration::ZERO));
                    c.connect(&ep).unwrap();
                    c.send(n.to_string()).unwrap();
                }
                Err(_) => break,
            }
        }
    }
    server.join().unwrap();
    // "3-cycle4" answers the socket that sent "3" and was closed before the answer: its
    // successor must not get it (the server took no request from the successor).
    assert_eq!(replies, ["1-cycle1", "2-cycle3"]);
}
