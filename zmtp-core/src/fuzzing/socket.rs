//! The `socket` target: one [`Socket`] of a fuzzer-chosen type over four peer slots, with
//! remote peers that come and go. A remote is either a NULL [`Session`] of a compatible type
//! (well behaved: the fuzzer chooses what it sends, and the checks know it) or raw fuzzer
//! bytes.
//!
//! ```text
//! byte 0  our socket type (index into SocketType::ALL, mod 11)
//! byte 1  options: bit 0 heartbeats, bit 1 router_mandatory, bit 2 req_relaxed,
//!         bit 3 xpub_verbose, bit 4 small HWM (2 messages), bit 5 direct frames (bodies
//!         of 200 bytes and more sent and received through the driver, `socket::stream`),
//!         bit 6 one-frame messages held in the sessions and taken with
//!         `Socket::take_messages` when `recv` has nothing (PULL, DEALER, PAIR, SUB, XSUB)
//! rest    operations: op byte (low 4 bits the operation, bits 4-5 the slot), then operands
//! ```
//!
//! Checks: nothing panics; `poll_event` ends (at most 3 events per slot and 4 more per
//! drain); every message the application receives from a well-behaved remote has exactly the
//! frames that remote sent, with their bytes, and its sequence numbers only grow (drops are
//! allowed: high-water marks, routing, filters) and were sent; no message is received from a
//! peer after `remove_peer`; no remote session sees a protocol error from the socket; after
//! `handle_timeout(now)` the next deadline is later than `now`.

use core::time::Duration;

use heapless::Deque;

use super::{compatible, config, socket_type, Input};
use crate::socket::{
    subscription_memory, Part, PeerHandle, PeerMemory, PeerSlot, Socket, SocketConfig, SocketEvent,
    SubscriptionMemory,
};
use crate::wire::SocketType;
use crate::{Buffers, CloseReason, Event, Instant, Role, Session};

const SLOTS: usize = 4;
const RX: usize = 512;
const TX: usize = 512;
const RECV_Q: usize = 2048;
const SEND_Q: usize = 1024;
const REMOTE_RX: usize = 1024;
const REMOTE_TX: usize = 4096;
const TRIE_NODES: usize = 64;
const TRIE: usize = subscription_memory(SocketType::Pub, SLOTS, TRIE_NODES);
const NOTES: usize = RX + 64;
/// First byte of every data frame a well-behaved remote sends (never `00`/`01`, so never a
/// 3.0 subscription or an XPUB notification).
const MAGIC: u8 = 0xA5;
/// Frame header: magic, uid (4), seq (4), frame index, frame count.
const HDR: usize = 11;
const MAX_FRAMES: usize = 3;
const MAX_FRAME: usize = 700;
const IDENTITIES: [&[u8]; 4] = [b"", b"id-a", b"id-b", b"id-a"];
/// Direct frames (option bit 5): frames of this many bytes and more.
const DIRECT: usize = 200;
/// Direct bodies kept per peer (more than a queue can announce).
const DIRECT_KEPT: usize = 256;

/// A direct body received, checked once whole: its first bytes, length, and whether it is
/// the body its own first bytes describe.
#[derive(Clone, Copy, Debug)]
struct BodyRec {
    head: [u8; HDR],
    len: usize,
    intact: bool,
}

/// A direct body the application sent: regenerated from these when written.
#[derive(Clone, Copy, Debug)]
struct AppBody {
    seq: u32,
    fi: u8,
    nf: u8,
    len: usize,
}

/// The driver's side of direct frames.
struct Direct {
    on: bool,
    /// Per remote: the body being received (its bytes, up to `MAX_FRAME`, and its length).
    cur: [(heapless::Vec<u8, MAX_FRAME>, usize); SLOTS],
    /// Per remote: complete bodies, in order.
    done: [Deque<BodyRec, DIRECT_KEPT>; SLOTS],
    /// Per socket slot: bodies the application sent, in order.
    out: [Deque<AppBody, DIRECT_KEPT>; SLOTS],
}

