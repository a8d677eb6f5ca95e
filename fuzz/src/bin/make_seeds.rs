//! Writes the seed corpora under `fuzz/seeds/<target>/` from the golden transcripts
//! (`zmtp-core/tests/vectors/*.json`, copies of `shared/vectors/`) and a few typical exchanges.
//!
//! ```text
//! cd fuzz && cargo run --release --bin make_seeds -- [VECTORS_DIR] [OUT_DIR]
//! ```
//!
//! Defaults: `../zmtp-core/tests/vectors` (the vectors vendored in the repository) and `seeds`.
//! A missing vectors folder is not an error: the hand-made seeds are written anyway. The
//! session inputs follow the layouts documented in `zmtp_core::fuzzing`.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

/// Every `"key": "hex"` pair of a JSON file, in order (the vectors are flat enough that this
/// needs no JSON parser).
fn hex_fields(text: &str) -> Vec<(String, Vec<u8>)> {
    let mut strings = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        strings.push(after[..end].to_string());
        rest = &after[end + 1..];
    }
    let mut out = Vec::new();
    for pair in strings.windows(2) {
        let (key, value) = (&pair[0], &pair[1]);
        if value.len() >= 2
            && value.len() % 2 == 0
            && value.bytes().all(|b| b.is_ascii_hexdigit())
            && !key.bytes().all(|b| b.is_ascii_hexdigit())
        {
            out.push((key.clone(), hex(value)));
        }
    }
    out
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Greeting of a peer: version, mechanism, as-server; byte 8 as libzmq writes it.
fn greeting(major: u8, minor: u8, mechanism: &[u8], as_server: bool) -> Vec<u8> {
    let mut g = vec![0u8; 64];
    g[0] = 0xff;
    g[8] = 0x01;
    g[9] = 0x7f;
    g[10] = major;
    g[11] = minor;
    g[12..12 + mechanism.len()].copy_from_slice(mechanism);
    g[32] = u8::from(as_server);
    g
}

fn frame(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    if body.len() > 255 {
        v.push(flags | 0x02);
        v.extend_from_slice(&(body.len() as u64).to_be_bytes());
    } else {
        v.push(flags);
        v.push(body.len() as u8);
    }
    v.extend_from_slice(body);
    v
}

fn command_body(name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut b = vec![name.len() as u8];
    b.extend_from_slice(name);
    b.extend_from_slice(data);
    b
}

fn command(name: &[u8], data: &[u8]) -> Vec<u8> {
    frame(0x04, &command_body(name, data))
}

fn metadata(props: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut m = Vec::new();
    for (n, v) in props {
        m.push(n.len() as u8);
        m.extend_from_slice(n);
        m.extend_from_slice(&(v.len() as u32).to_be_bytes());
        m.extend_from_slice(v);
    }
    m
}

fn ready(socket_type: &str, identity: Option<&[u8]>) -> Vec<u8> {
    let mut props: Vec<(&[u8], &[u8])> = vec![(b"Socket-Type", socket_type.as_bytes())];
    if let Some(id) = identity {
        props.push((b"Identity", id));
    }
    command(b"READY", &metadata(&props))
}

const TYPES: [&str; 11] = [
    "PAIR", "PUB", "SUB", "REQ", "REP", "DEALER", "ROUTER", "PULL", "PUSH", "XPUB", "XSUB",
];

fn compatible(a: &str, b: &str) -> bool {
    matches!(
        (a, b),
        ("REQ", "REP" | "ROUTER")
            | ("REP", "REQ" | "DEALER")
            | ("DEALER", "REP" | "DEALER" | "ROUTER")
            | ("ROUTER", "REQ" | "DEALER" | "ROUTER")
            | ("PUB" | "XPUB", "SUB" | "XSUB")
            | ("SUB" | "XSUB", "PUB" | "XPUB")
            | ("PUSH", "PULL")
            | ("PULL", "PUSH")
            | ("PAIR", "PAIR")
    )
}

fn type_index(t: &str) -> u8 {
    TYPES.iter().position(|x| *x == t).expect("type") as u8
}

