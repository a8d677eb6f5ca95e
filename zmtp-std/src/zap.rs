//! Who a PLAIN or CURVE server lets in: allow-lists, and ZAP handlers (RFC 27, the ZeroMQ
//! Authentication Protocol).
//!
//! When a client has presented its credentials (a PLAIN user name and password, or a CURVE
//! client's long-term public key, proven by its vouch), a server socket decides, in order:
//!
//! 1. the socket's allow-list ([`Socket::allow_curve_key`](crate::Socket::allow_curve_key),
//!    [`Socket::allow_plain`](crate::Socket::allow_plain)), if it has one for the mechanism:
//!    listed credentials are in, others are turned away with status 400;
//! 2. else the context's allow-list ([`Context::allow_curve_key`](crate::Context::allow_curve_key),
//!    [`Context::allow_plain`](crate::Context::allow_plain)), the same way;
//! 3. else the context's ZAP handler, if one is set: a function
//!    ([`Context::set_zap_handler`](crate::Context::set_zap_handler)) or a ZAP server socket
//!    reached over the network ([`Context::set_zap_endpoint`](crate::Context::set_zap_endpoint)),
//!    asked with a [`ZapRequest`] and answering with a [`ZapReply`];
//! 4. else everyone is let in, as libzmq does without a ZAP handler: a CURVE server then
//!    still encrypts and still proves its own identity to clients, but accepts any client
//!    key; a PLAIN server accepts any user name and password.
//!
//! A ZAP handler runs on a thread of its own, never on the I/O thread: other connections
//! keep flowing while one waits for its answer. An answer that does not come within the
//! context's ZAP timeout ([`Context::set_zap_timeout`](crate::Context::set_zap_timeout),
//! default [`DEFAULT_ZAP_TIMEOUT`]) rejects the client with status 500, and so does a
//! handler that panics. A rejected client gets an ERROR command whose reason is the status
//! code (`300`, `400` or `500`), as libzmq sends, and is disconnected; the server socket
//! reports it in [`Socket::auth_failures`](crate::Socket::auth_failures). Allow-lists and
//! handlers can be changed at any time; they apply to handshakes that finish afterwards.
//!
//! # Differences from libzmq
//!
//! - libzmq finds its handler at the fixed endpoint `inproc://zeromq.zap.01`. There is no
//!   `inproc://` here: the handler is either a function, or a socket at an endpoint you
//!   choose (`tcp://127.0.0.1:PORT`, or any transport this crate's `connect` takes). That
//!   socket is libzmq's kind of ZAP handler, a REP (or ROUTER) speaking RFC 27, written with
//!   this crate ([`ZapRequest::from_frames`], [`ZapReply::to_frames`]) or with libzmq; keep
//!   it on a loopback or otherwise private address, since ZAP has no security of its own
//!   and PLAIN passwords travel in it.
//! - The ZAP reply's user id and metadata are not attached to messages (this crate has no
//!   message properties yet).
//! - NULL connections are not sent to the ZAP handler, whatever the ZAP domain.
//! - The routing id frame of a request is the server socket's own routing id, as libzmq
//!   sends it.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use mio::Waker;

use crate::context::Command;
use crate::error::Result;
use crate::security::{AllowList, Mechanism, SecretBytes};
use crate::{Context, Socket, SocketType};

/// The ZAP version this crate speaks (RFC 27: "1.0").
pub const ZAP_VERSION: &[u8] = b"1.0";
/// Default time a ZAP handler has to answer: 10 s.
pub const DEFAULT_ZAP_TIMEOUT: Duration = Duration::from_secs(10);

/// What a client presented.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// PLAIN (RFC 24): user name and password.
    Plain {
        /// The user name (0-255 bytes).
        username: Vec<u8>,
        /// The password (0-255 bytes), wiped when dropped.
        password: SecretBytes,
    },
    /// CURVE (RFC 26): the client's long-term public key, proven by its vouch.
    Curve {
        /// The 32-byte key (see [`ZapRequest::curve_key_z85`] for Z85).
        public_key: [u8; 32],
    },
}

impl Credentials {
    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        match self {
            Credentials::Plain { .. } => Mechanism::Plain,
            Credentials::Curve { .. } => Mechanism::Curve,
        }
    }
}