impl Direct {
    fn forget_remote(&mut self, i: usize) {
        if let Some(c) = self.cur.get_mut(i) {
            c.0.clear();
            c.1 = 0;
        }
        if let Some(d) = self.done.get_mut(i) {
            d.clear();
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Free,
    /// A remote session (or, once its transport is gone, the record of what it sent).
    Session,
    Raw,
}

struct Remote<'b> {
    kind: Kind,
    sess: Option<Session<'b>>,
    idle: Option<Buffers<'b>>,
    h: Option<PeerHandle>,
    uid: u32,
    /// Sequence number of the next message this remote sends.
    next_seq: u32,
    /// Last sequence number the application received from it.
    last: Option<u32>,
    /// What this remote received from the application: the last message's sequence number,
    /// the message in progress (sequence number, next frame index), and whether the checks
    /// still hold (a chunked frame turns them off).
    got: Option<u32>,
    cur: Option<(u32, u8)>,
    got_strict: bool,
    ty: SocketType,
}

impl<'b> Remote<'b> {
    fn drain(&mut self) {
        let Some(s) = self.sess.as_mut() else { return };
        for _ in 0..REMOTE_RX + 8 {
            match s.poll_event() {
                None => return,
                Some(Event::Closed(CloseReason::Protocol(e))) => {
                    panic!(
                        "remote {} saw a protocol error from the socket: {e:?}",
                        self.uid
                    )
                }
                Some(Event::Authenticate(a)) => panic!("Authenticate under NULL: {a:?}"),
                Some(Event::FrameChunk(_)) => self.got_strict = false,
                Some(Event::Frame { data, more }) if self.got_strict => {
                    check_app_frame(data, more, &mut self.got, &mut self.cur);
                }
                Some(_) => {}
            }
        }
        panic!("remote poll_event does not end");
    }
}

fn body(buf: &mut [u8], uid: u32, seq: u32, fi: u8, nf: u8) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31) ^ (seq as u8) ^ fi;
    }
    let [u0, u1, u2, u3] = uid.to_le_bytes();
    let [s0, s1, s2, s3] = seq.to_le_bytes();
    let head = [MAGIC, u0, u1, u2, u3, s0, s1, s2, s3, fi, nf];
    if let Some(h) = buf.get_mut(..HDR) {
        h.copy_from_slice(&head);
    }
}

/// A frame the application sent reaching a well-behaved remote: empty frames (REQ/REP
/// delimiters) pass; the others are the application's (uid 0), whole, in message order, and
/// messages come in the order sent.
fn check_app_frame(data: &[u8], more: bool, got: &mut Option<u32>, cur: &mut Option<(u32, u8)>) {
    if data.is_empty() && cur.is_none() {
        assert!(more, "a lone empty frame from the application");
        return;
    }
    let Some(&[m, u0, u1, u2, u3, s0, s1, s2, s3, fi, nf]) = data.first_chunk::<HDR>() else {
        panic!("frame from the application cut: {data:02x?}");
    };
    assert_eq!(m, MAGIC, "frame not from the application: {data:02x?}");
    assert_eq!(u32::from_le_bytes([u0, u1, u2, u3]), 0);
    let seq = u32::from_le_bytes([s0, s1, s2, s3]);
    check_body(data, 0, seq, fi, nf);
    match *cur {
        Some((c, next)) => {
            assert_eq!(
                (seq, fi),
                (c, next),
                "application messages interleaved or cut"
            );
        }
        None => {
            assert_eq!(fi, 0, "application message {seq} starts at frame {fi}");
            assert!(
                got.is_none_or(|g| seq > g),
                "application message {seq} after {got:?}: out of order or repeated"
            );
        }
    }
    assert_eq!(
        more,
        fi + 1 < nf,
        "MORE flag of frame {fi}/{nf} of message {seq}"
    );
    *cur = more.then_some((seq, fi + 1));
    if !more {
        *got = Some(seq);
    }
}

fn check_body(f: &[u8], uid: u32, seq: u32, fi: u8, nf: u8) {
    assert!(
        f.len() >= HDR,
        "frame {fi} of message {seq} from {uid} cut: {f:02x?}"
    );
    let mut want = [0u8; MAX_FRAME];
    let Some(w) = want.get_mut(..f.len()) else {
        panic!(
            "frame {fi} of message {seq} from {uid} too long: {}",
            f.len()
        );
    };
    body(w, uid, seq, fi, nf);
    assert_eq!(
        f, &*w,
        "frame {fi} of message {seq} from remote {uid} altered"
    );
}

