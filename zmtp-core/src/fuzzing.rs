//! Entry points for the fuzz crate (private feature `_fuzz`; not a stable API).
//!
//! Each function takes the fuzzer's raw bytes, derives whatever structure it needs from them
//! by hand (no `arbitrary`, no allocation, no `std`) and checks the crate's promises:
//!
//! - [`greeting`], [`frame_header`], [`command`], [`metadata`]: the wire contract of
//!   [`crate::wire`]. After a checked parse succeeds every accessor is called, the value is
//!   emitted into a buffer of the length it asks for (which must succeed, and fail on one byte
//!   less), and parsing the output must give the same value (and, where the encoding is
//!   canonical, the same bytes). Streaming parses must say `Partial` on every prefix of a
//!   complete input, and an error seen on a prefix must stay the error on the whole input.
//! - [`session`]: one [`Session`] fed the input in fuzzer-chosen fragments, with time, the
//!   application's sends and partial transmits interleaved.
//! - [`session_pair`]: two sessions talking, with the fuzzer choosing the traffic, how bytes
//!   move, time, and (in tamper mode) bit flips in flight.
//! - [`socket()`] (in `fuzzing/socket.rs`): a [`crate::socket::Socket`] of any type over four
//!   peer slots, with remote NULL sessions and raw peers coming and going.
//! - `session_security` (in `fuzzing/security.rs`, with the `plain` and `curve` features):
//!   sessions under PLAIN and CURVE, alone on arbitrary bytes or in pairs.
//!
//! The session checks (both targets): `poll_event` terminates; nothing follows
//! [`Event::Closed`]; events come in a legal order (handshake first, chunks of one frame
//! contiguous, `PeerError` right before `Closed(PeerError)`); the receive window is empty
//! once closed and never empty while open (after draining); after `handle_timeout(now)` the
//! next deadline is in the future; misuse (`commit_received` past the window,
//! `mark_transmitted` past the pending output) is refused; everything `poll_transmit` hands
//! out parses as ZMTP written by us: our exact greeting, READY (or ERROR) first, canonical
//! headers, only the commands we send, the application's frames whole, in order and with
//! the bytes it wrote, nothing after an ERROR. Without tampering, [`session_pair`] also
//! checks that every frame and subscription sent arrives whole and in order, and that no
//! session closes with a protocol error.
//!
//! # Input layouts
//!
//! [`session`]:
//!
//! ```text
//! byte 0  mode: bit 0 role (0 Connected, 1 Accepted); bits 1-2 prelude (0 none,
//!         1 valid 3.1 greeting, 2 greeting + valid READY, 3 ZMTP 3.0 greeting + READY);
//!         bit 3 heartbeats; bit 4 size limits; bit 5 our identity; bit 6 EOF at the end;
//!         bit 7 close locally at the end
//! byte 1  our socket type (index into SocketType::ALL, mod 11)
//! byte 2  pick: the peer type of the prelude READY (among the compatible ones), limits
//! byte 3  rx buffer: 128 + 16 * b bytes (at most 4096)
//! byte 4  tx buffer: 64 + 16 * b bytes (at most 4096; too small fails Session::new)
//! byte 5  n: number of control steps, n % 8 + 1
//! then    n steps of 4 bytes: fragment size, time advance, application action, transmit
//! rest    the peer's byte stream (after the prelude), fed in fragments, steps cycled
//! ```
//!
//! [`session_pair`]:
//!
//! ```text
//! byte 0  mode: bit 0 tamper (bit flips allowed), bit 1 heartbeats, bit 2 size limits,
//!         bit 3 identities
//! byte 1  client socket type; byte 2 server type pick (among the compatible ones)
//! bytes 3-6  client rx, client tx, server rx, server tx (128 + 16 * b, at most 4096)
//! bytes 7-8  client and server size limits (when bit 2 is set)
//! rest    operations, listed in the docs of [`session_pair`]
//! ```

// The `assert!`s and `panic!`s in this module are the fuzz oracle: each states a promise of
// the crate (the wire contract, the session's contract with its caller) and a failed one is
// a finding. They are the only way these functions panic.
#![allow(clippy::panic, clippy::manual_assert)]

use core::fmt::{self, Write as _};
use core::time::Duration;

use heapless::Deque;

use crate::session::MIN_RX_BUFFER;
use crate::wire::{
    property_len, split_command, BufferTooSmall, Command, FrameHeader, Greeting, Mechanism,
    Metadata, MetadataWriter, SocketType, Status, WriteError, FLAG_COMMAND, FLAG_LONG, FLAG_MORE,
    GREETING_LEN, MAX_HEADER_LEN, MAX_PING_CONTEXT, MECHANISM_LEN,
};
use crate::{
    Buffers, CloseReason, Config, ConfigError, Event, Instant, ProtocolError, Role, SendError,
    Session,
};

/// Inputs longer than this are only parsed, not round-tripped (keeps the stack buffers fixed).
const MAX_ROUND_TRIP: usize = 16 * 1024;
/// Largest session buffer the targets use.
const MAX_BUF: usize = 4096;
/// Largest command we ever send (READY with a 255-byte identity fits easily).
const MAX_OUR_COMMAND: usize = 1024;
/// Frames and subscriptions in flight per direction that the checks track.
const QUEUE: usize = 128;
/// Identity the targets configure.
const IDENTITY: &[u8] = b"fuzz-peer";
/// Identity the prelude READY of [`session`] may carry.
const PEER_IDENTITY: &[u8] = b"the-peer";
/// Total data bytes [`session_pair`] sends at most (keeps one run fast).
const PAIR_BYTE_BUDGET: u64 = 1 << 20;

/// Open findings (see FUZZING.md) the oracle can be told to tolerate, so that long runs and
/// the CI smoke run look past a known bug for new ones while its fix is pending. Each is an
/// `AtomicBool` listed in [`known::ALL`] and consulted where the oracle checks that
/// behaviour; all are off unless [`tolerate`] turns them on (the fuzz targets read
/// `ZMTP_FUZZ_TOLERATE`); the regression tests never do. None is open now.
pub mod known {
    use core::sync::atomic::{AtomicBool, Ordering};

    /// Finding ids and their switches (F1, `empty-message-to-pub`, is fixed: see FUZZING.md).
    pub const ALL: [(&str, &AtomicBool); 0] = [];

    /// Turns on tolerance for a comma-separated list of finding ids; returns how many ids
    /// were not recognised.
    pub fn tolerate(ids: &str) -> usize {
        let mut unknown = 0;
        for id in ids.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match ALL.iter().find(|(name, _)| *name == id) {
                Some((_, flag)) => flag.store(true, Ordering::Relaxed),
                None => unknown += 1,
            }
        }
        unknown
    }
}

pub use known::tolerate;

mod socket;
pub use socket::socket;
#[cfg(all(feature = "plain", feature = "curve"))]
mod security;
#[cfg(all(feature = "plain", feature = "curve"))]
pub use security::session_security;

// ------------------------------------------------------------------------------- helpers

/// Reads structure out of the fuzzer's bytes; past the end it yields zeros.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self
            .data
            .split_at_checked(n.min(self.data.len()))
            .unwrap_or((self.data, &[]));
        self.data = b;
        a
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// A `fmt::Write` that throws the text away: formatting runs every `Debug`/`Display` impl.
struct Sink;

impl fmt::Write for Sink {
    fn write_str(&mut self, _: &str) -> fmt::Result {
        Ok(())
    }
}

fn format_debug(v: &dyn fmt::Debug) {
    let _ = write!(Sink, "{v:?}");
}

fn format_display(v: &dyn fmt::Display) {
    let _ = write!(Sink, "{v}");
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+')
}

fn prefix(data: &[u8], n: usize) -> &[u8] {
    data.get(..n).unwrap_or(data)
}

fn socket_type(b: u8) -> SocketType {
    SocketType::ALL
        .get(usize::from(b) % SocketType::ALL.len())
        .copied()
        .unwrap_or(SocketType::Pair)
}

/// The `pick`-th type (cyclically) that `ours` can talk to. Every type has one.
fn compatible(ours: SocketType, pick: u8) -> SocketType {
    let n = SocketType::ALL
        .iter()
        .filter(|t| ours.is_compatible_with(**t))
        .count();
    assert!(n > 0, "{ours} is compatible with no type");
    SocketType::ALL
        .into_iter()
        .filter(|t| ours.is_compatible_with(*t))
        .nth(usize::from(pick) % n)
        .unwrap_or(ours)
}

fn buf_len(b: u8, min: usize) -> usize {
    min.saturating_add(usize::from(b) * 16).min(MAX_BUF)
}

