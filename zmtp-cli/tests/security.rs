//! The `zmtp` tool's CURVE and PLAIN options: CURVE against libzmq 4.3 through pyzmq (the
//! `zmq` crate's libzmq has no CURVE), servers and clients, allow-lists and a ZAP handler
//! deciding; PLAIN against the `zmq` crate's libzmq both ways, with a libzmq ZAP handler
//! turning the tool away; `keygen`; usage errors.
//!
//! The pyzmq peer is `tests/pyzmq/cli_peer.py`, run as a subprocess. Without python3 and
//! pyzmq (with CURVE) those tests are skipped locally, and **fail** when `CI=true`.
//!
//! No sleeps as synchronisation: the tool's `bound` line says when it listens, the peers'
//! lines say what happened, and every wait has a deadline.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

mod common;
use common::pyzmq::have_pyzmq;
use common::{run, zmtp, Proc, STEP, ZMTP};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pyzmq/cli_peer.py");

// ------------------------------------------------------------------ processes

/// The python peer with this configuration.
fn peer(cfg: serde_json::Value) -> Proc {
    let mut cmd = Command::new("python3");
    cmd.arg(PEER).arg(cfg.to_string());
    Proc::start("the pyzmq peer", cmd)
}

/// A key pair from `zmtp keygen`: (public, secret).
fn keygen() -> (String, String) {
    let (code, out, err) = run(&["keygen"], "");
    assert_eq!(code, 0, "{err}");
    let mut it = out.lines();
    let public = it.next().unwrap().strip_prefix("public: ").unwrap();
    let secret = it.next().unwrap().strip_prefix("secret: ").unwrap();
    assert_eq!(it.next(), None, "{out}");
    (public.to_owned(), secret.to_owned())
}

