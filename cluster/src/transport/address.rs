//! Addresses: `host:port` and multiaddrs, and which of a node's addresses others can reach.

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

use super::NetError;

/// Parses `host:port` (an IPv4 or IPv6 address) or a multiaddr.
///
/// ```
/// let a = raya_cluster::transport::parse_address("127.0.0.1:6379").unwrap();
/// assert_eq!(a.to_string(), "/ip4/127.0.0.1/tcp/6379");
/// assert!(raya_cluster::transport::parse_address("nonsense").is_err());
/// ```
pub fn parse_address(s: &str) -> Result<Multiaddr, NetError> {
    let s = s.trim();
    if s.starts_with('/') {
        return s.parse().map_err(|_| NetError::Address(s.into()));
    }
    let sock: std::net::SocketAddr = s.parse().map_err(|_| NetError::Address(s.into()))?;
    let ip = match sock.ip() {
        std::net::IpAddr::V4(v4) => Protocol::Ip4(v4),
        std::net::IpAddr::V6(v6) => Protocol::Ip6(v6),
    };
    Ok(Multiaddr::empty().with(ip).with(Protocol::Tcp(sock.port())))
}

/// The `host:port` forms of `addrs`, addresses other machines can reach first (loopback last).
///
/// ```
/// let addrs = ["/ip4/127.0.0.1/tcp/7".parse().unwrap(), "/ip4/10.0.0.2/tcp/7".parse().unwrap()];
/// let s = raya_cluster::transport::sockets_reachable_first(&addrs);
/// assert_eq!(s[0].to_string(), "10.0.0.2:7");
/// ```
pub fn sockets_reachable_first(addrs: &[Multiaddr]) -> Vec<std::net::SocketAddr> {
    let mut v: Vec<std::net::SocketAddr> = addrs.iter().filter_map(socket_of).collect();
    v.sort_by_key(|a| a.ip().is_loopback());
    v
}

/// `host:port` of a TCP multiaddr, when it has that form.
pub fn socket_of(addr: &Multiaddr) -> Option<std::net::SocketAddr> {
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    Some(std::net::SocketAddr::new(ip?, port?))
}