/// Body byte `i` of the frame the application sends as number `id`: byte 0 is `tag`, the rest
/// a pattern the receiver can recompute. Subscription topics are bytes 1.. of the same.
fn pattern(id: u32, tag: u8, i: u64) -> u8 {
    if i == 0 {
        return tag;
    }
    let x =
        u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x >> 29) as u8
}

fn fill(id: u32, tag: u8, offset: u64, buf: &mut [u8]) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = pattern(id, tag, offset.saturating_add(k as u64));
    }
}

fn is_pattern(id: u32, tag: u8, offset: u64, data: &[u8]) -> bool {
    data.iter()
        .enumerate()
        .all(|(k, &b)| b == pattern(id, tag, offset.saturating_add(k as u64)))
}

/// A subscription topic: bytes 1.. of the pattern (so a legacy `01 topic` message is the
/// pattern with tag 1).
fn is_topic(id: u32, topic: &[u8]) -> bool {
    is_pattern(id, 0, 1, topic)
}

fn header_len(size: u64) -> usize {
    FrameHeader::data(size, false).encoded_len()
}

// ------------------------------------------------------------------------------- greeting

/// Greeting parse: streaming consistency, accessors, emit and parse again.
pub fn greeting(data: &[u8]) {
    let whole = Greeting::parse(data);
    match whole {
        Err(e) => {
            assert_eq!(Greeting::check_prefix(data), Err(e));
            format_debug(&e);
        }
        Ok(Status::Partial) => {
            assert!(data.len() < GREETING_LEN);
            assert_eq!(Greeting::check_prefix(data), Ok(()));
        }
        Ok(Status::Complete(_)) => {
            assert!(data.len() >= GREETING_LEN);
            assert_eq!(Greeting::check_prefix(data), Ok(()));
        }
    }
    // Streaming: an error on a prefix is the error on the whole input; a complete greeting
    // needs all 64 bytes and does not look past them.
    for k in 0..=data.len().min(GREETING_LEN + 1) {
        match Greeting::parse(prefix(data, k)) {
            Err(e) => assert_eq!(whole, Err(e), "prefix {k} fails, whole does not"),
            Ok(Status::Partial) => assert!(k < GREETING_LEN, "partial with {k} bytes"),
            Ok(Status::Complete(g)) => {
                assert!(k >= GREETING_LEN);
                assert_eq!(whole, Ok(Status::Complete(g)));
            }
        }
    }
    let Ok(Status::Complete(g)) = whole else {
        return;
    };
    // Accessors.
    assert!(g.major >= 3);
    assert_eq!(g.is_31_or_later(), g.major > 3 || g.minor >= 1);
    let raw = g.mechanism.as_raw();
    let name = g.mechanism.name();
    assert!(name.len() <= MECHANISM_LEN);
    assert!(!name.contains(&0));
    assert_eq!(raw.get(..name.len()), Some(name));
    assert_eq!(Mechanism::from_raw(*raw), g.mechanism);
    if *raw == *Mechanism::NULL.as_raw() {
        assert_eq!(name, b"NULL");
    }
    format_debug(&g);
    format_debug(&g.mechanism);
    // Fields as they were on the wire.
    assert_eq!(data.get(10).copied(), Some(g.major));
    assert_eq!(data.get(11).copied(), Some(g.minor));
    assert_eq!(data.get(12..32), Some(raw.as_slice()));
    assert_eq!(data.get(32).map(|b| b & 1 != 0), Some(g.as_server));
    // Emit and parse again.
    let mut out = [0u8; GREETING_LEN];
    g.emit(&mut out);
    assert_eq!(Greeting::parse(&out), Ok(Status::Complete(g)));
    let mut canonical = [0u8; GREETING_LEN];
    canonical[0] = 0xFF;
    canonical[9] = 0x7F;
    canonical[10] = g.major;
    canonical[11] = g.minor;
    if let Some(m) = canonical.get_mut(12..32) {
        m.copy_from_slice(raw);
    }
    canonical[32] = u8::from(g.as_server);
    assert_eq!(out, canonical, "emitted greeting is not canonical");
}

// ------------------------------------------------------------------------------- frames

/// Frame header parse: flags, sizes, prefixes, emit into exact and short buffers, round trip;
/// then a header built from the bytes, emitted and parsed.
pub fn frame_header(data: &[u8]) {
    let r = FrameHeader::parse(data);
    match data.first() {
        None => assert_eq!(r, Ok(Status::Partial)),
        Some(&flags) => {
            if let Err(e) = FrameHeader::check_flags(flags) {
                assert_eq!(r, Err(e));
                format_debug(&e);
            }
        }
    }
    match r {
        Ok(Status::Complete((h, n))) => {
            let flags = data.first().copied().unwrap_or(0);
            assert!(n == 2 || n == MAX_HEADER_LEN);
            assert!(n <= data.len());
            assert_eq!(n == MAX_HEADER_LEN, flags & FLAG_LONG != 0);
            assert_eq!(h.more, flags & FLAG_MORE != 0);
            assert_eq!(h.command, flags & FLAG_COMMAND != 0);
            assert!(!(h.more && h.command));
            assert_eq!(h.size >> 63, 0);
            let size = if n == 2 {
                data.get(1).copied().map(u64::from)
            } else {
                data.get(1..9)
                    .and_then(|s| s.first_chunk::<8>())
                    .map(|s| u64::from_be_bytes(*s))
            };
            assert_eq!(size, Some(h.size));
            assert_eq!(h.flags() & !FLAG_LONG, flags & !FLAG_LONG);
            assert_eq!(FrameHeader::parse(prefix(data, n)), r);
            for k in 0..n {
                assert_eq!(FrameHeader::parse(prefix(data, k)), Ok(Status::Partial));
            }
            emit_header_round_trip(h);
            if n == h.encoded_len() {
                // Canonical input: emit gives the same bytes.
                let mut out = [0u8; MAX_HEADER_LEN];
                assert_eq!(h.emit(&mut out), Ok(n));
                assert_eq!(out.get(..n), data.get(..n));
            }
            format_debug(&h);
        }
        Ok(Status::Partial) => {
            let long = data.first().is_some_and(|f| f & FLAG_LONG != 0);
            assert!(data.len() < if long { MAX_HEADER_LEN } else { 2 });
        }
        Err(_) => {}
    }
    // A header built from the bytes: size, shift, flags.
    let mut inp = Input::new(data);
    let mut size = [0u8; 8];
    for b in &mut size {
        *b = inp.byte();
    }
    let shift = inp.byte() & 63;
    let bits = inp.byte();
    let h = FrameHeader {
        more: bits & 1 != 0,
        command: bits & 2 != 0,
        size: u64::from_be_bytes(size) >> shift,
    };
    if h.size >> 63 != 0 || (h.more && h.command) {
        // Outside the domain of the wire format: emit writes it, parse refuses it.
        let mut out = [0u8; MAX_HEADER_LEN];
        if let Ok(n) = h.emit(&mut out) {
            assert!(FrameHeader::parse(prefix(&out, n)).is_err());
        }
    } else {
        emit_header_round_trip(h);
    }
}

fn emit_header_round_trip(h: FrameHeader) {
    let len = h.encoded_len();
    assert_eq!(len, if h.size <= 255 { 2 } else { MAX_HEADER_LEN });
    let mut out = [0u8; MAX_HEADER_LEN];
    let Some(exact) = out.get_mut(..len) else {
        panic!("encoded_len {len} over MAX_HEADER_LEN");
    };
    assert_eq!(h.emit(exact), Ok(len));
    assert_eq!(
        FrameHeader::parse(prefix(&out, len)),
        Ok(Status::Complete((h, len)))
    );
    for k in 0..len {
        let mut short = [0u8; MAX_HEADER_LEN];
        assert_eq!(h.emit(prefix_mut(&mut short, k)), Err(BufferTooSmall));
    }
}

fn prefix_mut(buf: &mut [u8], n: usize) -> &mut [u8] {
    let n = n.min(buf.len());
    buf.split_at_mut_checked(n).map_or(&mut [][..], |(a, _)| a)
}

// ------------------------------------------------------------------------------- commands