/// A ZAP request (RFC 27 §"Request"): a client asking to be let in.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ZapRequest {
    /// The server socket's ZAP domain (`ZMQ_ZAP_DOMAIN`; empty by default).
    pub domain: Vec<u8>,
    /// The client's IP address, without port (`"127.0.0.1"`, `"::1"`), as libzmq sends it.
    pub address: String,
    /// The server socket's routing id (libzmq sends its own, too).
    pub routing_id: Vec<u8>,
    /// What the client presented.
    pub credentials: Credentials,
}

/// A malformed ZAP message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ZapError(pub &'static str);

impl fmt::Display for ZapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed ZAP message: {}", self.0)
    }
}

impl std::error::Error for ZapError {}

/// Frames after an optional empty delimiter (a REP strips it; a ROUTER or DEALER sees it).
fn body(frames: &[Vec<u8>]) -> &[Vec<u8>] {
    match frames.split_first() {
        Some((first, rest)) if first.is_empty() => rest,
        _ => frames,
    }
}

impl ZapRequest {
    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.credentials.mechanism()
    }

    /// CURVE: the client's public key in Z85 (40 characters).
    pub fn curve_key_z85(&self) -> Option<String> {
        match &self.credentials {
            Credentials::Curve { public_key } => Some(
                String::from_utf8_lossy(&zmtp_core::mechanism::z85::encode_key(public_key))
                    .into_owned(),
            ),
            Credentials::Plain { .. } => None,
        }
    }

    /// The request's frames (RFC 27): version, request id, domain, address, identity,
    /// mechanism, credentials (PLAIN: user name and password; CURVE: the 32-byte key). A
    /// DEALER puts an empty delimiter frame before them.
    pub fn to_frames(&self, request_id: &[u8]) -> Vec<Vec<u8>> {
        let mut f = vec![
            ZAP_VERSION.to_vec(),
            request_id.to_vec(),
            self.domain.clone(),
            self.address.clone().into_bytes(),
            self.routing_id.clone(),
            self.mechanism().to_string().into_bytes(),
        ];
        match &self.credentials {
            Credentials::Plain { username, password } => {
                f.push(username.clone());
                f.push(password.expose().to_vec());
            }
            Credentials::Curve { public_key } => f.push(public_key.to_vec()),
        }
        f
    }

    /// Reads a request as a ZAP handler receives it (with or without the empty delimiter):
    /// its request id (to answer with) and the request. NULL requests, and other
    /// mechanisms, are refused ([`ZapError`]).
    pub fn from_frames(frames: &[Vec<u8>]) -> std::result::Result<(Vec<u8>, ZapRequest), ZapError> {
        let [version, id, domain, address, routing_id, mechanism, creds @ ..] = body(frames) else {
            return Err(ZapError("fewer than 6 frames"));
        };
        if version.as_slice() != ZAP_VERSION {
            return Err(ZapError("version is not 1.0"));
        }
        let credentials = match (mechanism.as_slice(), creds) {
            (b"PLAIN", [user, pass]) => Credentials::Plain {
                username: user.clone(),
                password: SecretBytes::new(pass),
            },
            (b"CURVE", [key]) => Credentials::Curve {
                public_key: key
                    .as_slice()
                    .try_into()
                    .map_err(|_| ZapError("CURVE key is not 32 bytes"))?,
            },
            (b"PLAIN" | b"CURVE", _) => return Err(ZapError("wrong number of credentials")),
            _ => return Err(ZapError("mechanism is not PLAIN or CURVE")),
        };
        Ok((
            id.clone(),
            ZapRequest {
                domain: domain.clone(),
                address: String::from_utf8_lossy(address).into_owned(),
                routing_id: routing_id.clone(),
                credentials,
            },
        ))
    }
}

/// A ZAP reply (RFC 27 §"Reply").
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ZapReply {
    /// `200` let in; `300` temporary error, `400` authentication failure, `500` internal
    /// error: turned away. Any other code is taken as 500.
    pub status_code: u16,
    /// Explanation, for logs ([`AuthFailure`](crate::AuthFailure)); not sent to the client.
    pub status_text: String,
    /// The user id (200 only). Not attached to messages yet.
    pub user_id: Vec<u8>,
    /// Metadata in ZMTP form (200 only). Not attached to messages yet.
    pub metadata: Vec<u8>,
}

