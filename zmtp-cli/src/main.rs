//! `zmtp`: a ZeroMQ command-line tool built on [`zmtp_std`] (ZMTP 3.1 in Rust). It talks to
//! libzmq, pyzmq, JeroMQ and every other ZeroMQ 3.x/4.x program.
//!
//! ```text
//! zmtp send   -t TYPE (-b EP | -c EP)... [options] FRAME...   send one message (--count, --interval)
//! zmtp recv   -t TYPE (-b EP | -c EP)... [options]            print each message received
//! zmtp echo   -t TYPE (-b EP | -c EP)... [options]            send every message back
//! zmtp req    -c EP [options] FRAME...                        one REQ round trip, print the reply
//! zmtp broker --frontend EP --backend EP                      the Guide's load-balancing broker
//! zmtp proxy  --frontend TYPE,EP --backend TYPE,EP [--capture TYPE,EP]   like zmq_proxy
//! zmtp bench  thr|lat ...                                     throughput / latency (vs libzmq too)
//! zmtp decode [--hex]                                         decode a captured ZMTP byte stream
//! zmtp keygen [--secret KEY]                                  print a new CURVE key pair
//! ```
//!
//! `TYPE` is one of the eleven socket types in any case (`pair`, `pub`, `sub`, `req`, `rep`,
//! `dealer`, `router`, `pull`, `push`, `xpub`, `xsub`); `EP` is `tcp://host:port` or
//! `ipc:///path` where the library supports it. Port 0 binds a free port.
//!
//! # Output
//!
//! - **stdout**: one line per message, a JSON array of the message's frames as strings,
//!   flushed after every line: `["hello","world"]`. With `--hex` each frame is lower-case hex
//!   (`["68656c6c6f"]`), and the `FRAME` arguments are read as hex too.
//! - **A frame that is not UTF-8** (without `--hex`) is printed with each invalid byte
//!   sequence replaced by U+FFFD (`"\ufffd"` in JSON, printed as the character), and a
//!   warning naming the frame goes to stderr; the line is always valid JSON. Use `--hex`
//!   for binary frames (a ROUTER's routing ids, for instance).
//! - **stderr**: status lines. Each endpoint bound is announced first, one line each, in the
//!   order given: `bound tcp://127.0.0.1:41234`, so a script can bind port 0 and read the
//!   port. Errors are one line starting with `zmtp: error:`.
//!
//! # Exit codes
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | done (`--count` reached, reply printed, stream decoded) |
//! | 1 | an error: socket, network, malformed stream (`decode`), every server refused our credentials |
//! | 2 | bad usage: unknown option, bad socket type or endpoint, bad hex, a type that cannot do this, a bad key, security options that do not fit together |
//! | 3 | `--timeout` ran out while waiting (for a message, a reply, a peer, room to send) |
//! | 130 | interrupted (Ctrl-C, SIGINT) |
//!
//! # Example
//!
//! A PULL socket bound here, fed by pyzmq:
//!
//! ```text
//! $ zmtp recv -t pull -b tcp://127.0.0.1:5555 --count 1 &
//! bound tcp://127.0.0.1:5555
//! $ python3 -c 'import zmq; c = zmq.Context(); s = c.socket(zmq.PUSH); s.connect("tcp://127.0.0.1:5555"); s.send_multipart([b"hello", b"world"]); s.close(linger=2000); c.term()'
//! ["hello","world"]
//! ```
//!
//! A REQ round trip to a REP server:
//!
//! ```text
//! $ zmtp echo -t rep -b tcp://127.0.0.1:5556 &
//! bound tcp://127.0.0.1:5556
//! $ zmtp req -c tcp://127.0.0.1:5556 --timeout 2000 ping
//! ["ping"]
//! ```
//!
//! What a libzmq REQ sends when it asks "ping" (greeting, READY, the message with its
//! empty delimiter), decoded; `zmtp decode` without `--hex` reads raw bytes, for instance
//! one side of a `socat -x` or `tcpflow` capture:
//!
//! ```text
//! $ echo "ff00000000000000017f03014e554c4c $(printf '0%.0s' {1..96})
//!         04260552454144590b536f636b65742d5479706500000003524551084964656e7469747900000000
//!         0100 000470696e67" | zmtp decode --hex
//! greeting version=3.1 mechanism=NULL as-server=0
//! command READY Socket-Type="REQ" Identity=""
//! ["","ping"]
//! ```
//!
//! Load balancing and forwarding, with libzmq (or zmtp) clients and workers:
//!
//! ```text
//! $ zmtp broker --frontend tcp://*:5555 --backend tcp://*:5556
//! $ zmtp proxy --frontend xsub,tcp://*:6000 --backend xpub,tcp://*:6001 --capture pub,tcp://*:6002
//! ```
//!
//! Benchmarks, one side per process, either side replaceable by libzmq's perf tools:
//!
//! ```text
//! $ zmtp bench thr recv -b tcp://127.0.0.1:5555 --size 100 --count 1000000   # local_thr
//! $ zmtp bench thr send -c tcp://127.0.0.1:5555 --size 100 --count 1000000   # remote_thr
//! $ zmtp bench lat echo -b tcp://127.0.0.1:5555 --size 100 --count 10000     # local_lat
//! $ zmtp bench lat ping -c tcp://127.0.0.1:5555 --size 100 --count 10000     # remote_lat
//! ```
//!
//! # Security: CURVE and PLAIN
//!
//! `send`, `recv`, `echo`, `req` and `bench` (to measure what security costs) take libzmq's
//! security options. Keys are Z85 (40 characters, as libzmq, pyzmq and `zmtp keygen` print
//! them) or 64 hex digits.
//!
//! | option | libzmq | |
//! | --- | --- | --- |
//! | `--curve-server` | `ZMQ_CURVE_SERVER` | be a CURVE server; needs the secret key |
//! | `--curve-secretkey KEY` | `ZMQ_CURVE_SECRETKEY` | our secret key (else `$ZMTP_CURVE_SECRETKEY`) |
//! | `--curve-publickey KEY` | `ZMQ_CURVE_PUBLICKEY` | optional: derived from the secret, checked if given |
//! | `--curve-serverkey KEY` | `ZMQ_CURVE_SERVERKEY` | be a CURVE client of this server |
//! | `--allow-curve-key KEY` (repeatable) | ZAP allow-list | CURVE server: only these client keys |
//! | `--plain-server` | `ZMQ_PLAIN_SERVER` | be a PLAIN server |
//! | `--plain-username U` | `ZMQ_PLAIN_USERNAME` | be a PLAIN client |
//! | `--plain-password P` | `ZMQ_PLAIN_PASSWORD` | else `$ZMTP_PLAIN_PASSWORD`, else empty |
//! | `--allow-plain USER:PASSWORD` (repeatable) | ZAP allow-list | PLAIN server: only these users |
//! | `--zap-endpoint EP` | (libzmq: `inproc://zeromq.zap.01`) | server: ask this ZAP handler (RFC 27) |
//! | `--zap-domain D` | `ZMQ_ZAP_DOMAIN` | server: the domain in ZAP requests |
//!
//! - A CURVE client without `--curve-secretkey` (and without `$ZMTP_CURVE_SECRETKEY`) makes
//!   a key pair for the run and prints its public key on stderr, after the `bound` lines:
//!   `zmtp: no --curve-secretkey: using a new CURVE key pair for this run; public key ...`.
//! - A server without an allow-list or ZAP endpoint lets every client in, as libzmq does
//!   without a ZAP handler (CURVE still encrypts and still proves the server's identity).
//! - Options that do not fit together (CURVE and PLAIN, a secret key without a role, an
//!   allow-list on a client, a public key that is not the secret key's) and malformed keys
//!   are usage errors (exit 2); a malformed secret key is not echoed.
//! - A client whose every server refused its credentials stops at once with exit 1 (a
//!   refused client does not reconnect): `zmtp: error: 127.0.0.1:5555: the server refused
//!   our credentials (does the server allow our public key ...?); ...`. A client's first
//!   other failed security handshake (a wrong `--curve-serverkey`: the server hangs up) is
//!   a warning; it keeps retrying until `--timeout`.
//! - With `-v`, every failed security handshake is printed (a server: each client it turned
//!   away, `zmtp: 127.0.0.1:40312: client rejected: 400 not in the allow-list`; it keeps
//!   serving the others), and `handshake done` lines name the mechanism: `... handshake
//!   done with a PUSH peer (CURVE)`.
//! - Secrets on a command line can be read by other local users (`ps`): prefer the
//!   environment variables.
//!
//! `zmtp keygen` prints a new pair as two lines, `public: KEY` and `secret: KEY` (libzmq's
//! `curve_keygen` prints the same keys under `== CURVE PUBLIC KEY ==` headers);
//! `zmtp keygen --secret -` reads a secret key on stdin and prints its pair.
//!
//! ```text
//! $ zmtp keygen > server.keys
//! $ export ZMTP_CURVE_SECRETKEY=$(sed -n 's/^secret: //p' server.keys)
//! $ zmtp echo -t rep -b tcp://127.0.0.1:5555 --curve-server &
//! bound tcp://127.0.0.1:5555
//! $ zmtp req -c tcp://127.0.0.1:5555 --curve-serverkey "$(sed -n 's/^public: //p' server.keys)" ping
//! zmtp: no --curve-secretkey: using a new CURVE key pair for this run; public key X&(dn=...
//! ["ping"]
//! ```
//!
//! Against pyzmq, a CURVE PUSH that only a known client key may feed:
//!
//! ```text
//! $ zmtp recv -t pull -b tcp://127.0.0.1:5555 --curve-server --allow-curve-key "$CLIENT_PUBLIC" -v
//! $ python3 -c '
//! import zmq; c = zmq.Context(); s = c.socket(zmq.PUSH)
//! s.curve_secretkey = b"<client secret>"; s.curve_publickey = b"<client public>"
//! s.curve_serverkey = b"<server public>"
//! s.connect("tcp://127.0.0.1:5555"); s.send(b"sealed"); s.close(linger=2000); c.term()'
//! ```
//!
//! (pyzmq does not terminate its contexts when the interpreter exits, and only
//! `zmq_ctx_term` waits for queued messages to go out: without the last two calls a short
//! script can exit with its message still queued.)

mod bench;
mod broker;
mod cli;
mod decode;
mod error;
mod output;
mod proxy;
mod security;
mod sock;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::CliError;

/// Set by the Ctrl-C handler; every waiting loop checks it at least every
/// [`sock::SLICE`].
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether Ctrl-C (SIGINT) or SIGTERM has been received.
fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::Relaxed)) {
        eprintln!("zmtp: warning: cannot catch Ctrl-C: {e}");
    }
    let result = match cli.command {
        Command::Send(a) => sock::send(a),
        Command::Recv(a) => sock::recv(a),
        Command::Echo(a) => sock::echo(a),
        Command::Req(a) => sock::req(a),
        Command::Broker(a) => broker::run(a),
        Command::Proxy(a) => proxy::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Decode(a) => decode::run(a),
        Command::Keygen(a) => security::keygen(&a),
    };
    // The sockets and their contexts are closed: let -v print their last events.
    sock::join_monitors();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !matches!(e, CliError::Interrupted) {
                eprintln!("zmtp: error: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
