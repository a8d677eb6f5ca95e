//! Chapter 1 of the Guide: hello world, weather updates, the pipeline; each piece on a
//! thread, the outcome checked, and hello world against libzmq both ways.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use zmtp_guide::{hello, pipeline, wait_for, weather, Stop, ANY_LOCAL};
use zmtp_std::{Context, SocketType};

#[test]
fn hello_world_ours_both_sides() {
    let ctx = Context::new().unwrap();
    let server = ctx.socket(SocketType::Rep).unwrap();
    let endpoint = server.bind(ANY_LOCAL).unwrap();
    let t = std::thread::spawn(move || hello::hwserver(&server, 5, Duration::ZERO));
    let client = ctx.socket(SocketType::Req).unwrap();
    client.connect(&endpoint).unwrap();
    let replies = hello::hwclient(&client, 5).unwrap();
    assert_eq!(replies, vec![b"World".to_vec(); 5]);
    assert_eq!(t.join().unwrap().unwrap(), vec![b"Hello".to_vec(); 5]);
}

#[test]
fn hello_world_libzmq_client_our_server() {
    let ctx = Context::new().unwrap();
    let server = ctx.socket(SocketType::Rep).unwrap();
    let endpoint = server.bind(ANY_LOCAL).unwrap();
    let t = std::thread::spawn(move || hello::hwserver(&server, 3, Duration::ZERO));
    let zctx = zmq::Context::new();
    let client = zctx.socket(zmq::REQ).unwrap();
    client.connect(&endpoint).unwrap();
    for _ in 0..3 {
        client.send("Hello", 0).unwrap();
        assert_eq!(client.recv_bytes(0).unwrap(), b"World");
    }
    assert_eq!(t.join().unwrap().unwrap(), vec![b"Hello".to_vec(); 3]);
}

#[test]
fn hello_world_our_client_libzmq_server() {
    let zctx = zmq::Context::new();
    let server = zctx.socket(zmq::REP).unwrap();
    server.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = server.get_last_endpoint().unwrap().unwrap();
    let t = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(server.recv_bytes(0).unwrap());
            server.send("World", 0).unwrap();
        }
        seen
    });
    let ctx = Context::new().unwrap();
    let client = ctx.socket(SocketType::Req).unwrap();
    client.connect(&endpoint).unwrap();
    assert_eq!(
        hello::hwclient(&client, 3).unwrap(),
        vec![b"World".to_vec(); 3]
    );
    assert_eq!(t.join().unwrap(), vec![b"Hello".to_vec(); 3]);
}

/// The subscriber gets only its zip code, although the publisher sends all ten.
#[test]
fn weather_filter() {
    let ctx = Context::new().unwrap();
    let publisher = ctx.socket(SocketType::Pub).unwrap();
    let endpoint = publisher.bind(ANY_LOCAL).unwrap();
    let stop = Stop::new();
    let server = {
        let stop = stop.clone();
        std::thread::spawn(move || weather::wuserver(&publisher, 10000..=10009, 7, &stop))
    };
    let subscriber = ctx.socket(SocketType::Sub).unwrap();
    subscriber.connect(&endpoint).unwrap();
    let updates = weather::wuclient(&subscriber, 10001, 100)
        .unwrap()
        .expect("every update parses");
    stop.stop();
    let published = server.join().unwrap().unwrap();
    assert_eq!(updates.len(), 100);
    assert!(updates.iter().all(|u| u.zipcode == 10001));
    assert!(updates
        .iter()
        .all(|u| (-80..135).contains(&u.temperature) && (10..60).contains(&u.relhumidity)));
    // One in ten updates is for 10001: the publisher sent the others too, and the
    // subscriber saw none of them.
    assert!(published > 100, "published {published}");
    let avg = weather::average_temperature(&updates);
    assert!((-80.0..135.0).contains(&avg));
}

