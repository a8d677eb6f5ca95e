//! Endpoints: `tcp://host:port`, as libzmq writes them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use crate::error::{Error, Result};

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
        return Err(invalid(endpoint, "only the tcp:// transport is supported"));
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

/// The address to bind: `*` is every IPv4 interface; port `*` or `0` asks the system for a
/// free port.
pub(crate) fn parse_bind(endpoint: &str) -> Result<SocketAddr> {
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
pub(crate) fn parse_connect(endpoint: &str) -> Result<Vec<SocketAddr>> {
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

/// How libzmq prints a bound address (`ZMQ_LAST_ENDPOINT`).
pub(crate) fn format(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("tcp://{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("tcp://[{}]:{}", a.ip(), a.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_forms() {
        let a = parse_bind("tcp://127.0.0.1:0").unwrap();
        assert_eq!(a, "127.0.0.1:0".parse().unwrap());
        assert_eq!(
            parse_bind("tcp://*:5555").unwrap(),
            "0.0.0.0:5555".parse().unwrap()
        );
        assert_eq!(
            parse_bind("tcp://*:*").unwrap(),
            "0.0.0.0:0".parse().unwrap()
        );
        assert_eq!(
            parse_bind("tcp://[::1]:7").unwrap(),
            "[::1]:7".parse().unwrap()
        );
        assert_eq!(format("[::1]:7".parse().unwrap()), "tcp://[::1]:7");
        assert_eq!(format("10.0.0.1:9".parse().unwrap()), "tcp://10.0.0.1:9");
    }

    #[test]
    fn connect_forms() {
        assert_eq!(
            parse_connect("tcp://127.0.0.1:5555").unwrap(),
            vec!["127.0.0.1:5555".parse().unwrap()]
        );
        assert!(!parse_connect("tcp://localhost:5555").unwrap().is_empty());
        for bad in [
            "tcp://127.0.0.1:0",
            "tcp://*:5555",
            "tcp://127.0.0.1",
            "ipc:///tmp/x",
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