impl ZapReply {
    /// 200 OK for `user_id`.
    pub fn accept(user_id: impl Into<Vec<u8>>) -> ZapReply {
        ZapReply {
            status_code: 200,
            status_text: "OK".into(),
            user_id: user_id.into(),
            metadata: Vec::new(),
        }
    }

    /// 400: authentication failure, with an explanation.
    pub fn deny(text: impl Into<String>) -> ZapReply {
        ZapReply::with_status(400, text)
    }

    /// Any status (300, 400, 500).
    pub fn with_status(status_code: u16, text: impl Into<String>) -> ZapReply {
        ZapReply {
            status_code,
            status_text: text.into(),
            user_id: Vec::new(),
            metadata: Vec::new(),
        }
    }

    /// Whether the client is let in.
    pub fn is_accepted(&self) -> bool {
        self.status_code == 200
    }

    /// The reply's frames (RFC 27): version, request id, status code, status text, user id,
    /// metadata. A ROUTER or DEALER puts the envelope before them.
    pub fn to_frames(&self, request_id: &[u8]) -> Vec<Vec<u8>> {
        vec![
            ZAP_VERSION.to_vec(),
            request_id.to_vec(),
            self.status_code.to_string().into_bytes(),
            self.status_text.clone().into_bytes(),
            self.user_id.clone(),
            self.metadata.clone(),
        ]
    }

    /// Reads a reply (with or without the empty delimiter): its request id and the reply.
    pub fn from_frames(frames: &[Vec<u8>]) -> std::result::Result<(Vec<u8>, ZapReply), ZapError> {
        let [version, id, code, text, user_id, metadata] = body(frames) else {
            return Err(ZapError("a reply has 6 frames"));
        };
        if version.as_slice() != ZAP_VERSION {
            return Err(ZapError("version is not 1.0"));
        }
        let status_code = match code.as_slice() {
            b"200" => 200,
            b"300" => 300,
            b"400" => 400,
            b"500" => 500,
            _ => return Err(ZapError("status code is not 200, 300, 400 or 500")),
        };
        Ok((
            id.clone(),
            ZapReply {
                status_code,
                status_text: String::from_utf8_lossy(text).into_owned(),
                user_id: user_id.clone(),
                metadata: metadata.clone(),
            },
        ))
    }

    /// The status sent to a rejected client as ERROR's reason (RFC 27 codes; others are
    /// internal errors).
    pub(crate) fn error_reason(&self) -> &'static [u8] {
        match self.status_code {
            300 => b"300",
            400 => b"400",
            _ => b"500",
        }
    }
}

/// A ZAP handler run in this process ([`Context::set_zap_handler`]). Closures
/// `FnMut(&ZapRequest) -> ZapReply` are handlers.
pub trait ZapHandler: Send + 'static {
    /// Decides on one client. Runs on the context's ZAP thread, one request at a time; the
    /// I/O thread does not wait for it.
    fn authenticate(&mut self, request: &ZapRequest) -> ZapReply;
}

impl<F> ZapHandler for F
where
    F: FnMut(&ZapRequest) -> ZapReply + Send + 'static,
{
    fn authenticate(&mut self, request: &ZapRequest) -> ZapReply {
        self(request)
    }
}

// ============================================================== the context's side

/// One request for the ZAP thread.
pub(crate) struct Job {
    pub(crate) socket: u64,
    pub(crate) request: u64,
    pub(crate) deadline: Instant,
    pub(crate) zap: ZapRequest,
}

/// Where the ZAP thread asks.
enum Backend {
    Handler(Box<dyn ZapHandler>),
    /// A DEALER (in a context of its own) connected to the user's ZAP socket.
    Socket(Box<(Context, Socket)>),
}

/// A context's authentication: its allow-list and its ZAP thread, shared by the
/// application's handles and the I/O thread.
pub(crate) struct ContextAuth {
    pub(crate) allow: RwLock<AllowList>,
    jobs: Mutex<Option<Sender<Job>>>,
    timeout: Mutex<Duration>,
}

impl Default for ContextAuth {
    fn default() -> Self {
        ContextAuth {
            allow: RwLock::default(),
            jobs: Mutex::new(None),
            timeout: Mutex::new(DEFAULT_ZAP_TIMEOUT),
        }
    }
}

