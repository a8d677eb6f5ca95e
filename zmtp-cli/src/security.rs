//! CURVE and PLAIN for the socket commands: checking the options as a whole (exit 2 with an
//! explanation), applying them to a socket, `zmtp keygen`, and watching the socket's failed
//! security handshakes while a command waits (a server that refused us stops the command;
//! with `-v` every failure is printed).

use std::io::Read;
use std::sync::{Mutex, PoisonError};

use zmtp_core::mechanism::z85;
use zmtp_std::{AuthFailureKind, Context, Socket};

use crate::cli::{KeygenArgs, SecureSideArg, Security};
use crate::error::{CliError, Result};
use crate::output::from_hex;

/// Read for the secret key when `--curve-secretkey` is absent.
pub const ENV_CURVE_SECRETKEY: &str = "ZMTP_CURVE_SECRETKEY";
/// Read for the PLAIN password when `--plain-password` is absent.
pub const ENV_PLAIN_PASSWORD: &str = "ZMTP_PLAIN_PASSWORD";

/// The length of a CURVE key in Z85 text.
const Z85_KEY_LEN: usize = z85::KEY_TEXT_LEN;

/// Which side of which mechanism the options make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// No security.
    Null,
    /// A CURVE or PLAIN server.
    Server,
    /// A CURVE or PLAIN client.
    Client,
}

/// A CURVE key from the command line: 40 Z85 characters or 64 hex digits, as 32 bytes.
/// `what` names the option in the error; a secret's text is never echoed.
fn key(what: &str, text: &str, secret: bool) -> Result<[u8; 32]> {
    let text = text.trim();
    let shown = if secret {
        String::new()
    } else {
        format!(" {text:?}")
    };
    let bytes = match text.len() {
        Z85_KEY_LEN => {
            return z85_decode(text).ok_or_else(|| {
                CliError::usage(format!(
                    "{what}{shown}: not a Z85 key (40 characters of the Z85 alphabet, \
                     RFC 32; `zmtp keygen` makes keys)"
                ))
            })
        }
        64 => from_hex(text).map_err(|_| {
            CliError::usage(format!(
                "{what}{shown}: not a key: 64 characters but not hex"
            ))
        })?,
        n => {
            return Err(CliError::usage(format!(
                "{what}{shown}: a CURVE key is 40 Z85 characters or 64 hex digits, not {n} \
                 characters (`zmtp keygen` makes keys)"
            )))
        }
    };
    bytes
        .try_into()
        .map_err(|_| CliError::usage(format!("{what}: not a 32-byte key")))
}

/// Decodes 40 Z85 characters (RFC 32) to 32 bytes.
fn z85_decode(text: &str) -> Option<[u8; 32]> {
    z85::decode_key(text.as_bytes()).ok()
}

/// Z85 of a 32-byte key.
fn z85_encode(key: &[u8; 32]) -> String {
    String::from_utf8_lossy(&z85::encode_key(key)).into_owned()
}

/// The Z85 public key of a secret key.
fn public_of(secret: &[u8; 32]) -> Result<String> {
    zmtp_std::curve_public(secret)
        .map_err(|e| CliError::failed(format!("deriving the public key: {e}")))
}

