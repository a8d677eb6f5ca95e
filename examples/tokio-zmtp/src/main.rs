//! A tokio REQ client on zmtp-core, for any ZeroMQ REP or ROUTER server.
//!
//! ```text
//! cargo run -p zmtp-tokio-example                         # self-contained: our own ROUTER
//! cargo run -p zmtp-tokio-example -- tcp://127.0.0.1:5555  # a server of yours (libzmq, pyzmq...)
//! ```
//!
//! With an endpoint it sends three requests there and prints the replies (the ZeroMQ Guide's
//! `hwserver` answers "World"). Without one it first binds a tokio ROUTER of this crate that
//! echoes each request back, so the demo needs nothing but this crate: no libzmq.

use zmtp_tokio_example::{SocketType, ZSocket};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = match std::env::args().nth(1) {
        Some(endpoint) => endpoint.trim_start_matches("tcp://").to_owned(),
        None => {
            let router = ZSocket::bind("127.0.0.1:0", SocketType::Router).await?;
            let addr = router.local_addr().ok_or("no local address")?;
            tokio::spawn(async move {
                // [routing id, "", request]: the reply goes back along the same envelope.
                while let Ok(mut msg) = router.recv().await {
                    msg.push(b"echoed by a tokio ROUTER".to_vec());
                    let _ = router.send(msg).await; // the REQ may have gone
                }
            });
            addr.to_string()
        }
    };
    let req = ZSocket::connect(endpoint.as_str(), SocketType::Req).await?;
    for i in 1..=3 {
        req.send([format!("request {i}")]).await?;
        let reply = req.recv().await?.join(&b" | "[..]); // the frames, for printing
        println!("request {i} -> {}", String::from_utf8_lossy(&reply));
    }
    Ok(())
}
