//! PLAIN and CURVE between zmtp-std sockets: options and their errors, allow-lists, ZAP
//! handlers (function and socket), ZAP timeouts, and that a slow ZAP handler does not hold
//! up other connections. The same against libzmq is in `security_pyzmq.rs`.

use std::sync::mpsc;
use std::time::Duration;

use zmtp_std::zap::{Credentials, ZapReply, ZapRequest};
use zmtp_std::{AuthFailureKind, Context, Error, Mechanism, Socket, SocketType};

mod common;

const WAIT: Duration = Duration::from_secs(10);

/// Polls `f` until it gives `Some`, for up to 10 s.
fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    common::wait_for_within(what, WAIT, f)
}

fn rejected_code(s: &Socket) -> Option<u16> {
    s.auth_failures().into_iter().find_map(|f| match f.kind {
        AuthFailureKind::Rejected { status_code, .. } => Some(status_code),
        _ => None,
    })
}

fn refused(s: &Socket) -> bool {
    refusal(s).is_some()
}

/// The reason of the server's ERROR, once the client was turned away.
fn refusal(s: &Socket) -> Option<String> {
    s.auth_failures().into_iter().find_map(|f| match f.kind {
        AuthFailureKind::RefusedByServer { reason } => Some(reason),
        _ => None,
    })
}

fn curve_server(ctx: &Context, secret: &str) -> (Socket, String) {
    let s = ctx.socket(SocketType::Rep).unwrap();
    s.set_curve_server(true).unwrap();
    s.set_curve_secretkey(secret).unwrap();
    let ep = s.bind("tcp://127.0.0.1:0").unwrap();
    (s, ep)
}

fn curve_client(ctx: &Context, server_public: &str, ep: &str) -> (Socket, String) {
    let (public, secret) = zmtp_std::curve_keypair().unwrap();
    let c = ctx.socket(SocketType::Req).unwrap();
    c.set_curve_serverkey(server_public).unwrap();
    c.set_curve_publickey(&public).unwrap();
    c.set_curve_secretkey(secret.as_bytes()).unwrap();
    c.connect(ep).unwrap();
    (c, public)
}

fn plain_client(ctx: &Context, user: &str, pass: &str, ep: &str) -> Socket {
    let c = ctx.socket(SocketType::Req).unwrap();
    c.set_plain_username(user).unwrap();
    c.set_plain_password(pass).unwrap();
    c.connect(ep).unwrap();
    c
}

fn plain_server(ctx: &Context) -> (Socket, String) {
    let s = ctx.socket(SocketType::Rep).unwrap();
    s.set_plain_server(true).unwrap();
    let ep = s.bind("tcp://127.0.0.1:0").unwrap();
    (s, ep)
}

/// One request and its reply.
fn round_trip(client: &Socket, server: &Socket) {
    client.send("ping").unwrap();
    assert_eq!(server.recv_timeout(WAIT).unwrap(), b"ping");
    server.send("pong").unwrap();
    assert_eq!(client.recv_timeout(WAIT).unwrap(), b"pong");
}

#[test]
fn curve_keys_as_z85_or_bytes_and_messages_flow() {
    let ctx = Context::new().unwrap();
    let (public, secret) = zmtp_std::curve_keypair().unwrap();
    let (server, ep) = curve_server(&ctx, &secret);
    assert_eq!(server.mechanism(), Mechanism::Curve);
    assert!(server.options().security.is_server());
    // The client gives the server key as 32 bytes this time.
    let (_, client_secret) = zmtp_std::curve_keypair().unwrap();
    let client = ctx.socket(SocketType::Req).unwrap();
    let binary: [u8; 32] = server.options().security.curve_publickey().unwrap();
    client.set_curve_serverkey(binary).unwrap();
    client
        .set_curve_secretkey(client_secret.as_bytes())
        .unwrap();
    assert_eq!(
        client.options().security.curve_serverkey(),
        Some(binary),
        "{public}"
    );
    client.connect(&ep).unwrap();
    round_trip(&client, &server);
    // Secrets never show in Debug.
    let debug = format!("{:?}", client.options());
    assert!(!debug.contains(client_secret.as_str()), "{debug}");
}