struct Net<'s, 'b> {
    sock: Socket<'s, 'b>,
    remotes: [Remote<'b>; SLOTS],
    ty: SocketType,
    now: Instant,
    next_uid: u32,
    app_seq: u32,
    heartbeats: bool,
    direct: Direct,
    /// Option bit 6: one-frame messages held in the sessions (`Socket::set_take_messages`).
    take: bool,
}

impl Net<'_, '_> {
    fn events(&mut self) {
        for r in &mut self.remotes {
            r.drain();
        }
        for _ in 0..SLOTS * 3 + 4 {
            match self.sock.poll_event() {
                None => return,
                Some(SocketEvent::Authenticate(h)) => panic!("Authenticate under NULL: {h:?}"),
                Some(_) => {}
            }
        }
        panic!("socket poll_event does not end");
    }

    /// Remote -> socket, at most `k` bytes. Returns bytes moved.
    fn up(&mut self, i: usize, k: usize) -> usize {
        let now = self.now;
        let Some(r) = self.remotes.get_mut(i) else {
            return 0;
        };
        let (Some(s), Some(h)) = (r.sess.as_mut(), r.h) else {
            return 0;
        };
        let out = s.poll_transmit();
        let out = out.get(..k.min(out.len())).unwrap_or(out);
        if !self.direct.on {
            let n = self.sock.feed(h, out, now);
            assert!(n <= out.len());
            let _ = s.mark_transmitted(n);
            return n;
        }
        let n = feed_direct(&mut self.sock, h, &mut self.direct, i, out, now);
        let _ = s.mark_transmitted(n);
        n
    }

    /// Socket -> remote (raw remotes: the bytes are dropped). Returns bytes moved.
    fn down(&mut self, i: usize, k: usize) -> usize {
        let now = self.now;
        let Some(r) = self.remotes.get_mut(i) else {
            return 0;
        };
        let Some(h) = r.h else { return 0 };
        if self.direct.on {
            return self.down_direct(i, h, k);
        }
        let out = self.sock.poll_transmit(h);
        let out = out.get(..k.min(out.len())).unwrap_or(out);
        let n = match (r.kind, r.sess.as_mut()) {
            (Kind::Session, Some(s)) => s.feed(out, now),
            (Kind::Raw, _) => out.len(),
            _ => 0,
        };
        if n > 0 {
            assert!(self.sock.mark_transmitted(h, n).is_ok());
        }
        n
    }

    /// [`down`](Self::down) with direct frames: the session's bytes, then the body bytes
    /// due, regenerated from what the application sent.
    fn down_direct(&mut self, i: usize, h: PeerHandle, k: usize) -> usize {
        let now = self.now;
        let mut buf = [0u8; TX + MAX_FRAME];
        let t = self.sock.poll_transmit_direct(h);
        let head = t.bytes.len();
        let direct = usize::try_from(t.direct).unwrap_or(usize::MAX);
        if let Some(b) = buf.get_mut(..head) {
            b.copy_from_slice(t.bytes);
        }
        let mut total = head;
        if direct > 0 {
            let q = self.direct.out.get(h.index());
            let Some(&AppBody { seq, fi, nf, len }) = q.and_then(Deque::front) else {
                panic!("direct body due, none sent");
            };
            assert!(direct <= len, "more body due ({direct}) than sent ({len})");
            let mut whole = [0u8; MAX_FRAME];
            let w = whole.get_mut(..len).unwrap_or(&mut []);
            body(w, 0, seq, fi, nf);
            let tail = w.get(len - direct..).unwrap_or(&[]);
            if let Some(b) = buf.get_mut(head..head + direct) {
                b.copy_from_slice(tail);
            }
            total += direct;
        }
        let out = buf.get(..total.min(k)).unwrap_or(&[]);
        let Some(r) = self.remotes.get_mut(i) else {
            return 0;
        };
        let n = match (r.kind, r.sess.as_mut()) {
            (Kind::Session, Some(s)) => s.feed(out, now),
            (Kind::Raw, _) => out.len(),
            _ => 0,
        };
        if n > 0 {
            assert!(self.sock.mark_transmitted_direct(h, n).is_ok());
            if direct > 0 && n.saturating_sub(head) == direct {
                if let Some(q) = self.direct.out.get_mut(h.index()) {
                    q.pop_front();
                }
            }
        }
        n
    }

