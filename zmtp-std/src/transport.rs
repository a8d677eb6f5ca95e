//! Transports: `tcp://` (TCP) and `ipc://` (Unix domain stream sockets), behind one stream
//! and one listener type for the I/O thread.

use std::fmt;
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::SocketAddr;
#[cfg(unix)]
use std::os::unix::fs::{FileTypeExt, MetadataExt};
#[cfg(unix)]
use std::path::Path;
use std::path::PathBuf;

use mio::event::Source;
use mio::net::{TcpListener, TcpStream};
#[cfg(unix)]
use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use crate::error::{Error, Result};
use crate::options::SocketOptions;

/// A resolved address to bind or connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Addr {
    Tcp(SocketAddr),
    /// A Unix domain socket's path.
    Ipc(PathBuf),
}

impl fmt::Display for Addr {
    /// How libzmq prints it (`ZMQ_LAST_ENDPOINT`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp(SocketAddr::V4(a)) => write!(f, "tcp://{}:{}", a.ip(), a.port()),
            Addr::Tcp(SocketAddr::V6(a)) => write!(f, "tcp://[{}]:{}", a.ip(), a.port()),
            Addr::Ipc(p) => write!(f, "ipc://{}", p.display()),
        }
    }
}

/// A connection of either transport.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Ipc(UnixStream),
}

impl Stream {
    /// Starts a non-blocking connect.
    pub(crate) fn connect(addr: &Addr) -> io::Result<Stream> {
        match addr {
            Addr::Tcp(a) => TcpStream::connect(*a).map(Stream::Tcp),
            #[cfg(unix)]
            Addr::Ipc(p) => UnixStream::connect(p).map(Stream::Ipc),
            #[cfg(not(unix))]
            Addr::Ipc(_) => Err(io::Error::new(ErrorKind::Unsupported, IPC_UNSUPPORTED)),
        }
    }

    /// After a connect's event: `Ok(true)` connected, `Ok(false)` not yet, `Err` failed.
    pub(crate) fn connect_outcome(&self) -> io::Result<bool> {
        let (err, peer) = match self {
            Stream::Tcp(s) => (s.take_error(), s.peer_addr().map(drop)),
            #[cfg(unix)]
            Stream::Ipc(s) => (s.take_error(), s.peer_addr().map(drop)),
        };
        match err {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => match peer {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == ErrorKind::NotConnected => Ok(false),
                Err(e) => Err(e),
            },
        }
    }

