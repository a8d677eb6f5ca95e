//! The socket's security options (libzmq's `ZMQ_CURVE_*`, `ZMQ_PLAIN_*`, `ZMQ_ZAP_DOMAIN`),
//! its allow-lists and its handshake failures.

use std::sync::PoisonError;

use super::{invalid, Socket};
use crate::error::Result;
use crate::security::{parse_key, AuthFailure, Mechanism};

impl Socket {
    /// CURVE server (`ZMQ_CURVE_SERVER`): `true` makes this socket a CURVE server, which
    /// needs [`set_curve_secretkey`](Self::set_curve_secretkey); `false` goes back to NULL,
    /// as in libzmq. Clients are let in as [`crate::zap`] describes (by default: every
    /// client key, as libzmq without a ZAP handler).
    pub fn set_curve_server(&self, on: bool) -> Result<()> {
        self.set("curve_server", |o| o.security.set_curve_server(on))
    }

    /// The CURVE server's public key (`ZMQ_CURVE_SERVERKEY`), 32 bytes or 40 Z85
    /// characters: makes this socket a CURVE client, which also needs its own
    /// [`set_curve_secretkey`](Self::set_curve_secretkey). A connection to a server that
    /// does not hold the matching secret key fails its handshake (and is retried).
    pub fn set_curve_serverkey(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = parse_key("curve_serverkey", key.as_ref())?;
        self.set("curve_serverkey", |o| o.security.set_curve_serverkey(*key))
    }

    /// Our long-term CURVE public key (`ZMQ_CURVE_PUBLICKEY`), 32 bytes or 40 Z85
    /// characters. Optional: it is derived from the secret key; if set, it must match it
    /// (checked at bind or connect).
    pub fn set_curve_publickey(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = parse_key("curve_publickey", key.as_ref())?;
        self.set("curve_publickey", |o| o.security.set_curve_publickey(*key))
    }

    /// Our long-term CURVE secret key (`ZMQ_CURVE_SECRETKEY`), 32 bytes or 40 Z85
    /// characters (see [`curve_keypair`](crate::curve_keypair)). Kept in memory that is
    /// wiped when the socket is closed.
    pub fn set_curve_secretkey(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = parse_key("curve_secretkey", key.as_ref())?;
        self.set("curve_secretkey", |o| o.security.set_curve_secretkey(key))
    }

    /// PLAIN server (`ZMQ_PLAIN_SERVER`): `true` makes this socket a PLAIN server, `false`
    /// goes back to NULL. Clients are let in as [`crate::zap`] describes (by default:
    /// everyone, as libzmq without a ZAP handler). PLAIN sends passwords in clear: use it
    /// on trusted networks only.
    pub fn set_plain_server(&self, on: bool) -> Result<()> {
        self.set("plain_server", |o| o.security.set_plain_server(on))
    }

    /// PLAIN user name (`ZMQ_PLAIN_USERNAME`, at most 255 bytes): makes this socket a PLAIN
    /// client. A server that refuses the credentials closes the connection with an ERROR
    /// and we do not reconnect (see [`auth_failures`](Self::auth_failures)).
    pub fn set_plain_username(&self, username: impl AsRef<[u8]>) -> Result<()> {
        let username = username.as_ref();
        if username.len() > 255 {
            return Err(invalid("plain_username", "at most 255 bytes (RFC 24)"));
        }
        self.set("plain_username", |o| {
            o.security.set_plain_username(username)
        })
    }

    /// PLAIN password (`ZMQ_PLAIN_PASSWORD`, at most 255 bytes): makes this socket a PLAIN
    /// client. Kept in memory that is wiped when the socket is closed.
    pub fn set_plain_password(&self, password: impl AsRef<[u8]>) -> Result<()> {
        let password = password.as_ref();
        if password.len() > 255 {
            return Err(invalid("plain_password", "at most 255 bytes (RFC 24)"));
        }
        self.set("plain_password", |o| {
            o.security.set_plain_password(password)
        })
    }

    /// The ZAP domain (`ZMQ_ZAP_DOMAIN`, at most 255 bytes) this server puts in its ZAP
    /// requests, for a handler serving several sockets.
    pub fn set_zap_domain(&self, domain: impl AsRef<[u8]>) -> Result<()> {
        let domain = domain.as_ref();
        if domain.len() > 255 {
            return Err(invalid("zap_domain", "at most 255 bytes (RFC 27)"));
        }
        self.set("zap_domain", |o| o.security.set_zap_domain(domain))
    }

    /// The security mechanism the options make (`ZMQ_MECHANISM`).
    pub fn mechanism(&self) -> Mechanism {
        self.state().opts.security.mechanism()
    }

    /// CURVE server: lets clients with this public key (32 bytes or 40 Z85 characters) in.
    /// Once the socket lists a key, unlisted keys are turned away (ERROR `400`) without
    /// asking the context's allow-list or ZAP handler (see [`crate::zap`]). May be called
    /// at any time; it applies to handshakes that finish afterwards.
    pub fn allow_curve_key(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = parse_key("allow_curve_key", key.as_ref())?;
        self.shared
            .security
            .allow
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .allow_curve_key(*key);
        Ok(())
    }

    /// PLAIN server: lets this user with this password in. Once the socket lists a user,
    /// others are turned away (ERROR `400`) without asking the context's allow-list or ZAP
    /// handler. May be called at any time.
    pub fn allow_plain(&self, username: impl AsRef<[u8]>, password: impl AsRef<[u8]>) {
        self.shared
            .security
            .allow
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .allow_plain(username.as_ref(), password.as_ref());
    }

    /// Empties the socket's allow-lists: the context's (or its ZAP handler) decide again.
    pub fn clear_allow_lists(&self) {
        self.shared
            .security
            .allow
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Security handshakes that failed since the last call, oldest first (the last 64 are
    /// kept): clients this server turned away, with the ZAP status code; a server that
    /// refused our credentials; peers with another mechanism or the wrong keys. Also logged
    /// (`log` crate, level info).
    pub fn auth_failures(&self) -> Vec<AuthFailure> {
        self.shared.security.take_failures()
    }
}