/// Command parse (the input is a command body): accessors, emit and parse again (the body
/// must come back byte for byte); then commands built from the bytes, emitted and parsed.
pub fn command(data: &[u8]) {
    let split = split_command(data);
    let r = Command::parse(data);
    match split {
        Err(e) => assert_eq!(r, Err(e)),
        Ok((name, rest)) => {
            assert!(!name.is_empty());
            assert!(name.iter().all(u8::is_ascii_alphabetic));
            assert_eq!(data.first().map(|&b| usize::from(b)), Some(name.len()));
            assert_eq!(1 + name.len() + rest.len(), data.len());
            if let Ok(c) = r {
                assert_eq!(c.name(), name);
            }
        }
    }
    match r {
        Ok(c) => {
            check_command(c);
            assert_eq!(c.body_len(), data.len());
            command_round_trip(c, Some(data));
        }
        Err(e) => {
            format_debug(&e);
            format_display(&ProtocolError::Command(e));
        }
    }
    // Commands built from the bytes.
    command_round_trip(Command::Subscribe(data), None);
    command_round_trip(Command::Cancel(data), None);
    if data.len() <= MAX_PING_CONTEXT {
        command_round_trip(Command::Pong { context: data }, None);
        command_round_trip(
            Command::Ping {
                ttl_deciseconds: u16::from_be_bytes([
                    data.first().copied().unwrap_or(0),
                    data.last().copied().unwrap_or(0),
                ]),
                context: data,
            },
            None,
        );
    }
    let error = Command::Error { reason: data };
    if data.len() <= 255 {
        command_round_trip(error, None);
    } else {
        // ERROR's reason length is one octet: emit must refuse, whatever the buffer.
        let mut out = [0u8; MAX_ROUND_TRIP + MAX_HEADER_LEN + 8];
        assert_eq!(error.emit(&mut out), Err(BufferTooSmall));
    }
    if let Ok(m) = Metadata::parse(data) {
        command_round_trip(Command::Ready(m), None);
    }
    let (name, rest) = data.split_at_checked(data.len() / 2).unwrap_or((data, &[]));
    if (1..=255).contains(&name.len())
        && name.iter().all(u8::is_ascii_alphabetic)
        && !crate::wire::command::KNOWN_COMMANDS.contains(&name)
    {
        command_round_trip(Command::Other { name, data: rest }, None);
    }
}

/// Calls every accessor of a parsed command.
fn check_command(c: Command<'_>) {
    format_debug(&c);
    let name = c.name();
    assert!((1..=255).contains(&name.len()));
    assert!(name.iter().all(u8::is_ascii_alphabetic));
    match c {
        Command::Ready(m) => check_metadata(m),
        Command::Error { reason } => assert!(reason.len() <= 255),
        Command::Ping { context, .. } => assert!(context.len() <= MAX_PING_CONTEXT),
        Command::Pong { context } => assert!(context.len() <= MAX_PING_CONTEXT),
        Command::Subscribe(_) | Command::Cancel(_) => {}
        Command::Other { name, .. } => {
            assert!(
                !crate::wire::command::KNOWN_COMMANDS.contains(&name),
                "known command parsed as Other"
            );
        }
    }
}

/// Emits `c` into a buffer of exactly `encoded_len` (must succeed) and one byte shorter
/// (must fail), parses the frame back and compares. `body`: the bytes `c` was parsed from,
/// which the emitted body must equal.
fn command_round_trip(c: Command<'_>, body: Option<&[u8]>) {
    let total = c.encoded_len();
    let body_len = c.body_len();
    if body_len > MAX_ROUND_TRIP {
        return;
    }
    let hl = FrameHeader::command(body_len as u64).encoded_len();
    assert_eq!(total, hl + body_len);
    let mut out = [0u8; MAX_ROUND_TRIP + MAX_HEADER_LEN];
    assert_eq!(c.emit(prefix_mut(&mut out, total)), Ok(total), "{c:?}");
    assert_eq!(
        c.emit(prefix_mut(&mut out, total - 1)),
        Err(BufferTooSmall),
        "{c:?}"
    );
    // The short attempt may have scribbled: emit again.
    assert_eq!(c.emit(prefix_mut(&mut out, total)), Ok(total));
    let frame = prefix(&out, total);
    let Ok(Status::Complete((h, n))) = FrameHeader::parse(frame) else {
        panic!("emitted command has no valid header: {c:?}");
    };
    assert!(h.command && !h.more);
    assert_eq!(n, hl);
    assert_eq!(h.size, body_len as u64);
    let emitted = frame.get(n..).unwrap_or(&[]);
    if let Some(body) = body {
        assert_eq!(emitted, body, "emitted body differs from the parsed one");
    }
    assert_eq!(Command::parse(emitted), Ok(c));
}

// ------------------------------------------------------------------------------- metadata

/// Metadata parse: iterate, `get`, rewrite with [`MetadataWriter`] (same bytes), writer
/// refusals; then a list written from values taken from the bytes, parsed back.
pub fn metadata(data: &[u8]) {
    match Metadata::parse(data) {
        Ok(m) => {
            assert_eq!(m.as_bytes(), data);
            check_metadata(m);
        }
        Err(e) => format_debug(&e),
    }
    // Write properties built from the bytes; invalid ones must be refused with nothing
    // written; what was written must parse back to exactly the accepted properties.
    let mut inp = Input::new(data);
    let mut buf = [0u8; 1024];
    let cap = 256 + usize::from(inp.byte()) * 3;
    let mut accepted: heapless::Vec<(&[u8], &[u8]), 32> = heapless::Vec::new();
    let mut w = MetadataWriter::new(prefix_mut(&mut buf, cap));
    while !inp.is_empty() && !accepted.is_full() {
        let nl = inp.byte();
        let name = inp.take(usize::from(nl % 24));
        let vl = inp.byte();
        let value = inp.take(usize::from(vl));
        let before = w.len();
        let valid = !name.is_empty() && name.iter().all(|&b| is_name_char(b));
        match w.property(name, value) {
            Ok(_) => {
                assert!(valid);
                assert_eq!(Some(w.len() - before), property_len(name, value));
                let _ = accepted.push((name, value));
            }
            Err(WriteError::Invalid) => {
                assert!(!valid);
                assert_eq!(w.len(), before);
            }
            Err(WriteError::BufferTooSmall) => {
                assert!(valid);
                assert_eq!(w.len(), before);
                let need = property_len(name, value).unwrap_or(0);
                assert!(before + need > cap.min(1024));
            }
        }
    }
    assert_eq!(w.is_empty(), accepted.is_empty());
    let written = w.finish();
    let Ok(m) = Metadata::parse(written) else {
        panic!("MetadataWriter wrote a list Metadata::parse refuses");
    };
    assert!(m
        .iter()
        .map(|p| (p.name, p.value))
        .eq(accepted.iter().copied()));
    check_metadata(m);
}

/// Everything a checked [`Metadata`] promises: iteration covers the bytes exactly, `get`
/// finds the first match ignoring case, rewriting gives the same bytes, `Debug` works.
fn check_metadata(m: Metadata<'_>) {
    let bytes = m.as_bytes();
    let mut total = 0usize;
    let mut count = 0usize;
    for p in m.iter() {
        assert!((1..=255).contains(&p.name.len()));
        assert!(p.name.iter().all(|&b| is_name_char(b)));
        assert!(p.is(p.name));
        let Some(n) = property_len(p.name, p.value) else {
            panic!("parsed property cannot be encoded: {p:?}");
        };
        total += n;
        count += 1;
        let first = m.iter().find(|q| q.name.eq_ignore_ascii_case(p.name));
        assert_eq!(m.get(p.name), first.map(|q| q.value));
        format_debug(&p);
    }
    assert_eq!(total, bytes.len(), "iteration does not cover the list");
    assert_eq!(m.into_iter().count(), count);
    let mut it = m.iter();
    for _ in it.by_ref() {}
    assert!(it.next().is_none());
    format_debug(&m);
    // Rewrite into exactly the space it needs: same bytes. One byte less: the last property
    // is refused and nothing of it is written.
    if bytes.len() > MAX_ROUND_TRIP {
        return;
    }
    let mut buf = [0u8; MAX_ROUND_TRIP];
    let mut w = MetadataWriter::new(prefix_mut(&mut buf, bytes.len()));
    for p in m.iter() {
        assert!(w.property(p.name, p.value).is_ok());
    }
    assert_eq!(w.len(), bytes.len());
    assert_eq!(w.finish(), bytes);
    if let Some(short) = bytes.len().checked_sub(1) {
        let mut w = MetadataWriter::new(prefix_mut(&mut buf, short));
        let mut refused = 0;
        for (i, p) in m.iter().enumerate() {
            let before = w.len();
            match w.property(p.name, p.value) {
                Ok(_) => assert!(i + 1 < count),
                Err(e) => {
                    assert_eq!(e, WriteError::BufferTooSmall);
                    assert_eq!(i + 1, count);
                    assert_eq!(w.len(), before);
                    refused += 1;
                }
            }
        }
        assert_eq!(refused, 1);
    }
}

// ------------------------------------------------------------------------------- sessions

/// What the application queued: the output check and the receiving peer expect these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exp {
    /// A data frame with a [`pattern`] body.
    Frame {
        id: u32,
        tag: u8,
        len: u64,
        more: bool,
    },
    /// SUBSCRIBE/CANCEL with a [`pattern`] topic; `legacy`: sent as a `01`/`00` message.
    Sub {
        id: u32,
        len: usize,
        cancel: bool,
        legacy: bool,
    },
}

