//! The `session_security` target: sessions under PLAIN and CURVE.
//!
//! ```text
//! byte 0  mode: bit 0 mechanism (0 PLAIN, 1 CURVE); bit 1 pair (0: one session fed the
//!         input, 1: a client and a server talking); bit 2 (one session) our side: 0 client,
//!         1 server; bit 3 the client's transport role (0 Connected, 1 Accepted); bit 4 the
//!         server rejects the client; bit 5 (pair) tamper: bit flips allowed; bit 6 heartbeats
//! byte 1  the client's socket type; byte 2 the server's type pick (among the compatible ones)
//! rest    one session: after a valid peer greeting for the mechanism, fragments (length
//!         byte, then bytes); pair: operations (see `pair`)
//! ```
//!
//! Checks: no panic; `poll_event` ends; nothing follows `Closed`; `Authenticate` only on the
//! server side, once; after `close()` and a full transmit the session is finished. Pair,
//! without tampering: no protocol error; once everything moved, an accepted client finished
//! the handshake on both sides and every frame sent arrived whole and in order, and a
//! rejected one never delivered a frame.

use core::time::Duration;

use heapless::Deque;

use super::{compatible, config, socket_type, Input};
use crate::mechanism::curve::{CurveKeyPair, CurveRandom};
use crate::mechanism::Security;
use crate::wire::{Greeting, GREETING_LEN};
use crate::{Buffers, CloseReason, Config, Event, Instant, Role, Session};

const RX: usize = 1024;
const TX: usize = 2048;
const MAX_FRAME: usize = 600;

struct Side<'b> {
    s: Session<'b>,
    server: bool,
    reject: bool,
    closed: Option<CloseReason>,
    authenticated: bool,
    /// Frames the other side sent to this one: (seq, len).
    want: Deque<(u32, usize), 64>,
    /// Receiving checks still hold (nothing flipped towards us).
    strict: bool,
    delivered: u32,
}

fn frame_byte(seq: u32, i: usize) -> u8 {
    (i as u8).wrapping_mul(13) ^ (seq as u8).wrapping_mul(7) ^ 0x5c
}

impl Side<'_> {
    fn drain(&mut self) {
        for _ in 0..RX + 8 {
            let Some(ev) = self.s.poll_event() else {
                return;
            };
            assert!(self.closed.is_none(), "event after Closed: {ev:?}");
            match ev {
                Event::Authenticate(a) => {
                    assert!(self.server, "Authenticate on the client side: {a:?}");
                    assert!(!self.authenticated, "second Authenticate");
                    self.authenticated = true;
                    if self.reject {
                        self.s.reject_peer(b"400");
                    } else {
                        self.s.accept_peer();
                    }
                }
                Event::Frame { data, .. } => {
                    self.delivered += 1;
                    if self.strict {
                        let Some((seq, len)) = self.want.pop_front() else {
                            panic!("frame never sent: {} bytes", data.len());
                        };
                        assert_eq!(data.len(), len, "frame {seq} length");
                        assert!(
                            data.iter()
                                .enumerate()
                                .all(|(i, &b)| b == frame_byte(seq, i)),
                            "frame {seq} altered"
                        );
                    }
                }
                Event::FrameChunk(_) => self.strict = false,
                Event::Closed(r) => self.closed = Some(r),
                _ => {}
            }
        }
        panic!("poll_event does not end");
    }
}

fn new_side(s: Session<'_>, server: bool, reject: bool) -> Side<'_> {
    Side {
        s,
        server,
        reject,
        closed: None,
        authenticated: false,
        want: Deque::new(),
        strict: true,
        delivered: 0,
    }
}

/// Our side's security; CURVE when `keys` (server, client) are given, else PLAIN.
fn security(server: bool, keys: Option<&(CurveKeyPair, CurveKeyPair)>) -> Security<'_> {
    match (keys, server) {
        (None, false) => Security::PlainClient {
            username: b"admin",
            password: b"secret",
        },
        (None, true) => Security::PlainServer,
        (Some((sk, ck)), false) => Security::CurveClient {
            server_key: *sk.public_key(),
            keys: ck,
        },
        (Some((sk, _)), true) => Security::CurveServer { keys: sk },
    }
}

