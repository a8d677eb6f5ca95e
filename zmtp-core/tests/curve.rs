//! CURVE (RFC 25/26) and PROTOCOL.md "PLAIN and CURVE": the fixed transcript in both roles,
//! two sessions talking (messages, multipart, heartbeats, subscriptions), every malformed case
//! closing the connection, downgrade refusal, and Z85 (RFC 32).
#![cfg(feature = "curve")]

mod common;

use std::time::Duration;

use common::*;
use zmtp_core::mechanism::curve::{CurveKeyPair, CurveRandom, MESSAGE_OVERHEAD};
use zmtp_core::mechanism::z85;
use zmtp_core::{
    Buffers, CloseReason, Config, ConfigError, CurveError, Instant, ProtocolError, Role, Security,
    SendError, Session, SocketType,
};

// ================================================================================ transcript

struct Transcript {
    json: serde_json::Value,
}

impl Transcript {
    fn load() -> Transcript {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/curve_transcript.json"
        );
        let text = std::fs::read_to_string(path).expect("curve_transcript.json");
        Transcript {
            json: serde_json::from_str(&text).unwrap(),
        }
    }

    fn key(&self, name: &str) -> Vec<u8> {
        hex(self.json["keys"][name].as_str().unwrap())
    }

    fn key32(&self, name: &str) -> [u8; 32] {
        self.key(name).try_into().unwrap()
    }

    fn key16(&self, name: &str) -> [u8; 16] {
        self.key(name).try_into().unwrap()
    }

    fn z85(&self, name: &str) -> String {
        self.json["keys"][name].as_str().unwrap().to_string()
    }

    /// The bytes of transcript step `i`.
    fn step(&self, i: usize) -> Vec<u8> {
        hex(self.json["transcript"][i]["hex"].as_str().unwrap())
    }

    fn metadata(&self, side: &str) -> Vec<u8> {
        hex(self.json["metadata"][side].as_str().unwrap())
    }

    fn server_keys(&self) -> &'static CurveKeyPair {
        Box::leak(Box::new(CurveKeyPair::from_secret(
            self.key32("server_permanent_secret_hex"),
        )))
    }

    fn client_keys(&self) -> &'static CurveKeyPair {
        Box::leak(Box::new(CurveKeyPair::from_secret(
            self.key32("client_permanent_secret_hex"),
        )))
    }

    fn client_random(&self) -> CurveRandom {
        let mut r = CurveRandom::from_fn(|b| b.fill(0));
        r.transient_secret = self.key32("client_transient_secret_hex");
        r.vouch_nonce = self.key16("vouch_nonce16_hex");
        r
    }

    fn server_random(&self) -> CurveRandom {
        let mut r = CurveRandom::from_fn(|b| b.fill(0));
        r.transient_secret = self.key32("server_transient_secret_hex");
        r.cookie_key = self.key32("cookie_key_hex");
        r.welcome_nonce = self.key16("welcome_nonce16_hex");
        r.cookie_nonce = self.key16("cookie_nonce16_hex");
        r
    }

    fn client_cfg(&self) -> Config<'static> {
        Config::new(SocketType::Dealer).with_security(Security::CurveClient {
            server_key: self.key32("server_permanent_public_hex"),
            keys: self.client_keys(),
        })
    }

    fn server_cfg(&self) -> Config<'static> {
        Config::new(SocketType::Router).with_security(Security::CurveServer {
            keys: self.server_keys(),
        })
    }

    fn client(&self) -> Session<'static> {
        curve_session(&self.client_cfg(), Role::Connected, self.client_random())
    }

    fn server(&self) -> Session<'static> {
        curve_session(&self.server_cfg(), Role::Accepted, self.server_random())
    }
}

// Transcript steps.
const C_GREETING: usize = 0;
const S_GREETING: usize = 1;
const HELLO: usize = 2;
const WELCOME: usize = 3;
const INITIATE: usize = 4;
const READY: usize = 5;
const M_HELLO: usize = 6;
const M_PART1: usize = 7;
const M_PART2: usize = 8;
const M_PING: usize = 9;
const M_WORLD: usize = 10;

fn curve_session(cfg: &Config<'static>, role: Role, random: CurveRandom) -> Session<'static> {
    curve_session_with(cfg, role, random, 4096, 4096)
}

fn curve_session_with(
    cfg: &Config<'static>,
    role: Role,
    random: CurveRandom,
    rx: usize,
    tx: usize,
) -> Session<'static> {
    let buffers = Buffers {
        rx: leak(rx),
        tx: leak(tx),
    };
    Session::new_curve(cfg, role, buffers, Instant::ZERO, random).unwrap()
}

fn feed(s: &mut Session<'_>, bytes: &[u8]) -> Vec<Ev> {
    feed_split(s, bytes, &[usize::MAX], Instant::ZERO)
}

fn closed(e: CurveError) -> Vec<Ev> {
    vec![Ev::Closed(CloseReason::Protocol(ProtocolError::Curve(e)))]
}

fn props(pairs: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect()
}

