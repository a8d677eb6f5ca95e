//! A ZeroMQ DEALER on a NUCLEO-F429ZI: connects to a ROUTER (a broker) over Ethernet, sends a
//! three-frame message every second, prints every message it gets, keeps the connection alive
//! with ZMTP heartbeats (RFC 37 PING/PONG), and reconnects with exponential backoff.
//!
//! Built with the `curve` feature (the `firmware-curve-dealer` crate builds this file so) the
//! connection is encrypted and authenticated with CURVE (RFC 26): the client's key pair and
//! the broker's public key are compiled in, the per-connection randomness comes from the
//! STM32's hardware RNG.
//!
//! Built without the `zmtp` feature this is the baseline: the same board, network stack,
//! buffers and pacing with an empty protocol loop, so that the difference in size is zmtp's.
//!
//! A broker to try it with (pyzmq; `BROKER` in `firmware-board` is where it must listen):
//!
//! ```python
//! import zmq
//! s = zmq.Context().socket(zmq.ROUTER)
//! # CURVE only: s.curve_server = True; s.curve_secretkey = b"hN85XXQBb/H=03BYa!^8sH!/y5A*L2l1#%A?bUGf"
//! s.bind("tcp://0.0.0.0:5555")
//! while True:
//!     msg = s.recv_multipart()
//!     s.send_multipart([msg[0], b"ack", msg[2]])
//! ```
//!
//! Flash and run with `cargo run --release` (probe-rs; defmt output over RTT).
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_net::tcp::TcpSocket;
use embassy_time::{Duration, Instant, Timer};
use static_cell::ConstStaticCell;
use zmtp_firmware_board as board;

/// embassy-net's TCP buffers.
const TCP_RX: usize = 1024;
const TCP_TX: usize = 1024;
/// zmtp session buffers: frames larger than `RX` arrive in chunks (reassembled in the queue).
const RX: usize = 512;
const TX: usize = 512;
/// Whole messages waiting for the application, and for the peer.
const RECV_QUEUE: usize = 1024;
const SEND_QUEUE: usize = 1024;

/// One message a second.
const PERIOD: Duration = Duration::from_secs(1);
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
}

