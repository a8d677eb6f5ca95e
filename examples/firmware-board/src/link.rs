//! One zmtp-core [`Socket`] peer over one embassy-net [`TcpSocket`]: the smallest run loop
//! that honours the sans-IO contract (drain events, write output, feed input, fire timers).
//!
//! This is what `zmtp-embassy` does for many peers with reconnection; here it is kept to one
//! connection so that the firmware measures zmtp-core itself.

use embassy_futures::select::{select3, Either3};
use embassy_net::tcp::TcpSocket;
use embassy_time::Timer;
use zmtp_core::socket::kind::Kind;
use zmtp_core::socket::{PeerHandle, Socket};
use zmtp_core::Instant;

/// The time now, as zmtp-core counts it (microseconds since boot).
pub fn now() -> Instant {
    Instant::from_micros(embassy_time::Instant::now().as_micros())
}

fn to_embassy(t: Instant) -> embassy_time::Instant {
    embassy_time::Instant::from_micros(t.as_micros())
}

/// Runs `peer` of `socket` over the connected `tcp` until its session is over and its last
/// output written, or the connection fails (then the session is told of the end of stream:
/// drain [`Socket::poll_event`] for its `PeerClosed`, then [`Socket::remove_peer`]). `app` runs after every wake-up: it drains
/// [`Socket::poll_event`], sends and receives, and returns when it next wants to run
/// (`None`: only when something happens).
pub async fn drive<'s, 'b, K: Kind>(
    socket: &mut Socket<'s, 'b, K>,
    peer: PeerHandle,
    tcp: &mut TcpSocket<'_>,
    mut app: impl FnMut(&mut Socket<'s, 'b, K>) -> Option<embassy_time::Instant>,
) {
    let (mut reader, mut writer) = tcp.split();
    loop {
        let wake = app(socket);
        if socket.is_finished(peer) {
            return;
        }
        let deadline = match (socket.poll_timeout().map(to_embassy), wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let want_write = !socket.poll_transmit(peer).is_empty();
        let can_read = !socket.recv_window(peer).is_empty();
        let woke = select3(
            async {
                if !can_read {
                    return core::future::pending().await;
                }
                // Input goes straight from the TCP buffer into the session's window.
                reader
                    .read_with(|data| {
                        let n = socket.feed(peer, data, now());
                        (n, ())
                    })
                    .await
            },
            async {
                match want_write {
                    true => writer.wait_write_ready().await,
                    false => core::future::pending().await,
                }
            },
            async {
                match deadline {
                    Some(t) => Timer::at(t).await,
                    None => core::future::pending().await,
                }
            },
        )
        .await;
        match woke {
            Either3::First(Ok(())) | Either3::Third(()) => {}
            // The peer closed its side or the connection broke: nothing more can be written.
            Either3::First(Err(_)) => {
                socket.handle_eof(peer);
                return;
            }
            Either3::Second(()) => {
                let written = writer
                    .write_with(|buf| {
                        let out = socket.poll_transmit(peer);
                        let n = out.len().min(buf.len());
                        buf[..n].copy_from_slice(&out[..n]);
                        (n, n)
                    })
                    .await;
                match written {
                    Ok(n) => {
                        // n was at most what poll_transmit returned.
                        let _ = socket.mark_transmitted(peer, n);
                    }
                    Err(_) => {
                        socket.handle_eof(peer);
                        return;
                    }
                }
            }
        }
        socket.handle_timeout(now());
    }
}
