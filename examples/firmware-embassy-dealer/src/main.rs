//! The DEALER of `firmware-dealer`, written with `zmtp-embassy`: an async socket handle for
//! the application and a runner task that connects, reconnects with backoff, keeps the
//! heartbeats and moves the bytes. Sends a three-frame message every second and prints what
//! comes back (try it with the pyzmq ROUTER in `firmware-dealer`'s docs).
//!
//! Built without the `zmtp` feature this is the baseline: the same board, network stack and
//! buffer bytes with an empty protocol loop, so that the difference in size is zmtp's
//! (zmtp-core and zmtp-embassy together).
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_time::{Duration, Timer};
use zmtp_firmware_board as board;

/// Bytes of each TCP buffer and each ZMTP session buffer (zmtp-embassy uses one size).
const BUF: usize = 1024;
/// Bytes of each message queue.
const QUEUE: usize = 1024;
/// One message a second.
const PERIOD: Duration = Duration::from_secs(1);

#[cfg(feature = "zmtp")]
mod app {
    use super::*;
    use core::net::{Ipv4Addr, SocketAddrV4};
    use static_cell::ConstStaticCell;
    use zmtp_embassy::{kind, Endpoint, Options, Resources, Runner, SocketType};

    /// One peer; every buffer and the socket's state, in one static (all zero at start:
    /// `.bss`). The socket type is fixed at compile time (`kind::Dealer`): the other
    /// patterns' code is left out.
    type Res = Resources<'static, 1, BUF, QUEUE, 0, kind::Dealer>;
    static RESOURCES: ConstStaticCell<Res> = ConstStaticCell::new(Res::new());

    #[embassy_executor::task]
    async fn zmq_runner(runner: Runner<'static, 1, kind::Dealer>) -> ! {
        runner.run().await
    }

    pub async fn run(spawner: Spawner, board: board::Board) -> ! {
        let _ = board.rng;
        let (ip, port) = board::BROKER;
        let broker = SocketAddrV4::new(Ipv4Addr::from(ip.octets()), port);
        let options = Options::new(SocketType::Dealer)
            .with_identity(b"nucleo-1")
            .with_heartbeat(core::time::Duration::from_secs(5));
        let Ok((mut socket, runner)) = zmtp_embassy::new(
            board.stack,
            RESOURCES.take(),
            options,
            &[Endpoint::connect(broker)],
        ) else {
            defmt::panic!("BUF holds the handshake");
        };
        spawner.spawn(zmq_runner(runner).expect("runner spawned once"));

        let mut reply = [0u8; 256];
        let mut seq: u32 = 0;
        loop {
            let n = seq.to_be_bytes();
            if socket
                .send(&[b"telemetry", &n, b"temperature=21.5"])
                .await
                .is_err()
            {
                defmt::panic!("a DEALER can always send");
            }
            seq = seq.wrapping_add(1);
            // Print what came back meanwhile, then wait for the next period.
            while let Ok(msg) = socket.try_recv(&mut reply) {
                for frame in msg.frames() {
                    defmt::info!("  {=[u8]:a}", frame);
                }
            }
            Timer::after(PERIOD).await;
        }
    }
}

/// The baseline: the same buffer bytes (2 TCP + 2 session buffers + 2 queues), the TCP ones
/// used by an empty protocol loop.
#[cfg(not(feature = "zmtp"))]
mod app {
    use super::*;
    use embassy_futures::select::{select, Either};
    use embassy_net::tcp::TcpSocket;
    use static_cell::ConstStaticCell;

    #[allow(dead_code)]
    struct Memory {
        tcp: [[u8; BUF]; 2],
        session: [[u8; BUF]; 2],
        queues: [[u8; QUEUE]; 2],
    }
    static MEMORY: ConstStaticCell<Memory> = ConstStaticCell::new(Memory {
        tcp: [[0; BUF]; 2],
        session: [[0; BUF]; 2],
        queues: [[0; QUEUE]; 2],
    });

    pub async fn run(_spawner: Spawner, board: board::Board) -> ! {
        let _ = board.rng;
        let mem = MEMORY.take();
        let [rx, tx] = &mut mem.tcp;
        let [scratch, _] = &mut mem.session;
        loop {
            let mut tcp = TcpSocket::new(board.stack, rx, tx);
            if tcp.connect(board::BROKER).await.is_ok() {
                loop {
                    match select(tcp.read(scratch), Timer::after(PERIOD)).await {
                        Either::First(Ok(0)) | Either::First(Err(_)) => break,
                        Either::First(Ok(n)) => defmt::info!("received {} bytes", n),
                        Either::Second(()) => {
                            if tcp.write(b"telemetry").await.is_err() {
                                break;
                            }
                        }
                    }
                }
            }
            tcp.abort();
            let _ = tcp.flush().await;
            drop(tcp);
            Timer::after(Duration::from_millis(250)).await;
        }
    }
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let board = board::init(spawner).await;
    app::run(spawner, board).await
}