#[test]
fn transcript_keys_match_their_z85_forms() {
    let t = Transcript::load();
    for who in ["server", "client"] {
        let keys = CurveKeyPair::from_secret(t.key32(&format!("{who}_permanent_secret_hex")));
        assert_eq!(
            keys.public_key().as_slice(),
            t.key(&format!("{who}_permanent_public_hex"))
        );
        assert_eq!(
            keys.public_key_z85().as_slice(),
            t.z85(&format!("{who}_permanent_public_z85")).as_bytes()
        );
        assert_eq!(
            keys.secret_key_z85().as_slice(),
            t.z85(&format!("{who}_permanent_secret_z85")).as_bytes()
        );
        let from_z85 =
            CurveKeyPair::from_z85_secret(t.z85(&format!("{who}_permanent_secret_z85")).as_bytes())
                .unwrap();
        assert_eq!(from_z85.secret_key(), keys.secret_key());
    }
    for who in ["client", "server"] {
        let k = CurveKeyPair::from_secret(t.key32(&format!("{who}_transient_secret_hex")));
        assert_eq!(
            k.public_key().as_slice(),
            t.key(&format!("{who}_transient_public_hex"))
        );
    }
}

#[test]
fn curve_transcript_client_role_byte_for_byte() {
    let t = Transcript::load();
    let mut c = t.client();
    // Greeting at once; as-server 0.
    assert_eq!(take_output(&mut c), t.step(C_GREETING));
    // The server's greeting: HELLO (client short nonce 1).
    assert_eq!(feed(&mut c, &t.step(S_GREETING)), []);
    assert_eq!(take_output(&mut c), t.step(HELLO));
    assert!(!c.can_send());
    // WELCOME: INITIATE with the cookie, vouch and our metadata (nonce 2).
    assert_eq!(feed(&mut c, &t.step(WELCOME)), []);
    assert_eq!(take_output(&mut c), t.step(INITIATE));
    assert_eq!(c.send_frame(b"early", false), Err(SendError::NotReady));
    // READY: the handshake is done, with the server's metadata.
    let evs = feed(&mut c, &t.step(READY));
    assert_eq!(
        evs,
        [Ev::Ready {
            socket_type: SocketType::Router,
            identity: vec![],
            minor: 1,
            metadata: props(&[(b"Socket-Type", b"ROUTER")]),
        }]
    );
    // Messages: nonces 3, 4, 5; MORE inside the box, never on the outer frame.
    c.send_frame(b"hello", false).unwrap();
    assert_eq!(take_output(&mut c), t.step(M_HELLO));
    c.send_frame(b"part1", true).unwrap();
    c.send_frame(b"part2", false).unwrap();
    let mut both = t.step(M_PART1);
    both.extend(t.step(M_PART2));
    assert_eq!(take_output(&mut c), both);
    // The server's MESSAGE (its nonce 2).
    assert_eq!(
        feed(&mut c, &t.step(M_WORLD)),
        [Ev::Frame(b"world".to_vec(), false)]
    );
    assert!(c.is_ready());
}

#[test]
fn curve_transcript_server_role_byte_for_byte() {
    let t = Transcript::load();
    let mut s = t.server();
    // Greeting at once; as-server 1 (RFC 25).
    assert_eq!(take_output(&mut s), t.step(S_GREETING));
    let mut input = t.step(C_GREETING);
    input.extend(t.step(HELLO));
    assert_eq!(feed(&mut s, &input), []);
    assert_eq!(take_output(&mut s), t.step(WELCOME));
    // INITIATE: the client's key goes to the application, nothing is sent until it decides.
    let evs = feed(&mut s, &t.step(INITIATE));
    assert_eq!(evs, [Ev::Auth(vec![], vec![])]);
    let req = s.pending_auth().unwrap();
    assert_eq!(req.public_key, Some(t.key32("client_permanent_public_hex")));
    assert_eq!(req.mechanism, zmtp_core::wire::Mechanism::CURVE);
    assert!(take_output(&mut s).is_empty());
    s.accept_peer();
    let ready = take_output(&mut s);
    let evs = drain(&mut s);
    assert_eq!(
        evs,
        [Ev::Ready {
            socket_type: SocketType::Dealer,
            identity: vec![],
            minor: 1,
            metadata: props(&[(b"Socket-Type", b"DEALER"), (b"Identity", b"")]),
        }]
    );
    assert_eq!(
        &t.metadata("client")[..],
        b"\x0bSocket-Type\x00\x00\x00\x06DEALER\x08Identity\x00\x00\x00\x00"
    );
    // Our ROUTER's READY carries `Identity` (PROTOCOL.md, and libzmq's ROUTER under NULL);
    // the transcript's server sent `Socket-Type` alone. Same key, nonce 1 and keystream: the
    // header and name differ in the size only, the nonce is equal and the ciphertext of the
    // common 22-byte prefix is byte for byte the transcript's.
    let want = t.step(READY);
    assert_eq!(want.len(), 2 + 30 + 22);
    assert_eq!(ready.len(), 2 + 30 + 35);
    assert_eq!(ready[0], 0x04);
    assert_eq!(ready[2..14], want[2..14], "name and short nonce 1");
    assert_eq!(
        ready[32..32 + 22],
        want[32..],
        "ciphertext of Socket-Type ROUTER"
    );
    // Client messages, nonces 3-5.
    let mut input = t.step(M_HELLO);
    input.extend(t.step(M_PART1));
    input.extend(t.step(M_PART2));
    assert_eq!(
        feed(&mut s, &input),
        [
            Ev::Frame(b"hello".to_vec(), false),
            Ev::Frame(b"part1".to_vec(), true),
            Ev::Frame(b"part2".to_vec(), false),
        ]
    );
    // Our first MESSAGE is nonce 2, exactly the transcript's.
    s.send_frame(b"world", false).unwrap();
    assert_eq!(take_output(&mut s), t.step(M_WORLD));
    // The PING inside a MESSAGE (COMMAND bit) is answered with an encrypted PONG echoing
    // "LOL": 2-byte header, MESSAGE overhead, 04 PONG LOL.
    assert_eq!(feed(&mut s, &t.step(M_PING)), []);
    let pong = take_output(&mut s);
    assert_eq!(pong.len(), 2 + MESSAGE_OVERHEAD + 1 + 4 + 3);
    assert_eq!(pong[0], 0x00, "a data frame");
    assert_eq!(&pong[2..10], b"\x07MESSAGE");
    assert_eq!(&pong[10..18], &3u64.to_be_bytes());
    assert!(s.is_ready());
}