static MEMORY: ConstStaticCell<Memory> = ConstStaticCell::new(Memory {
    tcp_rx: [0; TCP_RX],
    tcp_tx: [0; TCP_TX],
    rx: [0; RX],
    tx: [0; TX],
    recv_queue: [0; RECV_QUEUE],
    send_queue: [0; SEND_QUEUE],
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
    use zmtp_core::socket::SocketSendError;
    use zmtp_core::socket::{kind, PeerMemory, PeerSlot, Socket, SocketConfig};
    use zmtp_core::{Config, Role, SocketType};

    let stack = board.stack;
    let mut session = Config::new(SocketType::Dealer).with_identity(b"nucleo-1");
    // PING every 5 s; give up on a peer silent for 15 s; ask it to give up on us after 30 s.
    session.heartbeat_interval = Some(core::time::Duration::from_secs(5));
    session.heartbeat_timeout = Some(core::time::Duration::from_secs(15));
    session.heartbeat_ttl = Some(core::time::Duration::from_secs(30));
    session.handshake_timeout = Some(core::time::Duration::from_secs(10));
    #[cfg(feature = "curve")]
    let (keys, mut rng) = (curve::client_keys(), board.rng);
    #[cfg(feature = "curve")]
    {
        session = session.with_security(zmtp_core::Security::CurveClient {
            server_key: curve::server_key(),
            keys,
        });
    }
    #[cfg(not(feature = "curve"))]
    let _ = board.rng;
    let mut slots = [PeerSlot::new(PeerMemory {
        rx: &mut mem.rx,
        tx: &mut mem.tx,
        recv_queue: &mut mem.recv_queue,
        send_queue: &mut mem.send_queue,
    })];
    // The type fixed at compile time: no other pattern's code in the image.
    let mut socket = Socket::typed(kind::Dealer, SocketConfig::new(session), &mut slots);

    let mut backoff = BACKOFF_MIN;
    let mut seq: u32 = 0;
    loop {
        let mut tcp = TcpSocket::new(stack, &mut mem.tcp_rx, &mut mem.tcp_tx);
        if let Err(e) = tcp.connect(board::BROKER).await {
            defmt::warn!("connect: {}", e);
            drop(tcp);
            back_off(&mut backoff).await;
            continue;
        }
        #[cfg(not(feature = "curve"))]
        let peer = socket.add_peer(Role::Connected, link::now());
        #[cfg(feature = "curve")]
        let peer = socket.add_peer_curve(Role::Connected, link::now(), curve::random(&mut rng));
        // One slot, freed before every reconnect.
        let Ok(peer) = peer else {
            defmt::panic!("no free slot");
        };
        defmt::info!("connected");
        let mut next_send = Instant::now();
        link::drive(&mut socket, peer, &mut tcp, |socket| {
            on_events(socket, &mut backoff);
            while let Ok(msg) = socket.recv() {
                defmt::info!("received {} frames", msg.len());
                for frame in msg.frames() {
                    defmt::info!("  {=[u8]:a}", frame);
                }
            }
            if Instant::now() >= next_send {
                let n = seq.to_be_bytes();
                match socket.send(&[b"telemetry", &n, b"temperature=21.5"]) {
                    Ok(()) => {
                        seq = seq.wrapping_add(1);
                        next_send += PERIOD;
                    }
                    // Not ready yet, or the queue is full: try again a little later.
                    Err(SocketSendError::WouldBlock) => {
                        next_send = Instant::now() + Duration::from_millis(100)
                    }
                    Err(_) => defmt::panic!("a DEALER can always send"),
                }
            }
            Some(next_send)
        })
        .await;
        on_events(&mut socket, &mut backoff);
        socket.remove_peer(peer);
        tcp.abort();
        let _ = tcp.flush().await;
        drop(tcp);
        back_off(&mut backoff).await;
    }
}

/// Reports peer events; a completed handshake resets the backoff.
#[cfg(feature = "zmtp")]
fn on_events<K: zmtp_core::socket::kind::Kind>(
    socket: &mut zmtp_core::socket::Socket<'_, '_, K>,
    backoff: &mut Duration,
) {
    use zmtp_core::socket::SocketEvent;
    while let Some(event) = socket.poll_event() {
        match event {
            SocketEvent::PeerReady(_) => {
                defmt::info!("handshake done");
                *backoff = BACKOFF_MIN;
            }
            #[cfg(feature = "zmtp-log")]
            SocketEvent::PeerClosed(_, reason) => defmt::warn!("closed: {}", reason),
            #[cfg(not(feature = "zmtp-log"))]
            SocketEvent::PeerClosed(..) => defmt::warn!("closed"),
            _ => {}
        }
    }
}

/// CURVE material: compiled-in keys, randomness from the hardware RNG.
#[cfg(feature = "curve")]
mod curve {
    use zmtp_core::mechanism::curve::{CurveKeyPair, CurveRandom};
    use zmtp_core::mechanism::z85;

    /// The broker's public key (its secret key is in the crate docs, for trying this out).
    /// Example keys: make your own with `zmq.curve_keypair()` or `curve_keygen`.
    const SERVER_PUBLIC: &[u8; 40] = b"!sR/F)jAKe50<i$*ab4aKbg&KSH8Gg<%8>7h/(R{";
    /// Our secret key (public: `uC$Gx+g3T2A4]mQbKhj)&}8z<URRjn1o<cqf(WBF`). In a product this
    /// would live in a protected flash page or a secure element, not in the image.
    const CLIENT_SECRET: &[u8; 40] = b"G]kJrSNyzovj6SO.*.w#u-KS.:6$sE/PLS&rDSf5";

    pub fn server_key() -> [u8; 32] {
        let Ok(key) = z85::decode_key(SERVER_PUBLIC) else {
            defmt::panic!("bad SERVER_PUBLIC");
        };
        key
    }

    /// Our key pair, derived once (an X25519 scalar multiplication).
    pub fn client_keys() -> &'static CurveKeyPair {
        static KEYS: static_cell::StaticCell<CurveKeyPair> = static_cell::StaticCell::new();
        let Ok(keys) = CurveKeyPair::from_z85_secret(CLIENT_SECRET) else {
            defmt::panic!("bad CLIENT_SECRET");
        };
        KEYS.init(keys)
    }

    /// Fresh randomness for one connection from the STM32's TRNG.
    pub fn random(rng: &mut zmtp_firmware_board::HwRng) -> CurveRandom {
        CurveRandom::from_fn(|buf| rng.fill_bytes(buf))
    }
}

/// The baseline: the same connection handling, buffers and pacing, no protocol. What
/// arrives is read into the receive buffer and dropped; a message is written each period.
#[cfg(not(feature = "zmtp"))]
async fn run(board: board::Board, mem: &'static mut Memory) -> ! {
    use embassy_futures::select::{select, Either};
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
        let mut next_send = Instant::now();
        loop {
            match select(tcp.read(&mut mem.rx), Timer::at(next_send)).await {
                Either::First(Ok(0)) | Either::First(Err(_)) => break,
                Either::First(Ok(n)) => defmt::info!("received {} bytes", n),
                Either::Second(()) => {
                    let msg = &mem.tx[..64];
                    if tcp.write(msg).await.is_err() {
                        break;
                    }
                    next_send += PERIOD;
                }
            }
        }
        defmt::warn!("closed");
        tcp.abort();
        let _ = tcp.flush().await;
        drop(tcp);
        back_off(&mut backoff).await;
    }
}