/// The role the options make, after checking they make sense together.
pub fn role(o: &Security) -> Result<Role> {
    let curve_client = o.curve_serverkey.is_some();
    let curve = o.curve_server
        || curve_client
        || o.curve_secretkey.is_some()
        || o.curve_publickey.is_some()
        || !o.allow_curve_key.is_empty();
    let plain_client = o.plain_username.is_some() || o.plain_password.is_some();
    let plain = o.plain_server || plain_client || !o.allow_plain.is_empty();
    if curve && plain {
        return Err(CliError::usage(
            "CURVE and PLAIN options together: a socket uses one mechanism (--curve-* or --plain-*)",
        ));
    }
    if curve && !o.curve_server && !curve_client {
        let which = if o.allow_curve_key.is_empty() {
            "--curve-secretkey and --curve-publickey need"
        } else {
            "--allow-curve-key needs"
        };
        return Err(CliError::usage(format!(
            "{which} --curve-server (to be a server) or --curve-serverkey KEY (to be a client)"
        )));
    }
    if plain && !o.plain_server && !o.allow_plain.is_empty() {
        return Err(CliError::usage(
            "--allow-plain is for a PLAIN server: add --plain-server",
        ));
    }
    if o.plain_password.is_some() && o.plain_username.is_none() {
        return Err(CliError::usage(
            "--plain-password needs --plain-username (a PLAIN client)",
        ));
    }
    if curve_client && !o.allow_curve_key.is_empty() {
        return Err(CliError::usage(
            "--allow-curve-key is for a CURVE server (--curve-server), not a client",
        ));
    }
    let role = if o.curve_server || o.plain_server {
        Role::Server
    } else if curve_client || plain_client {
        Role::Client
    } else {
        Role::Null
    };
    if role != Role::Server {
        for (set, name) in [
            (o.zap_endpoint.is_some(), "--zap-endpoint"),
            (o.zap_domain.is_some(), "--zap-domain"),
        ] {
            if set {
                return Err(CliError::usage(format!(
                    "{name} is for a CURVE or PLAIN server (--curve-server, --plain-server)"
                )));
            }
        }
    }
    Ok(role)
}

/// Applies the security options to a socket that has not bound or connected yet (and the
/// ZAP endpoint to its context). Returns the role, and lines to print on stderr once the
/// `bound` lines are out (the public key of a key pair made for this run).
pub fn apply(ctx: &Context, s: &Socket, o: &Security) -> Result<(Role, Vec<String>)> {
    let role = role(o)?;
    let mut notes = Vec::new();
    let opt = |what: &str, r: zmtp_std::Result<()>| r.map_err(|e| CliError::socket(what, e));
    if o.curve_server || o.curve_serverkey.is_some() {
        let from_env = o
            .curve_secretkey
            .is_none()
            .then(|| std::env::var(ENV_CURVE_SECRETKEY).ok())
            .flatten();
        let (secret, source) = match (&o.curve_secretkey, &from_env) {
            (Some(k), _) => (
                Some(key("--curve-secretkey", k, true)?),
                "--curve-secretkey",
            ),
            (None, Some(k)) => (
                Some(key(ENV_CURVE_SECRETKEY, k, true)?),
                ENV_CURVE_SECRETKEY,
            ),
            (None, None) => (None, ""),
        };
        let secret = match secret {
            Some(k) => zmtp_std::Zeroizing::new(k),
            None if o.curve_server => {
                return Err(CliError::usage(format!(
                    "--curve-server needs its secret key: --curve-secretkey KEY or \
                     {ENV_CURVE_SECRETKEY} (`zmtp keygen` makes a pair)"
                )))
            }
            None => {
                if o.curve_publickey.is_some() {
                    return Err(CliError::usage(
                        "--curve-publickey without --curve-secretkey: give the secret key \
                         (the public key is derived from it)",
                    ));
                }
                let (public, secret) = zmtp_std::curve_keypair()
                    .map_err(|e| CliError::failed(format!("making a CURVE key pair: {e}")))?;
                notes.push(format!(
                    "zmtp: no --curve-secretkey: using a new CURVE key pair for this run; \
                     public key {public}"
                ));
                zmtp_std::Zeroizing::new(key("the new secret key", &secret, true)?)
            }
        };
        let public = public_of(&secret)?;
        if let Some(p) = &o.curve_publickey {
            let given = key("--curve-publickey", p, false)?;
            if z85_encode(&given) != public {
                return Err(CliError::usage(format!(
                    "--curve-publickey {p:?} is not the public key of {source} (that is {public})"
                )));
            }
        }
        if o.curve_server {
            opt("--curve-server", s.set_curve_server(true))?;
        } else if let Some(k) = &o.curve_serverkey {
            let server = key("--curve-serverkey", k, false)?;
            opt("--curve-serverkey", s.set_curve_serverkey(server))?;
        }
        opt("--curve-secretkey", s.set_curve_secretkey(*secret))?;
        opt(
            "--curve-publickey",
            s.set_curve_publickey(public.as_bytes()),
        )?;
        for k in &o.allow_curve_key {
            let k = key("--allow-curve-key", k, false)?;
            opt("--allow-curve-key", s.allow_curve_key(k))?;
        }
    }
    if o.plain_server {
        opt("--plain-server", s.set_plain_server(true))?;
        for entry in &o.allow_plain {
            let (user, password) = entry.split_once(':').ok_or_else(|| {
                CliError::usage(format!(
                    "--allow-plain {:?}: expected USER:PASSWORD",
                    entry.chars().take_while(|&c| c != ':').collect::<String>()
                ))
            })?;
            s.allow_plain(user, password);
        }
    }
    if let Some(user) = &o.plain_username {
        opt("--plain-username", s.set_plain_username(user))?;
        let password = o
            .plain_password
            .clone()
            .or_else(|| std::env::var(ENV_PLAIN_PASSWORD).ok())
            .unwrap_or_default();
        opt("--plain-password", s.set_plain_password(password))?;
    }
    if let Some(d) = &o.zap_domain {
        opt("--zap-domain", s.set_zap_domain(d))?;
    }
    if let Some(ep) = &o.zap_endpoint {
        ctx.set_zap_endpoint(ep)
            .map_err(|e| CliError::socket(format!("--zap-endpoint {ep}"), e))?;
    }
    Ok((role, notes))
}