#[test]
fn transcript_ping_makes_our_client_accept_the_pong_of_our_server() {
    // Both roles from the transcript, wired back to back: our client accepts our server's
    // READY (with Identity) and the PONG our server makes of the transcript's PING.
    let t = Transcript::load();
    let mut c = t.client();
    let mut s = t.server();
    let g = take_output(&mut s);
    feed(&mut c, &g);
    let mut to_s = take_output(&mut c);
    feed(&mut s, &to_s);
    feed(&mut c, &take_output(&mut s));
    to_s = take_output(&mut c);
    assert_eq!(to_s, t.step(INITIATE));
    feed(&mut s, &to_s);
    s.accept_peer();
    let evs = feed(&mut c, &take_output(&mut s));
    assert!(matches!(evs.as_slice(), [Ev::Ready { metadata, .. }] if metadata.len() == 2));
    drain(&mut s);
    c.send_frame(b"hello", false).unwrap();
    c.send_frame(b"part1", true).unwrap();
    c.send_frame(b"part2", false).unwrap();
    feed(&mut s, &take_output(&mut c));
    s.send_frame(b"world", false).unwrap();
    feed(&mut s, &t.step(M_PING));
    let evs = feed(&mut c, &take_output(&mut s));
    assert_eq!(evs, [Ev::Frame(b"world".to_vec(), false)]);
    assert!(c.is_ready() && s.is_ready());
}

#[test]
fn curve_handshake_is_split_agnostic() {
    let t = Transcript::load();
    let mut input = t.step(C_GREETING);
    input.extend(t.step(HELLO));
    input.extend(t.step(INITIATE));
    let evs = feed_all_ways(
        &|| {
            let mut s = Transcript::load().server();
            take_output(&mut s);
            s
        },
        &input,
        25,
    );
    assert_eq!(evs, [Ev::Auth(vec![], vec![])]);
    // The client side, through READY and a message.
    let mut input = t.step(S_GREETING);
    input.extend(t.step(WELCOME));
    input.extend(t.step(READY));
    input.extend(t.step(M_WORLD));
    let evs = feed_all_ways(
        &|| {
            let mut c = Transcript::load().client();
            take_output(&mut c);
            c
        },
        &input,
        26,
    );
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[1], Ev::Frame(b"world".to_vec(), false));
}

// ================================================================================ malformed

/// A server past the greeting, fed `input` after the client's greeting.
fn server_after(input: &[u8]) -> Vec<Ev> {
    let t = Transcript::load();
    let mut s = t.server();
    take_output(&mut s);
    let mut all = t.step(C_GREETING);
    all.extend_from_slice(input);
    feed(&mut s, &all)
}

/// A server that has accepted the transcript's client; then `input` arrives.
fn active_server_after(input: &[u8]) -> (Session<'static>, Vec<Ev>) {
    let t = Transcript::load();
    let mut s = t.server();
    let mut all = t.step(C_GREETING);
    all.extend(t.step(HELLO));
    all.extend(t.step(INITIATE));
    feed(&mut s, &all);
    s.accept_peer();
    drain(&mut s);
    take_output(&mut s);
    assert!(s.is_ready());
    let evs = feed(&mut s, input);
    (s, evs)
}

/// A client past READY; then `input` arrives.
fn active_client_after(input: &[u8]) -> Vec<Ev> {
    let t = Transcript::load();
    let mut c = t.client();
    let mut all = t.step(S_GREETING);
    all.extend(t.step(WELCOME));
    all.extend(t.step(READY));
    feed(&mut c, &all);
    assert!(c.is_ready());
    feed(&mut c, input)
}

fn flip(mut b: Vec<u8>, at: usize) -> Vec<u8> {
    b[at] ^= 0x01;
    b
}

#[test]
fn short_hello_closes() {
    let t = Transcript::load();
    let hello = t.step(HELLO);
    // 199 bytes of body.
    let mut short = vec![0x04, 199];
    short.extend_from_slice(&hello[2..201]);
    assert_eq!(server_after(&short), closed(CurveError::MalformedCommand));
    // 201 bytes.
    let mut long = vec![0x04, 201];
    long.extend_from_slice(&hello[2..]);
    long.push(0);
    assert_eq!(server_after(&long), closed(CurveError::MalformedCommand));
}