/// Checks everything a session writes, as a stream, against what we must write.
struct TxCheck<'c> {
    ours: SocketType,
    identity: &'c [u8],
    ttl_ds: u16,
    total: u64,
    greeting: [u8; GREETING_LEN],
    header: [u8; MAX_HEADER_LEN],
    header_len: usize,
    frame: Option<FrameHeader>,
    seen: u64,
    cmd: [u8; MAX_OUR_COMMAND],
    frames: u64,
    ready: bool,
    error: bool,
    /// What the application sent, in order, not yet seen in the output.
    sent: Deque<Exp, QUEUE>,
}

impl<'c> TxCheck<'c> {
    fn new(cfg: &Config<'c>) -> Self {
        TxCheck {
            ours: cfg.socket_type,
            identity: cfg.identity,
            ttl_ds: cfg
                .heartbeat_ttl
                .map(|d| u16::try_from(d.as_millis() / 100).unwrap_or(u16::MAX))
                .unwrap_or(0),
            total: 0,
            greeting: [0; GREETING_LEN],
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            frame: None,
            seen: 0,
            cmd: [0; MAX_OUR_COMMAND],
            frames: 0,
            ready: false,
            error: false,
            sent: Deque::new(),
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            assert!(!self.error, "we wrote bytes after our ERROR");
            if self.total < GREETING_LEN as u64 {
                let at = self.total as usize;
                let k = (GREETING_LEN - at).min(bytes.len());
                let (a, b) = bytes.split_at_checked(k).unwrap_or((bytes, &[]));
                if let Some(dst) = self.greeting.get_mut(at..at + k) {
                    dst.copy_from_slice(a);
                }
                bytes = b;
                self.total += k as u64;
                if self.total == GREETING_LEN as u64 {
                    let mut want = [0u8; GREETING_LEN];
                    Greeting::new(Mechanism::NULL, false).emit(&mut want);
                    assert_eq!(self.greeting, want, "we wrote a greeting not ours");
                }
                continue;
            }
            match self.frame {
                None => {
                    let Some((&b, rest)) = bytes.split_first() else {
                        break;
                    };
                    bytes = rest;
                    self.total += 1;
                    if let Some(slot) = self.header.get_mut(self.header_len) {
                        *slot = b;
                    }
                    self.header_len += 1;
                    match FrameHeader::parse(prefix(&self.header, self.header_len)) {
                        Ok(Status::Partial) => assert!(self.header_len < MAX_HEADER_LEN),
                        Ok(Status::Complete((h, n))) => {
                            assert_eq!(n, self.header_len);
                            assert_eq!(n, h.encoded_len(), "we wrote a non-canonical size");
                            self.header_len = 0;
                            self.begin(h);
                        }
                        Err(e) => panic!("we wrote a malformed frame header: {e:?}"),
                    }
                }
                Some(h) => {
                    let left = h.size - self.seen;
                    let k = usize::try_from(left).map_or(bytes.len(), |l| l.min(bytes.len()));
                    let (a, b) = bytes.split_at_checked(k).unwrap_or((bytes, &[]));
                    bytes = b;
                    self.total += k as u64;
                    if h.command {
                        let at = self.seen as usize;
                        if let Some(dst) = self.cmd.get_mut(at..at + k) {
                            dst.copy_from_slice(a);
                        }
                    } else {
                        self.check_data(a);
                    }
                    self.seen += k as u64;
                    if self.seen == h.size {
                        self.end(h);
                    }
                }
            }
        }
    }

    fn begin(&mut self, h: FrameHeader) {
        self.frame = Some(h);
        self.seen = 0;
        if h.command {
            assert!(h.size <= MAX_OUR_COMMAND as u64, "we wrote a huge command");
        } else {
            assert!(self.ready, "we wrote a data frame before READY");
            match self.sent.front() {
                Some(&Exp::Frame { len, more, .. }) => {
                    assert_eq!(h.size, len, "frame length differs from the one sent");
                    assert_eq!(h.more, more, "MORE differs from the one sent");
                }
                Some(&Exp::Sub {
                    len, legacy: true, ..
                }) => {
                    assert_eq!(h.size, len as u64 + 1);
                    assert!(!h.more);
                }
                other => panic!("we wrote data frame {h:?}, application sent {other:?}"),
            }
        }
        if h.size == 0 {
            self.end(h);
        }
    }

    fn check_data(&mut self, data: &[u8]) {
        let ok = match self.sent.front() {
            Some(&Exp::Frame { id, tag, .. }) => is_pattern(id, tag, self.seen, data),
            Some(&Exp::Sub { id, cancel, .. }) => {
                is_pattern(id, u8::from(!cancel), self.seen, data)
            }
            None => false,
        };
        assert!(ok, "we wrote frame bytes other than the application's");
    }

    fn end(&mut self, h: FrameHeader) {
        self.frame = None;
        self.seen = 0;
        let first = self.frames == 0;
        self.frames += 1;
        if !h.command {
            let _ = self.sent.pop_front();
            return;
        }
        let body = prefix(&self.cmd, h.size as usize);
        let c = match Command::parse(body) {
            Ok(c) => c,
            Err(e) => panic!("we wrote a malformed command: {e:?}"),
        };
        if first {
            assert!(
                matches!(c, Command::Ready(_) | Command::Error { .. }),
                "first frame after the greeting is {c:?}"
            );
        }
        match c {
            Command::Ready(m) => {
                assert!(first, "second READY");
                assert_eq!(m.get(b"Socket-Type"), Some(self.ours.as_str().as_bytes()));
                let props = m.iter().count();
                if self.ours.sends_identity() {
                    assert_eq!(m.get(b"Identity"), Some(self.identity));
                    assert_eq!(props, 2);
                } else {
                    assert_eq!(props, 1);
                }
                self.ready = true;
            }
            Command::Error { reason } => {
                // RFC 37: error-reason = OCTET 0*255VCHAR.
                assert!(reason.iter().all(|b| (0x21..=0x7e).contains(b)));
                self.error = true;
            }
            Command::Ping {
                ttl_deciseconds,
                context,
            } => {
                assert!(self.ready);
                assert!(context.is_empty());
                assert_eq!(ttl_deciseconds, self.ttl_ds);
            }
            Command::Pong { .. } => assert!(self.ready),
            Command::Subscribe(t) | Command::Cancel(t) => {
                assert!(self.ready);
                let cancel = matches!(c, Command::Cancel(_));
                match self.sent.pop_front() {
                    Some(Exp::Sub {
                        id,
                        len,
                        cancel: c2,
                        legacy: false,
                    }) => {
                        assert_eq!(cancel, c2);
                        assert_eq!(t.len(), len);
                        assert!(is_topic(id, t));
                    }
                    other => panic!("we wrote {c:?}, application sent {other:?}"),
                }
            }
            _ => panic!("we wrote a command we never send: {c:?}"),
        }
    }
}

/// Generic event-order checks for one session.
struct EventCheck {
    ours: SocketType,
    rx_len: usize,
    handshake: bool,
    closed: Option<CloseReason>,
    peer_error: bool,
    /// Next offset, length and MORE of the frame being chunked.
    chunk: Option<(u64, u64, bool)>,
    eof: bool,
    local: bool,
    heartbeats: bool,
}

impl EventCheck {
    fn new(cfg: &Config<'_>, rx_len: usize) -> Self {
        EventCheck {
            ours: cfg.socket_type,
            rx_len,
            handshake: false,
            closed: None,
            peer_error: false,
            chunk: None,
            eof: false,
            local: false,
            heartbeats: cfg.heartbeat_interval.is_some(),
        }
    }

