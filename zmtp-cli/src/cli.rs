//! Command-line arguments (clap).

use clap::{Args, Parser, Subcommand, ValueEnum};
use zmtp_std::SocketType;

const AFTER_HELP: &str = "\
OUTPUT: one line per message on stdout, a JSON array of its frames as strings, flushed after
each line: [\"hello\",\"world\"]. With --hex, frames are hex. A frame that is not UTF-8 is
printed (without --hex) with U+FFFD for each bad byte sequence, and a warning goes to stderr.
Status lines go to stderr; each endpoint bound comes first, as `bound tcp://127.0.0.1:41234`.

SECURITY (send, recv, echo, req, bench): CURVE server --curve-server --curve-secretkey KEY, client
--curve-serverkey KEY [--curve-secretkey KEY]; PLAIN server --plain-server, client
--plain-username U --plain-password P; allow-lists --allow-curve-key, --allow-plain. Keys are
Z85 (`zmtp keygen` makes a pair) or hex. Secrets can come from ZMTP_CURVE_SECRETKEY and
ZMTP_PLAIN_PASSWORD instead of the command line (which `ps` shows).

EXIT CODES: 0 done, 1 error (also: every server refused our credentials), 2 bad usage (also:
bad keys, security options that do not fit together), 3 --timeout ran out, 130 interrupted.";

/// The help heading of the security options.
const SECURITY: &str = "Security (CURVE, PLAIN)";

/// ZeroMQ from the command line (ZMTP 3.1; talks to libzmq, pyzmq, JeroMQ, ...).
#[derive(Debug, Parser)]
#[command(name = "zmtp", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send one message (FRAME... is its frames), or --count copies of it.
    ///
    /// Waits until a peer is connected (at most --timeout), sends, then waits up to
    /// --linger for the message to leave. PUB: a subscriber whose subscription has not
    /// arrived yet misses the message (the "slow joiner"); repeat with --count/--interval.
    #[command(after_help = AFTER_HELP)]
    Send(SendArgs),
    /// Print each message received, until --count messages or Ctrl-C.
    ///
    /// SUB and XSUB without --subscribe/--subscribe-hex subscribe to everything.
    #[command(after_help = AFTER_HELP)]
    Recv(RecvArgs),
    /// Send every message received back, and print what was received (REP, ROUTER, DEALER,
    /// PAIR).
    ///
    /// ROUTER sends each message back to the peer it came from (the routing-id frame is
    /// kept, and printed as the first frame); DEALER sends back round-robin (to the sender
    /// when it is the only peer). Keeps serving the other peers when one misbehaves.
    #[command(after_help = AFTER_HELP)]
    Echo(RecvArgs),
    /// One REQ round trip: send FRAME..., print the reply.
    #[command(after_help = AFTER_HELP)]
    Req(ReqArgs),
    /// The ZeroMQ Guide's load-balancing broker (chapter 3).
    ///
    /// Two ROUTER sockets, both bound: the frontend for REQ clients, the backend for REQ
    /// workers. A worker first sends "READY"; then it gets requests as
    /// [client-id, "", request...] and replies [client-id, "", reply...]. Requests go to
    /// the least recently used ready worker; a request waits (in the frontend) while no
    /// worker is ready. Runs until Ctrl-C.
    Broker(BrokerArgs),
    /// Forward messages between two sockets both ways, like zmq_proxy.
    ///
    /// Each side is TYPE,EP: bound, or connected when EP starts with '>' (an '@' prefix
    /// says bind explicitly): `--frontend xsub,tcp://127.0.0.1:5556 --backend
    /// 'xpub,>tcp://10.0.0.1:5557'`. XSUB/XPUB: subscriptions travel from the backend to
    /// the frontend. A SUB side subscribes to everything. --capture TYPE,EP gets a copy of
    /// every message forwarded, either way (PUB, PUSH, PAIR, DEALER, XPUB...). Runs until
    /// Ctrl-C.
    Proxy(ProxyArgs),
    /// Throughput and latency benchmarks, one side per process (like libzmq's
    /// local_thr/remote_thr and local_lat/remote_lat, and against them).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Decode one direction of a captured ZMTP connection read from stdin.
    ///
    /// Prints the greeting, each command (READY, ERROR, PING, PONG, SUBSCRIBE, CANCEL
    /// decoded; others by name and size) and each message as a JSON array, one per line:
    ///
    ///   greeting version=3.1 mechanism=NULL as-server=0
    ///   command READY Socket-Type="REQ" Identity=""
    ///   ["","hello"]
    ///
    /// A malformed stream stops with an error naming the byte offset and the zmtp-core
    /// error (exit 1); so does a stream that ends inside a frame.
    Decode(DecodeArgs),
    /// Print a new CURVE key pair (for --curve-secretkey, --curve-serverkey,
    /// --allow-curve-key), in Z85 as libzmq's zmq_curve_keypair makes them.
    ///
    /// Two lines on stdout (libzmq's curve_keygen prints the same keys under headers):
    ///
    ///   public: AIbHD<7n6H4)mXUNX032voi:jnXhXx2/HAnxmGIv
    ///   secret: [?nvUi.+.LHYCw7lX>8<T+R%DKa6jFGs&B]4#[r{
    ///
    /// With --secret KEY, the pair of that secret key instead (its public key, as
    /// zmq_curve_public); `--secret -` reads the key from stdin. New keys come from the
    /// operating system's RNG.
    #[command(verbatim_doc_comment)]
    Keygen(KeygenArgs),
}