#[test]
fn hello_with_wrong_version_byte_closes() {
    let t = Transcript::load();
    // Frame header 2 bytes, then 05 HELLO, then the version 01 00.
    assert_eq!(
        server_after(&flip(t.step(HELLO), 8)),
        closed(CurveError::UnsupportedVersion)
    );
    let mut minor = t.step(HELLO);
    minor[9] = 1;
    assert_eq!(server_after(&minor), closed(CurveError::UnsupportedVersion));
}

#[test]
fn hello_with_nonzero_padding_or_flipped_signature_closes() {
    let t = Transcript::load();
    assert_eq!(
        server_after(&flip(t.step(HELLO), 50)),
        closed(CurveError::MalformedCommand)
    );
    // The signature box, and C' (the box is from C'): neither opens.
    assert_eq!(
        server_after(&flip(t.step(HELLO), 150)),
        closed(CurveError::BoxOpenFailed)
    );
    assert_eq!(
        server_after(&flip(t.step(HELLO), 90)),
        closed(CurveError::BoxOpenFailed)
    );
}

#[test]
fn misspelled_command_name_closes() {
    let t = Transcript::load();
    let mut hello = t.step(HELLO);
    hello[7] = b'P'; // HELLP
    assert_eq!(
        server_after(&hello),
        [Ev::Closed(CloseReason::Protocol(
            ProtocolError::UnexpectedCommand
        ))]
    );
    // A client expecting WELCOME gets WELCOMX.
    let mut c = t.client();
    take_output(&mut c);
    let mut input = t.step(S_GREETING);
    let mut w = t.step(WELCOME);
    w[9] = b'X';
    input.extend(w);
    assert_eq!(
        feed(&mut c, &input),
        [Ev::Closed(CloseReason::Protocol(
            ProtocolError::UnexpectedCommand
        ))]
    );
    // HELLO again instead of INITIATE.
    let mut twice = t.step(HELLO);
    twice.extend(t.step(HELLO));
    assert_eq!(
        server_after(&twice),
        [Ev::Closed(CloseReason::Protocol(
            ProtocolError::UnexpectedCommand
        ))]
    );
}

#[test]
fn short_initiate_closes() {
    let t = Transcript::load();
    let mut input = t.step(HELLO);
    // 256 bytes of body: one short of RFC 26's 257.
    input.extend(command(b"INITIATE", &t.step(INITIATE)[18..18 + 247]));
    assert_eq!(server_after(&input), closed(CurveError::MalformedCommand));
}

#[test]
fn flipped_cookie_byte_closes() {
    let t = Transcript::load();
    // INITIATE: 9-byte header, 08 INITIATE (9), cookie at body 9..105 (nonce, then box).
    for at in [9 + 9 + 3, 9 + 9 + 40, 9 + 9 + 95] {
        let mut input = t.step(HELLO);
        input.extend(flip(t.step(INITIATE), at));
        assert_eq!(
            server_after(&input),
            closed(CurveError::InvalidCookie),
            "{at}"
        );
    }
}

#[test]
fn flipped_box_byte_closes() {
    let t = Transcript::load();
    // INITIATE's box (tag at body 113, text after).
    for at in [9 + 113, 9 + 200, 9 + 280] {
        let mut input = t.step(HELLO);
        input.extend(flip(t.step(INITIATE), at));
        assert_eq!(
            server_after(&input),
            closed(CurveError::BoxOpenFailed),
            "{at}"
        );
    }
    // A MESSAGE's box, both directions.
    let (_, evs) = active_server_after(&flip(t.step(M_HELLO), 30));
    assert_eq!(evs, closed(CurveError::BoxOpenFailed));
    let (_, evs) = active_server_after(&flip(t.step(M_HELLO), 39));
    assert_eq!(evs, closed(CurveError::BoxOpenFailed));
    assert_eq!(
        active_client_after(&flip(t.step(M_WORLD), 20)),
        closed(CurveError::BoxOpenFailed)
    );
    // WELCOME's and READY's boxes, on the client.
    let mut c = t.client();
    let mut input = t.step(S_GREETING);
    input.extend(flip(t.step(WELCOME), 100));
    assert_eq!(feed(&mut c, &input), closed(CurveError::BoxOpenFailed));
    let mut c = t.client();
    let mut input = t.step(S_GREETING);
    input.extend(t.step(WELCOME));
    input.extend(flip(t.step(READY), 40));
    assert_eq!(feed(&mut c, &input), closed(CurveError::BoxOpenFailed));
}

#[test]
fn replayed_nonce_closes() {
    let t = Transcript::load();
    let mut input = t.step(M_HELLO);
    input.extend(t.step(M_HELLO));
    let (_, evs) = active_server_after(&input);
    assert_eq!(
        evs,
        [
            Ev::Frame(b"hello".to_vec(), false),
            Ev::Closed(CloseReason::Protocol(ProtocolError::Curve(
                CurveError::NonceReused
            )))
        ]
    );
    // A replayed INITIATE after it was accepted arrives as a command frame: refused too.
    let (_, evs) = active_server_after(&t.step(INITIATE));
    assert_eq!(evs, closed(CurveError::CommandFrame));
    let mut twice = t.step(M_WORLD);
    twice.extend(t.step(M_WORLD));
    assert_eq!(
        active_client_after(&twice),
        [
            Ev::Frame(b"world".to_vec(), false),
            Ev::Closed(CloseReason::Protocol(ProtocolError::Curve(
                CurveError::NonceReused
            )))
        ]
    );
}