    fn on_event(&mut self, ev: &Event<'_>) {
        format_debug(ev);
        assert!(self.closed.is_none(), "event after Closed: {ev:?}");
        if self.peer_error {
            assert!(
                matches!(ev, Event::Closed(CloseReason::PeerError)),
                "PeerError not followed by Closed(PeerError): {ev:?}"
            );
        }
        if !matches!(ev, Event::FrameChunk(_) | Event::Closed(_)) {
            assert!(self.chunk.is_none(), "{ev:?} inside a chunked frame");
        }
        match *ev {
            Event::HandshakeComplete(p) => {
                assert!(!self.handshake, "second HandshakeComplete");
                self.handshake = true;
                assert!(self.ours.is_compatible_with(p.socket_type));
                assert!(p.major_version >= 3);
                assert_eq!(
                    p.metadata.get(b"Socket-Type"),
                    Some(p.socket_type.as_str().as_bytes())
                );
                assert_eq!(p.metadata.get(b"Identity").unwrap_or(&[]), p.identity);
                assert!(p.identity.len() <= 255);
                check_metadata(p.metadata);
            }
            Event::Frame { data, .. } => {
                assert!(self.handshake, "frame before the handshake");
                assert!(data.len() + 2 <= self.rx_len, "whole frame larger than rx");
            }
            Event::FrameChunk(c) => {
                assert!(self.handshake, "chunk before the handshake");
                assert!(!c.data.is_empty(), "empty chunk");
                match self.chunk {
                    Some((next, len, more)) => {
                        assert_eq!(c.offset, next, "chunks not contiguous");
                        assert_eq!(c.frame_len, len);
                        assert_eq!(c.more, more);
                    }
                    None => {
                        assert_eq!(c.offset, 0, "first chunk not at offset 0");
                        assert!(
                            c.frame_len.saturating_add(MAX_HEADER_LEN as u64) > self.rx_len as u64,
                            "frame that fits rx delivered in chunks"
                        );
                    }
                }
                let end = c.offset + c.data.len() as u64;
                assert!(end <= c.frame_len);
                assert_eq!(c.is_last(), end == c.frame_len);
                self.chunk = (!c.is_last()).then_some((end, c.frame_len, c.more));
            }
            Event::Subscribe(_) | Event::Cancel(_) => {
                assert!(self.handshake, "subscription before the handshake");
            }
            Event::Authenticate(a) => panic!("Authenticate under NULL security: {a:?}"),
            Event::PeerError(r) => {
                assert!(r.len() <= self.rx_len);
                self.peer_error = true;
            }
            Event::Closed(reason) => {
                format_display(&reason);
                let _ = reason.should_reconnect();
                assert_eq!(reason == CloseReason::PeerError, self.peer_error);
                match reason {
                    CloseReason::Eof => assert!(self.eof, "Eof without end of stream"),
                    CloseReason::Local => assert!(self.local, "Local without close()"),
                    CloseReason::HandshakeTimeout => assert!(!self.handshake),
                    CloseReason::HeartbeatTimeout => {
                        assert!(self.handshake && self.heartbeats);
                    }
                    CloseReason::TtlExpired => assert!(self.handshake),
                    CloseReason::Protocol(_) | CloseReason::PeerError => {}
                    CloseReason::AuthFailed | CloseReason::AuthRejected => {
                        panic!("{reason:?} under NULL security")
                    }
                    // Added after this oracle was written: give it its own check.
                    #[allow(unreachable_patterns)]
                    _ => {}
                }
                self.closed = Some(reason);
                self.chunk = None;
            }
            // An event added after this oracle was written: give it its own check.
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    /// After `poll_event` returned `None`.
    fn after_drain(&mut self, s: &mut Session<'_>) {
        assert!(s.poll_event().is_none(), "poll_event after None");
        assert_eq!(s.is_closed(), self.closed.is_some());
        assert_eq!(s.close_reason(), self.closed);
        assert_eq!(s.is_ready(), self.handshake && self.closed.is_none());
        assert_eq!(s.peer_socket_type().is_some(), self.handshake);
        if self.closed.is_some() {
            assert!(s.recv_window().is_empty(), "receive window after close");
            assert!(!s.can_send());
            assert_eq!(s.poll_timeout(), None);
            assert!(s.commit_received(1, Instant::ZERO).is_err());
        } else {
            assert!(!s.recv_window().is_empty(), "receive window stuck at zero");
        }
    }
}

/// What one session must receive: the peer application's frames and subscriptions, in order.
struct Recv {
    want: Deque<Want, QUEUE>,
    offset: u64,
    /// Checking (the direction is untampered).
    active: bool,
    /// The peer the handshake must report: socket type, identity.
    peer: Option<(SocketType, &'static [u8])>,
}

#[derive(Clone, Copy, Debug)]
struct Want {
    exp: Exp,
    /// The frame fits the receiver's buffer and arrives as one `Frame`.
    whole: bool,
    /// The frame is a ZMTP 3.0 subscription to the receiver (PUB/XPUB).
    legacy: bool,
}

impl Recv {
    fn new() -> Self {
        Recv {
            want: Deque::new(),
            offset: 0,
            active: true,
            peer: None,
        }
    }

    fn on_event(&mut self, ev: &Event<'_>) {
        if !self.active {
            return;
        }
        match *ev {
            Event::Frame { data, more } => match self.want.pop_front() {
                Some(Want {
                    exp:
                        Exp::Frame {
                            id,
                            tag,
                            len,
                            more: m,
                        },
                    whole: true,
                    legacy: false,
                    ..
                }) => {
                    assert_eq!(self.offset, 0);
                    assert_eq!(data.len() as u64, len, "frame length differs");
                    assert_eq!(more, m, "MORE differs");
                    assert!(is_pattern(id, tag, 0, data), "frame bytes differ");
                }
                other => panic!("received frame ({} bytes), wanted {other:?}", data.len()),
            },
            Event::FrameChunk(c) => match self.want.front().copied() {
                Some(Want {
                    exp: Exp::Frame { id, tag, len, more },
                    whole: false,
                    ..
                }) => {
                    assert_eq!(c.offset, self.offset, "chunk offset");
                    assert_eq!(c.frame_len, len, "chunked frame length differs");
                    assert_eq!(c.more, more, "MORE differs");
                    assert!(is_pattern(id, tag, c.offset, c.data), "chunk bytes differ");
                    self.offset += c.data.len() as u64;
                    if c.is_last() {
                        let _ = self.want.pop_front();
                        self.offset = 0;
                    }
                }
                other => panic!("received chunk {c:?}, wanted {other:?}"),
            },
            Event::Subscribe(t) | Event::Cancel(t) => {
                let cancel = matches!(ev, Event::Cancel(_));
                match self.want.pop_front() {
                    Some(Want {
                        exp:
                            Exp::Sub {
                                id, len, cancel: c, ..
                            },
                        ..
                    }) => {
                        assert_eq!(cancel, c, "SUBSCRIBE/CANCEL swapped");
                        assert_eq!(t.len(), len, "topic length differs");
                        assert!(is_topic(id, t), "topic bytes differ");
                    }
                    Some(Want {
                        exp: Exp::Frame { id, tag, len, .. },
                        legacy: true,
                        ..
                    }) => {
                        assert_eq!(cancel, tag == 0);
                        assert_eq!(t.len() as u64 + 1, len);
                        assert!(is_topic(id, t));
                    }
                    other => panic!("received {ev:?}, wanted {other:?}"),
                }
            }
            Event::HandshakeComplete(p) => {
                if let Some((t, id)) = self.peer {
                    assert_eq!(p.socket_type, t, "peer type");
                    assert_eq!(p.identity, id, "peer identity");
                }
            }
            Event::Authenticate(_) | Event::PeerError(_) | Event::Closed(_) => {}
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }
}

/// Drains `poll_event` to `None` through both checks.
fn drain(s: &mut Session<'_>, ev: &mut EventCheck, recv: &mut Recv) {
    let bound = ev.rx_len + 2;
    let mut n = 0usize;
    while let Some(e) = s.poll_event() {
        n += 1;
        assert!(n <= bound, "poll_event does not terminate");
        ev.on_event(&e);
        recv.on_event(&e);
    }
    ev.after_drain(s);
}

/// After `handle_timeout(now)`, nothing may be due at or before `now` (a run loop would spin).
fn check_timer(s: &Session<'_>, now: Instant) {
    if let Some(t) = s.poll_timeout() {
        assert!(t > now, "deadline {t:?} not in the future of {now:?}");
    }
}

/// Hands out up to `limit` bytes of `s`'s output to the output check; returns the count.
fn transmit(s: &mut Session<'_>, tx: &mut TxCheck<'_>, limit: usize) -> usize {
    let mut moved = 0;
    while moved < limit {
        let out = s.poll_transmit();
        if out.is_empty() {
            break;
        }
        let n = out.len().min(limit - moved);
        tx.push(prefix(out, n));
        let pending = out.len();
        assert!(s.mark_transmitted(pending + 1).is_err());
        assert!(s.mark_transmitted(n).is_ok());
        moved += n;
    }
    moved
}

fn config(ours: SocketType, heartbeats: bool, identity: bool) -> Config<'static> {
    let mut cfg = Config::new(ours);
    if identity {
        cfg = cfg.with_identity(IDENTITY);
    }
    if heartbeats {
        cfg.heartbeat_interval = Some(Duration::from_millis(100));
        cfg.heartbeat_timeout = Some(Duration::from_millis(300));
        cfg.heartbeat_ttl = Some(Duration::from_secs(1));
        cfg.handshake_timeout = Some(Duration::from_secs(2));
    }
    cfg
}

/// A valid peer greeting (and READY) for [`session`]; returns its length.
fn prelude(buf: &mut [u8; 256], kind: u8, ours: SocketType, pick: u8) -> usize {
    if kind == 0 {
        return 0;
    }
    let mut g = Greeting::new(Mechanism::NULL, false);
    if kind == 3 {
        g.minor = 0;
    }
    let Some((head, rest)) = buf.split_first_chunk_mut::<GREETING_LEN>() else {
        return 0;
    };
    g.emit(head);
    if kind == 1 {
        return GREETING_LEN;
    }
    let peer = compatible(ours, pick);
    let mut meta = [0u8; 64];
    let mut w = MetadataWriter::new(&mut meta);
    let _ = w.property(b"Socket-Type", peer.as_str().as_bytes());
    if pick & 0x80 != 0 {
        let _ = w.property(b"Identity", PEER_IDENTITY);
    }
    let meta = w.finish();
    let Ok(m) = Metadata::parse(meta) else {
        panic!("our own metadata does not parse");
    };
    match Command::Ready(m).emit(rest) {
        Ok(n) => GREETING_LEN + n,
        Err(_) => panic!("prelude READY does not fit"),
    }
}

/// The application's part of a session driver: what it is streaming, ids, message state.
#[derive(Default)]
struct App {
    next_id: u32,
    in_message: bool,
    message_size: u64,
    /// A frame being written with `start_frame`: id, tag, length, offset.
    stream: Option<(u32, u8, u64, u64)>,
    sent_bytes: u64,
}

impl App {
    /// Writes more of the streamed frame; returns whether anything was written.
    fn continue_stream(&mut self, s: &mut Session<'_>) -> bool {
        let Some((id, tag, len, off)) = self.stream else {
            return false;
        };
        assert_eq!(s.frame_body_remaining(), len - off);
        let mut buf = [0u8; 512];
        let want = usize::try_from(len - off).map_or(buf.len(), |l| l.min(buf.len()));
        let chunk = prefix_mut(&mut buf, want);
        fill(id, tag, off, chunk);
        match s.write_frame_body(chunk) {
            Ok(n) => {
                assert!(n >= 1 && n <= want);
                let off = off + n as u64;
                self.stream = (off < len).then_some((id, tag, len, off));
                assert_eq!(s.frame_body_remaining(), len - off);
                true
            }
            Err(SendError::WouldBlock) => {
                assert!(
                    !s.poll_transmit().is_empty(),
                    "WouldBlock with nothing pending"
                );
                false
            }
            Err(SendError::Closed) => {
                assert!(s.is_closed());
                self.stream = None;
                false
            }
            Err(e) => panic!("write_frame_body: {e:?}"),
        }
    }

    /// Checks a refused send: the reason must match the session's state.
    fn refused(s: &Session<'_>, e: SendError, streaming: bool) {
        format_display(&e);
        match e {
            SendError::Closed => assert!(s.is_closed()),
            SendError::NotReady => assert!(!s.can_send() && !s.is_closed()),
            SendError::FrameInProgress => assert!(streaming),
            SendError::WouldBlock | SendError::TooLarge => assert!(s.can_send()),
            SendError::NoFrameInProgress => panic!("NoFrameInProgress from a send"),
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    /// Sends one frame of `len` pattern bytes, whole or streamed. Returns what was queued.
    fn send_frame(
        &mut self,
        s: &mut Session<'_>,
        tx_len: usize,
        tag: u8,
        len: u64,
        more: bool,
    ) -> Option<Exp> {
        if self.stream.is_some() {
            let r = s.send_frame(b"x", false);
            assert!(r.is_err(), "send_frame accepted while a frame is streamed");
            if let Err(e) = r {
                Self::refused(s, e, true);
            }
            return None;
        }
        let id = self.next_id;
        let hl = header_len(len);
        let fits = usize::try_from(len).is_ok_and(|l| l + hl <= tx_len);
        let r = if fits {
            let l = usize::try_from(len).unwrap_or(0);
            s.send_frame_with(l, more, |buf| {
                assert_eq!(buf.len(), l);
                fill(id, tag, 0, buf);
            })
        } else {
            s.start_frame(len, more)
        };
        match r {
            Ok(()) => {
                self.next_id += 1;
                self.message_size = if self.in_message {
                    self.message_size + len
                } else {
                    len
                };
                self.in_message = more;
                self.sent_bytes += len;
                if !fits && len > 0 {
                    self.stream = Some((id, tag, len, 0));
                    self.continue_stream(s);
                }
                Some(Exp::Frame { id, tag, len, more })
            }
            Err(e) => {
                // Whole frames are only tried when they fit the buffer; larger ones stream.
                assert_ne!(e, SendError::TooLarge);
                Self::refused(s, e, false);
                None
            }
        }
    }

    /// SUBSCRIBE or CANCEL with a `len`-byte pattern topic.
    fn send_sub(&mut self, s: &mut Session<'_>, len: usize, cancel: bool) -> Option<Exp> {
        let id = self.next_id;
        let mut topic = [0u8; 256];
        let topic = prefix_mut(&mut topic, len);
        fill(id, 0, 1, topic);
        let legacy = s.peer_version().is_some_and(|(ma, mi)| ma == 3 && mi == 0);
        let r = if cancel {
            s.send_cancel(topic)
        } else {
            s.send_subscribe(topic)
        };
        match r {
            Ok(()) => {
                assert!(self.stream.is_none());
                self.next_id += 1;
                if legacy {
                    self.in_message = false;
                }
                Some(Exp::Sub {
                    id,
                    len,
                    cancel,
                    legacy,
                })
            }
            Err(e) => {
                Self::refused(s, e, self.stream.is_some());
                None
            }
        }
    }
}

/// One session fed the input (see the module docs for the layout).
pub fn session(data: &[u8]) {
    let mut inp = Input::new(data);
    let mode = inp.byte();
    let ours = socket_type(inp.byte());
    let pick = inp.byte();
    let rx_len = buf_len(inp.byte(), MIN_RX_BUFFER);
    let tx_len = buf_len(inp.byte(), 64);
    let steps = usize::from(inp.byte() % 8) + 1;
    let ctl = inp.take(steps * 4);
    let stream = inp.rest();

    let role = if mode & 1 == 0 {
        Role::Connected
    } else {
        Role::Accepted
    };
    let mut cfg = config(ours, mode & 0x08 != 0, mode & 0x20 != 0);
    if mode & 0x10 != 0 {
        cfg.max_frame_size = Some(u64::from(pick) * 16);
        cfg.max_message_size = Some(u64::from(pick) * 40);
    }
    let mut pre = [0u8; 256];
    let pre_len = prelude(&mut pre, (mode >> 1) & 3, ours, pick);
    let pre = prefix(&pre, pre_len);

    let mut rx = [0u8; MAX_BUF];
    let mut txb = [0u8; MAX_BUF];
    let buffers = Buffers {
        rx: prefix_mut(&mut rx, rx_len),
        tx: prefix_mut(&mut txb, tx_len),
    };
    let mut s = match Session::new(&cfg, role, buffers, Instant::ZERO) {
        Ok(s) => s,
        Err(e) => {
            format_display(&e);
            assert_eq!(e, ConfigError::TxBufferTooSmall);
            assert!(tx_len < 128, "tx buffer of {tx_len} refused");
            return;
        }
    };
    assert_eq!(s.role(), role);
    assert_eq!(s.socket_type(), ours);
    assert!(!s.is_ready() && !s.is_closed() && !s.can_send());
    assert_eq!(s.peer_version(), None);
    let mut ev = EventCheck::new(&cfg, rx_len);
    let mut tx = TxCheck::new(&cfg);
    let mut recv = Recv::new();
    recv.active = false;
    let mut app = App::default();
    let mut now = Instant::ZERO;
    // Whether the first 64 bytes fed are a valid NULL greeting: READY may go out only then.
    let mut first = [0u8; GREETING_LEN];
    let total = pre.len() + stream.len();
    let mut pos = 0usize;
    let byte_at = |i: usize| match i.checked_sub(pre.len()) {
        None => pre.get(i).copied().unwrap_or(0),
        Some(j) => stream.get(j).copied().unwrap_or(0),
    };
    let mut step = 0usize;
    loop {
        let c = ctl.get((step % steps) * 4..).unwrap_or(&[]);
        let (frag, time, action, xmit) = (
            c.first().copied().unwrap_or(0xff),
            c.get(1).copied().unwrap_or(0),
            c.get(2).copied().unwrap_or(0),
            c.get(3).copied().unwrap_or(0),
        );
        step += 1;

        // 1. Feed a fragment.
        if pos < total && !ev.eof {
            let frag = if frag & 0x80 != 0 {
                (usize::from(frag & 0x7f) + 1) * 32
            } else {
                usize::from(frag) + 1
            };
            let w = s.recv_window();
            let wl = w.len();
            if wl == 0 {
                assert!(s.is_closed());
            } else {
                let n = frag.min(wl).min(total - pos);
                for (k, b) in w.iter_mut().take(n).enumerate() {
                    *b = byte_at(pos + k);
                    if let Some(f) = first.get_mut(pos + k) {
                        *f = *b;
                    }
                }
                assert!(s.commit_received(wl + 1, now).is_err());
                assert!(s.commit_received(n, now).is_ok());
                pos += n;
                drain(&mut s, &mut ev, &mut recv);
            }
        }

        // 2. Time.
        match time & 3 {
            0 => {}
            1 => now = now + Duration::from_millis(u64::from(time >> 2)),
            2 => now = now + Duration::from_millis(u64::from(time >> 2) * 100),
            _ => {
                if let Some(t) = s.poll_timeout() {
                    now = now.max(t);
                }
            }
        }
        if time & 3 != 0 {
            s.handle_timeout(now);
            drain(&mut s, &mut ev, &mut recv);
            check_timer(&s, now);
        }

        // 3. The application.
        // The output check tracks at most QUEUE sends in flight: refrain when it is full.
        let busy = tx.sent.is_full();
        let queued = match action & 3 {
            1 | 2 if busy => None,
            3 if busy && app.stream.is_none() => None,
            1 => {
                let len = u64::from(action >> 3) * 17;
                app.send_frame(&mut s, tx_len, action >> 5, len, action & 4 != 0)
            }
            2 => app.send_sub(&mut s, usize::from(action >> 3), action & 4 != 0),
            3 => {
                if app.stream.is_none() {
                    let len = u64::from(action >> 3) * 97 + 1;
                    // Force streaming even when it would fit.
                    match s.start_frame(len, action & 4 != 0) {
                        Ok(()) => {
                            let id = app.next_id;
                            app.next_id += 1;
                            app.in_message = action & 4 != 0;
                            app.stream = Some((id, 7, len, 0));
                            app.continue_stream(&mut s);
                            Some(Exp::Frame {
                                id,
                                tag: 7,
                                len,
                                more: action & 4 != 0,
                            })
                        }
                        Err(e) => {
                            App::refused(&s, e, false);
                            None
                        }
                    }
                } else {
                    app.continue_stream(&mut s);
                    None
                }
            }
            _ => {
                match action {
                    4 => {
                        ev.local = true;
                        s.close();
                    }
                    8 => {
                        ev.local = true;
                        s.close_with_error(b"fuzz-close");
                    }
                    12 => {
                        ev.eof = true;
                        s.handle_eof();
                    }
                    _ => {}
                }
                None
            }
        };
        if let Some(e) = queued {
            assert!(tx.sent.push_back(e).is_ok(), "checker queue overflow");
        }
        drain(&mut s, &mut ev, &mut recv);

        // 4. Transmit.
        let limit = if xmit == 0 {
            usize::MAX
        } else {
            usize::from(xmit) * 4
        };
        transmit(&mut s, &mut tx, limit);
        if tx.ready {
            assert!(
                matches!(Greeting::parse(&first), Ok(Status::Complete(g)) if g.mechanism == Mechanism::NULL),
                "READY written before a valid peer greeting"
            );
        }

        if pos >= total || s.is_closed() || ev.eof {
            break;
        }
    }

    // The end: EOF, local close, far timeouts, then everything out.
    if mode & 0x40 != 0 {
        ev.eof = true;
        s.handle_eof();
        drain(&mut s, &mut ev, &mut recv);
        assert!(s.is_closed(), "still open after end of stream");
    }
    if mode & 0x80 != 0 {
        ev.local = true;
        s.close();
        drain(&mut s, &mut ev, &mut recv);
    }
    for _ in 0..2 {
        now = now + Duration::from_secs(3600);
        s.handle_timeout(now);
        drain(&mut s, &mut ev, &mut recv);
        check_timer(&s, now);
        while app.continue_stream(&mut s) {}
        transmit(&mut s, &mut tx, usize::MAX);
    }
    if !ev.handshake || ev.heartbeats {
        // Handshake timeout, or a PING nobody answered.
        assert!(s.is_closed(), "session survived its timeouts");
    }
    ev.local = true;
    s.close();
    drain(&mut s, &mut ev, &mut recv);
    assert!(s.is_closed());
    assert!(matches!(s.send_frame(b"", false), Err(SendError::Closed)));
    transmit(&mut s, &mut tx, usize::MAX);
    assert!(s.is_finished(), "output left after close and transmit");
    assert!(s.poll_event().is_none());
}

// ------------------------------------------------------------------------------- two sessions

/// One side of [`session_pair`].
struct End<'b> {
    s: Session<'b>,
    ev: EventCheck,
    tx: TxCheck<'static>,
    /// What this end must receive.
    recv: Recv,
    app: App,
    rx_len: usize,
    tx_len: usize,
    max_frame: u64,
    max_message: u64,
    /// A bit flip for the next transfer out of this end: position, mask.
    flip: Option<(u8, u8)>,
}

impl<'b> End<'b> {
    /// One end of a pair: a session on `rx`/`tx` with its checkers; `limits` is the
    /// (max frame, max message) it was configured with.
    fn new(
        cfg: &Config<'static>,
        role: Role,
        rx: &'b mut [u8],
        tx: &'b mut [u8],
        limits: (u64, u64),
    ) -> Self {
        let (rx_len, tx_len) = (rx.len(), tx.len());
        End {
            s: new_session(cfg, role, rx, tx),
            ev: EventCheck::new(cfg, rx_len),
            tx: TxCheck::new(cfg),
            recv: Recv::new(),
            app: App::default(),
            rx_len,
            tx_len,
            max_frame: limits.0,
            max_message: limits.1,
            flip: None,
        }
    }

    fn drain(&mut self) {
        drain(&mut self.s, &mut self.ev, &mut self.recv);
    }
}

fn new_session<'b>(
    cfg: &Config<'b>,
    role: Role,
    rx: &'b mut [u8],
    tx: &'b mut [u8],
) -> Session<'b> {
    match Session::new(cfg, role, Buffers { rx, tx }, Instant::ZERO) {
        Ok(s) => s,
        Err(e) => panic!("Session::new: {e:?}"),
    }
}

/// Moves up to `limit` bytes from `a` to `b` (through `a`'s output check), applying a pending
/// flip. Bytes to a closed peer are dropped. Returns the count and whether a byte was flipped.
fn pipe(a: &mut End<'_>, b: &mut End<'_>, limit: usize, now: Instant) -> (usize, bool) {
    let out = a.s.poll_transmit();
    if out.is_empty() || limit == 0 {
        return (0, false);
    }
    let mut flipped = false;
    let n = if b.s.is_closed() {
        let n = out.len().min(limit);
        a.tx.push(prefix(out, n));
        n
    } else {
        let w = b.s.recv_window();
        let n = out.len().min(limit).min(w.len());
        assert!(n > 0, "open receiver with an empty window");
        let (Some(dst), Some(src)) = (w.get_mut(..n), out.get(..n)) else {
            return (0, false);
        };
        dst.copy_from_slice(src);
        a.tx.push(src);
        if let Some((pos, mask)) = a.flip.take() {
            if let Some(byte) = dst.get_mut(usize::from(pos) % n) {
                *byte ^= mask.max(1);
                flipped = true;
            }
        }
        assert!(b.s.commit_received(n, now).is_ok());
        n
    };
    assert!(a.s.mark_transmitted(n).is_ok());
    (n, flipped)
}

/// Sends one frame from `a` to `b` and records what `b` must receive.
fn pair_send_frame(a: &mut End<'_>, b: &mut End<'_>, tag: u8, len: u64, more: bool) {
    if a.app.sent_bytes + len > PAIR_BYTE_BUDGET || a.tx.sent.is_full() || b.recv.want.is_full() {
        return;
    }
    // The application keeps to the peer's limits (exceeding them is the peer's protocol error).
    let msg = if a.app.in_message {
        a.app.message_size + len
    } else {
        len
    };
    if len > b.max_frame || msg > b.max_message {
        return;
    }
    let first_of_message = !a.app.in_message;
    let Some(exp) = a.app.send_frame(&mut a.s, a.tx_len, tag, len, more) else {
        return;
    };
    let whole = usize::try_from(len).is_ok_and(|l| l + header_len(len) <= b.rx_len);
    let legacy = b.ev.ours.receives_subscriptions()
        && first_of_message
        && !more
        && len >= 1
        && tag <= 1
        && whole;
    let _ = a.tx.sent.push_back(exp);
    let _ = b.recv.want.push_back(Want { exp, whole, legacy });
}

fn pair_send_sub(a: &mut End<'_>, b: &mut End<'_>, len: usize, cancel: bool) {
    if a.tx.sent.is_full() || b.recv.want.is_full() {
        return;
    }
    // A command must fit the receiver's buffer (commands are never streamed).
    if len + 16 > b.rx_len {
        return;
    }
    let first_of_message = !a.app.in_message;
    let Some(exp) = a.app.send_sub(&mut a.s, len, cancel) else {
        return;
    };
    let _ = a.tx.sent.push_back(exp);
    let want = match exp {
        // To a peer that said ZMTP 3.0 (only when a flip changed our peer's greeting): a
        // single-frame `01`/`00` message, which only a PUB/XPUB reads as a subscription.
        Exp::Sub {
            id, legacy: true, ..
        } => {
            let pub_first = b.ev.ours.receives_subscriptions() && first_of_message;
            Want {
                exp: Exp::Frame {
                    id,
                    tag: u8::from(!cancel),
                    len: len as u64 + 1,
                    more: false,
                },
                whole: true,
                legacy: pub_first,
            }
        }
        _ => Want {
            exp,
            whole: true,
            legacy: false,
        },
    };
    let _ = b.recv.want.push_back(want);
}

/// Two sessions talking (see the module docs for the layout). Operations, one byte `op` and
/// its arguments each; `side` is bit 3 (0: client, 1: server):
///
/// - `op & 7 == 0`: send a frame: length byte, tag byte; bit 4 MORE, bits 5-6 scale the
///   length by 1, 1, 17 or 67 (frames larger than the buffers are streamed and chunked).
/// - `1`: SUBSCRIBE (bit 4: CANCEL); topic length byte (mod 65).
/// - `2`: move bytes from `side` to the other: count byte + 1, times 32 with bit 4; bit 5:
///   everything.
/// - `3`: advance time: argument `t`; bits 3-4 pick `t` ms, `t` * 100 ms, the next deadline,
///   or `t` * 10 s.
/// - `4`: (tamper mode) flip bits of the next byte moved out of `side`: position, mask.
/// - `5`: move everything both ways until nothing moves.
/// - `6`: continue streamed frames.
/// - `7`: (tamper mode) close `side` locally, with ERROR if bit 4.
pub fn session_pair(data: &[u8]) {
    let mut inp = Input::new(data);
    let mode = inp.byte();
    let tamper = mode & 1 != 0;
    let heartbeats = mode & 2 != 0;
    let limits = mode & 4 != 0;
    let identity = mode & 8 != 0;
    let ct = socket_type(inp.byte());
    let st = compatible(ct, inp.byte());
    let (c_rx, c_tx) = (buf_len(inp.byte(), 128), buf_len(inp.byte(), 128));
    let (s_rx, s_tx) = (buf_len(inp.byte(), 128), buf_len(inp.byte(), 128));
    let (c_lim, s_lim) = (inp.byte(), inp.byte());

    let c_cfg = config(ct, heartbeats, identity);
    let s_cfg = config(st, heartbeats, identity);
    let limit = |b: u8| {
        if limits {
            let f = 64 + u64::from(b) * 64;
            (f, f * 3)
        } else {
            (u64::MAX, u64::MAX)
        }
    };
    let mut c_cfg = c_cfg;
    let mut s_cfg = s_cfg;
    let (cf, cm) = limit(c_lim);
    let (sf, sm) = limit(s_lim);
    if limits {
        c_cfg.max_frame_size = Some(cf);
        c_cfg.max_message_size = Some(cm);
        s_cfg.max_frame_size = Some(sf);
        s_cfg.max_message_size = Some(sm);
    }

    let (mut c_rxb, mut c_txb) = ([0u8; MAX_BUF], [0u8; MAX_BUF]);
    let (mut s_rxb, mut s_txb) = ([0u8; MAX_BUF], [0u8; MAX_BUF]);
    let peer_id = |cfg: &Config<'static>| -> &'static [u8] {
        if cfg.socket_type.sends_identity() && identity {
            IDENTITY
        } else {
            &[]
        }
    };
    let mut c = End::new(
        &c_cfg,
        Role::Connected,
        prefix_mut(&mut c_rxb, c_rx),
        prefix_mut(&mut c_txb, c_tx),
        (cf, cm),
    );
    let mut s = End::new(
        &s_cfg,
        Role::Accepted,
        prefix_mut(&mut s_rxb, s_rx),
        prefix_mut(&mut s_txb, s_tx),
        (sf, sm),
    );
    c.recv.peer = Some((st, peer_id(&s_cfg)));
    s.recv.peer = Some((ct, peer_id(&c_cfg)));
    // Server ids are distinct from client ids (only for readable failures).
    s.app.next_id = 1 << 31;
    let mut now = Instant::ZERO;
    let mut tampered = false;

    while !inp.is_empty() {
        let op = inp.byte();
        let side = op & 0x08 != 0;
        let (a, b) = if side {
            (&mut s, &mut c)
        } else {
            (&mut c, &mut s)
        };
        match op & 7 {
            0 => {
                let len = u64::from(inp.byte());
                let tag = inp.byte();
                let scale = match (op >> 5) & 3 {
                    2 => 17,
                    3 => 67,
                    _ => 1,
                };
                pair_send_frame(a, b, tag, len * scale, op & 0x10 != 0);
            }
            1 => {
                let len = usize::from(inp.byte() % 65);
                pair_send_sub(a, b, len, op & 0x10 != 0);
            }
            2 => {
                let k = usize::from(inp.byte()) + 1;
                let k = if op & 0x20 != 0 {
                    usize::MAX
                } else if op & 0x10 != 0 {
                    k * 32
                } else {
                    k
                };
                let (_, f) = pipe(a, b, k, now);
                if f {
                    tampered = true;
                    b.recv.active = false;
                }
            }
            3 => {
                let t = u64::from(inp.byte());
                match (op >> 3) & 3 {
                    0 => now = now + Duration::from_millis(t),
                    1 => now = now + Duration::from_millis(t * 100),
                    2 => {
                        let next = [c.s.poll_timeout(), s.s.poll_timeout()]
                            .into_iter()
                            .flatten()
                            .min();
                        if let Some(t) = next {
                            now = now.max(t);
                        }
                    }
                    _ => now = now + Duration::from_secs(t * 10),
                }
                c.s.handle_timeout(now);
                s.s.handle_timeout(now);
                c.drain();
                s.drain();
                check_timer(&c.s, now);
                check_timer(&s.s, now);
            }
            4 => {
                let pos = inp.byte();
                let mask = inp.byte();
                if tamper {
                    a.flip = Some((pos, mask));
                }
            }
            5 => {
                if settle(&mut c, &mut s, now) {
                    tampered = true;
                }
            }
            6 => {
                a.app.continue_stream(&mut a.s);
                b.app.continue_stream(&mut b.s);
            }
            _ => {
                if tamper {
                    a.ev.local = true;
                    tampered = true;
                    if op & 0x10 != 0 {
                        a.s.close_with_error(b"fuzz-close");
                    } else {
                        a.s.close();
                    }
                }
            }
        }
        c.drain();
        s.drain();
    }

    // Finish: everything moves, streamed frames complete, no time passes.
    if settle(&mut c, &mut s, now) {
        tampered = true;
    }
    if !tampered {
        for e in [&c, &s] {
            assert!(
                !matches!(
                    e.ev.closed,
                    Some(CloseReason::Protocol(_) | CloseReason::PeerError)
                ),
                "closed without tampering: {:?}",
                e.ev.closed
            );
        }
        if c.ev.closed.is_none() && s.ev.closed.is_none() {
            assert!(c.s.is_ready() && s.s.is_ready(), "handshake did not finish");
            assert!(c.app.stream.is_none() && s.app.stream.is_none());
            assert!(
                c.recv.want.is_empty(),
                "server's sends lost: {:?}",
                c.recv.want.front()
            );
            assert!(
                s.recv.want.is_empty(),
                "client's sends lost: {:?}",
                s.recv.want.front()
            );
        }
    }
    for e in [&mut c, &mut s] {
        e.ev.local = true;
        e.s.close();
        e.drain();
        transmit(&mut e.s, &mut e.tx, usize::MAX);
        assert!(e.s.is_finished());
    }
}

/// Moves bytes both ways and continues streams until nothing moves. Returns whether a bit
/// was flipped on the way.
fn settle(c: &mut End<'_>, s: &mut End<'_>, now: Instant) -> bool {
    let mut flipped = false;
    for _ in 0..1_000_000 {
        let mut progress = c.app.continue_stream(&mut c.s);
        progress |= s.app.continue_stream(&mut s.s);
        let (n1, f1) = pipe(c, s, usize::MAX, now);
        if f1 {
            s.recv.active = false;
        }
        c.drain();
        s.drain();
        let (n2, f2) = pipe(s, c, usize::MAX, now);
        if f2 {
            c.recv.active = false;
        }
        c.drain();
        s.drain();
        flipped |= f1 | f2;
        if !progress && n1 == 0 && n2 == 0 {
            return flipped;
        }
    }
    panic!("the two sessions do not settle");
}
