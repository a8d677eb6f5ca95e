//! Hello World, REQ/REP (Guide chapter 1, "Ask and Ye Shall Receive": `hwserver`,
//! `hwclient`).
//!
//! The client sends "Hello", the server answers "World"; REQ and REP take turns.

use std::time::Duration;

use zmtp_std::{Result, Socket};

/// The server (`hwserver`): on a bound or connected REP socket, answers `requests`
/// requests with "World" after `work` (the Guide's `sleep(1)`), and returns the requests.
pub fn hwserver(socket: &Socket, requests: usize, work: Duration) -> Result<Vec<Vec<u8>>> {
    let mut seen = Vec::with_capacity(requests);
    for _ in 0..requests {
        let request = socket.recv()?;
        seen.push(request);
        if !work.is_zero() {
            std::thread::sleep(work); // "do some work"
        }
        socket.send("World")?;
    }
    Ok(seen)
}

/// The client (`hwclient`): on a REQ socket, sends "Hello" `requests` times, each after the
/// previous reply, and returns the replies.
pub fn hwclient(socket: &Socket, requests: usize) -> Result<Vec<Vec<u8>>> {
    let mut replies = Vec::with_capacity(requests);
    for _ in 0..requests {
        socket.send("Hello")?;
        replies.push(socket.recv()?);
    }
    Ok(replies)
}
