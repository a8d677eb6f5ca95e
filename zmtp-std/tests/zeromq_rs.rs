//! zmtp-std against zmq.rs (the `zeromq` crate), a second, independent ZMTP 3.1
//! implementation (async, on tokio). One test per pattern family, our socket on either side
//! of the pattern, binding and connecting. zmq.rs has no PAIR socket, so PAIR is not here
//! (it is tested against libzmq in `interop_libzmq.rs`).
//!
//! The zmq.rs side runs as a task on a tokio runtime while our blocking socket works on the
//! test's thread. Every wait has a deadline; nothing sleeps in place of a condition.
//!
//! zmq.rs 0.4 greets as ZMTP 3.0 and sends subscriptions as `\x01topic` messages (RFC 23), so
//! the PUB-SUB test runs our 3.0 subscription path in both directions. Its sending sockets
//! return an error while they have no peer instead of waiting (see [`zsend`]).

use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::time::timeout;
use zeromq::{Socket as _, SocketRecv as _, SocketSend as _, ZmqMessage};
use zmtp_std::{Context, Socket, SocketType};

mod common;
use common::STEP;

fn rt() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A zmq.rs message from frames.
fn zmsg(frames: &[&[u8]]) -> ZmqMessage {
    let mut it = frames.iter();
    let mut m = ZmqMessage::from(it.next().expect("at least one frame").to_vec());
    for f in it {
        m.push_back(f.to_vec().into());
    }
    m
}

/// A zmq.rs message's frames.
fn frames(m: &ZmqMessage) -> Vec<Vec<u8>> {
    m.iter().map(|f| f.to_vec()).collect()
}

/// Which side listens.
#[derive(Clone, Copy, Debug)]
enum Binder {
    /// zmtp-std binds, zmq.rs connects.
    Us,
    /// zmq.rs binds, zmtp-std connects.
    Them,
}

/// Our socket, set up to give up after `STEP` on close.
fn ours(ctx: &Context, ty: SocketType) -> Socket {
    let s = ctx.socket(ty).unwrap();
    s.set_linger(Some(Duration::from_secs(1)));
    s
}

/// Binds or connects the pair: `bind_them` binds their socket and returns its endpoint;
/// `connect_them` connects it to ours.
async fn zbind<S: zeromq::Socket>(s: &mut S) -> String {
    timeout(STEP, s.bind("tcp://127.0.0.1:0"))
        .await
        .expect("zmq.rs bind timed out")
        .expect("zmq.rs bind")
        .to_string()
}

async fn zconnect<S: zeromq::Socket>(s: &mut S, endpoint: &str) {
    timeout(STEP, s.connect(endpoint))
        .await
        .expect("zmq.rs connect timed out")
        .expect("zmq.rs connect");
}

/// Wires `ours` and `theirs` together as `binder` says.
fn wire<S: zeromq::Socket>(rt: &Runtime, binder: Binder, ours: &Socket, theirs: &mut S) {
    match binder {
        Binder::Us => {
            let ep = ours.bind("tcp://127.0.0.1:0").unwrap();
            rt.block_on(zconnect(theirs, &ep));
        }
        Binder::Them => {
            let ep = rt.block_on(zbind(theirs));
            ours.connect(&ep).unwrap();
        }
    }
}

/// Sends with zmq.rs once it has a peer. Its sending sockets return `ReturnToSender` ("Not
/// connected to peers") rather than wait while no peer is connected, which RFC 28/30 allow
/// ("SHALL block on sending, or return a suitable error"); libzmq and zmtp-std wait. So try
/// again until the connection is up.
async fn zsend<S: zeromq::SocketSend>(s: &mut S, m: ZmqMessage) {
    let deadline = tokio::time::Instant::now() + STEP;
    let mut m = m;
    loop {
        match timeout(STEP, s.send(m))
            .await
            .expect("zmq.rs send timed out")
        {
            Ok(()) => return,
            Err(zeromq::ZmqError::ReturnToSender { message, .. }) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "zmq.rs never got a peer"
                );
                m = message;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(e) => panic!("zmq.rs send: {e}"),
        }
    }
}

fn join<T>(rt: &Runtime, h: tokio::task::JoinHandle<T>) -> T {
    rt.block_on(async { timeout(STEP * 2, h).await })
        .expect("zmq.rs side timed out")
        .expect("zmq.rs side panicked")
}

const BIND_BOTH: [Binder; 2] = [Binder::Us, Binder::Them];