#[test]
fn out_of_order_nonce_closes() {
    let t = Transcript::load();
    // Nonce 5 then 4: the gap (3, 4 skipped) is accepted, going back is not.
    let mut input = t.step(M_PART2);
    input.extend(t.step(M_PART1));
    let (_, evs) = active_server_after(&input);
    assert_eq!(
        evs,
        [
            Ev::Frame(b"part2".to_vec(), false),
            Ev::Closed(CloseReason::Protocol(ProtocolError::Curve(
                CurveError::NonceReused
            )))
        ]
    );
    // A MESSAGE with a nonce rewritten is refused before (or by) its box.
    let mut m = t.step(M_HELLO);
    m[10..18].copy_from_slice(&2u64.to_be_bytes());
    let (_, evs) = active_server_after(&m);
    assert_eq!(evs, closed(CurveError::NonceReused));
    m[10..18].copy_from_slice(&7u64.to_be_bytes());
    let (_, evs) = active_server_after(&m);
    assert_eq!(evs, closed(CurveError::BoxOpenFailed));
}

#[test]
fn message_in_a_command_frame_closes() {
    let t = Transcript::load();
    let mut m = t.step(M_HELLO);
    assert_eq!(m[0], 0x00);
    m[0] = 0x04;
    let (_, evs) = active_server_after(&m);
    assert_eq!(evs, closed(CurveError::CommandFrame));
    // A plain PING command frame after the handshake: refused the same way.
    let (_, evs) = active_server_after(&command(b"PING", b"\x00\x00"));
    assert_eq!(evs, closed(CurveError::CommandFrame));
    // An outer MORE flag is not authenticated and is ignored; the inner flags rule.
    let mut more = t.step(M_HELLO);
    more[0] = 0x01;
    let (_, evs) = active_server_after(&more);
    assert_eq!(evs, [Ev::Frame(b"hello".to_vec(), false)]);
}

#[test]
fn short_message_closes() {
    let t = Transcript::load();
    let m = t.step(M_HELLO);
    let mut short = vec![0x00, 32];
    short.extend_from_slice(&m[2..34]);
    let (_, evs) = active_server_after(&short);
    assert_eq!(evs, closed(CurveError::MalformedCommand));
    let mut renamed = m.clone();
    renamed[3] = b'm';
    let (_, evs) = active_server_after(&renamed);
    assert_eq!(evs, closed(CurveError::MalformedCommand));
}

#[test]
fn message_larger_than_the_receive_buffer_closes() {
    let t = Transcript::load();
    let mut s = curve_session_with(
        &t.server_cfg(),
        Role::Accepted,
        t.server_random(),
        512,
        4096,
    );
    let mut all = t.step(C_GREETING);
    all.extend(t.step(HELLO));
    all.extend(t.step(INITIATE));
    feed(&mut s, &all);
    s.accept_peer();
    drain(&mut s);
    // A 600-byte frame header: it can never be authenticated in a 512-byte buffer.
    let mut big = vec![0x02];
    big.extend_from_slice(&600u64.to_be_bytes());
    assert_eq!(feed(&mut s, &big), closed(CurveError::MessageTooLarge));
}

#[test]
fn curve_sessions_need_randomness_and_large_enough_buffers() {
    let t = Transcript::load();
    let buffers = Buffers {
        rx: leak(4096),
        tx: leak(4096),
    };
    assert_eq!(
        Session::new(&t.client_cfg(), Role::Connected, buffers, Instant::ZERO).err(),
        Some(ConfigError::MissingRandomness)
    );
    let small = Buffers {
        rx: leak(256),
        tx: leak(4096),
    };
    assert_eq!(
        Session::new_curve(
            &t.server_cfg(),
            Role::Accepted,
            small,
            Instant::ZERO,
            t.server_random()
        )
        .err(),
        Some(ConfigError::RxBufferTooSmall)
    );
    // The client's transmit buffer must hold the greeting and INITIATE (64 + 9 + 257 + 35).
    let tight = Buffers {
        rx: leak(1024),
        tx: leak(64 + 9 + 257 + 35 - 1),
    };
    assert_eq!(
        Session::new_curve(
            &t.client_cfg(),
            Role::Connected,
            tight,
            Instant::ZERO,
            t.client_random()
        )
        .err(),
        Some(ConfigError::TxBufferTooSmall)
    );
    let exact = Buffers {
        rx: leak(1024),
        tx: leak(64 + 9 + 257 + 35),
    };
    assert!(Session::new_curve(
        &t.client_cfg(),
        Role::Connected,
        exact,
        Instant::ZERO,
        t.client_random()
    )
    .is_ok());
}

