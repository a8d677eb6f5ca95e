//! `poll`: readiness of several sockets, timeouts, wake-ups from other threads, and a
//! ROUTER-DEALER broker served by one thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use zmtp_std::{poll, Context, Error, PollEvents, PollItem, SocketType};

mod common;
use common::STEP;

#[test]
fn poll_events_set_operations() {
    let both = PollEvents::IN | PollEvents::OUT;
    assert!(both.contains(PollEvents::IN) && both.contains(PollEvents::OUT));
    assert!(!PollEvents::IN.contains(PollEvents::OUT));
    assert!(PollEvents::empty().is_empty() && !both.is_empty());
    assert_eq!(PollEvents::default(), PollEvents::empty());
    let mut e = PollEvents::empty();
    e |= PollEvents::OUT;
    assert_eq!(e, PollEvents::OUT);
    assert!(both.contains(PollEvents::empty()));
}

#[test]
fn readiness_of_several_sockets() {
    let ctx = Context::new().unwrap();
    let a = ctx.socket(SocketType::Pull).unwrap();
    let b = ctx.socket(SocketType::Pull).unwrap();
    let push_a = ctx.socket(SocketType::Push).unwrap();
    let push_b = ctx.socket(SocketType::Push).unwrap();
    push_a
        .connect(&a.bind("tcp://127.0.0.1:0").unwrap())
        .unwrap();
    push_b
        .connect(&b.bind("tcp://127.0.0.1:0").unwrap())
        .unwrap();

    // Nothing yet: a zero timeout checks once.
    let mut items = [
        a.as_poll_item(PollEvents::IN),
        b.as_poll_item(PollEvents::IN),
        // A PULL never sends, a PUSH never receives: never ready for those.
        a.as_poll_item(PollEvents::OUT),
        push_a.as_poll_item(PollEvents::IN),
        PollItem::new(&push_b, PollEvents::empty()),
    ];
    assert_eq!(poll(&mut items, Some(Duration::ZERO)).unwrap(), 0);
    assert!(items.iter().all(|i| i.revents().is_empty()));

    push_b.send_multipart(["b", "1"]).unwrap();
    assert_eq!(poll(&mut items, Some(STEP)).unwrap(), 1);
    assert!(!items[0].is_readable());
    assert!(items[1].is_readable() && !items[1].is_writable());
    assert_eq!(items[1].revents(), PollEvents::IN);

    push_a.send("a").unwrap();
    // Both become readable (the second may take another poll to arrive).
    let deadline = Instant::now() + STEP;
    loop {
        let n = poll(&mut items, Some(STEP)).unwrap();
        if n == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "a never became readable");
    }
    assert!(items[0].is_readable() && items[1].is_readable());
    // Readable means a whole message is there for a non-blocking receive.
    assert_eq!(a.try_recv_multipart().unwrap(), [b"a".to_vec()]);
    // Half a message read with `recv`: the rest counts as readable.
    assert_eq!(b.try_recv().unwrap(), b"b");
    assert_eq!(poll(&mut items, Some(Duration::ZERO)).unwrap(), 1);
    assert!(items[1].is_readable());
    assert_eq!(b.try_recv().unwrap(), b"1");
    assert_eq!(poll(&mut items, Some(Duration::ZERO)).unwrap(), 0);
}

#[test]
fn a_finite_timeout_returns_zero_after_waiting() {
    let ctx = Context::new().unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.bind("tcp://127.0.0.1:0").unwrap();
    let mut items = [pull.as_poll_item(PollEvents::IN)];
    let t = Duration::from_millis(100);
    let start = Instant::now();
    assert_eq!(poll(&mut items, Some(t)).unwrap(), 0);
    assert!(
        start.elapsed() >= t,
        "returned early: {:?}",
        start.elapsed()
    );
    assert!(!items[0].is_readable());
    // No items: waits out the timeout, then 0.
    assert_eq!(poll(&mut [], Some(Duration::from_millis(10))).unwrap(), 0);
}

#[test]
fn a_send_from_another_thread_wakes_a_poll_without_timeout() {
    let ctx = Context::new().unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let ctx2 = ctx.clone();
    let sender = thread::spawn(move || {
        let push = ctx2.socket(SocketType::Push).unwrap();
        push.connect(&ep).unwrap();
        // Let the poll go to sleep first (not needed for correctness: it would find the
        // message at once otherwise).
        thread::sleep(Duration::from_millis(50));
        push.send("wake up").unwrap();
        push
    });
    let mut items = [pull.as_poll_item(PollEvents::IN)];
    assert_eq!(poll(&mut items, None).unwrap(), 1);
    assert!(items[0].is_readable());
    assert_eq!(pull.try_recv().unwrap(), b"wake up");
    drop(sender.join().unwrap());
}