fn random(seed: u8) -> CurveRandom {
    let mut n = seed;
    CurveRandom::from_fn(|b| {
        for x in b.iter_mut() {
            n = n.wrapping_mul(29).wrapping_add(71);
            *x = n;
        }
    })
}

fn start<'b>(cfg: &Config<'b>, role: Role, b: Buffers<'b>, curve: bool, seed: u8) -> Session<'b> {
    let r = if curve {
        Session::new_curve(cfg, role, b, Instant::ZERO, random(seed))
    } else {
        Session::new(cfg, role, b, Instant::ZERO)
    };
    match r {
        Ok(s) => s,
        Err(e) => panic!("session refused: {e:?}"),
    }
}

/// The `session_security` target (layout in the module docs).
pub fn session_security(data: &[u8]) {
    let mut inp = Input::new(data);
    let mode = inp.byte();
    let curve = mode & 1 != 0;
    let pair = mode & 2 != 0;
    let ct = socket_type(inp.byte());
    let st = compatible(ct, inp.byte());
    let heartbeats = mode & 64 != 0;
    // Key pairs only for CURVE (deriving them is the costly part of a PLAIN run otherwise).
    let keys = curve.then(|| {
        (
            CurveKeyPair::from_secret([0x11; 32]),
            CurveKeyPair::from_secret([0x22; 32]),
        )
    });
    let c_role = if mode & 8 != 0 {
        Role::Accepted
    } else {
        Role::Connected
    };
    let s_role = if mode & 8 != 0 {
        Role::Connected
    } else {
        Role::Accepted
    };
    let mut c_cfg = config(ct, heartbeats, false);
    c_cfg.security = security(false, keys.as_ref());
    let mut s_cfg = config(st, heartbeats, false);
    s_cfg.security = security(true, keys.as_ref());
    let reject = mode & 16 != 0;

    let (mut rx1, mut tx1) = ([0u8; RX], [0u8; TX]);
    let (mut rx2, mut tx2) = ([0u8; RX], [0u8; TX]);
    let side = |s, server| new_side(s, server, reject);
    if !pair {
        let server = mode & 4 != 0;
        let (cfg, role) = if server {
            (&s_cfg, s_role)
        } else {
            (&c_cfg, c_role)
        };
        let b = Buffers {
            rx: &mut rx1,
            tx: &mut tx1,
        };
        let mut us = side(start(cfg, role, b, curve, 1), server);
        let mut g = [0u8; GREETING_LEN];
        Greeting::new(cfg.security.mechanism(), !server).emit(&mut g);
        let now = Instant::ZERO;
        let _ = us.s.feed(&g, now);
        us.drain();
        let mut t = now;
        while !inp.is_empty() {
            let n = usize::from(inp.byte());
            let chunk = inp.take(n);
            let _ = us.s.feed(chunk, t);
            us.drain();
            let out = us.s.poll_transmit().len();
            let _ = us.s.mark_transmitted(out);
            if n == 0 {
                t = t + Duration::from_millis(500);
                us.s.handle_timeout(t);
                us.drain();
            }
        }
        us.s.handle_eof();
        us.drain();
        assert!(us.closed.is_some(), "not closed after EOF");
        finish(&mut us);
        return;
    }

    let tamper = mode & 32 != 0;
    let mut c = side(
        start(
            &c_cfg,
            c_role,
            Buffers {
                rx: &mut rx1,
                tx: &mut tx1,
            },
            curve,
            1,
        ),
        false,
    );
    let mut s = side(
        start(
            &s_cfg,
            s_role,
            Buffers {
                rx: &mut rx2,
                tx: &mut tx2,
            },
            curve,
            2,
        ),
        true,
    );
    let mut now = Instant::ZERO;
    let mut seq = 0u32;
    let mut flip: Option<(u8, u8)> = None;
    let mut tampered = false;
    while !inp.is_empty() {
        let op = inp.byte();
        let (a, b) = if op & 8 != 0 {
            (&mut s, &mut c)
        } else {
            (&mut c, &mut s)
        };
        match op & 7 {
            0 | 1 => {
                let len = usize::from(inp.byte()) * 2 + usize::from(op >> 7);
                let len = len.min(MAX_FRAME);
                let mut buf = [0u8; MAX_FRAME];
                let f = buf.get_mut(..len).unwrap_or(&mut []);
                for (i, x) in f.iter_mut().enumerate() {
                    *x = frame_byte(seq, i);
                }
                if a.s.is_ready()
                    && a.s.frame_space() >= len + 9 + a.s.frame_overhead()
                    && !b.want.is_full()
                    && a.s.send_frame(f, false).is_ok()
                {
                    let _ = b.want.push_back((seq, len));
                    seq += 1;
                }
            }
            2 | 3 => {
                let k = usize::from(inp.byte()) * if op & 0x10 != 0 { 32 } else { 1 };
                if pipe(a, b, k, now, &mut flip).1 {
                    tampered = true;
                }
            }
            4 => {
                now = now + Duration::from_millis(u64::from(inp.byte()) * 10);
                c.s.handle_timeout(now);
                s.s.handle_timeout(now);
            }
            5 => {
                let pos = inp.byte();
                let mask = inp.byte();
                if tamper && mask != 0 {
                    flip = Some((pos, mask));
                }
            }
            _ => {
                if settle(&mut c, &mut s, now, &mut flip) {
                    tampered = true;
                }
            }
        }
        c.drain();
        s.drain();
    }
    if settle(&mut c, &mut s, now, &mut flip) {
        tampered = true;
    }
    if !tampered {
        for e in [&c, &s] {
            assert!(
                !matches!(e.closed, Some(CloseReason::Protocol(_))),
                "protocol error without tampering: {:?} (server: {})",
                e.closed,
                e.server
            );
        }
        if reject {
            assert_eq!(
                c.delivered + s.delivered,
                0,
                "frames after a rejected handshake"
            );
        } else if c.closed.is_none() && s.closed.is_none() {
            assert!(c.s.is_ready() && s.s.is_ready(), "handshake did not finish");
            assert!(c.want.is_empty() && s.want.is_empty(), "frames lost");
        }
    }
    finish(&mut c);
    finish(&mut s);
}