/// `zmtp keygen`.
#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// Print the pair of this secret key (Z85 or hex; `-`: read it from stdin) instead of a
    /// new one.
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    pub secret: Option<String>,
}

/// Socket options that tune a connection, shared by every command that makes sockets.
#[derive(Debug, Clone, Args)]
pub struct Tuning {
    /// Send and receive high-water mark, in messages (0: no limit) [default: 1000].
    #[arg(long, value_name = "N")]
    pub hwm: Option<usize>,
    /// How long closing keeps delivering queued messages, in ms (-1: until delivered)
    /// [default: 30000].
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    pub linger: Option<i64>,
    /// Disconnect a peer that sends a message larger than this many bytes [default: 1 MiB +
    /// 64 KiB, the library's queue size].
    #[arg(long, value_name = "BYTES")]
    pub max_msg_size: Option<u64>,
    /// Close a connection whose ZMTP handshake takes longer, in ms (0: no limit)
    /// [default: 30000].
    #[arg(long, value_name = "MS")]
    pub handshake_timeout: Option<u64>,
    /// Send a PING this often, in ms [default: off].
    #[arg(long, value_name = "MS")]
    pub heartbeat_ivl: Option<u64>,
    /// Close a connection when nothing arrives this long after a PING, in ms [default: the
    /// heartbeat interval].
    #[arg(long, value_name = "MS")]
    pub heartbeat_timeout: Option<u64>,
    /// Ask the peer to drop us after this long without traffic, in ms (sent in PINGs).
    #[arg(long, value_name = "MS")]
    pub heartbeat_ttl: Option<u64>,
}

/// Options of the socket commands (send, recv, echo, req).
#[derive(Debug, Clone, Args)]
pub struct SockOpts {
    /// Routing id sent to peers (ZMQ_ROUTING_ID), as text.
    #[arg(long, value_name = "ID")]
    pub identity: Option<String>,
    /// SUB, XSUB: subscribe to messages starting with PREFIX (text; repeatable).
    #[arg(long, value_name = "PREFIX")]
    pub subscribe: Vec<String>,
    /// SUB, XSUB: subscribe to a prefix given as hex (repeatable).
    #[arg(long, value_name = "HEX")]
    pub subscribe_hex: Vec<String>,
    /// ROUTER: fail (instead of dropping the message) when the routing id is unknown.
    #[arg(long)]
    pub router_mandatory: bool,
    /// Give up after waiting this long, in ms, for anything (a peer, a message, a reply,
    /// room to send): exit code 3.
    #[arg(long, value_name = "MS")]
    pub timeout: Option<u64>,
    /// Frames are given and printed as hex.
    #[arg(long)]
    pub hex: bool,
    /// Print connection events on stderr (accepted, connected, handshake done or failed
    /// and why, disconnected and why), after the `bound` lines.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Connection tuning.
    #[command(flatten)]
    pub tuning: Tuning,
    /// Security (CURVE, PLAIN).
    #[command(flatten)]
    pub security: Security,
}