#[test]
fn curve_never_downgrades_to_null_plain_or_zmtp_2() {
    let t = Transcript::load();
    for server in [false, true] {
        let make = || if server { t.server() } else { t.client() };
        // A NULL peer and a PLAIN peer: mechanism mismatch, nothing after our greeting.
        for name in [&b"NULL"[..], b"PLAIN"] {
            let mut s = make();
            take_output(&mut s);
            let mut g = peer_greeting();
            g[12..32].fill(0);
            g[12..12 + name.len()].copy_from_slice(name);
            assert_eq!(
                feed(&mut s, &g),
                [Ev::Closed(CloseReason::Protocol(
                    ProtocolError::MechanismMismatch
                ))]
            );
            assert!(take_output(&mut s).is_empty());
        }
        // A ZMTP 2.0 peer (major 1 in byte 10).
        let mut s = make();
        take_output(&mut s);
        let evs = feed_split(
            &mut s,
            &[0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 1, 5],
            &[1],
            Instant::ZERO,
        );
        assert!(
            matches!(
                evs.as_slice(),
                [Ev::Closed(CloseReason::Protocol(ProtocolError::Greeting(
                    _
                )))]
            ),
            "{evs:?}"
        );
        assert!(take_output(&mut s).is_empty());
    }
}

#[test]
fn wrong_server_key_fails_the_hello() {
    let t = Transcript::load();
    let other = Box::leak(Box::new(CurveKeyPair::from_secret([7; 32])));
    let cfg = Config::new(SocketType::Dealer).with_security(Security::CurveClient {
        server_key: *other.public_key(),
        keys: t.client_keys(),
    });
    let mut c = curve_session(&cfg, Role::Connected, t.client_random());
    let g = take_output(&mut c);
    feed(&mut c, &t.step(S_GREETING));
    let hello = take_output(&mut c);
    let mut s = t.server();
    take_output(&mut s);
    let mut all = g;
    all.extend(hello);
    assert_eq!(feed(&mut s, &all), closed(CurveError::BoxOpenFailed));
}

#[test]
fn initiate_with_incompatible_socket_type_gets_a_plaintext_error() {
    let t = Transcript::load();
    let cfg = Config::new(SocketType::Pub).with_security(Security::CurveClient {
        server_key: t.key32("server_permanent_public_hex"),
        keys: t.client_keys(),
    });
    let mut c = curve_session(&cfg, Role::Connected, t.client_random());
    let mut s = t.server();
    let mut to_s = take_output(&mut c);
    feed(&mut c, &take_output(&mut s));
    to_s.extend(take_output(&mut c));
    feed(&mut s, &to_s);
    feed(&mut c, &take_output(&mut s));
    let evs = feed(&mut s, &take_output(&mut c));
    assert_eq!(
        evs,
        [Ev::Closed(CloseReason::Protocol(
            ProtocolError::IncompatibleSocketType(SocketType::Pub)
        ))]
    );
    let out = take_output(&mut s);
    assert_eq!(out, command(b"ERROR", b"\x18incompatible-socket-type"));
    assert_eq!(
        feed(&mut c, &out),
        [
            Ev::PeerError(b"incompatible-socket-type".to_vec()),
            Ev::Closed(CloseReason::AuthFailed)
        ]
    );
}

#[test]
fn cookie_expires_sixty_seconds_after_welcome() {
    let t = Transcript::load();
    let mut cfg = t.server_cfg();
    cfg.handshake_timeout = None;
    let mut s = curve_session(&cfg, Role::Accepted, t.server_random());
    take_output(&mut s);
    let mut input = t.step(C_GREETING);
    input.extend(t.step(HELLO));
    feed(&mut s, &input);
    assert_eq!(s.poll_timeout(), Some(ms(60_000)));
    s.handle_timeout(ms(59_999));
    assert!(!s.is_closed());
    s.handle_timeout(ms(60_000));
    assert_eq!(drain(&mut s), [Ev::Closed(CloseReason::HandshakeTimeout)]);
}

#[test]
fn curve_frames_cannot_be_streamed() {
    let (mut p, _) = curve_pair(SocketType::Dealer, SocketType::Router);
    assert_eq!(p.client.start_frame(10, false), Err(SendError::TooLarge));
    assert_eq!(p.client.frame_overhead(), MESSAGE_OVERHEAD);
    // Too large for the transmit buffer: refused whole.
    assert_eq!(
        p.client.send_frame(&vec![0u8; 5000], false),
        Err(SendError::TooLarge)
    );
}

// ================================================================================ two sessions

/// A CURVE client and server on virtual time, randomness from a seeded generator, the server
/// accepting every client.
fn curve_pair_with(client: Config<'static>, server: Config<'static>) -> Pair {
    // Pair's own constructor starts NULL sessions; swap CURVE sessions in.
    let mut p = Pair::new(
        &Config::new(SocketType::Dealer),
        &Config::new(SocketType::Router),
    );
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut rng = move |b: &mut [u8]| {
        for x in b {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *x = seed as u8;
        }
    };
    p.client = curve_session(&client, Role::Connected, CurveRandom::from_fn(&mut rng));
    p.server = curve_session(&server, Role::Accepted, CurveRandom::from_fn(&mut rng));
    p
}

fn keys(seed: u8) -> &'static CurveKeyPair {
    Box::leak(Box::new(CurveKeyPair::from_secret([seed; 32])))
}