    /// TCP: no Nagle delay (messages are batched by the core already), and keepalive as
    /// the options say. Failures are logged: the connection works without them.
    /// The peer's address: TCP only (a Unix domain socket's peer is usually unnamed).
    pub(crate) fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr(),
            #[cfg(unix)]
            _ => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    pub(crate) fn configure(&self, opts: &SocketOptions) {
        let Stream::Tcp(s) = self else { return };
        let _ = s.set_nodelay(true);
        if let Err(e) = set_keepalive(s, opts) {
            log::warn!("zmtp-std: cannot set TCP keepalive: {e}");
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Stream::Ipc(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Stream::Ipc(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            #[cfg(unix)]
            Stream::Ipc(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            #[cfg(unix)]
            Stream::Ipc(s) => s.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            #[cfg(unix)]
            Stream::Ipc(s) => s.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            #[cfg(unix)]
            Stream::Ipc(s) => s.deregister(r),
        }
    }
}

fn set_keepalive(s: &TcpStream, opts: &SocketOptions) -> io::Result<()> {
    let sock = socket2::SockRef::from(s);
    match opts.tcp_keepalive {
        None => Ok(()),
        Some(false) => sock.set_keepalive(false),
        Some(true) => {
            let mut ka = socket2::TcpKeepalive::new();
            if let Some(idle) = opts.tcp_keepalive_idle {
                ka = ka.with_time(idle);
            }
            if let Some(ivl) = opts.tcp_keepalive_interval {
                ka = ka.with_interval(ivl);
            }
            if let Some(n) = opts.tcp_keepalive_count {
                ka = ka.with_retries(n);
            }
            sock.set_tcp_keepalive(&ka)
        }
    }
}

/// A listening socket of either transport. An `ipc://` listener removes its socket file
/// when dropped (if the file is still the one it made).
#[derive(Debug)]
pub(crate) struct Listener {
    kind: ListenerKind,
    /// The address bound (TCP: with the port the system chose).
    pub(crate) addr: Addr,
    /// IPC: the socket file's device and inode, to remove only our own file.
    #[cfg(unix)]
    file_id: Option<(u64, u64)>,
}

#[derive(Debug)]
enum ListenerKind {
    Tcp(TcpListener),
    #[cfg(unix)]
    Ipc(UnixListener),
}

impl Listener {
    /// Listens on `addr`. For `ipc://`, a socket file left behind by a dead process is
    /// replaced; a live one (someone accepts on it) or a file that is not a socket is an
    /// error, and nothing is removed.
    pub(crate) fn bind(addr: &Addr) -> Result<Listener> {
        match addr {
            Addr::Tcp(a) => {
                let l = TcpListener::bind(*a)?;
                let local = l.local_addr()?;
                Ok(Listener {
                    kind: ListenerKind::Tcp(l),
                    addr: Addr::Tcp(local),
                    #[cfg(unix)]
                    file_id: None,
                })
            }
            #[cfg(not(unix))]
            Addr::Ipc(_) => Err(Error::InvalidEndpoint {
                endpoint: addr.to_string(),
                reason: IPC_UNSUPPORTED,
            }),
            #[cfg(unix)]
            Addr::Ipc(path) => {
                remove_stale_socket_file(addr, path)?;
                let l = UnixListener::bind(path)?;
                let file_id = std::fs::symlink_metadata(path)
                    .ok()
                    .map(|m| (m.dev(), m.ino()));
                Ok(Listener {
                    kind: ListenerKind::Ipc(l),
                    addr: addr.clone(),
                    file_id,
                })
            }
        }
    }

    /// Accepts one connection; with the peer's address as text (for logs and monitors).
    pub(crate) fn accept(&self) -> io::Result<(Stream, String)> {
        match &self.kind {
            ListenerKind::Tcp(l) => l.accept().map(|(s, a)| (Stream::Tcp(s), a.to_string())),
            #[cfg(unix)]
            ListenerKind::Ipc(l) => l.accept().map(|(s, a)| {
                let from = a
                    .as_pathname()
                    .map_or_else(|| self.addr.to_string(), |p| p.display().to_string());
                (Stream::Ipc(s), from)
            }),
        }
    }
}

impl Source for Listener {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match &mut self.kind {
            ListenerKind::Tcp(l) => l.register(r, t, i),
            #[cfg(unix)]
            ListenerKind::Ipc(l) => l.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match &mut self.kind {
            ListenerKind::Tcp(l) => l.reregister(r, t, i),
            #[cfg(unix)]
            ListenerKind::Ipc(l) => l.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match &mut self.kind {
            ListenerKind::Tcp(l) => l.deregister(r),
            #[cfg(unix)]
            ListenerKind::Ipc(l) => l.deregister(r),
        }
    }
}

#[cfg(unix)]
impl Drop for Listener {
    fn drop(&mut self) {
        let (Addr::Ipc(path), Some(id)) = (&self.addr, self.file_id) else {
            return;
        };
        // Another socket may have replaced the file since (after deciding ours was
        // stale): remove it only if it is still ours.
        let ours = std::fs::symlink_metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == id);
        if ours {
            if let Err(e) = std::fs::remove_file(path) {
                log::debug!("zmtp-std: cannot remove {}: {e}", path.display());
            }
        }
    }
}

/// Why `ipc://` fails where there are no Unix domain sockets.
#[cfg(not(unix))]
const IPC_UNSUPPORTED: &str = "ipc:// needs Unix domain sockets (not available on this system)";

/// Before binding `path`: nothing there is fine; a socket file nobody accepts on (its
/// process died without removing it) is removed; anything else is an error.
#[cfg(unix)]
fn remove_stale_socket_file(addr: &Addr, path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if !meta.file_type().is_socket() {
        return Err(Error::InvalidEndpoint {
            endpoint: addr.to_string(),
            reason: "the path exists and is not a socket file (nothing was removed)",
        });
    }
    // A non-blocking connect: refused means nobody listens; connected, or in progress
    // with a full backlog, means the socket is alive.
    match UnixStream::connect(path) {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            log::debug!("zmtp-std: removing stale socket file {}", path.display());
            match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) if e.kind() != ErrorKind::WouldBlock => Err(e.into()),
        _ => Err(Error::Io(io::Error::new(
            ErrorKind::AddrInUse,
            format!("{addr} is in use: another socket accepts on it"),
        ))),
    }
}
