//! The `zmtp` binary against libzmq peers (the `zmq` crate), both binding and connecting:
//! output format (JSON lines on stdout, `bound EP` first on stderr), exit codes, `--hex`,
//! `--count`, `--timeout`, misbehaving peers, `decode`, `broker`, `proxy`, `bench`.
//!
//! No sleeps as synchronisation: the tool's `bound` line says when it listens, and every
//! wait has a deadline.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

mod common;
use common::{run, spawn, zbind, zsock, STEP};

fn zctx() -> zmq::Context {
    zmq::Context::new()
}

fn strs(v: &[&str]) -> Vec<Vec<u8>> {
    v.iter().map(|s| s.as_bytes().to_vec()).collect()
}

// ------------------------------------------------------------------------ recv

#[test]
fn recv_pull_bound_prints_json_lines_and_stops_after_count() {
    let mut p = spawn(&[
        "recv",
        "-t",
        "PULL",
        "-b",
        "tcp://127.0.0.1:0",
        "--count",
        "3",
    ]);
    let ep = p.bound();
    let ctx = zctx();
    let push = zsock(&ctx, zmq::PUSH);
    push.connect(&ep).unwrap();
    push.send_multipart(["hello", "world"], 0).unwrap();
    push.send_multipart(["", "quote\" back\\slash\nnewline", "ünïcødé"], 0)
        .unwrap();
    push.send("last", 0).unwrap();
    let (status, out, err) = p.finish();
    assert!(status.success(), "{status:?} {err}");
    assert_eq!(
        out,
        [
            r#"["hello","world"]"#,
            r#"["","quote\" back\\slash\nnewline","ünïcødé"]"#,
            r#"["last"]"#
        ]
    );
    assert!(err.starts_with("bound tcp://127.0.0.1:"), "{err}");
}