    fn settle(&mut self) {
        for _ in 0..100_000 {
            let mut moved = 0;
            for i in 0..SLOTS {
                moved += self.up(i, usize::MAX);
                self.events();
                moved += self.down(i, usize::MAX);
                self.events();
            }
            if moved == 0 {
                return;
            }
        }
        panic!("socket and remotes do not settle");
    }

    fn add(&mut self, i: usize, inp: &mut Input<'_>) {
        let a = inp.byte();
        let Some(r) = self.remotes.get_mut(i) else {
            return;
        };
        if r.kind != Kind::Free {
            return;
        }
        let role = if a & 1 != 0 {
            Role::Accepted
        } else {
            Role::Connected
        };
        let Ok(h) = self.sock.add_peer(role, self.now) else {
            return;
        };
        self.direct.forget_remote(i);
        if let Some(q) = self.direct.out.get_mut(h.index()) {
            q.clear();
        }
        // The socket may have put the peer in another slot: keep remote i for it anyway.
        r.h = Some(h);
        r.uid = self.next_uid;
        self.next_uid += 1;
        r.next_seq = 0;
        r.last = None;
        r.got = None;
        r.cur = None;
        r.got_strict = true;
        if a & 2 != 0 {
            r.kind = Kind::Raw;
            return;
        }
        r.ty = compatible(self.ty, a >> 4);
        let mut cfg = config(r.ty, self.heartbeats, false);
        cfg = cfg.with_identity(
            IDENTITIES
                .get(usize::from(a >> 2) % 4)
                .copied()
                .unwrap_or(b""),
        );
        let other = if role == Role::Accepted {
            Role::Connected
        } else {
            Role::Accepted
        };
        let Some(b) = r.idle.take() else { return };
        match Session::new(&cfg, other, b, self.now) {
            Ok(s) => {
                r.sess = Some(s);
                r.kind = Kind::Session;
            }
            Err(e) => panic!("remote session refused: {e:?}"),
        }
    }

    fn free(&mut self, i: usize) {
        self.direct.forget_remote(i);
        if let Some(h) = self.remotes.get(i).and_then(|r| r.h) {
            if let Some(q) = self.direct.out.get_mut(h.index()) {
                q.clear();
            }
        }
        let Some(r) = self.remotes.get_mut(i) else {
            return;
        };
        if let Some(s) = r.sess.take() {
            r.idle = Some(s.into_buffers());
        }
        r.kind = Kind::Free;
        r.h = None;
    }

    fn depart(&mut self, i: usize, how: u8) {
        let Some(h) = self.remotes.get(i).and_then(|r| r.h) else {
            return;
        };
        match how & 3 {
            0 => {
                // The remote's transport closes: EOF; the record stays until remove_peer.
                self.sock.handle_eof(h);
                if let Some(r) = self.remotes.get_mut(i) {
                    if let Some(s) = r.sess.take() {
                        r.idle = Some(s.into_buffers());
                    }
                }
            }
            1 => {
                self.sock.remove_peer(h);
                self.free(i);
            }
            2 => {
                if let Some(s) = self.remotes.get_mut(i).and_then(|r| r.sess.as_mut()) {
                    s.close();
                }
            }
            _ => self.sock.close_peer(h),
        }
    }

    /// A well-behaved remote sends a whole message: 1-3 frames, or nothing if they do not
    /// all fit now.
    fn remote_send(&mut self, i: usize, inp: &mut Input<'_>) {
        let a = inp.byte();
        let len = usize::from(inp.byte()) * 3;
        let envelope = matches!(self.ty, SocketType::Req | SocketType::Rep);
        let Some(r) = self.remotes.get_mut(i) else {
            return;
        };
        let Some(s) = r.sess.as_mut() else { return };
        if r.kind != Kind::Session || !s.is_ready() {
            return;
        }
        if a & 0x80 != 0 && matches!(r.ty, SocketType::Sub | SocketType::XSub) {
            let topic = [MAGIC, a & 3];
            let t = topic.get(..usize::from(a & 3) % 3).unwrap_or(&[]);
            let _ = if a & 0x40 != 0 {
                s.send_cancel(t)
            } else {
                s.send_subscribe(t)
            };
            return;
        }
        let nf = (a % MAX_FRAMES as u8) + 1;
        let flen = (HDR + len).min(MAX_FRAME);
        let need = (usize::from(nf) * (flen + 9)) + if envelope { 9 } else { 0 };
        if s.frame_space() < need {
            return;
        }
        let seq = r.next_seq;
        if envelope && s.send_frame(&[], true).is_err() {
            return;
        }
        let mut buf = [0u8; MAX_FRAME];
        let f = buf.get_mut(..flen).unwrap_or(&mut []);
        for fi in 0..nf {
            body(f, r.uid, seq, fi, nf);
            if let Err(e) = s.send_frame(f, fi + 1 < nf) {
                panic!("send_frame refused within frame_space: {e:?}");
            }
        }
        r.next_seq += 1;
    }