fn finish(e: &mut Side<'_>) {
    e.s.close();
    e.drain();
    let n = e.s.poll_transmit().len();
    let _ = e.s.mark_transmitted(n);
    assert!(e.s.is_finished(), "not finished after close and transmit");
}

/// Moves up to `k` bytes from `a` to `b`, flipping one byte first if asked. Returns the bytes
/// moved and whether it flipped.
fn pipe(
    a: &mut Side<'_>,
    b: &mut Side<'_>,
    k: usize,
    now: Instant,
    flip: &mut Option<(u8, u8)>,
) -> (usize, bool) {
    let out = a.s.poll_transmit();
    let n = k.min(out.len()).min(RX);
    let mut buf = [0u8; RX];
    let chunk = buf.get_mut(..n).unwrap_or(&mut []);
    chunk.copy_from_slice(out.get(..n).unwrap_or(&[]));
    let mut flipped = false;
    if let Some((pos, mask)) = *flip {
        if let Some(x) = chunk.get_mut(usize::from(pos)) {
            *x ^= mask;
            *flip = None;
            flipped = true;
            b.strict = false;
        }
    }
    let taken = b.s.feed(chunk, now);
    let _ = a.s.mark_transmitted(taken);
    a.drain();
    b.drain();
    (taken, flipped)
}

fn settle(c: &mut Side<'_>, s: &mut Side<'_>, now: Instant, flip: &mut Option<(u8, u8)>) -> bool {
    let mut flipped = false;
    for _ in 0..100_000 {
        let (n1, f1) = pipe(c, s, usize::MAX, now, flip);
        let (n2, f2) = pipe(s, c, usize::MAX, now, flip);
        flipped |= f1 | f2;
        if n1 == 0 && n2 == 0 {
            return flipped;
        }
    }
    panic!("the two sessions do not settle");
}