/// A libzmq subscriber filters our publisher's updates the same way.
#[test]
fn weather_libzmq_subscriber() {
    let ctx = Context::new().unwrap();
    let publisher = ctx.socket(SocketType::Pub).unwrap();
    let endpoint = publisher.bind(ANY_LOCAL).unwrap();
    let stop = Stop::new();
    let server = {
        let stop = stop.clone();
        std::thread::spawn(move || weather::wuserver(&publisher, 10000..=10009, 9, &stop))
    };
    let zctx = zmq::Context::new();
    let sub = zctx.socket(zmq::SUB).unwrap();
    sub.set_subscribe(weather::filter(10005).as_bytes())
        .unwrap();
    sub.connect(&endpoint).unwrap();
    for _ in 0..50 {
        let u = weather::Update::parse(&sub.recv_bytes(0).unwrap()).unwrap();
        assert_eq!(u.zipcode, 10005);
    }
    stop.stop();
    server.join().unwrap().unwrap();
}

/// Every task is done exactly once, and all three workers share them.
#[test]
fn pipeline_every_task_once() {
    const TASKS: usize = 60;
    const WORKERS: usize = 3;
    let ctx = Context::new().unwrap();
    let sink = ctx.socket(SocketType::Pull).unwrap();
    let sink_endpoint = sink.bind(ANY_LOCAL).unwrap();
    let sender = ctx.socket(SocketType::Push).unwrap();
    let vent_endpoint = sender.bind(ANY_LOCAL).unwrap();
    let stop = Stop::new();
    let workers: Vec<_> = (1..=WORKERS)
        .map(|n| {
            let (ctx, stop) = (ctx.clone(), stop.clone());
            let (vent, sink) = (vent_endpoint.clone(), sink_endpoint.clone());
            std::thread::spawn(move || {
                let receiver = ctx.socket(SocketType::Pull).unwrap();
                receiver.connect(&vent).unwrap();
                let sender = ctx.socket(SocketType::Push).unwrap();
                sender.connect(&sink).unwrap();
                let name = format!("worker-{n}");
                pipeline::taskwork(&name, &receiver, &sender, Duration::from_micros(20), &stop)
                    .unwrap()
            })
        })
        .collect();
    let collector = std::thread::spawn(move || pipeline::tasksink(&sink, TASKS));
    let to_sink = ctx.socket(SocketType::Push).unwrap();
    to_sink.connect(&sink_endpoint).unwrap();
    assert!(wait_for(Duration::from_secs(10), || sender
        .connected_peers()
        == WORKERS));
    let total = pipeline::taskvent(&sender, &to_sink, TASKS, 3).unwrap();
    assert!(total >= TASKS as u64 && total <= 100 * TASKS as u64);
    let batch = collector.join().unwrap().unwrap();
    stop.stop();
    let done: usize = workers.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(done, TASKS);
    let ids: BTreeSet<usize> = batch.results.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids, (0..TASKS).collect::<BTreeSet<_>>());
    let mut per_worker: BTreeMap<&str, usize> = BTreeMap::new();
    for (w, _) in &batch.results {
        *per_worker.entry(w).or_default() += 1;
    }
    // PUSH deals round robin over the workers connected before the first task.
    assert_eq!(per_worker.len(), WORKERS, "{per_worker:?}");
    assert!(
        per_worker.values().all(|&n| n == TASKS / WORKERS),
        "{per_worker:?}"
    );
}

/// The start signal and the results reach the sink over different connections, so a
/// result can come first; the sink still counts every result and the signal as such.
#[test]
fn pipeline_sink_start_signal_overtaken() {
    let ctx = Context::new().unwrap();
    let sink = ctx.socket(SocketType::Pull).unwrap();
    sink.set_max_peers(1).unwrap();
    let endpoint = sink.bind(ANY_LOCAL).unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.connect(&endpoint).unwrap();
    // One connection keeps this order: a result, the start signal, the other result.
    for m in ["worker-1 0", "0", "worker-2 1"] {
        push.send(m).unwrap();
    }
    let batch = pipeline::tasksink(&sink, 2).unwrap();
    assert_eq!(
        batch.results,
        [("worker-1".to_owned(), 0), ("worker-2".to_owned(), 1)]
    );
}