    fn raw(&mut self, i: usize, inp: &mut Input<'_>) {
        let n = usize::from(inp.byte());
        let bytes = inp.take(n);
        let Some(r) = self.remotes.get(i) else { return };
        if r.kind != Kind::Raw {
            return;
        }
        if let Some(h) = r.h {
            if self.direct.on {
                let _ = feed_direct(&mut self.sock, h, &mut self.direct, i, bytes, self.now);
            } else {
                let _ = self.sock.feed(h, bytes, self.now);
            }
        }
    }

    fn app_send(&mut self, i: usize, inp: &mut Input<'_>) {
        let a = inp.byte();
        let len = usize::from(inp.byte()) * 2;
        let nf = usize::from(a % 3) + 1;
        let mut id = heapless::Vec::<u8, 255>::new();
        if self.ty == SocketType::Router {
            let rid = self
                .remotes
                .get(i)
                .and_then(|r| r.h)
                .and_then(|h| self.sock.peer_routing_id(h))
                .unwrap_or(b"nobody");
            let _ = id.extend_from_slice(rid);
        }
        self.app_seq += 1;
        let mut bufs = [[0u8; MAX_FRAME]; MAX_FRAMES];
        let flen = (HDR + len).min(MAX_FRAME);
        for (fi, b) in bufs.iter_mut().enumerate() {
            body(
                b.get_mut(..flen).unwrap_or(&mut []),
                0,
                self.app_seq,
                fi as u8,
                nf as u8,
            );
        }
        let [b0, b1, b2] = &bufs;
        let all: [&[u8]; 4] = [
            &id,
            b0.get(..flen).unwrap_or(b0),
            b1.get(..flen).unwrap_or(b1),
            b2.get(..flen).unwrap_or(b2),
        ];
        let frames = if self.ty == SocketType::Router {
            all.get(..=nf)
        } else {
            all.get(1..=nf)
        };
        let frames = frames.unwrap_or(&[]);
        if self.direct.on && self.sock.supports_direct() {
            let mut parts = [Part::Bytes(&[]); MAX_FRAMES + 1];
            for (p, f) in parts.iter_mut().zip(frames) {
                *p = if f.len() >= DIRECT {
                    Part::Direct(f.len() as u64)
                } else {
                    Part::Bytes(f)
                };
            }
            let parts = parts.get(..frames.len()).unwrap_or(&[]);
            if let Ok(Some(peer)) = self.sock.send_parts(parts) {
                let skip = usize::from(self.ty == SocketType::Router);
                for (fi, p) in parts.iter().skip(skip).enumerate() {
                    if let Part::Direct(len) = p {
                        let rec = AppBody {
                            seq: self.app_seq,
                            fi: fi as u8,
                            nf: nf as u8,
                            len: *len as usize,
                        };
                        let q = self.direct.out.get_mut(peer.index());
                        assert!(
                            q.is_some_and(|q| q.push_back(rec).is_ok()),
                            "too many bodies"
                        );
                    }
                }
            }
        } else {
            let _ = self.sock.send(frames);
        }
        self.events();
    }

    fn subscribe(&mut self, inp: &mut Input<'_>) {
        let a = inp.byte();
        let topic = [MAGIC, 0, a];
        let t = topic.get(..usize::from(a & 3) % 4).unwrap_or(&[]);
        let _ = if a & 4 != 0 {
            self.sock.unsubscribe(t)
        } else {
            self.sock.subscribe(t)
        };
        self.events();
    }