fn hex(frames: &[&str]) -> String {
    frames
        .iter()
        .map(|f| f.bytes().map(|b| format!("{b:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join("|")
}

// ------------------------------------------------------------------ keygen

#[test]
fn keygen_prints_new_pairs_and_the_pair_of_a_secret() {
    let (public, secret) = keygen();
    assert_eq!((public.len(), secret.len()), (40, 40));
    assert_ne!(keygen().1, secret, "a new pair each time");
    assert_eq!(zmtp_std::curve_public(&secret).unwrap(), public);
    // The pair of a given secret key, on stdin or as an argument, in Z85 or hex.
    let (code, out, err) = run(&["keygen", "--secret", "-"], format!("{secret}\n"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("public: {public}\nsecret: {secret}\n"));
    let (code, out, _) = run(&["keygen", "--secret", &secret], "");
    assert_eq!(
        (code, out.lines().next()),
        (0, Some(&*format!("public: {public}")))
    );
    let bad = format!("{}~", &secret[..39]);
    let (code, _, err) = run(&["keygen", "--secret", &bad], "");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a Z85 key"), "{err}");
    assert!(
        !err.contains(&secret[..39]),
        "a secret is not echoed: {err}"
    );
}

#[test]
fn keygen_agrees_with_libzmq() {
    if !have_pyzmq() {
        return;
    }
    let (public, secret) = keygen();
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, zmq; print(zmq.curve_public(sys.argv[1].encode()).decode())",
            &secret,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), public);
}

// ------------------------------------------------------------------ CURVE vs pyzmq

/// `zmtp recv --curve-server` receives what a libzmq CURVE PUSH sends.
#[test]
fn curve_recv_server_from_pyzmq_push() {
    if !have_pyzmq() {
        return;
    }
    let (server_public, server_secret) = keygen();
    let (client_public, client_secret) = keygen();
    let mut tool = zmtp(
        &[
            "recv",
            "-t",
            "pull",
            "-b",
            "tcp://127.0.0.1:0",
            "--curve-server",
            "--curve-secretkey",
            &server_secret,
            "--curve-publickey",
            &server_public,
            "--count",
            "2",
            "--timeout",
            "20000",
            "-v",
        ],
        &[],
    );
    let ep = tool.bound();
    let mut push = peer(json!({
        "role": "push", "endpoint": ep,
        "server_public": server_public,
        "client_public": client_public, "client_secret": client_secret,
        "messages": [["hello", "curve"], ["second"]],
    }));
    assert_eq!(push.out_line("EVENT"), "EVENT HANDSHAKE_SUCCEEDED 0");
    push.out_line("DONE");
    let (status, out, err) = tool.finish();
    assert!(status.success(), "{status:?} {err}");
    assert_eq!(out, [r#"["hello","curve"]"#, r#"["second"]"#]);
    assert!(
        err.contains("handshake done with a PUSH peer (CURVE)"),
        "{err}"
    );
}

/// `zmtp req --curve-serverkey` against a libzmq CURVE REP whose ZAP authenticator lets in
/// only one client key: with that key (from the environment) the round trip works; with a
/// key made for the run the server refuses it and the tool stops at once with exit 1.
#[test]
fn curve_req_client_against_pyzmq_rep_with_authenticator() {
    if !have_pyzmq() {
        return;
    }
    let (server_public, server_secret) = keygen();
    let (client_public, client_secret) = keygen();
    let mut rep = peer(json!({
        "role": "rep", "count": 1,
        "server_public": server_public, "server_secret": server_secret,
        "allow_keys": [client_public],
    }));
    let ep = rep.port();

    // A key pair for this run only: refused (libzmq's ZAP says 400).
    let started = Instant::now();
    let (status, out, err) = zmtp(
        &[
            "req",
            "-c",
            &ep,
            "--curve-serverkey",
            &server_public,
            "--timeout",
            "20000",
            "ping",
        ],
        &[],
    )
    .finish();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(out.is_empty(), "{out:?}");
    let note = err
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "zmtp: no --curve-secretkey: using a new CURVE key pair for this run; public key ",
            )
        })
        .unwrap_or_else(|| panic!("no note about the key made for the run: {err}"));
    assert_eq!(note.len(), 40, "{note}");
    assert!(
        err.contains("the server refused our credentials")
            && err.contains(&format!("does the server allow our public key {note}?")),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "refused: stops without waiting for --timeout"
    );
    assert_eq!(rep.out_line("SEVENT"), "SEVENT HANDSHAKE_FAILED_AUTH 400");

    // The allowed key, from ZMTP_CURVE_SECRETKEY.
    let (status, out, err) = zmtp(
        &[
            "req",
            "-c",
            &ep,
            "--curve-serverkey",
            &server_public,
            "--curve-publickey",
            &client_public,
            "--timeout",
            "20000",
            "ping",
            "two",
        ],
        &[("ZMTP_CURVE_SECRETKEY", &client_secret)],
    )
    .finish();
    assert!(status.success(), "{status:?} {err}");
    assert_eq!(out, [r#"["re:","ping","two"]"#]);
    assert!(!err.contains("new CURVE key pair"), "{err}");
    assert_eq!(
        rep.out_line("GOT"),
        format!("GOT {}", hex(&["ping", "two"]))
    );
    rep.out_line("DONE");
}

/// A CURVE server's allow-list turns a libzmq client with another key away (libzmq sees
/// HANDSHAKE_FAILED_AUTH 400), reports it with -v, and keeps serving: the allowed client's
/// message arrives.
#[test]
fn curve_allow_list_rejects_a_wrong_key_and_keeps_serving() {
    if !have_pyzmq() {
        return;
    }
    let (server_public, server_secret) = keygen();
    let (good_public, good_secret) = keygen();
    let (bad_public, bad_secret) = keygen();
    let (other_public, _) = keygen();
    let mut tool = zmtp(
        &[
            "recv",
            "-t",
            "pull",
            "-b",
            "tcp://127.0.0.1:0",
            "--curve-server",
            "--allow-curve-key",
            &other_public,
            "--allow-curve-key",
            &good_public,
            "--count",
            "1",
            "--timeout",
            "20000",
            "-v",
        ],
        &[("ZMTP_CURVE_SECRETKEY", &server_secret)],
    );
    let ep = tool.bound();
    let client = |public: &str, secret: &str, msg: &str| {
        peer(json!({
            "role": "push", "endpoint": ep,
            "server_public": server_public,
            "client_public": public, "client_secret": secret,
            "messages": [[msg]],
        }))
    };
    let mut bad = client(&bad_public, &bad_secret, "from the wrong key");
    assert_eq!(bad.out_line("EVENT"), "EVENT HANDSHAKE_FAILED_AUTH 400");
    let line = tool.err_line("zmtp: 127.0.0.1:");
    assert!(
        line.ends_with("client rejected: 400 not in the allow-list"),
        "{line}"
    );
    assert!(tool.child.try_wait().unwrap().is_none(), "still serving");
    let mut good = client(&good_public, &good_secret, "allowed");
    assert_eq!(good.out_line("EVENT"), "EVENT HANDSHAKE_SUCCEEDED 0");
    let (status, out, err) = tool.finish();
    assert!(status.success(), "{status:?} {err}");
    assert_eq!(out, [r#"["allowed"]"#]);
}

/// `--zap-endpoint` has a libzmq ZAP handler (a pyzmq REP on TCP) decide, and
/// `--zap-domain` is the domain it is asked in.
#[test]
fn curve_server_asks_a_pyzmq_zap_handler() {
    if !have_pyzmq() {
        return;
    }
    let (server_public, server_secret) = keygen();
    let (good_public, good_secret) = keygen();
    let (bad_public, bad_secret) = keygen();
    let mut zap = peer(json!({"role": "zap", "count": 2, "allow_keys": [good_public]}));
    let zap_ep = zap.port();
    let mut tool = zmtp(
        &[
            "recv",
            "-t",
            "pull",
            "-b",
            "tcp://127.0.0.1:0",
            "--curve-server",
            "--curve-secretkey",
            &server_secret,
            "--zap-endpoint",
            &zap_ep,
            "--zap-domain",
            "cli-test",
            "--count",
            "1",
            "--timeout",
            "20000",
            "-v",
        ],
        &[],
    );
    let ep = tool.bound();
    let client = |public: &str, secret: &str| {
        peer(json!({
            "role": "push", "endpoint": ep,
            "server_public": server_public,
            "client_public": public, "client_secret": secret,
            "messages": [["via ZAP"]],
        }))
    };
    let mut bad = client(&bad_public, &bad_secret);
    assert_eq!(zap.out_line("ZAP"), format!("ZAP {bad_public} cli-test"));
    assert_eq!(bad.out_line("EVENT"), "EVENT HANDSHAKE_FAILED_AUTH 400");
    let line = tool.err_line("zmtp: 127.0.0.1:");
    assert!(line.ends_with("client rejected: 400 unknown key"), "{line}");
    let mut good = client(&good_public, &good_secret);
    assert_eq!(zap.out_line("ZAP"), format!("ZAP {good_public} cli-test"));
    assert_eq!(good.out_line("EVENT"), "EVENT HANDSHAKE_SUCCEEDED 0");
    let (status, out, err) = tool.finish();
    assert!(status.success(), "{status:?} {err}");
    assert_eq!(out, [r#"["via ZAP"]"#]);
}

// ------------------------------------------------------------------ CURVE, tool to tool

/// The crate doc's example: `zmtp echo --curve-server` and `zmtp req --curve-serverkey`.
#[test]
fn curve_echo_and_req_tool_to_tool() {
    let (server_public, server_secret) = keygen();
    let mut echo = zmtp(
        &[
            "echo",
            "-t",
            "rep",
            "-b",
            "tcp://127.0.0.1:0",
            "--curve-server",
            "--count",
            "1",
            "--timeout",
            "20000",
        ],
        &[("ZMTP_CURVE_SECRETKEY", &server_secret)],
    );
    let ep = echo.bound();
    let (status, out, err) = zmtp(
        &[
            "req",
            "-c",
            &ep,
            "--curve-serverkey",
            &server_public,
            "--timeout",
            "20000",
            "ping",
        ],
        &[],
    )
    .finish();
    assert!(status.success(), "{status:?} {err}");
    assert_eq!(out, [r#"["ping"]"#]);
    let (status, out, err) = echo.finish();
    assert!(status.success(), "{status:?} {err}");
    assert_eq!(out, [r#"["ping"]"#]);
}

/// A CURVE client facing a NULL server (libzmq): the mechanisms do not match; the tool
/// warns once (naming the failure) and waits out --timeout (exit 3), retrying.
#[test]
fn curve_client_against_a_null_libzmq_server_warns_and_times_out() {
    let (server_public, _) = keygen();
    let ctx = zmq::Context::new();
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let ep = pull.get_last_endpoint().unwrap().unwrap();
    let (status, _, err) = zmtp(
        &[
            "send",
            "-t",
            "push",
            "-c",
            &ep,
            "--curve-serverkey",
            &server_public,
            "--timeout",
            "1500",
            "x",
        ],
        &[],
    )
    .finish();
    assert_eq!(status.code(), Some(3), "{err}");
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("zmtp: warning: "))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning, however many retries: {err}"
    );
    assert!(
        warnings[0].contains("security handshake failed"),
        "{}",
        warnings[0]
    );
}

// ------------------------------------------------------------------ PLAIN vs libzmq

/// A libzmq ZAP handler (RFC 27) in `ctx`, at libzmq's `inproc://zeromq.zap.01`, letting in
/// `user` with `password`; answers until the context ends. Its thread.
fn libzmq_zap(ctx: &zmq::Context, user: &'static str, password: &'static str) {
    let zap = ctx.socket(zmq::REP).unwrap();
    zap.bind("inproc://zeromq.zap.01").unwrap();
    thread::spawn(move || {
        while let Ok(req) = zap.recv_multipart(0) {
            // version, request id, domain, address, identity, mechanism, username, password
            let ok = req.len() == 8
                && req[5] == b"PLAIN"
                && req[6] == user.as_bytes()
                && req[7] == password.as_bytes();
            let (code, text): (&[u8], &[u8]) = if ok {
                (b"200", b"OK")
            } else {
                (b"400", b"bad password")
            };
            let reply: [&[u8]; 6] = [b"1.0", &req[1], code, text, b"", b""];
            if zap.send_multipart(reply, 0).is_err() {
                break;
            }
        }
    });
}

/// `zmtp send --plain-username` to a libzmq PLAIN PULL whose ZAP handler checks the
/// password: the right one delivers; a wrong one is refused and the tool stops at once.
#[test]
fn plain_client_against_libzmq_server() {
    let ctx = zmq::Context::new();
    libzmq_zap(&ctx, "alice", "s3cret");
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.set_plain_server(true).unwrap();
    pull.set_rcvtimeo(STEP.as_millis() as i32).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let ep = pull.get_last_endpoint().unwrap().unwrap();

    let started = Instant::now();
    let (status, _, err) = zmtp(
        &[
            "send",
            "-t",
            "push",
            "-c",
            &ep,
            "--plain-username",
            "alice",
            "--plain-password",
            "wrong",
            "--timeout",
            "20000",
            "nope",
        ],
        &[],
    )
    .finish();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "the server refused our credentials: 400 (wrong --plain-username or --plain-password?)"
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));

    let (status, _, err) = zmtp(
        &[
            "send",
            "-t",
            "push",
            "-c",
            &ep,
            "--plain-username",
            "alice",
            "--timeout",
            "20000",
            "hello",
            "plain",
        ],
        &[("ZMTP_PLAIN_PASSWORD", "s3cret")],
    )
    .finish();
    assert!(status.success(), "{status:?} {err}");
    assert_eq!(
        pull.recv_multipart(0).unwrap(),
        [b"hello".to_vec(), b"plain".to_vec()]
    );
}

/// `zmtp echo --plain-server --allow-plain` answers a libzmq PLAIN REQ with the right
/// password, and turns one with a wrong password away (reported with -v), still serving.
#[test]
fn plain_server_with_allow_list_against_libzmq_clients() {
    let mut tool = zmtp(
        &[
            "echo",
            "-t",
            "rep",
            "-b",
            "tcp://127.0.0.1:0",
            "--plain-server",
            "--allow-plain",
            "bob:pass:with:colons",
            "--count",
            "1",
            "--timeout",
            "20000",
            "-v",
        ],
        &[],
    );
    let ep = tool.bound();
    let ctx = zmq::Context::new();
    let client = |password: &str| {
        let s = ctx.socket(zmq::REQ).unwrap();
        s.set_plain_username(Some("bob")).unwrap();
        s.set_plain_password(Some(password)).unwrap();
        s.set_rcvtimeo(STEP.as_millis() as i32).unwrap();
        s.set_linger(0).unwrap();
        s.connect(&ep).unwrap();
        s
    };
    let bad = client("pass");
    bad.send("intruder", 0).unwrap();
    let line = tool.err_line("zmtp: 127.0.0.1:");
    assert!(
        line.ends_with("client rejected: 400 not in the allow-list"),
        "{line}"
    );
    let good = client("pass:with:colons");
    good.send("hi", 0).unwrap();
    assert_eq!(good.recv_bytes(0).unwrap(), b"hi");
    let (status, out, err) = tool.finish();
    assert!(status.success(), "{status:?} {err}");
    assert_eq!(out, [r#"["hi"]"#]);
    assert!(
        err.contains("handshake done with a REQ peer (PLAIN)"),
        "{err}"
    );
    drop(bad);
}

// ------------------------------------------------------------------ usage errors

#[test]
fn bad_keys_and_contradictory_options_exit_2() {
    let (public, secret) = keygen();
    let (other_public, _) = keygen();
    let base = [
        "recv",
        "-t",
        "pull",
        "-b",
        "tcp://127.0.0.1:0",
        "--timeout",
        "1",
    ];
    let cases: &[(&[&str], &str)] = &[
        (&["--curve-server"], "--curve-server needs its secret key"),
        (
            &["--curve-server", "--curve-secretkey", "tooshort"],
            "a CURVE key is 40 Z85 characters or 64 hex digits, not 8",
        ),
        (
            &[
                "--curve-serverkey",
                "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~",
            ],
            "--curve-serverkey \"~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\": not a Z85 key",
        ),
        (
            &[
                "--curve-server",
                "--curve-secretkey",
                &secret,
                "--curve-publickey",
                &other_public,
            ],
            "is not the public key of --curve-secretkey",
        ),
        (
            &["--curve-secretkey", &secret],
            "--curve-server (to be a server) or --curve-serverkey",
        ),
        (
            &["--allow-curve-key", &public],
            "--allow-curve-key needs --curve-server",
        ),
        (
            &["--curve-serverkey", &public, "--allow-curve-key", &public],
            "--allow-curve-key is for a CURVE server",
        ),
        (
            &[
                "--curve-server",
                "--curve-secretkey",
                &secret,
                "--plain-username",
                "u",
            ],
            "CURVE and PLAIN options together",
        ),
        (
            &["--allow-plain", "u:p"],
            "--allow-plain is for a PLAIN server",
        ),
        (
            &["--plain-server", "--allow-plain", "nocolon"],
            "expected USER:PASSWORD",
        ),
        (
            &["--plain-password", "p"],
            "--plain-password needs --plain-username",
        ),
        (
            &["--zap-domain", "d"],
            "--zap-domain is for a CURVE or PLAIN server",
        ),
        (
            &[
                "--plain-username",
                "u",
                "--zap-endpoint",
                "tcp://127.0.0.1:1",
            ],
            "--zap-endpoint is for",
        ),
        (
            &["--plain-server", "--plain-username", "u"],
            "cannot be used with",
        ),
        (
            &["--curve-server", "--curve-serverkey", &public],
            "cannot be used with",
        ),
    ];
    for (extra, expect) in cases {
        let args: Vec<&str> = base.iter().chain(extra.iter()).copied().collect();
        let (code, out, err) = run(&args, "");
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(out.is_empty());
        assert!(
            err.contains(expect),
            "{extra:?}: expected {expect:?} in {err}"
        );
        assert!(!err.contains("bound "), "{extra:?}: nothing bound: {err}");
    }
    // A malformed secret key is not echoed, from the command line or the environment.
    let bad_secret = format!("{}~", &secret[..39]);
    let (code, _, err) = run(
        &[
            &base[..],
            &["--curve-server", "--curve-secretkey", &bad_secret],
        ]
        .concat(),
        "",
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--curve-secretkey: not a Z85 key"), "{err}");
    assert!(!err.contains(&secret[..39]), "{err}");
    let out = Command::new(ZMTP)
        .args(base)
        .arg("--curve-server")
        .env("ZMTP_CURVE_SECRETKEY", &bad_secret)
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("ZMTP_CURVE_SECRETKEY: not a Z85 key"), "{err}");
    assert!(!err.contains(&secret[..39]), "{err}");
    // Without security options the variables are not read.
    let out = Command::new(ZMTP)
        .args(base)
        .env("ZMTP_CURVE_SECRETKEY", "junk")
        .env("ZMTP_PLAIN_PASSWORD", "junk")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}

/// `zmtp bench` over CURVE, both sides the tool (to measure what CURVE costs).
#[test]
fn bench_thr_over_curve() {
    let (server_public, server_secret) = keygen();
    let mut recv = zmtp(
        &[
            "bench",
            "thr",
            "recv",
            "-b",
            "tcp://127.0.0.1:0",
            "--size",
            "64",
            "--count",
            "2000",
            "--timeout",
            "20000",
            "--curve-server",
        ],
        &[("ZMTP_CURVE_SECRETKEY", &server_secret)],
    );
    let ep = recv.bound();
    let (status, _, err) = zmtp(
        &[
            "bench",
            "thr",
            "send",
            "-c",
            &ep,
            "--size",
            "64",
            "--count",
            "2000",
            "--timeout",
            "20000",
            "--curve-serverkey",
            &server_public,
        ],
        &[],
    )
    .finish();
    assert!(status.success(), "{status:?} {err}");
    let (status, out, err) = recv.finish();
    assert!(status.success(), "{status:?} {err}");
    assert!(out.contains(&"message count: 2000".to_owned()), "{out:?}");
}

/// Z85 has '-' in its alphabet: a key starting with it is a value, not an option.
#[test]
fn keys_starting_with_a_dash_are_values() {
    let (public, secret) = loop {
        let (p, s) = zmtp_std::curve_keypair().unwrap();
        if s.starts_with('-') {
            break (p, s.to_string());
        }
    };
    let (code, out, err) = run(&["keygen", "--secret", &secret], "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("public: {public}\nsecret: {secret}\n"));
    let (code, _, err) = run(
        &[
            "recv",
            "-t",
            "pull",
            "-b",
            "tcp://127.0.0.1:0",
            "--curve-server",
            "--curve-secretkey",
            &secret,
            "--timeout",
            "1",
        ],
        "",
    );
    assert_eq!(code, 3, "parsed, bound, timed out: {err}");
}

// ------------------------------------------------------------------ broker, proxy

/// `zmtp proxy` with CURVE on its frontend (the default `--secure frontend`) and an
/// allow-list: a pyzmq CURVE PUSH with an allowed key gets its message through to a NULL
/// libzmq PULL on the backend; one with another key is refused (ZAP 400), and the proxy
/// goes on.
#[test]
fn curve_proxy_frontend_against_pyzmq() {
    if !have_pyzmq() {
        return;
    }
    let (server_public, server_secret) = keygen();
    let (good_public, good_secret) = keygen();
    let (bad_public, bad_secret) = keygen();
    let mut tool = zmtp(
        &[
            "proxy",
            "--frontend",
            "pull,tcp://127.0.0.1:0",
            "--backend",
            "push,tcp://127.0.0.1:0",
            "--curve-server",
            "--allow-curve-key",
            &good_public,
        ],
        &[("ZMTP_CURVE_SECRETKEY", &server_secret)],
    );
    let (front, back) = (tool.bound(), tool.bound());
    let ctx = zmq::Context::new();
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.set_rcvtimeo(STEP.as_millis() as i32).unwrap();
    pull.connect(&back).unwrap();
    let client = |public: &str, secret: &str, msg: &str| {
        peer(json!({
            "role": "push", "endpoint": front,
            "server_public": server_public,
            "client_public": public, "client_secret": secret,
            "messages": [[msg, "x"]],
        }))
    };
    let mut bad = client(&bad_public, &bad_secret, "from the wrong key");
    assert_eq!(bad.out_line("EVENT"), "EVENT HANDSHAKE_FAILED_AUTH 400");
    let mut good = client(&good_public, &good_secret, "allowed");
    assert_eq!(good.out_line("EVENT"), "EVENT HANDSHAKE_SUCCEEDED 0");
    good.out_line("DONE");
    assert_eq!(
        pull.recv_multipart(0)
            .expect("the allowed message through the proxy"),
        [b"allowed".to_vec(), b"x".to_vec()]
    );
    assert!(tool.child.try_wait().unwrap().is_none(), "still proxying");
    assert!(
        pull.recv_multipart(zmq::DONTWAIT).is_err(),
        "only the allowed message"
    );
}

/// `zmtp broker --secure both` as a PLAIN server with an allow-list on both ROUTERs:
/// libzmq REQ clients and workers with the password go through; a client with a wrong one
/// is refused by the frontend, and a worker with a wrong one by the backend.
#[test]
fn plain_broker_secures_both_sides_against_libzmq() {
    let mut tool = zmtp(
        &[
            "broker",
            "--frontend",
            "tcp://127.0.0.1:0",
            "--backend",
            "tcp://127.0.0.1:0",
            "--secure",
            "both",
            "--plain-server",
            "--allow-plain",
            "alice:s3cret",
            "-v",
        ],
        &[],
    );
    let (front, back) = (tool.bound(), tool.bound());
    let ctx = zmq::Context::new();
    let req = |password: &str, ep: &str| {
        let s = ctx.socket(zmq::REQ).unwrap();
        s.set_plain_username(Some("alice")).unwrap();
        s.set_plain_password(Some(password)).unwrap();
        s.set_rcvtimeo(STEP.as_millis() as i32).unwrap();
        s.set_linger(0).unwrap();
        s.connect(ep).unwrap();
        s
    };
    // Refused on either side (-v reports each refusal).
    let mut refused = Vec::new();
    for ep in [&front, &back] {
        refused.push(req("wrong", ep));
        let line = tool.err_line("zmtp: 127.0.0.1:");
        assert!(
            line.ends_with("client rejected: 400 not in the allow-list"),
            "{ep}: {line}"
        );
    }
    let worker = req("s3cret", &back);
    worker.send("READY", 0).unwrap();
    let client = req("s3cret", &front);
    client.send("ping", 0).unwrap();
    let job = worker.recv_multipart(0).expect("the request at the worker");
    assert_eq!(job.len(), 3, "[client, \"\", request]: {job:?}");
    assert_eq!(job[2], b"ping");
    worker
        .send_multipart([job[0].clone(), vec![], b"pong".to_vec()], 0)
        .unwrap();
    assert_eq!(client.recv_bytes(0).expect("the reply"), b"pong");
    assert!(tool.child.try_wait().unwrap().is_none(), "still brokering");
}

/// `--secure` without security options is a usage error (exit 2).
#[test]
fn secure_side_without_security_options_exits_2() {
    for cmd in [
        &[
            "broker",
            "--frontend",
            "tcp://127.0.0.1:0",
            "--backend",
            "tcp://127.0.0.1:0",
            "--secure",
            "backend",
        ][..],
        &[
            "proxy",
            "--frontend",
            "pull,tcp://127.0.0.1:0",
            "--backend",
            "push,tcp://127.0.0.1:0",
            "--secure",
            "both",
        ][..],
    ] {
        let (code, _, err) = run(cmd, "");
        assert_eq!(code, 2, "{cmd:?}: {err}");
        assert!(err.contains("--secure says which sockets"), "{err}");
    }
}