fn curve_cfgs(client: SocketType, server: SocketType) -> (Config<'static>, Config<'static>) {
    let s = keys(1);
    (
        Config::new(client).with_security(Security::CurveClient {
            server_key: *s.public_key(),
            keys: keys(2),
        }),
        Config::new(server).with_security(Security::CurveServer { keys: s }),
    )
}

type Log = std::rc::Rc<std::cell::RefCell<(Vec<u8>, Vec<u8>)>>;

/// A pair through the handshake (the server accepts), with every byte recorded.
fn curve_pair(client: SocketType, server: SocketType) -> (Pair, Log) {
    let (c, s) = curve_cfgs(client, server);
    let mut p = curve_pair_with(c, s);
    let log = wiretap(&mut p);
    p.run();
    assert_eq!(
        p.server.pending_auth().and_then(|a| a.public_key),
        Some(*keys(2).public_key())
    );
    p.server.accept_peer();
    p.handshake();
    (p, log)
}

/// Records every byte each way.
fn wiretap(p: &mut Pair) -> Log {
    let log = std::rc::Rc::new(std::cell::RefCell::new((Vec::new(), Vec::new())));
    let l = log.clone();
    p.tamper = Some(Box::new(move |c2s, b| {
        if c2s {
            l.borrow_mut().0.extend_from_slice(&b);
        } else {
            l.borrow_mut().1.extend_from_slice(&b);
        }
        b
    }));
    log
}

/// After the handshake only data frames holding MESSAGEs are on the wire.
fn assert_all_messages(bytes: &[u8], handshake_commands: usize) {
    let frames = scan_frames(bytes);
    for (i, (flags, body)) in frames.iter().enumerate() {
        if i < handshake_commands {
            assert_eq!(flags & 0x04, 0x04, "handshake command {i}");
        } else {
            assert_eq!(flags & 0x05, 0, "frame {i} is a data frame without MORE");
            assert_eq!(&body[..8], b"\x07MESSAGE", "frame {i}");
        }
    }
}

/// (flags, body) of every frame after the greeting.
fn scan_frames(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 64;
    while i < bytes.len() {
        let flags = bytes[i];
        let (len, hl) = if flags & 0x02 != 0 {
            (
                u64::from_be_bytes(bytes[i + 1..i + 9].try_into().unwrap()) as usize,
                9,
            )
        } else {
            (bytes[i + 1] as usize, 2)
        };
        out.push((flags, bytes[i + hl..i + hl + len].to_vec()));
        i += hl + len;
    }
    out
}

#[test]
fn two_sessions_exchange_messages_and_multipart() {
    let (mut p, log) = curve_pair(SocketType::Dealer, SocketType::Router);
    assert!(matches!(
        p.client_events.last(),
        Some(Ev::Ready {
            socket_type: SocketType::Router,
            ..
        })
    ));
    assert!(matches!(
        p.server_events.last(),
        Some(Ev::Ready {
            socket_type: SocketType::Dealer,
            ..
        })
    ));
    p.client_events.clear();
    p.server_events.clear();
    p.client.send_frame(b"a", true).unwrap();
    p.client.send_frame(b"", true).unwrap();
    let big = vec![0x5a; 300];
    p.client.send_frame(&big, false).unwrap();
    p.server.send_frame(b"reply", false).unwrap();
    p.run();
    assert_eq!(
        p.server_events,
        [
            Ev::Frame(b"a".to_vec(), true),
            Ev::Frame(vec![], true),
            Ev::Frame(big.clone(), false),
        ]
    );
    assert_eq!(p.client_events, [Ev::Frame(b"reply".to_vec(), false)]);
    let (c2s, s2c) = log.borrow().clone();
    // HELLO, INITIATE; then MESSAGEs (the 300-byte frame in a long data frame).
    assert_all_messages(&c2s, 2);
    assert_all_messages(&s2c, 1 + 1);
    assert!(scan_frames(&c2s).iter().any(|(f, _)| *f == 0x02));
    // The plaintext never shows.
    assert!(!c2s.windows(5).any(|w| w == b"Z".repeat(5).as_slice()));
    assert!(!s2c.windows(5).any(|w| w == b"reply"));
}

#[test]
fn heartbeats_ride_inside_messages() {
    let (mut c, s) = curve_cfgs(SocketType::Dealer, SocketType::Router);
    c.heartbeat_interval = Some(Duration::from_secs(1));
    c.heartbeat_ttl = Some(Duration::from_secs(3));
    let mut p = curve_pair_with(c, s);
    let log = wiretap(&mut p);
    p.run();
    p.server.accept_peer();
    p.handshake();
    // Ten intervals: PINGs go out, PONGs come back, nobody times out.
    p.advance(10_500);
    assert!(p.client.is_ready() && p.server.is_ready());
    let (c2s, s2c) = log.borrow().clone();
    let pings = scan_frames(&c2s).len() - 2;
    let pongs = scan_frames(&s2c).len() - 2;
    assert!(pings >= 10, "{pings} PINGs");
    assert_eq!(pings, pongs);
    assert_all_messages(&c2s, 2);
    assert_all_messages(&s2c, 2);
    // The server enforces the TTL from the encrypted PING: silence closes it.
    p.client.close();
    p.tamper = Some(Box::new(|_, _| Vec::new()));
    p.advance(3_500);
    assert_eq!(
        p.server_events.last(),
        Some(&Ev::Closed(CloseReason::TtlExpired))
    );
}