    fn recv(&mut self) -> bool {
        let ty = self.ty;
        let Ok(m) = self.sock.recv() else {
            return self.take_held();
        };
        let peer = m.peer;
        let mut frames = m.parts();
        if ty == SocketType::Router {
            let _ = frames.next();
        }
        // Direct bodies of the message, from the remote that sent it.
        let ri = self
            .remotes
            .iter()
            .position(|r| r.kind != Kind::Free && r.h == Some(peer));
        let mut recs: [Option<BodyRec>; MAX_FRAMES + 1] = [None; MAX_FRAMES + 1];
        let mut got: [Option<&[u8]>; MAX_FRAMES + 1] = [None; MAX_FRAMES + 1];
        let mut n = 0;
        for f in frames {
            match f {
                Part::Bytes(f) => {
                    if let Some(g) = got.get_mut(n) {
                        *g = Some(f);
                    }
                }
                Part::Direct(len) => {
                    let rec = ri
                        .and_then(|i| self.direct.done.get_mut(i))
                        .and_then(Deque::pop_front);
                    let Some(rec) = rec else {
                        panic!("direct frame of {len} bytes without a body");
                    };
                    assert_eq!(rec.len as u64, len, "direct body of another length");
                    if let Some(r) = recs.get_mut(n) {
                        *r = Some(rec);
                    }
                    if let Some(g) = got.get_mut(n) {
                        *g = Some(&[]);
                    }
                }
            }
            n += 1;
        }
        check_message(&mut self.remotes, ty, peer, n, &got, &recs)
    }

    /// With held messages on (option bit 6), when the queue gave nothing: one message held
    /// in a session (`Socket::take_messages`), checked as `recv` checks a queued one.
    fn take_held(&mut self) -> bool {
        if !self.take {
            return false;
        }
        let mut buf = [0u8; RX];
        let mut got = None;
        let k = self.sock.take_messages(1, |h, body| {
            if let Some(dst) = buf.get_mut(..body.len()) {
                dst.copy_from_slice(body);
            }
            got = Some((h, body.len()));
        });
        let Some((peer, len)) = got else {
            assert_eq!(k, 0, "take_messages counted a message it did not give");
            return false;
        };
        assert_eq!(k, 1, "take_messages gave more than asked for");
        assert!(len <= RX, "a held message longer than the receive buffer");
        let body = buf.get(..len).unwrap_or(&[]);
        check_message(&mut self.remotes, self.ty, peer, 1, &[Some(body)], &[None])
    }

