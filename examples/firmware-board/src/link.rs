//! One zmtp-core [`Socket`] peer over one embassy-net [`TcpSocket`]: the smallest run loop
//! that honours the sans-IO contract (drain events, write output, feed input, fire timers).
//!
//! This is what `zmtp-embassy` does for many peers with reconnection; here it is kept to one
//! connection so that the firmware measures zmtp-core itself.

use embassy_futures::select::{select, Either};
use embassy_net::tcp::TcpSocket;
use embassy_time::Timer;
use zmtp_core::socket::kind::Kind;
use zmtp_core::socket::{PeerHandle, Socket};
use zmtp_core::Instant;

/// The time now, as zmtp-core counts it (microseconds since boot). Out of line: the tick
/// conversion is 64-bit arithmetic, and the run loop asks in several places.
#[inline(never)]
pub fn now() -> Instant {
    Instant::from_micros(embassy_time::Instant::now().as_micros())
}

fn to_embassy(t: Instant) -> embassy_time::Instant {
    embassy_time::Instant::from_micros(t.as_micros())
}

/// Runs `peer` of `socket` over the connected `tcp` until its session is over and its last
/// output written, or the connection fails (then the session is told of the end of stream:
/// drain [`Socket::poll_event`] for its `PeerClosed`, then [`Socket::remove_peer`]). `app` runs
/// after every wake-up: it drains [`Socket::poll_event`], sends and receives, and returns when
/// it next wants to run (`None`: only when something happens).
///
/// The loop a user would write: output first (waiting for room in the TCP buffer), then wait
/// for input or the next deadline. While a write waits, nothing is read and no timer fires:
/// a peer that stops reading stalls the loop until TCP gives up (bound it with
/// `TcpSocket::set_timeout`).
pub async fn drive<'s, 'b, K: Kind>(
    socket: &mut Socket<'s, 'b, K>,
    peer: PeerHandle,
    tcp: &mut TcpSocket<'_>,
    mut app: impl FnMut(&mut Socket<'s, 'b, K>) -> Option<embassy_time::Instant>,
) {
    loop {
        let wake = app(socket);
        loop {
            let out = socket.poll_transmit(peer);
            if out.is_empty() {
                break;
            }
            let Ok(n) = tcp.write(out).await else {
                socket.handle_eof(peer);
                return;
            };
            // n is at most what poll_transmit returned.
            let _ = socket.mark_transmitted(peer, n);
        }
        if socket.is_finished(peer) {
            return;
        }
        // The earlier of zmtp's next deadline and the application's (`MAX`: never).
        let never = embassy_time::Instant::MAX;
        let deadline = socket
            .poll_timeout()
            .map_or(never, to_embassy)
            .min(wake.unwrap_or(never));
        // Input goes straight from the TCP buffer into the session's window; an empty window
        // (the receive queue is full) waits for the application to receive.
        let window = socket.recv_window(peer);
        let timer = Timer::at(deadline);
        let read = if window.is_empty() {
            timer.await;
            None
        } else {
            match select(tcp.read(window), timer).await {
                Either::First(r) => Some(r),
                Either::Second(()) => None,
            }
        };
        match read {
            Some(Ok(n)) if n > 0 => {
                // n is at most the window's length.
                let _ = socket.commit_received(peer, n, now());
            }
            // The peer closed its side (0) or the connection broke.
            Some(_) => {
                socket.handle_eof(peer);
                return;
            }
            None => {}
        }
        socket.handle_timeout(now());
    }
}