/// Security options of the socket commands: libzmq's `ZMQ_CURVE_*`, `ZMQ_PLAIN_*` and
/// `ZMQ_ZAP_DOMAIN`, server allow-lists and a ZAP handler. Checked together by
/// `security::apply`, which explains what is missing or contradictory (exit 2).
#[derive(Debug, Clone, Default, Args)]
pub struct Security {
    /// Be a CURVE server (RFC 26): needs --curve-secretkey (or ZMTP_CURVE_SECRETKEY). Any
    /// client key is let in unless --allow-curve-key or --zap-endpoint says otherwise.
    #[arg(help_heading = SECURITY, long, conflicts_with = "curve_serverkey")]
    pub curve_server: bool,
    /// Be a CURVE client of the server with this public key (Z85, 40 characters, or 64 hex
    /// digits). Our own key pair: --curve-secretkey, else ZMTP_CURVE_SECRETKEY, else a new
    /// pair made for this run (its public key is printed on stderr).
    #[arg(help_heading = SECURITY, long, value_name = "KEY", allow_hyphen_values = true)]
    pub curve_serverkey: Option<String>,
    /// Our CURVE secret key (Z85 or hex). Visible to other local users in the process list:
    /// prefer the environment variable ZMTP_CURVE_SECRETKEY, read when this is absent.
    #[arg(help_heading = SECURITY, long, value_name = "KEY", allow_hyphen_values = true)]
    pub curve_secretkey: Option<String>,
    /// Our CURVE public key (Z85 or hex); optional: derived from the secret key, and checked
    /// against it when given.
    #[arg(help_heading = SECURITY, long, value_name = "KEY", allow_hyphen_values = true)]
    pub curve_publickey: Option<String>,
    /// CURVE server: let in only clients with this public key (Z85 or hex); repeatable.
    /// Others are turned away (ZAP status 400); -v reports each.
    #[arg(help_heading = SECURITY, long, value_name = "KEY", allow_hyphen_values = true)]
    pub allow_curve_key: Vec<String>,
    /// Be a PLAIN server (RFC 24; passwords travel in clear: trusted networks only). Anyone
    /// is let in unless --allow-plain or --zap-endpoint says otherwise.
    #[arg(help_heading = SECURITY, long, conflicts_with_all = ["plain_username", "plain_password"])]
    pub plain_server: bool,
    /// Be a PLAIN client with this user name.
    #[arg(help_heading = SECURITY, long, value_name = "USER", allow_hyphen_values = true)]
    pub plain_username: Option<String>,
    /// PLAIN client password [default: the environment variable ZMTP_PLAIN_PASSWORD, else
    /// empty]. Visible to other local users in the process list: prefer the variable.
    #[arg(help_heading = SECURITY, long, value_name = "PASSWORD", allow_hyphen_values = true)]
    pub plain_password: Option<String>,
    /// PLAIN server: let in only USER with PASSWORD (split at the first ':'); repeatable.
    #[arg(help_heading = SECURITY, long, value_name = "USER:PASSWORD", allow_hyphen_values = true)]
    pub allow_plain: Vec<String>,
    /// Server: ask the ZAP handler (RFC 27) at EP about clients no --allow-* list decided
    /// on: a REP or ROUTER socket, such as pyzmq's zmq.auth handler bound to tcp://.
    #[arg(help_heading = SECURITY, long, value_name = "EP")]
    pub zap_endpoint: Option<String>,
    /// Server: the ZAP domain put in ZAP requests (ZMQ_ZAP_DOMAIN).
    #[arg(help_heading = SECURITY, long, value_name = "DOMAIN")]
    pub zap_domain: Option<String>,
}

/// A socket of a type, its endpoints and options.
#[derive(Debug, Clone, Args)]
pub struct SocketArgs {
    /// Socket type: pair, pub, sub, req, rep, dealer, router, pull, push, xpub, xsub (any
    /// case).
    #[arg(short = 't', long = "type", value_name = "TYPE", value_parser = parse_type)]
    pub ty: SocketType,
    /// Bind to EP (tcp://127.0.0.1:5555, tcp://*:0, ipc:///tmp/x); repeatable.
    #[arg(short = 'b', long = "bind", value_name = "EP")]
    pub bind: Vec<String>,
    /// Connect to EP; repeatable.
    #[arg(short = 'c', long = "connect", value_name = "EP")]
    pub connect: Vec<String>,
    /// Socket options.
    #[command(flatten)]
    pub opts: SockOpts,
}

