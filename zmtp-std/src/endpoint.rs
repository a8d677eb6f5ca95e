//! Endpoints: `tcp://host:port` and `ipc://path`, as libzmq writes them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::transport::Addr;

fn invalid(endpoint: &str, reason: &'static str) -> Error {
    Error::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason,
    }
}

/// Splits `tcp://host:port` into host and port text. IPv6 hosts come in brackets.
fn split(endpoint: &str) -> Result<(&str, &str)> {
    let Some((transport, rest)) = endpoint.split_once("://") else {
        return Err(invalid(endpoint, "expected transport://address"));
    };
    if transport != "tcp" {
        return Err(invalid(
            endpoint,
            "only the tcp:// and ipc:// transports are supported",
        ));
    }
    if rest.contains(';') {
        return Err(invalid(endpoint, "source addresses are not supported"));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| invalid(endpoint, "unclosed '[' in IPv6 address"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| invalid(endpoint, "expected :port after the address"))?;
        (host, port)
    } else {
        rest.rsplit_once(':')
            .ok_or_else(|| invalid(endpoint, "expected host:port"))?
    };
    if host.is_empty() {
        return Err(invalid(endpoint, "empty host"));
    }
    Ok((host, port))
}

fn parse_port(endpoint: &str, port: &str, wildcard: bool) -> Result<u16> {
    if wildcard && port == "*" {
        return Ok(0);
    }
    port.parse::<u16>()
        .map_err(|_| invalid(endpoint, "port is not a number from 0 to 65535"))
}

fn resolve(endpoint: &str, host: &str, port: u16) -> Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs().map_err(Error::Io)?.collect();
    if addrs.is_empty() {
        return Err(invalid(endpoint, "host name resolves to no address"));
    }
    Ok(addrs)
}

/// `ipc://path`: the path, or `None` if the endpoint is not `ipc://`.
fn ipc_path(endpoint: &str) -> Result<Option<PathBuf>> {
    let Some(path) = endpoint.strip_prefix("ipc://") else {
        return Ok(None);
    };
    if path.is_empty() {
        return Err(invalid(endpoint, "empty ipc path"));
    }
    if path.starts_with('@') || path.contains('\0') {
        return Err(invalid(
            endpoint,
            "abstract-namespace ipc addresses are not supported",
        ));
    }
    Ok(Some(PathBuf::from(path)))
}

/// A fresh path for `ipc://*` in the system's temporary directory.
fn ipc_wildcard() -> PathBuf {
    use std::hash::BuildHasher;
    let salt = std::collections::hash_map::RandomState::new()
        .hash_one((std::process::id(), std::time::Instant::now()));
    std::env::temp_dir().join(format!("zmtp-{}-{salt:016x}.ipc", std::process::id()))
}

/// The address to bind: `tcp://`: `*` is every IPv4 interface; port `*` or `0` asks the
/// system for a free port. `ipc://path`; `ipc://*` makes up a path in the temporary
/// directory.
pub(crate) fn parse_bind(endpoint: &str) -> Result<Addr> {
    if let Some(path) = ipc_path(endpoint)? {
        if path.as_os_str() == "*" {
            return Ok(Addr::Ipc(ipc_wildcard()));
        }
        return Ok(Addr::Ipc(path));
    }
    parse_bind_tcp(endpoint).map(Addr::Tcp)
}

fn parse_bind_tcp(endpoint: &str) -> Result<SocketAddr> {
    let (host, port) = split(endpoint)?;
    let port = parse_port(endpoint, port, true)?;
    if host == "*" {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    let addrs = resolve(endpoint, host, port)?;
    // Prefer IPv4 when a name has both, as libzmq does without ZMQ_IPV6.
    let first = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied();
    first.ok_or_else(|| invalid(endpoint, "host name resolves to no address"))
}

/// The addresses to connect to (a host name may give several; they are tried in turn).
pub(crate) fn parse_connect(endpoint: &str) -> Result<Vec<Addr>> {
    if let Some(path) = ipc_path(endpoint)? {
        if path.as_os_str() == "*" {
            return Err(invalid(endpoint, "cannot connect to '*'"));
        }
        return Ok(vec![Addr::Ipc(path)]);
    }
    Ok(parse_connect_tcp(endpoint)?
        .into_iter()
        .map(Addr::Tcp)
        .collect())
}

fn parse_connect_tcp(endpoint: &str) -> Result<Vec<SocketAddr>> {
    let (host, port) = split(endpoint)?;
    if host == "*" {
        return Err(invalid(endpoint, "cannot connect to '*'"));
    }
    let port = parse_port(endpoint, port, false)?;
    if port == 0 {
        return Err(invalid(endpoint, "cannot connect to port 0"));
    }
    resolve(endpoint, host, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(a: &str) -> Addr {
        Addr::Tcp(a.parse().unwrap())
    }

    #[test]
    fn bind_forms() {
        assert_eq!(parse_bind("tcp://127.0.0.1:0").unwrap(), tcp("127.0.0.1:0"));
        assert_eq!(parse_bind("tcp://*:5555").unwrap(), tcp("0.0.0.0:5555"));
        assert_eq!(parse_bind("tcp://*:*").unwrap(), tcp("0.0.0.0:0"));
        assert_eq!(parse_bind("tcp://[::1]:7").unwrap(), tcp("[::1]:7"));
        assert_eq!(tcp("[::1]:7").to_string(), "tcp://[::1]:7");
        assert_eq!(tcp("10.0.0.1:9").to_string(), "tcp://10.0.0.1:9");
        assert_eq!(
            parse_bind("ipc:///tmp/a b").unwrap(),
            Addr::Ipc("/tmp/a b".into())
        );
        assert_eq!(Addr::Ipc("/tmp/x".into()).to_string(), "ipc:///tmp/x");
        assert_eq!(parse_bind("ipc://rel").unwrap(), Addr::Ipc("rel".into()));
        let (Addr::Ipc(a), Addr::Ipc(b)) = (
            parse_bind("ipc://*").unwrap(),
            parse_bind("ipc://*").unwrap(),
        ) else {
            panic!("not ipc")
        };
        assert!(a != b && a.starts_with(std::env::temp_dir()), "{a:?}");
        for bad in ["ipc://", "ipc://@abstract", "inproc://x"] {
            assert!(
                matches!(parse_bind(bad), Err(Error::InvalidEndpoint { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn connect_forms() {
        assert_eq!(
            parse_connect("tcp://127.0.0.1:5555").unwrap(),
            vec![tcp("127.0.0.1:5555")]
        );
        assert!(!parse_connect("tcp://localhost:5555").unwrap().is_empty());
        assert_eq!(
            parse_connect("ipc:///tmp/x").unwrap(),
            vec![Addr::Ipc("/tmp/x".into())]
        );
        for bad in [
            "tcp://127.0.0.1:0",
            "tcp://*:5555",
            "tcp://127.0.0.1",
            "ipc://*",
            "ipc://",
            "inproc://x",
            "127.0.0.1:5555",
            "tcp://[::1:5",
            "tcp://:5",
            "tcp://127.0.0.1:99999",
            "tcp://a;127.0.0.1:5",
        ] {
            assert!(
                matches!(parse_connect(bad), Err(Error::InvalidEndpoint { .. })),
                "{bad}"
            );
        }
    }
}
