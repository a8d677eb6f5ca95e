//! A ZeroMQ SUB on a NUCLEO-F429ZI: connects to a PUB over Ethernet, subscribes to the topic
//! `sensor/` (the publisher filters: only matching messages cross the wire, RFC 29), prints
//! every message it gets, keeps the connection alive with ZMTP heartbeats, and reconnects
//! with exponential backoff (the subscription is sent again on every connection).
//!
//! Built without the `zmtp` feature this is the baseline: the same board, network stack and
//! buffers with an empty protocol loop, so that the difference in size is zmtp's.
//!
//! A publisher to try it with (pyzmq; `BROKER` in `firmware-board` is where it must listen):
//!
//! ```python
//! import time, zmq
//! s = zmq.Context().socket(zmq.PUB)
//! s.bind("tcp://0.0.0.0:5555")
//! while True:
//!     s.send_multipart([b"sensor/temperature", b"21.5"])
//!     s.send_multipart([b"other/topic", b"not for the firmware"])
//!     time.sleep(1)
//! ```
//!
//! Flash and run with `cargo run --release` (probe-rs; defmt output over RTT).
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_net::tcp::TcpSocket;
use embassy_time::{Duration, Timer};
use static_cell::ConstStaticCell;
use zmtp_firmware_board as board;

/// embassy-net's TCP buffers.
const TCP_RX: usize = 1024;
const TCP_TX: usize = 1024;
/// zmtp session buffers.
const RX: usize = 512;
const TX: usize = 512;
/// Whole messages waiting for the application; subscriptions waiting for the peer.
const RECV_QUEUE: usize = 1024;
const SEND_QUEUE: usize = 128;
/// The subscriptions' radix tree: 8 nodes, room for a few short topics (a literal, so the
/// baseline has the same RAM).
const TRIE: usize = 224;
#[cfg(feature = "zmtp")]
const _: () =
    assert!(TRIE == zmtp_core::socket::subscription_memory(zmtp_core::SocketType::Sub, 1, 8));

/// The topic we want.
#[cfg_attr(not(feature = "zmtp"), allow(dead_code))]
const TOPIC: &[u8] = b"sensor/";

/// Reconnection backoff: doubled after each failure, reset after a handshake.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(8);

/// Every buffer this application chose, in one static (reported apart in the size table).
/// The baseline leaves the queues unused but keeps them, so both builds have the same RAM.
#[cfg_attr(not(feature = "zmtp"), allow(dead_code))]
struct Memory {
    tcp_rx: [u8; TCP_RX],
    tcp_tx: [u8; TCP_TX],
    rx: [u8; RX],
    tx: [u8; TX],
    recv_queue: [u8; RECV_QUEUE],
    send_queue: [u8; SEND_QUEUE],
    trie: [u8; TRIE],
}

static MEMORY: ConstStaticCell<Memory> = ConstStaticCell::new(Memory {
    tcp_rx: [0; TCP_RX],
    tcp_tx: [0; TCP_TX],
    rx: [0; RX],
    tx: [0; TX],
    recv_queue: [0; RECV_QUEUE],
    send_queue: [0; SEND_QUEUE],
    trie: [0; TRIE],
});

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let board = board::init(spawner).await;
    run(board, MEMORY.take()).await
}

/// Waits out the backoff after a failure and doubles it.
async fn back_off(backoff: &mut Duration) {
    Timer::after(*backoff).await;
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
}

#[cfg(feature = "zmtp")]
async fn run(board: board::Board, mem: &'static mut Memory) -> ! {
    use board::link;
    use zmtp_core::socket::{
        kind, PeerMemory, PeerSlot, Socket, SocketConfig, SocketEvent, SubscriptionMemory,
    };
    use zmtp_core::{Config, Role, SocketType};

    let stack = board.stack;
    let _ = board.rng;
    let mut session = Config::new(SocketType::Sub);
    // PING every 5 s; give up on a publisher silent for 15 s.
    session.heartbeat_interval = Some(core::time::Duration::from_secs(5));
    session.heartbeat_timeout = Some(core::time::Duration::from_secs(15));
    session.handshake_timeout = Some(core::time::Duration::from_secs(10));
    let mut slots = [PeerSlot::new(PeerMemory {
        rx: &mut mem.rx,
        tx: &mut mem.tx,
        recv_queue: &mut mem.recv_queue,
        send_queue: &mut mem.send_queue,
    })];
    // The type fixed at compile time: no other pattern's code in the image.
    let mut socket = Socket::typed_with_subscriptions(
        kind::Sub,
        SocketConfig::new(session),
        &mut slots,
        SubscriptionMemory::new(&mut mem.trie),
    );
    // Kept across reconnections: every new publisher connection gets it.
    if socket.subscribe(TOPIC).is_err() {
        defmt::panic!("TRIE and SEND_QUEUE are sized for TOPIC");
    }

    let mut backoff = BACKOFF_MIN;
    loop {
        let mut tcp = TcpSocket::new(stack, &mut mem.tcp_rx, &mut mem.tcp_tx);
        if let Err(e) = tcp.connect(board::BROKER).await {
            defmt::warn!("connect: {}", e);
            drop(tcp);
            back_off(&mut backoff).await;
            continue;
        }
        // One slot, freed before every reconnect.
        let Ok(peer) = socket.add_peer(Role::Connected, link::now()) else {
            defmt::panic!("no free slot");
        };
        defmt::info!("connected");
        link::drive(&mut socket, peer, &mut tcp, |socket| {
            while let Some(event) = socket.poll_event() {
                match event {
                    SocketEvent::PeerReady(_) => {
                        defmt::info!("subscribed to {=[u8]:a}", TOPIC);
                        backoff = BACKOFF_MIN;
                    }
                    #[cfg(feature = "zmtp-log")]
                    SocketEvent::PeerClosed(_, reason) => defmt::warn!("closed: {}", reason),
                    #[cfg(not(feature = "zmtp-log"))]
                    SocketEvent::PeerClosed(..) => defmt::warn!("closed"),
                    _ => {}
                }
            }
            // Only messages whose first frame starts with TOPIC get here.
            while let Ok(msg) = socket.recv() {
                let mut frames = msg.frames();
                let topic = frames.next().unwrap_or_default();
                defmt::info!("{=[u8]:a}: {} more frames", topic, frames.count());
            }
            None
        })
        .await;
        socket.remove_peer(peer);
        tcp.abort();
        let _ = tcp.flush().await;
        drop(tcp);
        back_off(&mut backoff).await;
    }
}

/// The baseline: the same connection handling and buffers, no protocol. What arrives is read
/// into the receive buffer and dropped.
#[cfg(not(feature = "zmtp"))]
async fn run(board: board::Board, mem: &'static mut Memory) -> ! {
    let stack = board.stack;
    let _ = board.rng;
    let mut backoff = BACKOFF_MIN;
    loop {
        let mut tcp = TcpSocket::new(stack, &mut mem.tcp_rx, &mut mem.tcp_tx);
        if let Err(e) = tcp.connect(board::BROKER).await {
            defmt::warn!("connect: {}", e);
            drop(tcp);
            back_off(&mut backoff).await;
            continue;
        }
        defmt::info!("connected");
        backoff = BACKOFF_MIN;
        while let Ok(n @ 1..) = tcp.read(&mut mem.rx).await {
            defmt::info!("received {} bytes", n);
        }
        defmt::warn!("closed");
        tcp.abort();
        let _ = tcp.flush().await;
        drop(tcp);
        back_off(&mut backoff).await;
    }
}