/// A `session` input: mode, our type, pick, rx, tx, control steps, stream.
fn session_input(
    mode: u8,
    ours: &str,
    pick: u8,
    rx: u8,
    tx: u8,
    steps: &[[u8; 4]],
    stream: &[u8],
) -> Vec<u8> {
    assert!(!steps.is_empty() && steps.len() <= 8);
    let mut v = vec![
        mode,
        type_index(ours),
        pick,
        rx,
        tx,
        (steps.len() - 1) as u8,
    ];
    for s in steps {
        v.extend_from_slice(s);
    }
    v.extend_from_slice(stream);
    v
}

struct Seeds {
    out: PathBuf,
    by_target: BTreeMap<&'static str, Vec<(String, Vec<u8>)>>,
}

impl Seeds {
    fn add(&mut self, target: &'static str, name: impl Into<String>, bytes: Vec<u8>) {
        let list = self.by_target.entry(target).or_default();
        if list.iter().any(|(_, b)| *b == bytes) {
            return;
        }
        list.push((name.into(), bytes));
    }

    fn write(&self) -> std::io::Result<()> {
        let mut total = 0;
        for (target, list) in &self.by_target {
            let dir = self.out.join(target);
            if dir.exists() {
                fs::remove_dir_all(&dir)?;
            }
            fs::create_dir_all(&dir)?;
            for (name, bytes) in list {
                fs::write(dir.join(name), bytes)?;
                total += bytes.len();
            }
            println!("{target}: {} seeds", list.len());
        }
        println!("{total} bytes in all");
        Ok(())
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let vectors = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "../zmtp-core/tests/vectors".into()),
    );
    let out = PathBuf::from(args.next().unwrap_or_else(|| "seeds".into()));
    let mut seeds = Seeds {
        out,
        by_target: BTreeMap::new(),
    };

    // ------------------------------------------------------------ from the golden vectors
    let mut libzmq: Vec<(String, Vec<u8>, Vec<u8>)> = Vec::new(); // type, greeting, READY
    let mut transcript: Vec<(String, Vec<u8>)> = Vec::new();
    let null_vectors = vectors.join("libzmq435_null_greeting_ready.json");
    if let Ok(text) = fs::read_to_string(&null_vectors) {
        let fields = hex_fields(&text);
        // Keys come in (greeting, ready_frame) order per type, types in file order.
        let names: Vec<&str> = TYPES
            .iter()
            .copied()
            .filter(|t| text.contains(&format!("\"{t}\"")))
            .collect();
        let mut order: Vec<(usize, &str)> = names
            .iter()
            .map(|t| (text.find(&format!("\"{t}\"")).unwrap(), *t))
            .collect();
        order.sort();
        for (i, pair) in fields.chunks(2).enumerate() {
            if let ([(_, g), (_, r)], Some((_, t))) = (pair, order.get(i)) {
                libzmq.push((t.to_string(), g.clone(), r.clone()));
            }
        }
    } else {
        eprintln!("note: {} not found", null_vectors.display());
    }
    if let Ok(text) = fs::read_to_string(vectors.join("curve_transcript.json")) {
        let fields = hex_fields(&text);
        for (k, v) in &fields {
            if k == "client" || k == "server" {
                seeds.add("metadata", format!("curve-{k}-metadata"), v.clone());
            } else if k == "hex" {
                transcript.push((format!("curve-{}", transcript.len()), v.clone()));
            }
        }
    }

    for (t, g, r) in &libzmq {
        let lt = t.to_lowercase();
        seeds.add("greeting", "libzmq435-null", g.clone());
        seeds.add(
            "frame_header",
            format!("libzmq435-ready-{lt}"),
            r[..2].to_vec(),
        );
        seeds.add("command", format!("libzmq435-ready-{lt}"), r[2..].to_vec());
        seeds.add("metadata", format!("libzmq435-ready-{lt}"), r[8..].to_vec());
    }
    for (name, bytes) in &transcript {
        if bytes.len() == 64 {
            seeds.add("greeting", name.clone(), bytes.clone());
            continue;
        }
        let hl = if bytes[0] & 0x02 != 0 { 9 } else { 2 };
        seeds.add(
            "frame_header",
            name.clone(),
            bytes[..hl.min(bytes.len())].to_vec(),
        );
        if bytes[0] & 0x04 != 0 {
            seeds.add("command", name.clone(), bytes[hl..].to_vec());
        }
    }

    // ------------------------------------------------------------ hand-made wire seeds
    seeds.add("greeting", "null-3.1", greeting(3, 1, b"NULL", false));
    seeds.add("greeting", "null-3.0", greeting(3, 0, b"NULL", false));
    seeds.add("greeting", "plain-server", greeting(3, 1, b"PLAIN", true));
    seeds.add("greeting", "curve-4.0", greeting(4, 0, b"CURVE", false));
    seeds.add("greeting", "zmtp2", greeting(2, 0, b"NULL", false));
    let mut zmtp1 = vec![0x01, 0x00];
    zmtp1.extend_from_slice(&[0u8; 20]);
    seeds.add("greeting", "zmtp1", zmtp1);
    seeds.add(
        "greeting",
        "signature-only",
        greeting(3, 1, b"NULL", false)[..10].to_vec(),
    );

    for (name, h) in [
        ("short-empty", vec![0x00, 0x00]),
        ("short-more", vec![0x01, 0x05]),
        ("command-short", vec![0x04, 0x29]),
        ("long-300", frame(0x00, &[0; 300])[..9].to_vec()),
        ("long-small", vec![0x02, 0, 0, 0, 0, 0, 0, 0, 5]),
        ("long-command", vec![0x06, 0, 0, 0, 0, 0, 0, 1, 0]),
        ("long-more", vec![0x03, 0, 0, 0, 1, 0, 0, 0, 0]),
        ("bit63", vec![0x02, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        ("reserved", vec![0x08, 0x00]),
        ("command-more", vec![0x05, 0x00]),
    ] {
        seeds.add("frame_header", name, h);
    }

    let commands: Vec<(&str, Vec<u8>)> = vec![
        ("ping-ttl-ctx", command_body(b"PING", b"\x00\x64abc")),
        (
            "ping-16",
            command_body(
                b"PING",
                &[0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
            ),
        ),
        ("ping-short", command_body(b"PING", b"\x00")),
        ("pong", command_body(b"PONG", b"abc")),
        ("error", command_body(b"ERROR", b"\x03400")),
        ("error-bad-len", command_body(b"ERROR", b"\x09400")),
        ("error-libzmq-mangled", b"\x5eRROR\x03400".to_vec()),
        ("subscribe", command_body(b"SUBSCRIBE", b"topic")),
        ("cancel", command_body(b"CANCEL", b"")),
        (
            "hello-plain",
            command_body(b"HELLO", b"\x05admin\x06secret"),
        ),
        ("welcome-plain", command_body(b"WELCOME", b"")),
        (
            "initiate",
            command_body(b"INITIATE", &metadata(&[(b"Socket-Type", b"REQ")])),
        ),
        ("message", command_body(b"MESSAGE", &[0; 24])),
        ("unknown-lower", command_body(b"ping", b"\x00\x00")),
        ("empty-name", vec![0x00]),
        ("name-overrun", vec![0x09, b'P']),
    ];
    for (name, body) in commands {
        seeds.add("command", name, body);
    }
    let metas: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        (
            "x-props",
            metadata(&[
                (b"Socket-Type", b"DEALER"),
                (b"X-Custom.prop_1+", b"value"),
                (b"identity", b""),
            ]),
        ),
        (
            "resource",
            metadata(&[(b"Socket-Type", b"ROUTER"), (b"Resource", b"/path")]),
        ),
        ("stray-byte", {
            let mut m = metadata(&[(b"Socket-Type", b"PUB")]);
            m.push(7);
            m
        }),
        ("value-too-long", vec![1, b'a', 0x80, 0, 0, 0]),
        ("bad-name", metadata(&[(b"Socket Type", b"PUB")])),
    ];
    for (name, m) in metas {
        seeds.add("metadata", name, m);
    }

    // ------------------------------------------------------------ session
    let whole = [[0xff, 0, 0, 0]]; // 4096-byte fragments, no time, no sends, drain all
    let bytewise = [[0x00, 0, 0, 0]];
    let mixed = [
        [0x02, 0x05, 0x00, 0x00],
        [0x9f, 0x00, 0x00, 0x03],
        [0x10, 0x02, 0x00, 0x00],
    ];
    for (t, g, _) in &libzmq {
        for (peer, _, r) in libzmq.iter().filter(|(p, _, _)| compatible(t, p)) {
            let mut stream = g.clone();
            stream.extend_from_slice(r);
            let name = format!("libzmq-{}-to-{}", peer.to_lowercase(), t.to_lowercase());
            seeds.add(
                "session",
                name.clone(),
                session_input(0, t, 0, 0x18, 0x18, &whole, &stream),
            );
            // Same, accepted side, one byte at a time, data after READY.
            stream.extend(frame(0x01, b""));
            stream.extend(frame(0x00, b"hello"));
            seeds.add(
                "session",
                format!("{name}-bytewise"),
                session_input(1, t, 0, 0x18, 0x18, &bytewise, &stream),
            );
        }
    }
    // Traffic after a prelude greeting + READY (mode bits 1-2 = 2).
    let mut traffic = Vec::new();
    traffic.extend(frame(0x01, b"id"));
    traffic.extend(frame(0x01, b""));
    traffic.extend(command(b"PING", b"\x00\x0actx"));
    traffic.extend(frame(0x00, b"body"));
    traffic.extend(frame(0x00, &[0x5a; 300]));
    traffic.extend(command(b"PONG", b""));
    traffic.extend(command(b"SUBSCRIBE", b"news"));
    traffic.extend(command(b"CANCEL", b"news"));
    traffic.extend(command(b"UNKNOWN", b"xyz"));
    traffic.extend(ready("DEALER", None));
    seeds.add(
        "session",
        "traffic-dealer",
        session_input(0x04, "DEALER", 0, 0x10, 0x10, &mixed, &traffic),
    );
    seeds.add(
        "session",
        "traffic-dealer-small-rx",
        session_input(0x05, "DEALER", 1, 0x00, 0x10, &whole, &traffic),
    );
    // Heartbeats on, time passing, sends from the application.
    let hb_steps = [
        [0x20, 0x05, 0x29, 0x00],
        [0x20, 0x06, 0x0a, 0x10],
        [0x20, 0x05, 0x53, 0x00],
        [0x81, 0x03, 0x29, 0x00],
    ];
    seeds.add(
        "session",
        "heartbeat-router",
        session_input(0x0c, "ROUTER", 0x80, 0x20, 0x20, &hb_steps, &traffic),
    );
    // PUB receiving ZMTP 3.0 subscriptions as messages, from a 3.0 peer (prelude 3).
    let mut legacy = Vec::new();
    legacy.extend(frame(0x00, b"\x01weather"));
    legacy.extend(frame(0x00, b"\x00weather"));
    legacy.extend(frame(0x00, b"\x01"));
    legacy.extend(frame(0x01, b"\x01multi"));
    legacy.extend(frame(0x00, b"part"));
    seeds.add(
        "session",
        "legacy-subscriptions-pub",
        session_input(0x06, "PUB", 0, 0x10, 0x10, &mixed, &legacy),
    );
    seeds.add(
        "session",
        "sub-to-zmtp30",
        session_input(0x06, "SUB", 0, 0x10, 0x10, &[[0x10, 0, 0x2a, 0]], &legacy),
    );
    // Errors and limits.
    let mut err = frame(0x00, b"x");
    err.extend(command(b"ERROR", b"\x0binvalid-foo"));
    seeds.add(
        "session",
        "peer-error",
        session_input(0x04, "PULL", 0, 0x10, 0x10, &whole, &err),
    );
    let mut big = frame(0x00, &[1; 2000]);
    big.extend(frame(0x00, &[2; 20]));
    seeds.add(
        "session",
        "limits",
        session_input(0x14, "PAIR", 0x20, 0x10, 0x10, &mixed, &big),
    );
    let mut mism = greeting(3, 1, b"PLAIN", false);
    mism.extend(ready("PAIR", None));
    seeds.add(
        "session",
        "mechanism-mismatch",
        session_input(0, "PAIR", 0, 0x10, 0x10, &whole, &mism),
    );
    let mut bad_ready = greeting(3, 1, b"NULL", false);
    bad_ready.extend(ready("SUB", None));
    seeds.add(
        "session",
        "incompatible",
        session_input(0x41, "REQ", 0, 0x10, 0x10, &whole, &bad_ready),
    );

    // ------------------------------------------------------------ session_pair
    // Header: mode, client type, server pick, c_rx, c_tx, s_rx, s_tx, c_lim, s_lim; then ops.
    let pair = |mode: u8, ct: &str, pick: u8, bufs: [u8; 4], ops: &[u8]| {
        let mut v = vec![mode, type_index(ct), pick];
        v.extend_from_slice(&bufs);
        v.extend_from_slice(&[0x10, 0x10]);
        v.extend_from_slice(ops);
        v
    };
    let basic = [
        0x05, // settle: handshake
        0x10, 0x00, 0x07, // client frame, MORE, empty
        0x00, 0x05, 0x09, // client frame, 5 bytes
        0x08, 0x20, 0x02, // server frame, 32 bytes
        0x05, // settle
        0x40, 0xff, 0x03, // client frame 255 * 17 bytes (streamed, chunked)
        0x12, 0x40, // move 65 * 32 bytes client -> server
        0x0a, 0x01, // move 2 bytes server -> client
        0x05,
    ];
    seeds.add(
        "session_pair",
        "dealer-router",
        pair(0, "DEALER", 2, [0x10; 4], &basic),
    );
    seeds.add(
        "session_pair",
        "req-rep-small",
        pair(0, "REQ", 0, [0, 0, 0, 0], &basic),
    );
    seeds.add(
        "session_pair",
        "push-pull-big",
        pair(0, "PUSH", 0, [0xf8, 0xf8, 0x08, 0x08], &basic),
    );
    let subs = [
        0x05, 0x01, 0x05, // SUBSCRIBE 5
        0x11, 0x05, // CANCEL 5
        0x05, 0x08, 0x00, 0x01, // server (PUB) empty frame
        0x08, 0x03, 0x01, // server frame starting 01
        0x05,
    ];
    seeds.add(
        "session_pair",
        "sub-pub",
        pair(0, "SUB", 0, [0x10; 4], &subs),
    );
    seeds.add(
        "session_pair",
        "xsub-xpub",
        pair(0, "XSUB", 1, [0x10; 4], &subs),
    );
    let legacy_ops = [0x05, 0x00, 0x04, 0x01, 0x00, 0x04, 0x00, 0x05];
    seeds.add(
        "session_pair",
        "sub-to-pub-legacy-tag",
        pair(0, "SUB", 0, [0x10; 4], &legacy_ops),
    );
    let hb = [
        0x05, 0x03, 0x64, // 100 ms
        0x05, 0x0b, 0x05, // 500 ms
        0x05, 0x0b, 0x14, // 2 s: TTL expired
        0x05,
    ];
    seeds.add(
        "session_pair",
        "heartbeats",
        pair(0x02, "DEALER", 0, [0x10; 4], &hb),
    );
    seeds.add(
        "session_pair",
        "heartbeats-deadline",
        pair(
            0x02,
            "PAIR",
            0,
            [0x10; 4],
            &[0x05, 0x13, 0x00, 0x05, 0x13, 0x00, 0x05],
        ),
    );
    let tamper = [
        0x04, 0x0b, 0x01, 0x05, 0x00, 0x05, 0x09, 0x0c, 0x03, 0x04, 0x05,
    ];
    seeds.add(
        "session_pair",
        "tamper",
        pair(0x01, "DEALER", 0, [0x10; 4], &tamper),
    );
    let limits = [
        0x05, 0x00, 0x50, 0x01, 0x10, 0x50, 0x02, 0x00, 0x50, 0x03, 0x05,
    ];
    seeds.add(
        "session_pair",
        "limits",
        pair(0x04, "PAIR", 0, [0x10; 4], &limits),
    );

    seeds.write()?;
    Ok(())
}