/// `zmtp send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// The socket.
    #[command(flatten)]
    pub socket: SocketArgs,
    /// Send the message this many times.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub count: u64,
    /// Wait this long between two sends, in ms.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub interval: u64,
    /// The message's frames (text, or hex with --hex). Put `--` before a frame that starts
    /// with '-'.
    #[arg(value_name = "FRAME", required = true)]
    pub frames: Vec<String>,
}

/// `zmtp recv` and `zmtp echo`.
#[derive(Debug, Clone, Args)]
pub struct RecvArgs {
    /// The socket.
    #[command(flatten)]
    pub socket: SocketArgs,
    /// Stop after this many messages [default: run until Ctrl-C].
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// `zmtp req`.
#[derive(Debug, Clone, Args)]
pub struct ReqArgs {
    /// Connect to EP; repeatable (requests go round-robin).
    #[arg(short = 'c', long = "connect", value_name = "EP")]
    pub connect: Vec<String>,
    /// Bind to EP; repeatable.
    #[arg(short = 'b', long = "bind", value_name = "EP")]
    pub bind: Vec<String>,
    /// Socket options.
    #[command(flatten)]
    pub opts: SockOpts,
    /// The request's frames (text, or hex with --hex).
    #[arg(value_name = "FRAME", required = true)]
    pub frames: Vec<String>,
}

/// `zmtp broker`.
#[derive(Debug, Clone, Args)]
pub struct BrokerArgs {
    /// Bind the clients' ROUTER here.
    #[arg(long, value_name = "EP")]
    pub frontend: String,
    /// Bind the workers' ROUTER here.
    #[arg(long, value_name = "EP")]
    pub backend: String,
    /// Connection tuning, for both sockets.
    #[command(flatten)]
    pub tuning: Tuning,
    /// Print every failed security handshake (who, and why) on stderr.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Which sockets the security options apply to.
    #[command(flatten)]
    pub side: SecureSideArg,
    /// Security (CURVE, PLAIN), for the clients' side unless --secure says otherwise.
    #[command(flatten)]
    pub security: Security,
}

/// Which of a `broker`'s or `proxy`'s sockets take the security options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum SecureSide {
    /// The frontend only: where clients come in, often from outside; the backend's
    /// workers or subscribers stay on a trusted network, without security.
    #[default]
    Frontend,
    /// The backend only (a proxy whose backend connects to a CURVE or PLAIN server).
    Backend,
    /// Both, with the same options: one key pair, one allow-list, one ZAP handler.
    Both,
}

/// `--secure`, shared by `broker` and `proxy`.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct SecureSideArg {
    /// Which sockets the security options (--curve-*, --plain-*, --allow-*, --zap-*)
    /// apply to: frontend, backend or both [default: frontend]. A side without them
    /// is NULL (no security).
    #[arg(help_heading = SECURITY, long = "secure", value_enum, value_name = "SIDE")]
    pub secure: Option<SecureSide>,
}

impl SecureSideArg {
    /// Whether the frontend (`true`) or backend (`false`) takes the security options.
    pub fn covers(&self, frontend: bool) -> bool {
        match self.secure.unwrap_or_default() {
            SecureSide::Frontend => frontend,
            SecureSide::Backend => !frontend,
            SecureSide::Both => true,
        }
    }
}

/// `zmtp proxy`.
#[derive(Debug, Clone, Args)]
pub struct ProxyArgs {
    /// TYPE,EP of the frontend (bound; '>EP' connects).
    #[arg(long, value_name = "TYPE,EP")]
    pub frontend: String,
    /// TYPE,EP of the backend (bound; '>EP' connects).
    #[arg(long, value_name = "TYPE,EP")]
    pub backend: String,
    /// TYPE,EP of a socket that gets a copy of every message forwarded.
    #[arg(long, value_name = "TYPE,EP")]
    pub capture: Option<String>,
    /// Connection tuning, for every socket.
    #[command(flatten)]
    pub tuning: Tuning,
    /// Print every failed security handshake (who, and why) on stderr.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Which sockets the security options apply to (never the capture).
    #[command(flatten)]
    pub side: SecureSideArg,
    /// Security (CURVE, PLAIN), for the frontend unless --secure says otherwise.
    #[command(flatten)]
    pub security: Security,
}