/// Message bodies across the one-byte/eight-byte size boundary (RFC 23 §2.3.3).
fn body(i: usize) -> Vec<u8> {
    let len = [0, 1, 255, 256, 3000][i % 5];
    (0..len).map(|k| (k + i) as u8).collect()
}

// ================================================================================ REQ-REP

#[test]
fn req_rep_both_ways() {
    for binder in BIND_BOTH {
        // Our REQ, their REP.
        let rt = rt();
        let ctx = Context::new().unwrap();
        let req = ours(&ctx, SocketType::Req);
        let mut rep = zeromq::RepSocket::new();
        wire(&rt, binder, &req, &mut rep);
        let server = rt.spawn(async move {
            for _ in 0..10 {
                let m = timeout(STEP, rep.recv()).await.unwrap().unwrap();
                let mut f = frames(&m);
                f.push(b"ok".to_vec());
                let refs: Vec<&[u8]> = f.iter().map(Vec::as_slice).collect();
                timeout(STEP, rep.send(zmsg(&refs))).await.unwrap().unwrap();
            }
        });
        for i in 0..10 {
            req.send_multipart([body(i), b"x".to_vec()]).unwrap();
            let r = req.recv_multipart_timeout(STEP).unwrap();
            assert_eq!(r, [body(i), b"x".to_vec(), b"ok".to_vec()], "{binder:?}");
        }
        join(&rt, server);

        // Their REQ, our REP.
        let rep = ours(&ctx, SocketType::Rep);
        let mut req = zeromq::ReqSocket::new();
        wire(&rt, binder, &rep, &mut req);
        let client = rt.spawn(async move {
            let mut got = Vec::new();
            for i in 0..10 {
                zsend(&mut req, zmsg(&[&body(i)])).await;
                got.push(frames(&timeout(STEP, req.recv()).await.unwrap().unwrap()));
            }
            got
        });
        for _ in 0..10 {
            let m = rep.recv_multipart_timeout(STEP).unwrap();
            let mut reply = m.clone();
            reply.push(b"ok".to_vec());
            rep.send_multipart(reply).unwrap();
        }
        let got = join(&rt, client);
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r, &[body(i), b"ok".to_vec()], "{binder:?}");
        }
    }
}

// ================================================================================ DEALER-ROUTER

#[test]
fn dealer_router_both_ways() {
    for binder in BIND_BOTH {
        // Our DEALER, their ROUTER: the ROUTER sees our routing id and answers through it.
        let rt = rt();
        let ctx = Context::new().unwrap();
        let dealer = ours(&ctx, SocketType::Dealer);
        dealer.set_routing_id(b"our-dealer").unwrap();
        let mut router = zeromq::RouterSocket::new();
        wire(&rt, binder, &dealer, &mut router);
        let server = rt.spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..5 {
                let m = frames(&timeout(STEP, router.recv()).await.unwrap().unwrap());
                ids.push(m[0].clone());
                let reply: Vec<&[u8]> = vec![&m[0], b"re", &m[1]];
                timeout(STEP, router.send(zmsg(&reply)))
                    .await
                    .unwrap()
                    .unwrap();
            }
            ids
        });
        for i in 0..5 {
            dealer.send_multipart([body(i)]).unwrap();
            let r = dealer.recv_multipart_timeout(STEP).unwrap();
            assert_eq!(r, [b"re".to_vec(), body(i)], "{binder:?}");
        }
        let ids = join(&rt, server);
        assert!(
            ids.iter().all(|id| id == b"our-dealer"),
            "{binder:?}: {ids:?}"
        );

        // Their DEALER, our ROUTER.
        let router = ours(&ctx, SocketType::Router);
        let mut opts = zeromq::SocketOptions::default();
        opts.peer_identity(zeromq::util::PeerIdentity::try_from(b"their-dealer".to_vec()).unwrap());
        let mut dealer = zeromq::DealerSocket::with_options(opts);
        wire(&rt, binder, &router, &mut dealer);
        let client = rt.spawn(async move {
            let mut got = Vec::new();
            for i in 0..5 {
                zsend(&mut dealer, zmsg(&[b"a", &body(i)])).await;
                got.push(frames(
                    &timeout(STEP, dealer.recv()).await.unwrap().unwrap(),
                ));
            }
            got
        });
        for i in 0..5 {
            let m = router.recv_multipart_timeout(STEP).unwrap();
            assert_eq!(
                m,
                [b"their-dealer".to_vec(), b"a".to_vec(), body(i)],
                "{binder:?}"
            );
            router
                .send_multipart([m[0].clone(), b"back".to_vec(), m[2].clone()])
                .unwrap();
        }
        let got = join(&rt, client);
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r, &[b"back".to_vec(), body(i)], "{binder:?}");
        }
    }
}

