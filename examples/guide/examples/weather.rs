//! Weather updates over PUB/SUB with a filter: the ZeroMQ Guide, chapter 1, "Getting the
//! Message Out" (`wuserver` and `wuclient`), both in one process.
//!
//! `cargo run -p zmtp-guide --example weather [ZIPCODE]` (10000-10009; default 10001)

use zmtp_guide::{weather, Stop, ANY_LOCAL};
use zmtp_std::{Context, SocketType};

fn main() -> Result<(), zmtp_std::Error> {
    let zipcode: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10001);
    let ctx = Context::new()?;
    let publisher = ctx.socket(SocketType::Pub)?;
    let endpoint = publisher.bind(ANY_LOCAL)?;
    let stop = Stop::new();
    let server = {
        let stop = stop.clone();
        std::thread::spawn(move || weather::wuserver(&publisher, 10000..=10009, 1, &stop))
    };

    println!("Collecting updates from weather server...");
    let subscriber = ctx.socket(SocketType::Sub)?;
    subscriber.connect(&endpoint)?;
    let updates = weather::wuclient(&subscriber, zipcode, 100)?.expect("well-formed updates");
    stop.stop();
    let published = server.join().expect("server thread")?;
    println!(
        "Average temperature for zipcode '{zipcode}' was {:.0}F ({} updates received, {published} published for 10 zip codes)",
        weather::average_temperature(&updates),
        updates.len()
    );
    Ok(())
}
