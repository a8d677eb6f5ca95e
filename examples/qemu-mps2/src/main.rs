//! zmtp-core on a real Cortex-M4 core, under QEMU (`mps2-an386`).
//!
//! A DEALER session (we connected) and a ROUTER session (we accepted), each on 512-byte
//! receive and 1 KiB transmit buffers in statics, no allocator, talk to each other in memory:
//! greeting and READY, a message each way (one multipart), one frame larger than the receive
//! buffer (streamed out, received in chunks) and a reply. The DEALER's READY is checked byte
//! for byte against libzmq's, and everything the DEALER wrote is fed again, one byte at a
//! time, to a fresh ROUTER session, which must see the same messages.
//!
//! Any failed check panics; the panic handler prints it and exits QEMU with a failure code
//! through semihosting. Success prints a line starting `qemu-mps2: PASS` and exits 0.
//! Run: `cargo run --release` in this directory (or `.ci/qemu.sh` from the repository).
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use cortex_m::singleton;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use zmtp_core::{Buffers, Config, Event, Instant, Role, SendError, Session, SocketType};

const RX: usize = 512;
const TX: usize = 1024;
/// A frame body larger than the receive buffer: it arrives as `Event::FrameChunk`s.
const BIG: usize = 3000;
/// No clock is needed: nothing here waits for a timeout.
const NOW: Instant = Instant::ZERO;

/// The READY a libzmq DEALER without identity sends, as captured from libzmq:
/// `04290552454144590b536f636b65742d54797065000000064445414c4552084964656e7469747900000000`.
const LIBZMQ_DEALER_READY: &[u8] =
    b"\x04\x29\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER\x08Identity\x00\x00\x00\x00";

type Small = heapless::Vec<u8, 32>;
/// Everything the DEALER wrote, to be replayed byte by byte.
type Transcript = heapless::Vec<u8, 4096>;

/// Byte `i` of the big frame's body.
fn pattern(i: usize) -> u8 {
    (i * 7 % 251) as u8
}

/// What one side received.
#[derive(Default)]
struct Inbox {
    peer: Option<SocketType>,
    frames: heapless::Vec<(Small, bool), 8>,
    big_len: u64,
    chunks: u32,
}

impl Inbox {
    fn on(&mut self, ev: Event<'_>) {
        match ev {
            Event::HandshakeComplete(p) => {
                assert!(self.peer.is_none(), "second handshake");
                self.peer = Some(p.socket_type);
            }
            Event::Frame { data, more } => {
                let copy = Small::from_slice(data).expect("small frame");
                self.frames.push((copy, more)).expect("inbox full");
            }
            Event::FrameChunk(c) => {
                assert_eq!(c.frame_len, BIG as u64);
                assert_eq!(c.offset, self.big_len, "chunks in order");
                for (i, &b) in c.data.iter().enumerate() {
                    assert_eq!(b, pattern(c.offset as usize + i), "chunk byte");
                }
                self.big_len += c.data.len() as u64;
                self.chunks += 1;
                assert_eq!(c.is_last(), self.big_len == BIG as u64);
            }
            other => panic!("unexpected event {:?}", other),
        }
    }

    fn frame(&self, i: usize) -> (&[u8], bool) {
        let (data, more) = self.frames.get(i).expect("frame missing");
        (data, *more)
    }
}

/// Moves what `from` has to write into `to` (as much as its window takes); returns the count.
fn transfer(from: &mut Session<'_>, to: &mut Session<'_>, log: Option<&mut Transcript>) -> usize {
    let out = from.poll_transmit();
    let n = to.feed(out, NOW);
    if let Some(log) = log {
        log.extend_from_slice(&out[..n]).expect("transcript full");
    }
    from.mark_transmitted(n).expect("n <= pending");
    n
}

fn drain(s: &mut Session<'_>, inbox: &mut Inbox) {
    while let Some(ev) = s.poll_event() {
        inbox.on(ev);
    }
}

/// Runs both sessions until neither has a byte left to write.
struct Link<'a, 'b> {
    dealer: &'a mut Session<'b>,
    router: &'a mut Session<'b>,
    at_dealer: Inbox,
    at_router: Inbox,
    wire: Transcript,
}

impl Link<'_, '_> {
    fn pump(&mut self) {
        loop {
            let a = transfer(self.dealer, self.router, Some(&mut self.wire));
            drain(self.router, &mut self.at_router);
            let b = transfer(self.router, self.dealer, None);
            drain(self.dealer, &mut self.at_dealer);
            if a + b == 0 {
                return;
            }
        }
    }
}