// ================================================================================ PUB-SUB

/// Publishes `weather.` and `sports.` messages until `got` says the subscriber has enough.
#[test]
fn pub_sub_both_ways() {
    for binder in BIND_BOTH {
        // Our PUB, their SUB subscribed to "weather.".
        let rt = rt();
        let ctx = Context::new().unwrap();
        let publisher = ours(&ctx, SocketType::Pub);
        let mut sub = zeromq::SubSocket::new();
        rt.block_on(sub.subscribe("weather.")).unwrap();
        wire(&rt, binder, &publisher, &mut sub);
        let subscriber = rt.spawn(async move {
            let mut got = Vec::new();
            while got.len() < 3 {
                got.push(frames(&timeout(STEP, sub.recv()).await.unwrap().unwrap()));
            }
            got
        });
        // The subscription reaches us some time after the connection: publish until the
        // subscriber has three messages (what is published before that is lost to it).
        let deadline = Instant::now() + STEP;
        while !subscriber.is_finished() {
            assert!(
                Instant::now() < deadline,
                "{binder:?}: subscriber got nothing"
            );
            publisher.send_multipart(["sports.", "0:0"]).unwrap();
            publisher.send_multipart(["weather.", "sunny"]).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        for m in join(&rt, subscriber) {
            assert_eq!(m, [b"weather.".to_vec(), b"sunny".to_vec()], "{binder:?}");
        }

        // Their PUB, our SUB.
        let sub = ours(&ctx, SocketType::Sub);
        sub.subscribe("weather.").unwrap();
        let mut publ = zeromq::PubSocket::new();
        wire(&rt, binder, &sub, &mut publ);
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let publisher = rt.spawn(async move {
            let deadline = tokio::time::Instant::now() + STEP;
            loop {
                if stop_rx.try_recv().is_ok() {
                    return true;
                }
                if tokio::time::Instant::now() > deadline {
                    return false;
                }
                publ.send(zmsg(&[b"sports.", b"0:0"])).await.unwrap();
                publ.send(zmsg(&[b"weather.", b"rain"])).await.unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        for _ in 0..3 {
            let m = sub.recv_multipart_timeout(STEP).unwrap();
            assert_eq!(m, [b"weather.".to_vec(), b"rain".to_vec()], "{binder:?}");
        }
        stop_tx.send(()).unwrap();
        assert!(
            join(&rt, publisher),
            "{binder:?}: publisher ran out of time"
        );
    }
}

// ================================================================================ PUSH-PULL

#[test]
fn push_pull_both_ways() {
    const N: usize = 200;
    for binder in BIND_BOTH {
        // Our PUSH, their PULL: every message arrives, in order, whole.
        let rt = rt();
        let ctx = Context::new().unwrap();
        let push = ours(&ctx, SocketType::Push);
        let mut pull = zeromq::PullSocket::new();
        wire(&rt, binder, &push, &mut pull);
        let receiver = rt.spawn(async move {
            let mut got = Vec::new();
            for _ in 0..=N {
                got.push(frames(&timeout(STEP, pull.recv()).await.unwrap().unwrap()));
            }
            got
        });
        for i in 0..N {
            push.send_multipart([i.to_string().into_bytes(), body(i)])
                .unwrap();
        }
        // And one message of many frames (more than the I/O thread passes on the stack).
        let many: Vec<Vec<u8>> = (0..12).map(body).collect();
        push.send_multipart(&many).unwrap();
        let got = join(&rt, receiver);
        for (i, m) in got.iter().take(N).enumerate() {
            assert_eq!(m, &[i.to_string().into_bytes(), body(i)], "{binder:?}");
        }
        assert_eq!(got.get(N), Some(&many), "{binder:?}");

        // Their PUSH, our PULL.
        let pull = ours(&ctx, SocketType::Pull);
        let mut push = zeromq::PushSocket::new();
        wire(&rt, binder, &pull, &mut push);
        let sender = rt.spawn(async move {
            for i in 0..N {
                let id = i.to_string().into_bytes();
                zsend(&mut push, zmsg(&[&id, &body(i)])).await;
            }
            push // kept alive until everything is received
        });
        for i in 0..N {
            let m = pull.recv_multipart_timeout(STEP).unwrap();
            assert_eq!(m, [i.to_string().into_bytes(), body(i)], "{binder:?}");
        }
        drop(join(&rt, sender));
    }
}