/// The security options on one side of a `broker` or `proxy` (before it binds or
/// connects), if `--secure` covers that side (`frontend`: the frontend, else the backend).
/// Secured sides are watched like a socket command's socket (call [`check`] on each): with
/// `verbose` every failed handshake is printed, and a client side refused by every server
/// it connects to stops the command. Returns whether the side was secured and the lines to
/// print once the `bound` lines are out.
pub fn apply_side(
    ctx: &Context,
    s: &Socket,
    frontend: bool,
    binds: bool,
    verbose: bool,
    side: &SecureSideArg,
    o: &Security,
) -> Result<(bool, Vec<String>)> {
    if !side.covers(frontend) {
        return Ok((false, Vec::new()));
    }
    let (role, notes) = apply(ctx, s, o)?;
    if role == Role::Null {
        if side.secure.is_some() {
            return Err(CliError::usage(
                "--secure says which sockets take the security options, but none is given \
                 (--curve-server, --curve-serverkey, --plain-server, --plain-username)",
            ));
        }
        return Ok((false, notes));
    }
    let first = WATCH
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_none();
    if first {
        watch(s, role, verbose, usize::from(binds), usize::from(!binds));
    }
    Ok((true, notes))
}

/// `zmtp keygen`.
pub fn keygen(a: &KeygenArgs) -> Result {
    let (public, secret) = match &a.secret {
        None => {
            let (p, s) = zmtp_std::curve_keypair()
                .map_err(|e| CliError::failed(format!("making a CURVE key pair: {e}")))?;
            (p, s)
        }
        Some(given) => {
            let text = if given == "-" {
                let mut t = String::new();
                std::io::stdin()
                    .read_to_string(&mut t)
                    .map_err(|e| CliError::failed(format!("reading the secret key: {e}")))?;
                zmtp_std::Zeroizing::new(t)
            } else {
                zmtp_std::Zeroizing::new(given.clone())
            };
            let secret = zmtp_std::Zeroizing::new(key("--secret", &text, true)?);
            (
                public_of(&secret)?,
                zmtp_std::Zeroizing::new(z85_encode(&secret)),
            )
        }
    };
    println!("public: {public}");
    println!("secret: {}", &*secret);
    Ok(())
}