#[entry]
fn main() -> ! {
    let d_rx = singleton!(: [u8; RX] = [0; RX]).expect("once");
    let d_tx = singleton!(: [u8; TX] = [0; TX]).expect("once");
    let r_rx = singleton!(: [u8; RX] = [0; RX]).expect("once");
    let r_tx = singleton!(: [u8; TX] = [0; TX]).expect("once");

    let dealer_cfg = Config::new(SocketType::Dealer);
    let router_cfg = Config::new(SocketType::Router);
    let bufs = Buffers { rx: d_rx, tx: d_tx };
    let mut dealer = Session::new(&dealer_cfg, Role::Connected, bufs, NOW).expect("dealer");
    let bufs = Buffers { rx: r_rx, tx: r_tx };
    let mut router = Session::new(&router_cfg, Role::Accepted, bufs, NOW).expect("router");
    let mut link = Link {
        dealer: &mut dealer,
        router: &mut router,
        at_dealer: Inbox::default(),
        at_router: Inbox::default(),
        wire: Transcript::new(),
    };

    // Greeting and READY.
    link.pump();
    assert!(
        link.dealer.is_ready() && link.router.is_ready(),
        "handshake"
    );
    assert_eq!(link.at_dealer.peer, Some(SocketType::Router));
    assert_eq!(link.at_router.peer, Some(SocketType::Dealer));
    let greeting = link.wire.get(..64).expect("greeting");
    assert_eq!(
        (greeting[0], greeting[9], greeting[10], greeting[11]),
        (0xff, 0x7f, 3, 1)
    );
    assert_eq!(&greeting[12..17], b"NULL\0");
    assert_eq!(
        link.wire.get(64..),
        Some(LIBZMQ_DEALER_READY),
        "READY != libzmq's"
    );

    // DEALER -> ROUTER: one frame.
    link.dealer.send_frame(b"hello", false).expect("send hello");
    link.pump();
    assert_eq!(link.at_router.frames.len(), 1);
    assert_eq!(link.at_router.frame(0), (&b"hello"[..], false));

    // ROUTER -> DEALER: a three-frame message with an empty middle frame.
    link.router
        .send_frame(b"part-1", true)
        .expect("send part-1");
    link.router.send_frame(b"", true).expect("send part-2");
    link.router
        .send_frame(b"part-3", false)
        .expect("send part-3");
    link.pump();
    assert_eq!(link.at_dealer.frames.len(), 3);
    assert_eq!(link.at_dealer.frame(0), (&b"part-1"[..], true));
    assert_eq!(link.at_dealer.frame(1), (&b""[..], true));
    assert_eq!(link.at_dealer.frame(2), (&b"part-3"[..], false));

    // DEALER -> ROUTER: a frame larger than both buffers, streamed out in pieces.
    link.dealer
        .start_frame(BIG as u64, false)
        .expect("start big");
    let mut sent = 0;
    while sent < BIG {
        let mut piece = [0u8; 200];
        let len = piece.len().min(BIG - sent);
        for (i, b) in piece[..len].iter_mut().enumerate() {
            *b = pattern(sent + i);
        }
        match link.dealer.write_frame_body(&piece[..len]) {
            Ok(n) => sent += n,
            Err(SendError::WouldBlock) => {}
            Err(e) => panic!("write_frame_body: {:?}", e),
        }
        link.pump();
    }
    assert_eq!(link.dealer.frame_body_remaining(), 0);
    assert_eq!(link.at_router.big_len, BIG as u64, "big frame incomplete");
    assert!(
        link.at_router.chunks as usize >= BIG / RX,
        "big frame not chunked"
    );

    // ROUTER -> DEALER: the reply.
    link.router.send_frame(b"done", false).expect("send done");
    link.pump();
    assert_eq!(link.at_dealer.frames.len(), 4);
    assert_eq!(link.at_dealer.frame(3), (&b"done"[..], false));
    assert!(!link.dealer.is_closed() && !link.router.is_closed());

    // The DEALER's whole output again, one byte at a time, into a fresh ROUTER that reuses
    // the first one's buffers.
    let Link {
        at_router,
        at_dealer,
        wire,
        ..
    } = link;
    let mut replay = Session::new(&router_cfg, Role::Accepted, router.into_buffers(), NOW)
        .expect("replay router");
    let mut at_replay = Inbox::default();
    for &b in wire.iter() {
        assert_eq!(replay.feed(&[b], NOW), 1, "window closed");
        drain(&mut replay, &mut at_replay);
        let pending = replay.poll_transmit().len();
        replay.mark_transmitted(pending).expect("discard output");
    }
    assert_eq!(at_replay.peer, Some(SocketType::Dealer));
    assert_eq!(at_replay.frames, at_router.frames);
    assert_eq!(at_replay.big_len, BIG as u64);
    assert!(!replay.is_closed());

    hprintln!(
        "qemu-mps2: PASS: DEALER<->ROUTER on cortex-m4, READY == libzmq's, 4 messages \
         ({} frames), {}-byte frame in {} chunks, {}-byte transcript replayed byte by byte \
         ({} chunks)",
        at_router.frames.len() + 1 + at_dealer.frames.len(),
        BIG,
        at_router.chunks,
        wire.len(),
        at_replay.chunks,
    );
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    hprintln!("qemu-mps2: FAIL: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        core::hint::spin_loop();
    }
}
