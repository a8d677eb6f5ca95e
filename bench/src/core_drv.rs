//! zmtp-core driven directly over a blocking `std::net::TcpStream`, one session per
//! connection and no I/O thread: the zmtp side of the CURVE comparison (zmtp-std has no
//! CURVE options yet), and the same driver with NULL security as its own baseline.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use zmtp_core::mechanism::curve::{CurveKeyPair, CurveRandom};
use zmtp_core::mechanism::z85;
use zmtp_core::{Buffers, Config, Event, Role, Security, SendError, Session, SocketType};

use crate::roles::Res;

/// Receive and transmit buffer per connection: zmtp-std's default.
const BUF: usize = 64 * 1024;

/// Fresh randomness for one CURVE session, from the system.
fn random() -> Res<CurveRandom> {
    let mut f = std::fs::File::open("/dev/urandom")?;
    let mut err = None;
    let r = CurveRandom::from_fn(|b| {
        if let Err(e) = f.read_exact(b) {
            err = Some(e);
        }
    });
    match err {
        Some(e) => Err(e.into()),
        None => Ok(r),
    }
}

fn leak_buf() -> &'static mut [u8] {
    Box::leak(vec![0u8; BUF].into_boxed_slice())
}

fn keypair() -> Res<&'static CurveKeyPair> {
    let mut secret = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut secret)?;
    Ok(Box::leak(Box::new(CurveKeyPair::from_secret(secret))))
}

/// A session and its stream. The buffers are allocated once per process and reused by each
/// new connection (`into_buffers`).
struct Conn {
    stream: TcpStream,
    s: Session<'static>,
    epoch: Instant,
}

impl Conn {
    fn new(
        stream: TcpStream,
        cfg: &Config<'static>,
        role: Role,
        bufs: Buffers<'static>,
    ) -> Res<Conn> {
        stream.set_nodelay(true)?;
        let epoch = Instant::now();
        let s = Session::new_curve(cfg, role, bufs, zmtp_core::Instant::ZERO, random()?)
            .map_err(|e| format!("session: {e:?}"))?;
        Ok(Conn { stream, s, epoch })
    }

    fn now(&self) -> zmtp_core::Instant {
        zmtp_core::Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    /// Writes out everything queued (blocking).
    fn flush(&mut self) -> Res {
        loop {
            let out = self.s.poll_transmit();
            if out.is_empty() {
                return Ok(());
            }
            let n = self.stream.write(out)?;
            if n == 0 {
                return Err("connection closed while writing".into());
            }
            self.s.mark_transmitted(n).map_err(|e| format!("{e:?}"))?;
        }
    }

    /// One blocking read into the receive window; `false` at end of stream.
    fn fill(&mut self) -> Res<bool> {
        let now = self.now();
        let w = self.s.recv_window();
        if w.is_empty() {
            return Err("receive window full".into());
        }
        let n = self.stream.read(w)?;
        if n == 0 {
            self.s.handle_eof();
            return Ok(false);
        }
        self.s
            .commit_received(n, now)
            .map_err(|e| format!("{e:?}"))?;
        Ok(true)
    }

    /// Runs the handshake to its end (a server accepts every client); returns the frames
    /// that came in the same reads as the end of the handshake.
    fn handshake(&mut self) -> Res<Vec<Vec<u8>>> {
        let mut early = Vec::new();
        loop {
            let mut done = false;
            let mut auth = false;
            while let Some(ev) = self.s.poll_event() {
                match ev {
                    Event::HandshakeComplete(_) => done = true,
                    Event::Authenticate(_) => auth = true,
                    Event::Frame { data, .. } => early.push(data.to_vec()),
                    Event::Closed(r) => return Err(format!("closed in handshake: {r}").into()),
                    _ => return Err("unexpected event in handshake".into()),
                }
            }
            if auth {
                self.s.accept_peer();
                continue;
            }
            // What the events just processed made the session write (the rest of the
            // greeting, the next handshake command) goes out before waiting for input.
            self.flush()?;
            if done {
                return Ok(early);
            }
            if !self.fill()? {
                return Err("end of stream in handshake".into());
            }
        }
    }

    /// Queues one frame, writing out the transmit buffer when it is full.
    fn send(&mut self, body: &[u8]) -> Res {
        loop {
            match self.s.send_frame(body, false) {
                Ok(()) => return Ok(()),
                Err(SendError::WouldBlock) => self.flush()?,
                Err(e) => return Err(format!("send: {e:?}").into()),
            }
        }
    }
}

fn server_config(curve: bool, ty: SocketType) -> Res<(Config<'static>, String)> {
    if !curve {
        return Ok((Config::new(ty), "-".into()));
    }
    let keys = keypair()?;
    let key = String::from_utf8(keys.public_key_z85().to_vec())?;
    Ok((
        Config::new(ty).with_security(Security::CurveServer { keys }),
        key,
    ))
}

fn client_config(key: &str, ty: SocketType) -> Res<Config<'static>> {
    if key == "-" {
        return Ok(Config::new(ty));
    }
    let server_key = z85::decode_key(key.as_bytes()).map_err(|e| format!("key: {e:?}"))?;
    Ok(Config::new(ty).with_security(Security::CurveClient {
        server_key,
        keys: keypair()?,
    }))
}