#[test]
fn recv_sub_connects_to_libzmq_pub_with_subscribe() {
    let ctx = zctx();
    let publisher = zsock(&ctx, zmq::PUB);
    let ep = zbind(&publisher);
    let p = spawn(&[
        "recv",
        "-t",
        "sub",
        "-c",
        &ep,
        "--subscribe",
        "weather",
        "--count",
        "1",
    ]);
    // The subscription takes a moment to arrive: publish until the line comes.
    let end = Instant::now() + STEP;
    let line = loop {
        assert!(Instant::now() < end, "nothing received");
        publisher.send_multipart(["sports", "0:0"], 0).unwrap();
        publisher.send_multipart(["weather", "sunny"], 0).unwrap();
        if let Some(l) = p.try_line(Duration::from_millis(20)) {
            break l;
        }
    };
    assert_eq!(line, r#"["weather","sunny"]"#);
    let (status, _, err) = p.finish();
    assert!(status.success(), "{err}");
}

#[test]
fn recv_hex_and_non_utf8_frames() {
    let ctx = zctx();
    let push = zsock(&ctx, zmq::PUSH);
    let ep = zbind(&push);
    let p = spawn(&["recv", "-t", "pull", "-c", &ep, "--count", "1", "--hex"]);
    push.send_multipart([&[0u8, 0xff][..], b"A"], 0).unwrap();
    let (status, out, _) = p.finish();
    assert!(status.success());
    assert_eq!(out, [r#"["00ff","41"]"#]);

    // Without --hex: still valid JSON, U+FFFD for the bad bytes, a warning on stderr.
    let push = zsock(&ctx, zmq::PUSH);
    let ep = zbind(&push);
    let p = spawn(&["recv", "-t", "pull", "-c", &ep, "--count", "1"]);
    push.send_multipart([&[0xffu8, b'A'][..], b"ok"], 0)
        .unwrap();
    let (status, out, err) = p.finish();
    assert!(status.success());
    let v: Vec<String> = serde_json::from_str(&out[0]).expect("valid JSON");
    assert_eq!(v, ["\u{fffd}A", "ok"]);
    assert!(err.contains("frame 0 not UTF-8"), "{err}");
}

#[test]
fn recv_timeout_expires_with_exit_code_3() {
    let started = Instant::now();
    let mut p = spawn(&[
        "recv",
        "-t",
        "pull",
        "-b",
        "tcp://127.0.0.1:0",
        "--timeout",
        "200",
    ]);
    p.bound();
    let (status, out, err) = p.finish();
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(out.is_empty());
    assert!(err.contains("--timeout 200 ms"), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[test]
fn recv_keeps_serving_when_a_peer_misbehaves() {
    let mut p = spawn(&[
        "recv",
        "-t",
        "pull",
        "-b",
        "tcp://127.0.0.1:0",
        "--count",
        "2",
    ]);
    let ep = p.bound();
    let ctx = zctx();
    let good = zsock(&ctx, zmq::PUSH);
    good.connect(&ep).unwrap();
    good.send("before", 0).unwrap();
    assert_eq!(p.line(), r#"["before"]"#);
    misbehave(&ep);
    assert!(p.running(), "a bad peer stopped recv");
    good.send("after", 0).unwrap();
    assert_eq!(p.line(), r#"["after"]"#);
    assert!(p.finish().0.success());
}

#[test]
fn recv_verbose_reports_the_bad_peer_on_stderr() {
    let mut p = spawn(&[
        "recv",
        "-t",
        "pull",
        "-b",
        "tcp://127.0.0.1:0",
        "-v",
        "--count",
        "1",
    ]);
    let ep = p.bound();
    misbehave(&ep);
    let ctx = zctx();
    let good = zsock(&ctx, zmq::PUSH);
    good.connect(&ep).unwrap();
    good.send("fine", 0).unwrap();
    let (status, out, err) = p.finish();
    assert!(status.success());
    assert_eq!(out, [r#"["fine"]"#]);
    assert!(err.starts_with("bound tcp://"), "{err}");
    assert!(err.contains("accepted"), "{err}");
    assert!(err.contains("handshake failed"), "{err}");
    assert!(err.contains("handshake done with a PUSH peer"), "{err}");
}

#[test]
fn recv_stops_on_ctrl_c_with_exit_code_130() {
    let mut p = spawn(&["recv", "-t", "pull", "-b", "tcp://127.0.0.1:0"]);
    p.bound();
    let pid = p.child.id().to_string();
    let kill = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(kill.success());
    let (status, out, _) = p.finish();
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(out.is_empty());
}

#[test]
fn ipc_endpoints_with_libzmq() {
    let dir = std::env::temp_dir().join(format!("zmtp-cli-ipc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // We bind, libzmq connects.
    let ep = format!("ipc://{}", dir.join("bound").display());
    let mut p = spawn(&["recv", "-t", "pull", "-b", &ep, "--count", "1"]);
    assert_eq!(p.bound_any(), ep);
    let ctx = zctx();
    let push = zsock(&ctx, zmq::PUSH);
    push.connect(&ep).unwrap();
    push.send("over ipc", 0).unwrap();
    let (status, out, err) = p.finish();
    assert!(status.success(), "{err}");
    assert_eq!(out, [r#"["over ipc"]"#]);
    // libzmq binds, we connect.
    let ep = format!("ipc://{}", dir.join("libzmq").display());
    let pull = zsock(&ctx, zmq::PULL);
    pull.bind(&ep).unwrap();
    let (code, _, err) = run(
        &[
            "send",
            "-t",
            "push",
            "-c",
            &ep,
            "--timeout",
            "20000",
            "back",
        ],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(pull.recv_bytes(0).unwrap(), b"back");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two misbehaving peers: one that is not ZMTP at all, one with a good greeting and then a
/// frame with reserved flags. Returns once the tool has closed both connections.
fn misbehave(ep: &str) {
    let addr = ep.strip_prefix("tcp://").unwrap();
    let mut http = TcpStream::connect(addr).unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut zmtp = TcpStream::connect(addr).unwrap();
    let mut greeting = [0u8; 64];
    greeting[0] = 0xff;
    greeting[9] = 0x7f;
    greeting[10] = 3;
    greeting[11] = 1;
    greeting[12..16].copy_from_slice(b"NULL");
    zmtp.write_all(&greeting).unwrap();
    zmtp.write_all(b"\x04\x1a\x05READY\x0bSocket-Type\x00\x00\x00\x04PUSH")
        .unwrap();
    zmtp.write_all(&[0x80, 3, 1, 2, 3]).unwrap();
    for mut s in [http, zmtp] {
        s.set_read_timeout(Some(STEP)).unwrap();
        let mut sink = Vec::new();
        // Returns at EOF (or a reset): the tool dropped the connection.
        let _ = s.read_to_end(&mut sink);
    }
}

// ------------------------------------------------------------------------ send

#[test]
fn send_connects_to_libzmq_pull() {
    let ctx = zctx();
    let pull = zsock(&ctx, zmq::PULL);
    let ep = zbind(&pull);
    let p = spawn(&[
        "send",
        "-t",
        "push",
        "-c",
        &ep,
        "--count",
        "3",
        "--interval",
        "5",
        "a",
        "",
        "b c",
    ]);
    for _ in 0..3 {
        assert_eq!(pull.recv_multipart(0).unwrap(), strs(&["a", "", "b c"]));
    }
    let (status, out, err) = p.finish();
    assert!(status.success(), "{err}");
    assert!(out.is_empty());
}

#[test]
fn send_binds_and_waits_for_libzmq_peer_with_hex() {
    let mut p = spawn(&[
        "send",
        "-t",
        "DEALER",
        "-b",
        "tcp://127.0.0.1:0",
        "--timeout",
        "20000",
        "--hex",
        "00ff",
        "",
    ]);
    let ep = p.bound();
    let ctx = zctx();
    let router = zsock(&ctx, zmq::ROUTER);
    router.connect(&ep).unwrap();
    let msg = router.recv_multipart(0).unwrap();
    assert_eq!(msg.len(), 3, "{msg:?}");
    assert_eq!(msg[1..], [vec![0u8, 0xff], vec![]]);
    assert!(p.finish().0.success());
}

#[test]
fn send_without_peer_times_out() {
    let mut p = spawn(&[
        "send",
        "-t",
        "push",
        "-b",
        "tcp://127.0.0.1:0",
        "--timeout",
        "100",
        "x",
    ]);
    p.bound();
    let (status, _, err) = p.finish();
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("no peer connected"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["send", "-t", "bogus", "-c", "tcp://127.0.0.1:1", "x"][..],
        &["send", "-t", "pull", "-c", "tcp://127.0.0.1:1", "x"],
        &[
            "send",
            "-t",
            "push",
            "-c",
            "tcp://127.0.0.1:1",
            "--hex",
            "xyz",
        ],
        &["recv", "-t", "pull", "-b", "tcp://nohostport"],
        &["recv", "-t", "pull"],
        &["recv", "-t", "push", "-b", "tcp://127.0.0.1:0"],
        &["echo", "-t", "pull", "-b", "tcp://127.0.0.1:0"],
        &[
            "recv",
            "-t",
            "pull",
            "-b",
            "tcp://127.0.0.1:0",
            "--subscribe",
            "x",
        ],
        &[
            "proxy",
            "--frontend",
            "tcp://x:1",
            "--backend",
            "pub,tcp://127.0.0.1:0",
        ],
        &["frobnicate"],
    ] {
        let (code, out, err) = run(args, b"");
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert!(!err.is_empty(), "{args:?}: no message");
    }
    let (code, out, _) = run(&["--help"], b"");
    assert_eq!(code, 0);
    for sub in [
        "send", "recv", "echo", "req", "broker", "proxy", "bench", "decode",
    ] {
        assert!(out.contains(sub), "--help lacks {sub}");
    }
    let (code, out, _) = run(&["bench", "thr", "--help"], b"");
    assert_eq!(code, 0);
    assert!(out.contains("local_thr") && out.contains("--size"), "{out}");
}

// ------------------------------------------------------------------------ echo

#[test]
fn echo_rep_bound_answers_libzmq_req() {
    let mut p = spawn(&[
        "echo",
        "-t",
        "rep",
        "-b",
        "tcp://127.0.0.1:0",
        "--count",
        "2",
    ]);
    let ep = p.bound();
    let ctx = zctx();
    let req = zsock(&ctx, zmq::REQ);
    req.connect(&ep).unwrap();
    for m in [&["ping"][..], &["multi", "part"]] {
        req.send_multipart(m.iter(), 0).unwrap();
        assert_eq!(req.recv_multipart(0).unwrap(), strs(m));
    }
    let (status, out, _) = p.finish();
    assert!(status.success());
    assert_eq!(out, [r#"["ping"]"#, r#"["multi","part"]"#]);
}

#[test]
fn echo_rep_connects_to_libzmq_dealer() {
    let ctx = zctx();
    let dealer = zsock(&ctx, zmq::DEALER);
    let ep = zbind(&dealer);
    let p = spawn(&["echo", "-t", "rep", "-c", &ep, "--count", "1"]);
    dealer.send_multipart(["", "hi"], 0).unwrap();
    assert_eq!(dealer.recv_multipart(0).unwrap(), strs(&["", "hi"]));
    let (status, out, _) = p.finish();
    assert!(status.success());
    assert_eq!(out, [r#"["hi"]"#]);
}

#[test]
fn echo_router_replies_to_each_sender() {
    let mut p = spawn(&[
        "echo",
        "-t",
        "router",
        "-b",
        "tcp://127.0.0.1:0",
        "--count",
        "4",
    ]);
    let ep = p.bound();
    let ctx = zctx();
    let (a, b) = (zsock(&ctx, zmq::DEALER), zsock(&ctx, zmq::DEALER));
    a.set_identity(b"alice").unwrap();
    b.set_identity(b"bob").unwrap();
    a.connect(&ep).unwrap();
    b.connect(&ep).unwrap();
    for round in ["1", "2"] {
        a.send_multipart(["from alice", round], 0).unwrap();
        b.send_multipart(["from bob", round], 0).unwrap();
        assert_eq!(a.recv_multipart(0).unwrap(), strs(&["from alice", round]));
        assert_eq!(b.recv_multipart(0).unwrap(), strs(&["from bob", round]));
    }
    let (status, mut out, _) = p.finish();
    assert!(status.success());
    out.sort();
    assert_eq!(
        out,
        [
            r#"["alice","from alice","1"]"#,
            r#"["alice","from alice","2"]"#,
            r#"["bob","from bob","1"]"#,
            r#"["bob","from bob","2"]"#
        ]
    );
}

#[test]
fn echo_pair_connects_with_hex() {
    let ctx = zctx();
    let pair = zsock(&ctx, zmq::PAIR);
    let ep = zbind(&pair);
    let p = spawn(&["echo", "-t", "Pair", "-c", &ep, "--count", "1", "--hex"]);
    pair.send_multipart([&[1u8, 2][..], b""], 0).unwrap();
    assert_eq!(pair.recv_multipart(0).unwrap(), [vec![1u8, 2], vec![]]);
    let (status, out, _) = p.finish();
    assert!(status.success());
    assert_eq!(out, [r#"["0102",""]"#]);
}

#[test]
fn echo_keeps_serving_when_a_peer_misbehaves() {
    let mut p = spawn(&["echo", "-t", "rep", "-b", "tcp://127.0.0.1:0"]);
    let ep = p.bound();
    let ctx = zctx();
    let req = zsock(&ctx, zmq::REQ);
    req.connect(&ep).unwrap();
    req.send("one", 0).unwrap();
    assert_eq!(req.recv_bytes(0).unwrap(), b"one");
    misbehave(&ep);
    // A REQ peer that vanishes with its request unanswered.
    let rude = zsock(&ctx, zmq::REQ);
    rude.connect(&ep).unwrap();
    rude.send("gone", 0).unwrap();
    assert_eq!(p.line(), r#"["one"]"#);
    assert_eq!(p.line(), r#"["gone"]"#);
    drop(rude);
    req.send("two", 0).unwrap();
    assert_eq!(req.recv_bytes(0).unwrap(), b"two");
    assert_eq!(p.line(), r#"["two"]"#);
    assert!(p.running());
}

#[test]
fn echo_timeout_exit_code() {
    let mut p = spawn(&[
        "echo",
        "-t",
        "router",
        "-b",
        "tcp://127.0.0.1:0",
        "--timeout",
        "50",
    ]);
    p.bound();
    assert_eq!(p.finish().0.code(), Some(3));
}

// ------------------------------------------------------------------------ req

fn libzmq_rep_server(ctx: &zmq::Context, rep: zmq::Socket, n: usize) -> thread::JoinHandle<()> {
    let _ = ctx;
    thread::spawn(move || {
        for _ in 0..n {
            let mut m = rep.recv_multipart(0).unwrap();
            m.insert(0, b"re".to_vec());
            rep.send_multipart(m, 0).unwrap();
        }
    })
}

#[test]
fn req_connects_to_libzmq_rep() {
    let ctx = zctx();
    let rep = zsock(&ctx, zmq::REP);
    let ep = zbind(&rep);
    let server = libzmq_rep_server(&ctx, rep, 1);
    let (code, out, err) = run(
        &["req", "-c", &ep, "--timeout", "20000", "hello", "there"],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "[\"re\",\"hello\",\"there\"]\n");
    server.join().unwrap();
}

#[test]
fn req_binds_for_libzmq_rep() {
    let mut p = spawn(&["req", "-b", "tcp://127.0.0.1:0", "--hex", "cafe"]);
    let ep = p.bound();
    let ctx = zctx();
    let rep = zsock(&ctx, zmq::REP);
    rep.connect(&ep).unwrap();
    let server = libzmq_rep_server(&ctx, rep, 1);
    let (status, out, _) = p.finish();
    assert!(status.success());
    assert_eq!(out, [r#"["7265","cafe"]"#]);
    server.join().unwrap();
}

#[test]
fn req_timeout_exit_code() {
    // A libzmq REP that never answers.
    let ctx = zctx();
    let rep = zsock(&ctx, zmq::REP);
    let ep = zbind(&rep);
    let started = Instant::now();
    let (code, out, err) = run(&["req", "-c", &ep, "--timeout", "300", "anyone?"], b"");
    assert_eq!(code, 3, "{err}");
    assert!(out.is_empty());
    assert!(err.contains("no reply within --timeout 300 ms"), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Exits at once (linger 0 on failure), not after the 30 s default linger.
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(rep.recv_bytes(0).unwrap(), b"anyone?");
}

// ------------------------------------------------------------------------ decode

fn vectors() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../zmtp-core/tests/vectors/");
    let text =
        std::fs::read_to_string(format!("{path}libzmq435_null_greeting_ready.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn decode_golden_libzmq_greeting_and_ready() {
    let v = vectors();
    // libzmq 4.3.5's greeting and READY for a DEALER, then a message and a PING.
    let mut hex = String::new();
    hex.push_str(v["DEALER"]["greeting"].as_str().unwrap());
    hex.push('\n');
    hex.push_str(v["DEALER"]["ready_frame"].as_str().unwrap());
    hex.push_str(" 0100 0105 68656c6c6f 0003 ff4142");
    hex.push_str(" 0409 0450494e47 001e 4142");
    let expect = "greeting version=3.1 mechanism=NULL as-server=0\n\
                  command READY Socket-Type=\"DEALER\" Identity=\"\"\n\
                  [\"\",\"hello\",\"\u{fffd}AB\"]\n\
                  command PING ttl-ms=3000 context=\"AB\"\n";
    let (code, out, err) = run(&["decode", "--hex"], hex.as_bytes());
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, expect);
    // The same as raw bytes, and frames printed as hex.
    let raw = unhex(&hex.replace([' ', '\n'], ""));
    let (code, out, _) = run(&["decode"], &raw);
    assert_eq!(code, 0);
    assert_eq!(out, expect);
    let (code, out, _) = run(&["decode", "--print-hex"], &raw);
    assert_eq!(code, 0);
    assert!(out.contains("[\"\",\"68656c6c6f\",\"ff4142\"]\n"), "{out}");

    for ty in [
        "PUB", "SUB", "REQ", "REP", "ROUTER", "PULL", "PUSH", "XPUB", "XSUB", "PAIR",
    ] {
        let g = format!(
            "{}{}",
            v[ty]["greeting"].as_str().unwrap(),
            v[ty]["ready_frame"].as_str().unwrap()
        );
        let (code, out, _) = run(&["decode", "--hex"], g.as_bytes());
        assert_eq!(code, 0);
        assert!(
            out.contains(&format!("command READY Socket-Type=\"{ty}\"")),
            "{out}"
        );
    }
}

#[test]
fn decode_curve_transcript_client_side() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../zmtp-core/tests/vectors/curve_transcript.json"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let hex: String = v["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["dir"] == "C->S")
        .map(|t| t["hex"].as_str().unwrap().to_owned())
        .collect();
    let (code, out, err) = run(&["decode", "--hex"], hex.as_bytes());
    assert_eq!(code, 0, "{err}");
    let names: Vec<&str> = out
        .lines()
        .map(|l| l.split(' ').take(2).last().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "version=3.1",
            "HELLO",
            "INITIATE",
            "MESSAGE",
            "MESSAGE",
            "MESSAGE",
            "MESSAGE"
        ]
    );
    assert!(
        out.starts_with("greeting version=3.1 mechanism=CURVE as-server=0\n"),
        "{out}"
    );
    assert!(out.contains("command HELLO size=194 "), "{out}");
}

#[test]
fn decode_a_stream_captured_from_libzmq() {
    // A raw listener stands in for a ROUTER (libzmq's own greeting and READY for one, from
    // the golden vectors) and records what a libzmq DEALER sends it.
    let v = vectors();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("tcp://{}", listener.local_addr().unwrap());
    let ctx = zctx();
    let dealer = zsock(&ctx, zmq::DEALER);
    dealer.set_identity(b"me").unwrap();
    dealer.connect(&ep).unwrap();
    dealer.send_multipart(["hello", "world"], 0).unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(STEP)).unwrap();
    conn.write_all(&unhex(v["ROUTER"]["greeting"].as_str().unwrap()))
        .unwrap();
    conn.write_all(&unhex(v["ROUTER"]["ready_frame"].as_str().unwrap()))
        .unwrap();
    // greeting 64 + READY (2 + 0x2b) + frames (2 + 5) * 2
    let want = 64 + 2 + 0x2b + 14;
    let mut captured = Vec::new();
    let mut buf = [0u8; 4096];
    while captured.len() < want {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "libzmq closed after {} bytes", captured.len());
        captured.extend_from_slice(&buf[..n]);
    }
    let (code, out, err) = run(&["decode"], &captured);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "greeting version=3.1 mechanism=NULL as-server=0\n\
         command READY Socket-Type=\"DEALER\" Identity=\"me\"\n\
         [\"hello\",\"world\"]\n"
    );
}

#[test]
fn decode_malformed_streams_name_the_offset() {
    let v = vectors();
    let greeting = v["REQ"]["greeting"].as_str().unwrap();
    let ready = v["REQ"]["ready_frame"].as_str().unwrap();
    let ready_len = ready.len() / 2;
    for (input, wants) in [
        // reserved flag bits in the frame after READY
        (
            format!("{greeting}{ready}8000"),
            vec![
                format!("byte offset {}", 64 + ready_len),
                "ReservedFlags".to_owned(),
            ],
        ),
        // not a ZMTP 3 signature
        (
            "00".repeat(64),
            vec![
                "byte offset 0".to_owned(),
                "Greeting(BadSignature)".to_owned(),
            ],
        ),
        // ZMTP 2
        (
            format!("ff00000000000000017f02{}", "00".repeat(53)),
            vec!["byte offset 10".to_owned(), "UnsupportedVersion".to_owned()],
        ),
        // a command whose name runs past its frame
        (
            format!("{greeting}04020950"),
            vec!["byte offset 66".to_owned(), "NameOverrun".to_owned()],
        ),
        // a truncated frame
        (
            format!("{greeting}{ready}0105616263"),
            vec!["inside the frame starting at byte offset".to_owned()],
        ),
        // the last frame of a message never came
        (
            format!("{greeting}{ready}0100"),
            vec!["inside the message".to_owned()],
        ),
        // not hex
        ("ff0g".to_owned(), vec!["not a hex digit".to_owned()]),
    ] {
        let (code, _, err) = run(&["decode", "--hex"], input.as_bytes());
        assert_eq!(code, 1, "{input}: {err}");
        for w in wants {
            assert!(err.contains(&w), "{input}: {err:?} lacks {w:?}");
        }
    }
}

// ------------------------------------------------------------------------ broker

#[test]
fn broker_balances_libzmq_req_clients_over_libzmq_req_workers() {
    let mut p = spawn(&[
        "broker",
        "--frontend",
        "tcp://127.0.0.1:0",
        "--backend",
        "tcp://127.0.0.1:0",
    ]);
    let frontend = p.bound();
    let backend = p.bound();
    let ctx = zctx();
    // Each worker holds its first request until the other has one too: the broker must not
    // give a busy worker a second request, or this deadlocks (and the clients time out).
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|i| {
            let w = zsock(&ctx, zmq::REQ);
            w.set_rcvtimeo(50).unwrap();
            w.connect(&backend).unwrap();
            let barrier = barrier.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                w.send("READY", 0).unwrap();
                let mut first = true;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok(mut m) = w.recv_multipart(0) else {
                        continue;
                    };
                    assert_eq!(m.len(), 3, "{m:?}");
                    assert!(m[1].is_empty());
                    if first {
                        barrier.wait();
                        first = false;
                    }
                    m[2].extend_from_slice(format!(" by w{i}").as_bytes());
                    w.send_multipart(m, 0).unwrap();
                }
            })
        })
        .collect();
    let clients: Vec<_> = (0..2)
        .map(|i| {
            let c = zsock(&ctx, zmq::REQ);
            c.connect(&frontend).unwrap();
            thread::spawn(move || {
                let mut replies = Vec::new();
                for j in 0..3 {
                    c.send(format!("c{i}r{j}").as_bytes(), 0).unwrap();
                    replies.push(String::from_utf8(c.recv_bytes(0).unwrap()).unwrap());
                }
                replies
            })
        })
        .collect();
    let mut by = std::collections::BTreeSet::new();
    for (i, c) in clients.into_iter().enumerate() {
        let replies = c.join().unwrap();
        for (j, r) in replies.iter().enumerate() {
            assert!(r.starts_with(&format!("c{i}r{j} by w")), "{r}");
            by.insert(r[r.len() - 2..].to_owned());
        }
    }
    assert_eq!(by.len(), 2, "both workers served: {by:?}");
    assert!(p.running());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
}

// ------------------------------------------------------------------------ proxy

#[test]
fn proxy_xsub_xpub_forwards_messages_and_subscriptions_with_capture() {
    let mut p = spawn(&[
        "proxy",
        "--frontend",
        "xsub,tcp://127.0.0.1:0",
        "--backend",
        "XPUB,tcp://127.0.0.1:0",
        "--capture",
        "push,tcp://127.0.0.1:0",
    ]);
    let (front, back, cap) = (p.bound(), p.bound(), p.bound());
    let ctx = zctx();
    let publisher = zsock(&ctx, zmq::PUB);
    publisher.connect(&front).unwrap();
    let subscriber = zsock(&ctx, zmq::SUB);
    subscriber.set_subscribe(b"news").unwrap();
    subscriber.set_rcvtimeo(20).unwrap();
    subscriber.connect(&back).unwrap();
    let capture = zsock(&ctx, zmq::PULL);
    capture.connect(&cap).unwrap();
    let end = Instant::now() + STEP;
    let got = loop {
        assert!(Instant::now() < end, "nothing came through the proxy");
        publisher.send_multipart(["sport", "x"], 0).unwrap();
        publisher.send_multipart(["news", "y"], 0).unwrap();
        if let Ok(m) = subscriber.recv_multipart(0) {
            break m;
        }
    };
    assert_eq!(got, strs(&["news", "y"]));
    // The capture saw the subscription going upstream and the message coming down. The
    // subscription reached the publisher, which filtered "sport" itself.
    let mut seen = Vec::new();
    while !(seen.contains(&strs(&["\x01news"])) && seen.contains(&strs(&["news", "y"]))) {
        seen.push(capture.recv_multipart(0).expect("capture copy"));
    }
    assert!(!seen.contains(&strs(&["sport", "x"])), "{seen:?}");
    assert!(p.running());
}

#[test]
fn proxy_router_dealer_connecting_backend() {
    // The backend connects ('>') to a libzmq REP that is already bound.
    let ctx = zctx();
    let rep = zsock(&ctx, zmq::REP);
    let rep_ep = zbind(&rep);
    let server = libzmq_rep_server(&ctx, rep, 2);
    let backend = format!("dealer,>{rep_ep}");
    let mut p = spawn(&[
        "proxy",
        "--frontend",
        "router,tcp://127.0.0.1:0",
        "--backend",
        &backend,
    ]);
    let front = p.bound();
    let req = zsock(&ctx, zmq::REQ);
    req.connect(&front).unwrap();
    for m in ["a", "b"] {
        req.send(m, 0).unwrap();
        assert_eq!(req.recv_multipart(0).unwrap(), strs(&["re", m]));
    }
    server.join().unwrap();
    assert!(p.running());
}

// ------------------------------------------------------------------------ bench

#[test]
fn bench_thr_recv_against_libzmq_pusher() {
    let mut p = spawn(&[
        "bench",
        "thr",
        "recv",
        "-b",
        "tcp://127.0.0.1:0",
        "--size",
        "16",
        "--count",
        "2000",
    ]);
    let ep = p.bound();
    let ctx = zctx();
    let push = zsock(&ctx, zmq::PUSH);
    push.connect(&ep).unwrap();
    for _ in 0..2000 {
        push.send(&[7u8; 16][..], 0).unwrap();
    }
    let (status, out, err) = p.finish();
    assert!(status.success(), "{err}");
    let out = out.join("\n");
    assert!(out.contains("message count: 2000"), "{out}");
    assert!(out.contains("[msg/s]") && out.contains("[MB/s]"), "{out}");
}

#[test]
fn bench_thr_send_to_libzmq_puller() {
    let ctx = zctx();
    let pull = zsock(&ctx, zmq::PULL);
    let ep = zbind(&pull);
    let p = spawn(&[
        "bench", "thr", "remote", "-c", &ep, "--size", "32", "--count", "1000",
    ]);
    for _ in 0..1000 {
        assert_eq!(pull.recv_bytes(0).unwrap().len(), 32);
    }
    assert!(p.finish().0.success());
}

#[test]
fn bench_lat_both_sides_against_libzmq() {
    // ping (REQ) against a libzmq REP echo
    let ctx = zctx();
    let rep = zsock(&ctx, zmq::REP);
    let ep = zbind(&rep);
    let echo = thread::spawn(move || {
        for _ in 0..200 {
            let m = rep.recv_bytes(0).unwrap();
            rep.send(m, 0).unwrap();
        }
    });
    let p = spawn(&[
        "bench", "lat", "ping", "-c", &ep, "--size", "8", "--count", "200",
    ]);
    let (status, out, err) = p.finish();
    assert!(status.success(), "{err}");
    echo.join().unwrap();
    let out = out.join("\n");
    assert!(
        out.contains("latency p50:") && out.contains("latency p99:"),
        "{out}"
    );
    assert!(out.contains("[us]"), "{out}");

    // echo (REP) for a libzmq REQ
    let mut p = spawn(&[
        "bench",
        "lat",
        "echo",
        "-b",
        "tcp://127.0.0.1:0",
        "--size",
        "8",
        "--count",
        "50",
    ]);
    let ep = p.bound();
    let req = zsock(&ctx, zmq::REQ);
    req.connect(&ep).unwrap();
    for _ in 0..50 {
        req.send(&[1u8; 8][..], 0).unwrap();
        assert_eq!(req.recv_bytes(0).unwrap(), [1u8; 8]);
    }
    assert!(p.finish().0.success());
}

// ------------------------------------------------------------------------ options

#[test]
fn options_identity_max_msg_size_and_handshake_timeout() {
    // --identity reaches a libzmq ROUTER as the routing id.
    let ctx = zctx();
    let router = zsock(&ctx, zmq::ROUTER);
    let ep = zbind(&router);
    let (code, _, err) = run(
        &[
            "send",
            "-t",
            "dealer",
            "-c",
            &ep,
            "--identity",
            "cli-1",
            "--timeout",
            "20000",
            "x",
        ],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(router.recv_multipart(0).unwrap(), strs(&["cli-1", "x"]));

    // --max-msg-size: a peer over the limit is dropped, the others served;
    // --handshake-timeout: a peer that never greets is dropped.
    let mut p = spawn(&[
        "echo",
        "-t",
        "router",
        "-b",
        "tcp://127.0.0.1:0",
        "-v",
        "--max-msg-size",
        "10",
        "--handshake-timeout",
        "100",
        "--count",
        "1",
    ]);
    let ep = p.bound();
    let mut silent = TcpStream::connect(ep.strip_prefix("tcp://").unwrap()).unwrap();
    silent.set_read_timeout(Some(STEP)).unwrap();
    let mut sink = Vec::new();
    let _ = silent.read_to_end(&mut sink); // EOF: dropped by the handshake timeout
                                           // A DEALER (raw, to see it dropped) with an 11-byte message.
    let mut big = TcpStream::connect(ep.strip_prefix("tcp://").unwrap()).unwrap();
    let mut greeting = [0u8; 64];
    greeting[0] = 0xff;
    greeting[9] = 0x7f;
    greeting[10] = 3;
    greeting[11] = 1;
    greeting[12..16].copy_from_slice(b"NULL");
    big.write_all(&greeting).unwrap();
    big.write_all(b"\x04\x1c\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER")
        .unwrap();
    big.write_all(&[0, 11]).unwrap();
    big.write_all(&[b'x'; 11]).unwrap();
    big.set_read_timeout(Some(STEP)).unwrap();
    let _ = big.read_to_end(&mut sink); // EOF: dropped for the size
    let small = zsock(&ctx, zmq::DEALER);
    small.set_identity(b"s").unwrap();
    small.connect(&ep).unwrap();
    small.send("tiny", 0).unwrap();
    assert_eq!(small.recv_bytes(0).unwrap(), b"tiny");
    let (status, out, err) = p.finish();
    assert!(status.success(), "{err}");
    assert_eq!(out, [r#"["s","tiny"]"#]);
    assert!(err.contains("maximum message size"), "{err}");
    assert!(err.contains("handshake failed"), "{err}");
}