#[test]
fn subscriptions_ride_inside_messages() {
    let (mut p, log) = curve_pair(SocketType::Sub, SocketType::Pub);
    p.server_events.clear();
    p.client.send_subscribe(b"weather").unwrap();
    p.client.send_subscribe(b"").unwrap();
    p.client.send_cancel(b"weather").unwrap();
    p.run();
    assert_eq!(
        p.server_events,
        [
            Ev::Subscribe(b"weather".to_vec()),
            Ev::Subscribe(vec![]),
            Ev::Cancel(b"weather".to_vec()),
        ]
    );
    p.server.send_frame(b"weather sunny", false).unwrap();
    p.run();
    assert_eq!(
        p.client_events.last(),
        Some(&Ev::Frame(b"weather sunny".to_vec(), false))
    );
    let (c2s, _) = log.borrow().clone();
    assert_all_messages(&c2s, 2);
    assert!(!c2s.windows(7).any(|w| w == b"weather"));
}

#[test]
fn error_after_the_handshake_is_encrypted() {
    let (mut p, log) = curve_pair(SocketType::Dealer, SocketType::Router);
    p.server.close_with_error(b"going-away");
    p.run();
    assert_eq!(
        &p.client_events[p.client_events.len() - 2..],
        [
            Ev::PeerError(b"going-away".to_vec()),
            Ev::Closed(CloseReason::PeerError)
        ]
    );
    let (_, s2c) = log.borrow().clone();
    assert_all_messages(&s2c, 2);
}

#[test]
fn rejected_client_gets_error_and_does_not_reconnect() {
    let (c, s) = curve_cfgs(SocketType::Req, SocketType::Rep);
    let mut p = curve_pair_with(c, s);
    p.run();
    assert_eq!(p.server_events, [Ev::Auth(vec![], vec![])]);
    assert!(!p.server.is_ready());
    p.server.reject_peer(b"400");
    p.run();
    assert_eq!(
        p.client_events,
        [
            Ev::PeerError(b"400".to_vec()),
            Ev::Closed(CloseReason::AuthFailed)
        ]
    );
    assert_eq!(
        p.server_events.last(),
        Some(&Ev::Closed(CloseReason::AuthRejected))
    );
}

#[test]
fn curve_request_reply_with_identity_and_metadata() {
    let (c, s) = curve_cfgs(SocketType::Req, SocketType::Router);
    let c = c.with_identity(b"client-7");
    let mut p = curve_pair_with(c, s);
    p.run();
    p.server.accept_peer();
    p.handshake();
    match p.server_events.last() {
        Some(Ev::Ready { identity, .. }) => assert_eq!(identity, b"client-7"),
        e => panic!("{e:?}"),
    }
    p.client.send_frame(b"", true).unwrap();
    p.client.send_frame(b"ping?", false).unwrap();
    p.run();
    assert_eq!(
        &p.server_events[p.server_events.len() - 2..],
        [Ev::Frame(vec![], true), Ev::Frame(b"ping?".to_vec(), false)]
    );
}

// ================================================================================ Z85

#[test]
fn z85_rfc32_test_vector() {
    let data = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
    let mut text = [0u8; 10];
    assert_eq!(z85::encode(&data, &mut text), Ok(10));
    assert_eq!(&text, b"HelloWorld");
    let mut back = [0u8; 8];
    assert_eq!(z85::decode(b"HelloWorld", &mut back), Ok(8));
    assert_eq!(back, data);
}

#[test]
fn z85_keys_round_trip_and_bad_input_is_refused() {
    let t = Transcript::load();
    let z = t.z85("server_permanent_public_z85");
    let key = z85::decode_key(z.as_bytes()).unwrap();
    assert_eq!(key.as_slice(), t.key("server_permanent_public_hex"));
    assert_eq!(z85::encode_key(&key).as_slice(), z.as_bytes());
    assert_eq!(
        z85::decode_key(&z.as_bytes()[..39]),
        Err(z85::Z85Error::Length)
    );
    let mut bad = z.into_bytes();
    bad[3] = b' ';
    assert_eq!(z85::decode_key(&bad), Err(z85::Z85Error::InvalidChar));
    assert_eq!(
        z85::encode(&[1, 2, 3], &mut [0; 8]),
        Err(z85::Z85Error::Length)
    );
}

#[test]
fn keypair_generation_from_caller_randomness() {
    let mut counter = 0u8;
    let k = CurveKeyPair::generate(&mut CountingRng(&mut counter));
    let again = CurveKeyPair::from_secret(*k.secret_key());
    assert_eq!(k.public_key(), again.public_key());
    assert_ne!(k.public_key(), &[0; 32]);
    assert_eq!(counter, 32);
}

struct CountingRng<'a>(&'a mut u8);

impl rand_core::TryRng for CountingRng<'_> {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for b in dst {
            *self.0 = self.0.wrapping_add(1);
            *b = *self.0;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for CountingRng<'_> {}