#[test]
fn option_errors_are_typed_and_early() {
    let ctx = Context::new().unwrap();
    let s = ctx.socket(SocketType::Dealer).unwrap();
    let e = s.set_curve_serverkey("too short").unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidOption {
                option: "curve_serverkey",
                ..
            }
        ),
        "{e}"
    );
    // A CURVE client without its own secret key, then without the server's key.
    let (public, secret) = zmtp_std::curve_keypair().unwrap();
    s.set_curve_serverkey(&public).unwrap();
    let e = s.connect("tcp://127.0.0.1:9").unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidOption {
                option: "curve_secretkey",
                ..
            }
        ),
        "{e}"
    );
    let s = ctx.socket(SocketType::Dealer).unwrap();
    s.set_curve_secretkey(secret.as_bytes()).unwrap();
    let e = s.connect("tcp://127.0.0.1:9").unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidOption {
                option: "curve_serverkey",
                ..
            }
        ),
        "{e}"
    );
    // A public key that is not the secret key's.
    let s = ctx.socket(SocketType::Dealer).unwrap();
    s.set_curve_server(true).unwrap();
    s.set_curve_secretkey(secret.as_bytes()).unwrap();
    s.set_curve_publickey(zmtp_std::curve_keypair().unwrap().0)
        .unwrap();
    assert!(matches!(
        s.bind("tcp://127.0.0.1:0"),
        Err(Error::InvalidOption {
            option: "curve_publickey",
            ..
        })
    ));
    // Options are fixed once bound.
    let s = ctx.socket(SocketType::Dealer).unwrap();
    s.bind("tcp://127.0.0.1:0").unwrap();
    assert!(s.set_plain_server(true).is_err());
    assert!(s.set_plain_username([b'u'; 256]).is_err());
}

#[test]
fn wrong_server_key_never_connects() {
    let ctx = Context::new().unwrap();
    let (_, secret) = zmtp_std::curve_keypair().unwrap();
    let (server, ep) = curve_server(&ctx, &secret);
    let (other_public, _) = zmtp_std::curve_keypair().unwrap();
    let (client, _) = curve_client(&ctx, &other_public, &ep);
    // The server cannot open HELLO, sealed for another key, and closes (RFC 26).
    let failure = wait_for("the server's report", || server.auth_failures().pop());
    assert!(
        matches!(failure.kind, AuthFailureKind::Handshake(_)),
        "{failure}"
    );
    assert_eq!(client.connected_peers(), 0);
    assert_eq!(server.connected_peers(), 0);
}

#[test]
fn plain_without_handler_lets_everyone_in() {
    let ctx = Context::new().unwrap();
    let (server, ep) = plain_server(&ctx);
    let client = plain_client(&ctx, "anyone", "anything", &ep);
    round_trip(&client, &server);
}