/// `zmtp bench`.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// Throughput: PUSH sender -> PULL receiver; the receiver prints messages/s and MB/s.
    ///
    /// `zmtp bench thr recv -b tcp://127.0.0.1:5555 --size 100 --count 1000000` is libzmq's
    /// `local_thr tcp://127.0.0.1:5555 100 1000000`; `zmtp bench thr send -c ...` is
    /// `remote_thr`. Either side works with libzmq's tool on the other. The receiver starts
    /// the clock at the first message, as local_thr does.
    Thr {
        /// Which side.
        #[arg(value_enum)]
        role: ThrRole,
        /// The endpoint and message shape.
        #[command(flatten)]
        args: BenchArgs,
    },
    /// Latency: REQ pinger <-> REP echoer; the pinger prints p50/p99/mean in µs.
    ///
    /// `zmtp bench lat echo -b tcp://127.0.0.1:5555 --size 100 --count 10000` is libzmq's
    /// `local_lat tcp://127.0.0.1:5555 100 10000`; `zmtp bench lat ping -c ...` is
    /// `remote_lat`. Latency is round trip / 2, as remote_lat reports it.
    Lat {
        /// Which side.
        #[arg(value_enum)]
        role: LatRole,
        /// The endpoint and message shape.
        #[command(flatten)]
        args: BenchArgs,
    },
}

/// Throughput roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ThrRole {
    /// PULL; receives --count messages and prints the rates (libzmq's local_thr).
    #[value(alias = "local")]
    Recv,
    /// PUSH; sends --count messages of --size bytes (libzmq's remote_thr).
    #[value(alias = "remote")]
    Send,
}

/// Latency roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LatRole {
    /// REP; sends back --count messages (libzmq's local_lat).
    #[value(alias = "local")]
    Echo,
    /// REQ; makes --count round trips and prints latencies (libzmq's remote_lat).
    #[value(alias = "remote")]
    Ping,
}

/// Endpoint and message shape of a benchmark side.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Bind to EP.
    #[arg(
        short = 'b',
        long = "bind",
        value_name = "EP",
        conflicts_with = "connect",
        required_unless_present = "connect"
    )]
    pub bind: Option<String>,
    /// Connect to EP.
    #[arg(short = 'c', long = "connect", value_name = "EP")]
    pub connect: Option<String>,
    /// Message size in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 100)]
    pub size: usize,
    /// Messages (thr) or round trips (lat).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub count: u64,
    /// Give up after waiting this long for a peer or a message, in ms (exit 3).
    #[arg(long, value_name = "MS")]
    pub timeout: Option<u64>,
    /// Connection tuning.
    #[command(flatten)]
    pub tuning: Tuning,
    /// Security (CURVE, PLAIN), to measure its cost.
    #[command(flatten)]
    pub security: Security,
}

/// `zmtp decode`.
#[derive(Debug, Clone, Args)]
pub struct DecodeArgs {
    /// stdin is hex text (whitespace ignored) instead of raw bytes.
    #[arg(long)]
    pub hex: bool,
    /// Print message frames as hex instead of text.
    #[arg(long)]
    pub print_hex: bool,
}

fn parse_type(s: &str) -> Result<SocketType, String> {
    SocketType::from_name_ignore_case(s).ok_or_else(|| {
        format!(
            "unknown socket type {s:?}; one of pair, pub, sub, req, rep, dealer, router, pull, \
             push, xpub, xsub"
        )
    })
}

/// Parses `TYPE,EP` (proxy sides). Returns the type, the endpoint and whether to bind.
pub fn parse_side(s: &str) -> Result<(SocketType, String, bool), String> {
    let (ty, ep) = s
        .split_once(',')
        .ok_or_else(|| format!("{s:?}: expected TYPE,EP (for example xsub,tcp://*:5556)"))?;
    let ty = parse_type(ty.trim())?;
    let ep = ep.trim();
    let (bind, ep) = if let Some(rest) = ep.strip_prefix('>') {
        (false, rest)
    } else if let Some(rest) = ep.strip_prefix('@') {
        (true, rest)
    } else {
        (true, ep)
    };
    Ok((ty, ep.to_owned(), bind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sides() {
        assert_eq!(
            parse_side("XSUB,tcp://*:1").unwrap(),
            (SocketType::XSub, "tcp://*:1".into(), true)
        );
        assert_eq!(
            parse_side("pub,>tcp://h:1").unwrap(),
            (SocketType::Pub, "tcp://h:1".into(), false)
        );
        assert!(parse_side("tcp://h:1").is_err());
        assert!(parse_side("nope,tcp://h:1").is_err());
    }
}