#[test]
fn out_follows_outbox_room_and_a_peer_arriving() {
    let ctx = Context::new().unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_send_hwm(2).unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    // A PUSH with no peer yet queues up to its high-water mark, then would block.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("tcp://{}", listener.local_addr().unwrap());
    drop(listener);
    push.connect(&nowhere).unwrap();
    let mut items = [push.as_poll_item(PollEvents::IN | PollEvents::OUT)];
    assert_eq!(poll(&mut items, Some(Duration::ZERO)).unwrap(), 1);
    assert_eq!(items[0].revents(), PollEvents::OUT);
    push.try_send("1").unwrap();
    push.try_send("2").unwrap();
    assert!(matches!(push.try_send("3"), Err(Error::WouldBlock)));
    assert_eq!(
        poll(&mut items, Some(Duration::from_millis(20))).unwrap(),
        0
    );
    assert!(!items[0].is_writable());

    // A peer arrives (from another thread's point of view: the I/O thread): the outbox
    // drains and the poll wakes.
    push.connect(&ep).unwrap();
    assert_eq!(poll(&mut items, Some(STEP)).unwrap(), 1);
    assert!(items[0].is_writable());
    push.try_send("3").unwrap();
    for want in ["1", "2", "3"] {
        assert_eq!(pull.recv_timeout(STEP).unwrap(), want.as_bytes());
    }
}

#[test]
fn req_and_rep_readiness_follows_their_turns() {
    let ctx = Context::new().unwrap();
    let rep = ctx.socket(SocketType::Rep).unwrap();
    let req = ctx.socket(SocketType::Req).unwrap();
    req.connect(&rep.bind("tcp://127.0.0.1:0").unwrap())
        .unwrap();
    let both = PollEvents::IN | PollEvents::OUT;
    let mut items = [req.as_poll_item(both), rep.as_poll_item(both)];

    // REQ may send; REP has nothing to receive and nothing to answer.
    assert_eq!(poll(&mut items, Some(Duration::ZERO)).unwrap(), 1);
    assert_eq!(items[0].revents(), PollEvents::OUT);
    assert!(items[1].revents().is_empty());

    req.send("ping").unwrap();
    // REQ waits for its reply (neither); REP gets the request (IN only).
    assert_eq!(poll(&mut items, Some(STEP)).unwrap(), 1);
    assert!(items[0].revents().is_empty());
    assert_eq!(items[1].revents(), PollEvents::IN);
    assert_eq!(rep.try_recv().unwrap(), b"ping");

    // REP holds a request: may reply, not receive.
    assert_eq!(poll(&mut items, Some(Duration::ZERO)).unwrap(), 1);
    assert_eq!(items[1].revents(), PollEvents::OUT);
    rep.send("pong").unwrap();

    assert_eq!(poll(&mut items, Some(STEP)).unwrap(), 1);
    assert_eq!(items[0].revents(), PollEvents::IN);
    assert_eq!(req.try_recv().unwrap(), b"pong");
    assert_eq!(poll(&mut items, Some(Duration::ZERO)).unwrap(), 1);
    assert_eq!(items[0].revents(), PollEvents::OUT);
}

/// The classic broker: REQ clients → ROUTER frontend ⇄ DEALER backend → REP workers, the
/// broker a single thread polling both sides.
#[test]
fn router_dealer_broker_served_by_one_polling_thread() {
    const CLIENTS: usize = 4;
    const WORKERS: usize = 3;
    const REQUESTS: usize = 50;
    let ctx = Context::new().unwrap();
    let frontend = ctx.socket(SocketType::Router).unwrap();
    let backend = ctx.socket(SocketType::Dealer).unwrap();
    let front_ep = frontend.bind("tcp://127.0.0.1:0").unwrap();
    let back_ep = backend.bind("tcp://127.0.0.1:0").unwrap();

    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let broker = thread::spawn(move || {
        let mut forwarded = 0usize;
        while stop_rx.try_recv().is_err() {
            let mut items = [
                frontend.as_poll_item(PollEvents::IN),
                backend.as_poll_item(PollEvents::IN),
            ];
            if poll(&mut items, Some(Duration::from_millis(50))).unwrap() == 0 {
                continue;
            }
            let (front_in, back_in) = (items[0].is_readable(), items[1].is_readable());
            if front_in {
                let m = frontend.try_recv_multipart().unwrap();
                backend.send_multipart(m).unwrap();
                forwarded += 1;
            }
            if back_in {
                let m = backend.try_recv_multipart().unwrap();
                frontend.send_multipart(m).unwrap();
            }
        }
        forwarded
    });

    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let ctx = ctx.clone();
            let ep = back_ep.clone();
            thread::spawn(move || {
                let rep = ctx.socket(SocketType::Rep).unwrap();
                rep.connect(&ep).unwrap();
                // Serve until the clients are done.
                while !DONE.load(Ordering::SeqCst) {
                    match rep.recv_multipart_timeout(Duration::from_millis(50)) {
                        Ok(req) => {
                            let mut reply = req[0].clone();
                            reply.extend_from_slice(format!(" by {w}").as_bytes());
                            rep.send(reply).unwrap();
                        }
                        Err(Error::Timeout) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let ctx = ctx.clone();
            let ep = front_ep.clone();
            thread::spawn(move || {
                let req = ctx.socket(SocketType::Req).unwrap();
                req.connect(&ep).unwrap();
                for i in 0..REQUESTS {
                    let body = format!("c{c} r{i}");
                    req.send(&body).unwrap();
                    let reply = String::from_utf8(req.recv_timeout(STEP).unwrap()).unwrap();
                    assert!(reply.starts_with(&format!("{body} by ")), "{reply}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    DONE.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    stop_tx.send(()).unwrap();
    assert_eq!(broker.join().unwrap(), CLIENTS * REQUESTS);
}

static DONE: AtomicBool = AtomicBool::new(false);