#[test]
fn socket_allow_lists_decide() {
    let ctx = Context::new().unwrap();
    let (server, ep) = plain_server(&ctx);
    server.allow_plain("admin", "secret");
    // The context's list is not asked once the socket has one.
    ctx.allow_plain("mallory", "x");
    let bad = plain_client(&ctx, "mallory", "x", &ep);
    // The client learns the server's ZAP status code from the ERROR command.
    assert_eq!(wait_for("the refusal", || refusal(&bad)), "400");
    assert_eq!(wait_for("the rejection", || rejected_code(&server)), 400);
    let good = plain_client(&ctx, "admin", "secret", &ep);
    round_trip(&good, &server);

    let (public, secret) = zmtp_std::curve_keypair().unwrap();
    let (server, ep) = curve_server(&ctx, &secret);
    let (unlisted, _) = curve_client(&ctx, &public, &ep);
    // No list yet: anyone. Then a list without this client's key.
    round_trip(&unlisted, &server);
    server
        .allow_curve_key(zmtp_std::curve_keypair().unwrap().0)
        .unwrap();
    let (late, _) = curve_client(&ctx, &public, &ep);
    assert_eq!(wait_for("the refusal", || refusal(&late)), "400");
    assert_eq!(wait_for("the rejection", || rejected_code(&server)), 400);
    let (listed, key) = {
        let (public_c, secret_c) = zmtp_std::curve_keypair().unwrap();
        server.allow_curve_key(&public_c).unwrap();
        let c = ctx.socket(SocketType::Req).unwrap();
        c.set_curve_serverkey(&public).unwrap();
        c.set_curve_secretkey(secret_c.as_bytes()).unwrap();
        c.connect(&ep).unwrap();
        (c, public_c)
    };
    round_trip(&listed, &server);
    assert_eq!(key.len(), 40);
}

#[test]
fn context_allow_list_applies_to_every_socket() {
    let ctx = Context::new().unwrap();
    ctx.allow_plain("u", "p");
    let (server, ep) = plain_server(&ctx);
    let bad = plain_client(&ctx, "u", "wrong", &ep);
    wait_for("the refusal", || refused(&bad).then_some(()));
    let good = plain_client(&ctx, "u", "p", &ep);
    round_trip(&good, &server);
    ctx.clear_allow_lists();
    let anyone = plain_client(&ctx, "x", "y", &ep);
    // REP: the previous requester's reply went; now a new requester.
    round_trip(&anyone, &server);
}

#[test]
fn zap_handler_function_decides_with_domain_and_address() {
    let ctx = Context::new().unwrap();
    let (seen_tx, seen) = mpsc::channel();
    ctx.set_zap_handler(move |req: &ZapRequest| {
        let _ = seen_tx.send(req.clone());
        match &req.credentials {
            Credentials::Plain { username, password }
                if username == b"admin" && password.expose() == b"secret" =>
            {
                ZapReply::accept("admin")
            }
            _ => ZapReply::with_status(300, "try later"),
        }
    })
    .unwrap();
    let server = ctx.socket(SocketType::Rep).unwrap();
    server.set_plain_server(true).unwrap();
    server.set_zap_domain("global").unwrap();
    server.set_routing_id(b"srv").unwrap();
    let ep = server.bind("tcp://127.0.0.1:0").unwrap();
    let bad = plain_client(&ctx, "admin", "guess", &ep);
    let req = seen.recv_timeout(WAIT).unwrap();
    assert_eq!(
        (
            req.domain.as_slice(),
            req.address.as_str(),
            req.routing_id.as_slice()
        ),
        (&b"global"[..], "127.0.0.1", &b"srv"[..])
    );
    assert_eq!(req.mechanism(), Mechanism::Plain);
    wait_for("the refusal", || refused(&bad).then_some(()));
    assert_eq!(wait_for("the rejection", || rejected_code(&server)), 300);
    let good = plain_client(&ctx, "admin", "secret", &ep);
    round_trip(&good, &server);
}