fn listen(key: &str) -> Res<TcpListener> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    println!("ENDPOINT {} {key}", l.local_addr()?);
    std::io::stdout().flush()?;
    Ok(l)
}

fn bufs() -> Buffers<'static> {
    Buffers {
        rx: leak_buf(),
        tx: leak_buf(),
    }
}

/// PULL side of a throughput run.
pub fn thr_recv(curve: u8, size: usize, count: u64) -> Res {
    let (cfg, key) = server_config(curve != 0, SocketType::Pull)?;
    let l = listen(&key)?;
    let (stream, _) = l.accept()?;
    let mut c = Conn::new(stream, &cfg, Role::Accepted, bufs())?;
    let early = c.handshake()?;
    let mut got = early.len() as u64;
    let mut start = (got > 0).then(Instant::now);
    while got < count {
        if !c.fill()? {
            return Err("end of stream".into());
        }
        while let Some(ev) = c.s.poll_event() {
            match ev {
                Event::Frame { data, .. } => {
                    if data.len() != size {
                        return Err("frame of the wrong size".into());
                    }
                    got += 1;
                    if got == 1 {
                        start = Some(Instant::now());
                    }
                }
                Event::Closed(r) => return Err(format!("closed: {r}").into()),
                _ => {}
            }
        }
    }
    let t = start.map(|s| s.elapsed().as_nanos()).unwrap_or(0);
    println!("RESULT {t}");
    Ok(())
}

/// PUSH side of a throughput run.
pub fn thr_send(endpoint: &str, key: &str, size: usize, count: u64) -> Res {
    let cfg = client_config(key, SocketType::Push)?;
    let stream = TcpStream::connect(endpoint)?;
    let mut c = Conn::new(stream, &cfg, Role::Connected, bufs())?;
    c.handshake()?;
    let body = vec![0u8; size];
    for _ in 0..count {
        c.send(&body)?;
    }
    c.flush()?;
    c.stream.shutdown(std::net::Shutdown::Write)?;
    // Wait for the receiver to close (it has everything then).
    let mut scratch = [0u8; 256];
    while c.stream.read(&mut scratch).unwrap_or(0) > 0 {}
    Ok(())
}

/// Handshake-rate server: `count` connections one after the other, each echoing one frame.
pub fn hs_server(curve: u8, count: u64) -> Res {
    let (cfg, key) = server_config(curve != 0, SocketType::Router)?;
    let l = listen(&key)?;
    let mut b = Some(bufs());
    for _ in 0..count {
        let (stream, _) = l.accept()?;
        let mut c = Conn::new(stream, &cfg, Role::Accepted, b.take().ok_or("buffers")?)?;
        let mut frame = c.handshake()?.pop();
        let mut echoed = false;
        if let Some(f) = frame.take() {
            c.send(&f)?;
            c.flush()?;
            echoed = true;
        }
        while !echoed {
            if !c.fill()? {
                return Err("end of stream before the request".into());
            }
            let mut frame = None;
            while let Some(ev) = c.s.poll_event() {
                if let Event::Frame { data, .. } = ev {
                    frame = Some(data.to_vec());
                }
            }
            if let Some(f) = frame {
                c.send(&f)?;
                c.flush()?;
                echoed = true;
            }
        }
        // Wait for the client to close, then reuse the buffers.
        while c.fill().unwrap_or(false) {}
        b = Some(c.s.into_buffers());
    }
    Ok(())
}

/// Handshake-rate client: `count` times connect, handshake, one round trip, close.
pub fn hs_client(endpoint: &str, key: &str, count: u64) -> Res {
    let cfg = client_config(key, SocketType::Dealer)?;
    let mut b = Some(bufs());
    let t = Instant::now();
    for _ in 0..count {
        let stream = TcpStream::connect(endpoint)?;
        let mut c = Conn::new(stream, &cfg, Role::Connected, b.take().ok_or("buffers")?)?;
        c.handshake()?;
        c.send(b"x")?;
        c.flush()?;
        let mut done = false;
        while !done {
            if !c.fill()? {
                return Err("end of stream before the reply".into());
            }
            while let Some(ev) = c.s.poll_event() {
                if let Event::Frame { .. } = ev {
                    done = true;
                }
            }
        }
        drop(c.stream);
        b = Some(c.s.into_buffers());
    }
    println!("RESULT {}", t.elapsed().as_nanos());
    Ok(())
}