    fn time(&mut self, op: u8, t: u8) {
        let t = u64::from(t);
        self.now = match op >> 6 {
            0 => self.now + Duration::from_millis(t),
            1 => self.now + Duration::from_millis(t * 100),
            2 => self.now.max(self.sock.poll_timeout().unwrap_or(self.now)),
            _ => self.now + Duration::from_secs(t * 10),
        };
        let now = self.now;
        self.sock.handle_timeout(now);
        for r in &mut self.remotes {
            if let Some(s) = r.sess.as_mut() {
                s.handle_timeout(now);
            }
        }
        self.events();
        if let Some(t) = self.sock.poll_timeout() {
            assert!(
                t > now,
                "socket deadline {t:?} not after {now:?} after handle_timeout"
            );
        }
    }
}

/// Checks a message the application received (`recv`, or a held one): from a peer that is
/// there, and from a well-behaved remote exactly the frames it sent, in order. `got` holds
/// the frames' bytes (empty for direct ones), `recs` the direct bodies.
fn check_message(
    remotes: &mut [Remote<'_>; SLOTS],
    ty: SocketType,
    peer: PeerHandle,
    n: usize,
    got: &[Option<&[u8]>],
    recs: &[Option<BodyRec>],
) -> bool {
    let first_rec = recs.first().copied().flatten();
    let first = got.first().copied().flatten().unwrap_or(&[]);
    let first = match &first_rec {
        Some(r) => &r.head[..],
        None => first,
    };
    if ty == SocketType::XPub && n == 1 && matches!(first.first(), Some(0 | 1)) {
        return true; // a subscription notification
    }
    // Who sent it, by the handle the socket reports.
    let Some(r) = remotes
        .iter()
        .find(|r| r.kind != Kind::Free && r.h == Some(peer))
    else {
        panic!("message from {peer:?}, which is not a peer (removed?)");
    };
    if r.kind != Kind::Session {
        return true; // raw bytes: anything goes
    }
    assert!(
        first.len() >= HDR,
        "message from remote {} with a cut first frame",
        r.uid
    );
    let Some(&[_, u0, u1, u2, u3, s0, s1, s2, s3, _, nf]) = first.first_chunk::<HDR>() else {
        panic!("message from remote {} with a cut first frame", r.uid);
    };
    let uid = u32::from_le_bytes([u0, u1, u2, u3]);
    let seq = u32::from_le_bytes([s0, s1, s2, s3]);
    assert_eq!(uid, r.uid, "message attributed to the wrong peer");
    assert_eq!(
        usize::from(nf),
        n,
        "message {seq} from {uid}: {n} frames, sent {nf}"
    );
    for (fi, f) in got.iter().take(n).enumerate() {
        match recs.get(fi).copied().flatten() {
            Some(rec) => {
                let [u0, u1, u2, u3] = uid.to_le_bytes();
                let [s0, s1, s2, s3] = seq.to_le_bytes();
                let want = [MAGIC, u0, u1, u2, u3, s0, s1, s2, s3, fi as u8, nf];
                assert_eq!(
                    rec.head, want,
                    "direct frame {fi} of message {seq} from {uid}"
                );
                assert!(
                    rec.intact,
                    "direct frame {fi} of message {seq} from {uid} altered"
                );
            }
            None => check_body(f.unwrap_or(&[]), uid, seq, fi as u8, nf),
        }
    }
    assert!(seq < r.next_seq, "message {seq} from {uid} never sent");
    assert!(
        r.last.is_none_or(|l| seq > l),
        "message {seq} from {uid} after {:?}: out of order or repeated",
        r.last
    );
    let i = remotes.iter().position(|x| x.h == Some(peer)).unwrap_or(0);
    if let Some(r) = remotes.get_mut(i) {
        r.last = Some(seq);
    }
    true
}

/// Feeds `bytes` to the socket's peer `h` (remote `i`) as a driver with direct frames does:
/// through the receive window, or straight into the body of a direct frame under way.
/// Returns the bytes taken.
fn feed_direct(
    sock: &mut Socket<'_, '_>,
    h: PeerHandle,
    d: &mut Direct,
    i: usize,
    bytes: &[u8],
    now: Instant,
) -> usize {
    let mut used = 0;
    for _ in 0..bytes.len().saturating_mul(2).saturating_add(4) {
        let rest = bytes.get(used..).unwrap_or(&[]);
        let (taken, from_rest) = match sock.direct_body(h) {
            Some(b) => {
                let owed = usize::try_from(b.owed()).unwrap_or(usize::MAX);
                let (src, from_rest) = if b.buffered.is_empty() {
                    (rest.get(..owed.min(rest.len())).unwrap_or(&[]), true)
                } else {
                    (b.buffered, false)
                };
                let Some((cur, len)) = d.cur.get_mut(i) else {
                    return used;
                };
                for &x in src {
                    let _ = cur.push(x);
                }
                *len += src.len();
                let n = src.len();
                let whole = n == owed;
                if n == 0 {
                    return used;
                }
                assert!(sock.commit_direct(h, n, now).is_ok());
                if whole {
                    let head = cur.first_chunk::<HDR>().copied().unwrap_or([0; HDR]);
                    let [_, u0, u1, u2, u3, s0, s1, s2, s3, fi, nf] = head;
                    let mut want = [0u8; MAX_FRAME];
                    let intact = *len == cur.len()
                        && want.get_mut(..cur.len()).is_some_and(|w| {
                            body(
                                w,
                                u32::from_le_bytes([u0, u1, u2, u3]),
                                u32::from_le_bytes([s0, s1, s2, s3]),
                                fi,
                                nf,
                            );
                            *w == **cur
                        });
                    let rec = BodyRec {
                        head,
                        len: *len,
                        intact,
                    };
                    cur.clear();
                    *len = 0;
                    let q = d.done.get_mut(i);
                    assert!(
                        q.is_some_and(|q| q.push_back(rec).is_ok()),
                        "too many bodies"
                    );
                }
                (n, from_rest)
            }
            None => {
                if rest.is_empty() {
                    return used;
                }
                let n = sock.feed(h, rest, now);
                if n == 0 {
                    return used;
                }
                (n, true)
            }
        };
        if from_rest {
            used += taken;
        }
    }
    used
}

/// The `socket` target (layout in the module docs).
pub fn socket(data: &[u8]) {
    let mut inp = Input::new(data);
    let ty = socket_type(inp.byte());
    let opts = inp.byte();
    let heartbeats = opts & 1 != 0;

    let mut mem = [[0u8; RX + TX + RECV_Q + SEND_Q]; SLOTS];
    let mut rmem = [[0u8; REMOTE_RX + REMOTE_TX]; SLOTS];
    let mut trie = [0u8; TRIE];
    let mut notes = [0u8; NOTES];
    let mut slots = mem.each_mut().map(|m| {
        let (rx, rest) = m.split_at_mut(RX);
        let (tx, rest) = rest.split_at_mut(TX);
        let (recv_queue, send_queue) = rest.split_at_mut(RECV_Q);
        PeerSlot::new(PeerMemory {
            rx,
            tx,
            recv_queue,
            send_queue,
        })
    });
    let remotes = rmem.each_mut().map(|m| {
        let (rx, tx) = m.split_at_mut(REMOTE_RX);
        Remote {
            kind: Kind::Free,
            sess: None,
            idle: Some(Buffers { rx, tx }),
            h: None,
            uid: 0,
            next_seq: 0,
            last: None,
            got: None,
            cur: None,
            got_strict: true,
            ty,
        }
    });
    let mut cfg = SocketConfig::new(config(ty, heartbeats, false));
    cfg.router_mandatory = opts & 2 != 0;
    cfg.req_relaxed = opts & 4 != 0;
    cfg.xpub_verbose = opts & 8 != 0;
    if opts & 16 != 0 {
        cfg.send_hwm = 2;
        cfg.recv_hwm = 2;
    }
    if opts & 32 != 0 {
        cfg.direct_threshold = Some(DIRECT as u64);
    }
    let memory = SubscriptionMemory::new(&mut trie).with_notifications(&mut notes);
    let mut net = Net {
        sock: Socket::with_subscriptions(cfg, &mut slots, memory),
        remotes,
        ty,
        now: Instant::ZERO,
        next_uid: 1,
        app_seq: 0,
        heartbeats,
        direct: Direct {
            on: opts & 32 != 0,
            cur: core::array::from_fn(|_| (heapless::Vec::new(), 0)),
            done: core::array::from_fn(|_| Deque::new()),
            out: core::array::from_fn(|_| Deque::new()),
        },
        take: false,
    };
    // Only the types that hold messages turn it on.
    net.take = opts & 64 != 0 && net.sock.set_take_messages(true);

    while !inp.is_empty() {
        let op = inp.byte();
        let i = usize::from(op >> 4) % SLOTS;
        match op & 15 {
            0 => net.add(i, &mut inp),
            1 => {
                let how = inp.byte();
                net.depart(i, how);
            }
            2 => {
                let k = usize::from(inp.byte()) * if op & 0x40 != 0 { 16 } else { 1 };
                net.up(i, k);
            }
            3 => {
                let k = usize::from(inp.byte()) * if op & 0x40 != 0 { 16 } else { 1 };
                net.down(i, k);
            }
            4 => {
                let t = inp.byte();
                net.time(op, t);
            }
            5 | 6 => net.remote_send(i, &mut inp),
            7 => net.app_send(i, &mut inp),
            8 => {
                let _ = net.recv();
            }
            9 => net.subscribe(&mut inp),
            10 => net.raw(i, &mut inp),
            11 => net.settle(),
            12 => {
                // Drain the application's queue.
                for _ in 0..10_000 {
                    if !net.recv() {
                        break;
                    }
                }
            }
            _ => {
                let k = usize::from(inp.byte());
                net.up(i, k);
                net.down(i, k);
            }
        }
        net.events();
    }
    net.settle();
    for _ in 0..100_000 {
        if !net.recv() {
            break;
        }
        net.settle();
    }
    for i in 0..SLOTS {
        net.depart(i, 0);
        net.depart(i, 1);
    }
    net.events();
    assert!(
        net.sock.peers().next().is_none(),
        "peers left after remove_peer"
    );
}