impl ContextAuth {
    pub(crate) fn timeout(&self) -> Duration {
        *self.timeout.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_timeout(&self, t: Duration) {
        *self.timeout.lock().unwrap_or_else(PoisonError::into_inner) = t;
    }

    /// Hands a request to the ZAP thread; whether there is one.
    pub(crate) fn submit(&self, job: Job) -> bool {
        let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.as_ref().is_some_and(|tx| tx.send(job).is_ok())
    }

    /// Whether a ZAP handler is set.
    pub(crate) fn has_handler(&self) -> bool {
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Replaces the ZAP thread (`None`: no handler). The old thread answers what it was
    /// given, then stops.
    fn install(&self, backend: Option<(Backend, Sender<Command>, Arc<Waker>)>) -> Result<()> {
        let tx = match backend {
            None => None,
            Some((backend, commands, waker)) => {
                let (tx, rx) = mpsc::channel();
                std::thread::Builder::new()
                    .name("zmtp-zap".into())
                    .spawn(move || run(rx, backend, &commands, &waker))?;
                Some(tx)
            }
        };
        *self.jobs.lock().unwrap_or_else(PoisonError::into_inner) = tx;
        Ok(())
    }
}

/// The ZAP thread: answers each job and sends the answer to the I/O thread. Stops when the
/// context (or a newer handler) drops the job channel.
fn run(jobs: Receiver<Job>, mut backend: Backend, commands: &Sender<Command>, waker: &Waker) {
    let mut sequence = 0u64;
    while let Ok(job) = jobs.recv() {
        if Instant::now() >= job.deadline {
            // The I/O thread has rejected this one already.
            continue;
        }
        sequence = sequence.wrapping_add(1);
        let reply = match &mut backend {
            Backend::Handler(h) => catch_unwind(AssertUnwindSafe(|| h.authenticate(&job.zap)))
                .unwrap_or_else(|_| {
                    log::error!("zmtp-std: the ZAP handler panicked; rejecting the client");
                    ZapReply::with_status(500, "ZAP handler panicked")
                }),
            Backend::Socket(s) => ask_socket(&s.1, &job, sequence),
        };
        let sent = commands.send(Command::ZapReply {
            id: job.socket,
            request: job.request,
            reply,
        });
        if sent.is_err() || waker.wake().is_err() {
            return;
        }
    }
}

/// Asks the ZAP socket; 500 if it does not answer in time or answers nonsense.
fn ask_socket(socket: &Socket, job: &Job, sequence: u64) -> ZapReply {
    let id = format!("{}.{}", job.socket, sequence).into_bytes();
    let mut frames = vec![Vec::new()];
    frames.extend(job.zap.to_frames(&id));
    let left = || job.deadline.saturating_duration_since(Instant::now());
    if let Err(e) = socket.send_multipart_timeout(frames, left()) {
        log::warn!("zmtp-std: cannot send to the ZAP handler: {e}");
        return ZapReply::with_status(500, format!("ZAP handler unreachable: {e}"));
    }
    loop {
        let got = match socket.recv_multipart_timeout(left()) {
            Ok(m) => m,
            Err(e) => {
                log::warn!("zmtp-std: no answer from the ZAP handler: {e}");
                return ZapReply::with_status(500, format!("no answer from the ZAP handler: {e}"));
            }
        };
        match ZapReply::from_frames(&got) {
            Ok((rid, reply)) if rid == id => return reply,
            // A late answer to a request given up on.
            Ok(_) => {}
            Err(e) => {
                log::warn!("zmtp-std: {e}");
                return ZapReply::with_status(500, e.to_string());
            }
        }
    }
}

impl Context {
    /// Has `handler` decide on PLAIN and CURVE clients of this context's server sockets
    /// that no allow-list decided on (see [`crate::zap`]). Replaces any earlier handler or
    /// endpoint. It runs on a thread of its own, so it may block (on a database, say) without
    /// holding up other connections; clients waiting longer than the ZAP timeout are
    /// rejected.
    ///
    /// ```
    /// use zmtp_std::zap::{Credentials, ZapReply, ZapRequest};
    /// # let ctx = zmtp_std::Context::new()?;
    /// ctx.set_zap_handler(|req: &ZapRequest| match &req.credentials {
    ///     Credentials::Plain { username, password }
    ///         if username == b"admin" && password.expose() == b"secret" => ZapReply::accept("admin"),
    ///     _ => ZapReply::deny("unknown user"),
    /// })?;
    /// # Ok::<(), zmtp_std::Error>(())
    /// ```
    pub fn set_zap_handler(&self, handler: impl ZapHandler) -> Result<()> {
        let inner = self.inner();
        inner.auth.install(Some((
            Backend::Handler(Box::new(handler)),
            inner.command_sender(),
            inner.waker(),
        )))
    }

    /// Has a ZAP handler socket at `endpoint` (for example `tcp://127.0.0.1:5999`) decide on
    /// clients no allow-list decided on: a REP or ROUTER speaking RFC 27, such as pyzmq's
    /// `zmq.auth.thread.ThreadAuthenticator`'s handler bound there, or one written with this
    /// crate. Requests go out one at a time over a DEALER connection of a context of its
    /// own; the I/O thread never waits for them. Replaces any earlier handler. libzmq's
    /// handler lives at `inproc://zeromq.zap.01` instead: see "Differences from libzmq" in
    /// [`crate::zap`].
    pub fn set_zap_endpoint(&self, endpoint: &str) -> Result<()> {
        let ctx = Context::new()?;
        let socket = ctx.socket(SocketType::Dealer)?;
        socket.set_linger(Some(Duration::ZERO));
        socket.connect(endpoint)?;
        let inner = self.inner();
        inner.auth.install(Some((
            Backend::Socket(Box::new((ctx, socket))),
            inner.command_sender(),
            inner.waker(),
        )))
    }

    /// Removes the ZAP handler: clients no allow-list decides on are let in again.
    pub fn clear_zap_handler(&self) {
        // Cannot fail without a thread to start.
        let _ = self.inner().auth.install(None);
    }

    /// How long a ZAP handler may take before the client is rejected (status 500). Default
    /// [`DEFAULT_ZAP_TIMEOUT`].
    pub fn set_zap_timeout(&self, timeout: Duration) {
        self.inner().auth.set_timeout(timeout);
    }

    /// Lets CURVE clients with this public key (32 bytes or 40 Z85 characters) into every
    /// server socket of this context that has no allow-list of its own. Once the context
    /// lists one key, unlisted keys are rejected (status 400) without asking the ZAP handler.
    pub fn allow_curve_key(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = crate::security::parse_key("allow_curve_key", key.as_ref())?;
        self.inner()
            .auth
            .allow
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .allow_curve_key(*key);
        Ok(())
    }

    /// Lets a PLAIN user with this password into every server socket of this context that
    /// has no allow-list of its own. Once the context lists one user, others are rejected
    /// (status 400) without asking the ZAP handler.
    pub fn allow_plain(&self, username: impl AsRef<[u8]>, password: impl AsRef<[u8]>) {
        self.inner()
            .auth
            .allow
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .allow_plain(username.as_ref(), password.as_ref());
    }

    /// Empties the context's allow-lists.
    pub fn clear_allow_lists(&self) {
        self.inner()
            .auth
            .allow
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let req = ZapRequest {
            domain: b"global".to_vec(),
            address: "127.0.0.1".into(),
            routing_id: b"me".to_vec(),
            credentials: Credentials::Plain {
                username: b"u".to_vec(),
                password: SecretBytes::new(b"p"),
            },
        };
        let frames = req.to_frames(b"7");
        assert_eq!(frames[5], b"PLAIN");
        assert_eq!(ZapRequest::from_frames(&frames), Ok((b"7".to_vec(), req)));
        let mut with_delimiter = vec![vec![]];
        with_delimiter.extend(ZapReply::deny("no").to_frames(b"7"));
        let (id, reply) = ZapReply::from_frames(&with_delimiter).unwrap();
        assert_eq!((id.as_slice(), reply.status_code), (&b"7"[..], 400));
        assert_eq!(reply.error_reason(), b"400");
        let mut bad = ZapReply::accept("x").to_frames(b"1");
        bad[2] = b"201".to_vec();
        assert!(ZapReply::from_frames(&bad).is_err());
        let curve = ZapRequest {
            credentials: Credentials::Curve {
                public_key: [3; 32],
            },
            ..ZapRequest::from_frames(&frames).unwrap().1
        };
        let f = curve.to_frames(b"9");
        assert_eq!((f.len(), f[5].as_slice()), (7, &b"CURVE"[..]));
        assert_eq!(ZapRequest::from_frames(&f).unwrap().1, curve);
        assert!(ZapRequest::from_frames(&f[..6]).is_err());
    }
}