/// What the wait loops watch on the socket of a socket command.
#[derive(Debug)]
struct Watch {
    role: Role,
    verbose: bool,
    /// The command only connects (no `--bind`), to this many endpoints.
    connect_only: Option<usize>,
    /// What to check when a server refuses us.
    refused_hint: String,
    refused: usize,
    warned: bool,
}

static WATCH: Mutex<Option<Watch>> = Mutex::new(None);

/// Has the wait loops watch the security handshakes of the command's socket `s`.
pub fn watch(s: &Socket, role: Role, verbose: bool, binds: usize, connects: usize) {
    if role == Role::Null {
        return;
    }
    let refused_hint = match s.options().security.curve_publickey() {
        Some(k) => format!("does the server allow our public key {}?", z85_encode(&k)),
        None => "wrong --plain-username or --plain-password?".to_owned(),
    };
    *WATCH.lock().unwrap_or_else(PoisonError::into_inner) = Some(Watch {
        role,
        verbose,
        connect_only: (binds == 0).then_some(connects),
        refused_hint,
        refused: 0,
        warned: false,
    });
}

/// Reports the security handshakes that failed since the last call: with `-v` each; a
/// client's first failure in any case. Fails when every server the client connects to
/// refused its credentials (a refused client does not reconnect: waiting is pointless).
pub fn check(s: &Socket) -> Result {
    let mut g = WATCH.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(w) = g.as_mut() else {
        return Ok(());
    };
    for f in s.auth_failures() {
        let refused = matches!(f.kind, AuthFailureKind::RefusedByServer { .. });
        if refused {
            w.refused += 1;
            if w.connect_only.is_some_and(|n| w.refused >= n) {
                return Err(CliError::failed(format!(
                    "{f} ({}); a refused client does not reconnect",
                    w.refused_hint
                )));
            }
        }
        if w.verbose {
            eprintln!("zmtp: {f}");
        } else if w.role == Role::Client && !w.warned {
            let hint = if refused {
                w.refused_hint.clone()
            } else {
                "wrong --curve-serverkey? retrying; -v shows each failure".to_owned()
            };
            eprintln!("zmtp: warning: {f} ({hint})");
            w.warned = true;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z85_round_trip() {
        let (public, _) = zmtp_std::curve_keypair().unwrap();
        let k = z85_decode(&public).unwrap();
        assert_eq!(z85_encode(&k), public);
        // RFC 32's test vector.
        let mut v = [0u8; 32];
        v[..8].copy_from_slice(&[0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]);
        assert!(z85_encode(&v).starts_with("HelloWorld"));
    }

    #[test]
    fn keys_are_z85_or_hex() {
        let (public, secret) = zmtp_std::curve_keypair().unwrap();
        let k = key("--k", &public, false).unwrap();
        let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(key("--k", &hex, false).unwrap(), k);
        assert!(key("--k", "short", false).is_err());
        assert!(key("--k", &"\"".repeat(40), false).is_err());
        let e = key("--s", &format!("{}~", &secret[..39]), true).unwrap_err();
        assert!(!e.to_string().contains(&secret[..39]), "{e}");
    }

    #[test]
    fn roles() {
        let s = Security::default();
        assert_eq!(role(&s).unwrap(), Role::Null);
        let s = Security {
            curve_server: true,
            ..Security::default()
        };
        assert_eq!(role(&s).unwrap(), Role::Server);
        let s = Security {
            plain_username: Some("u".into()),
            ..Security::default()
        };
        assert_eq!(role(&s).unwrap(), Role::Client);
        for bad in [
            Security {
                curve_server: true,
                plain_username: Some("u".into()),
                ..Security::default()
            },
            Security {
                curve_secretkey: Some("k".into()),
                ..Security::default()
            },
            Security {
                allow_plain: vec!["u:p".into()],
                ..Security::default()
            },
            Security {
                zap_domain: Some("d".into()),
                ..Security::default()
            },
            Security {
                plain_password: Some("p".into()),
                ..Security::default()
            },
        ] {
            assert!(matches!(role(&bad), Err(CliError::Usage(_))), "{bad:?}");
        }
    }
}