#[test]
fn a_slow_zap_handler_holds_up_no_other_connection_and_times_out() {
    let ctx = Context::new().unwrap();
    let (release_tx, release) = mpsc::channel::<()>();
    let (asked_tx, asked) = mpsc::channel::<()>();
    ctx.set_zap_timeout(Duration::from_millis(300));
    ctx.set_zap_handler(move |_: &ZapRequest| {
        let _ = asked_tx.send(());
        // Blocks until the test says so (or gives up).
        let _ = release.recv_timeout(WAIT);
        ZapReply::accept("late")
    })
    .unwrap();
    let (_, secret) = zmtp_std::curve_keypair().unwrap();
    let (server, ep) = curve_server(&ctx, &secret);
    let public = zmtp_std::curve_public(secret.as_bytes()).unwrap();
    let (waiting, _) = curve_client(&ctx, &public, &ep);
    asked.recv_timeout(WAIT).unwrap();
    // While the handler blocks, the same I/O thread carries other traffic.
    let pull = ctx.socket(SocketType::Pull).unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.connect(&pull.bind("tcp://127.0.0.1:0").unwrap())
        .unwrap();
    for i in 0..20 {
        push.send(format!("{i}")).unwrap();
        assert_eq!(
            pull.recv_timeout(WAIT).unwrap(),
            format!("{i}").into_bytes()
        );
    }
    // The ZAP timeout rejects the waiting client with 500; a late answer changes nothing.
    assert_eq!(wait_for("the timeout", || rejected_code(&server)), 500);
    assert_eq!(wait_for("the refusal", || refusal(&waiting)), "500");
    release_tx.send(()).unwrap();
    assert_eq!(waiting.connected_peers(), 0);
}

#[test]
fn zap_handler_socket_written_with_this_crate() {
    let ctx = Context::new().unwrap();
    // The handler: a REP in a context of its own, answering by CURVE key.
    let zap_ctx = Context::new().unwrap();
    let handler = zap_ctx.socket(SocketType::Rep).unwrap();
    let zap_ep = handler.bind("tcp://127.0.0.1:0").unwrap();
    let (allowed, allowed_secret) = zmtp_std::curve_keypair().unwrap();
    let allowed_key = allowed.clone();
    let worker = std::thread::spawn(move || {
        for _ in 0..2 {
            let frames = handler.recv_multipart_timeout(WAIT).unwrap();
            let (id, req) = ZapRequest::from_frames(&frames).unwrap();
            let reply = if req.curve_key_z85().as_deref() == Some(allowed_key.as_str()) {
                ZapReply::accept("friend")
            } else {
                ZapReply::deny("stranger")
            };
            handler.send_multipart(reply.to_frames(&id)).unwrap();
        }
    });
    ctx.set_zap_endpoint(&zap_ep).unwrap();
    let (_, secret) = zmtp_std::curve_keypair().unwrap();
    let (server, ep) = curve_server(&ctx, &secret);
    let public = zmtp_std::curve_public(secret.as_bytes()).unwrap();
    let (stranger, _) = curve_client(&ctx, &public, &ep);
    wait_for("the refusal", || refused(&stranger).then_some(()));
    assert_eq!(wait_for("the rejection", || rejected_code(&server)), 400);
    let friend = ctx.socket(SocketType::Req).unwrap();
    friend.set_curve_serverkey(&public).unwrap();
    friend
        .set_curve_secretkey(allowed_secret.as_bytes())
        .unwrap();
    friend.connect(&ep).unwrap();
    round_trip(&friend, &server);
    worker.join().unwrap();
}

#[test]
fn mechanism_mismatch_is_refused_both_ways() {
    let ctx = Context::new().unwrap();
    let (_, secret) = zmtp_std::curve_keypair().unwrap();
    let (server, ep) = curve_server(&ctx, &secret);
    // A NULL client cannot downgrade a CURVE server.
    let null = ctx.socket(SocketType::Req).unwrap();
    null.connect(&ep).unwrap();
    let f = wait_for("the server's report", || server.auth_failures().pop());
    assert!(matches!(f.kind, AuthFailureKind::Handshake(_)), "{f}");
    let f = wait_for("the client's report", || null.auth_failures().pop());
    assert!(matches!(f.kind, AuthFailureKind::Handshake(_)), "{f}");
    // Nor a PLAIN one.
    let plain = plain_client(&ctx, "u", "p", &ep);
    let f = wait_for("the client's report", || plain.auth_failures().pop());
    assert!(matches!(f.kind, AuthFailureKind::Handshake(_)), "{f}");
    assert_eq!(server.connected_peers(), 0);
}
