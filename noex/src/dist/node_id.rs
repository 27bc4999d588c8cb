//! Node identities: `name@host:port`, parsed and validated.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use thiserror::Error;

/// The identity of a node in a cluster: `name@host:port`, where `host:port` is the address
/// other nodes connect to.
///
/// ```
/// use noex::NodeId;
///
/// let id: NodeId = "worker-1@10.0.0.7:4370".parse().unwrap();
/// assert_eq!(id.name(), "worker-1");
/// assert_eq!(id.host(), "10.0.0.7");
/// assert_eq!(id.port(), 4370);
/// assert!("worker 1@10.0.0.7:4370".parse::<NodeId>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    text: Arc<str>,
    name_len: usize,
    host_start: usize,
    host_end: usize,
    port: u16,
}

/// Why a node id or seed address did not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NodeIdError {
    /// There is no `@` between the name and the address.
    #[error("{0:?} is not a node id: expected name@host:port")]
    MissingAt(String),
    /// The name is empty, too long, or has characters other than letters, digits, `_`, `-`.
    #[error("{0:?} is not a valid node name: use 1 to 64 letters, digits, '_' or '-', starting with a letter")]
    BadName(String),
    /// The address has no `:port`.
    #[error("{0:?} has no port: expected host:port")]
    MissingPort(String),
    /// The port is not a number from 1 to 65535.
    #[error("{0:?} is not a valid port")]
    BadPort(String),
    /// The host is empty or not a valid host name or IP address.
    #[error("{0:?} is not a valid host")]
    BadHost(String),
}

impl NodeId {
    /// A node id from its parts, validated.
    pub fn new(name: &str, host: &str, port: u16) -> Result<NodeId, NodeIdError> {
        validate_name(name)?;
        validate_host(host)?;
        if port == 0 {
            return Err(NodeIdError::BadPort("0".into()));
        }
        // An IPv6 host is written in brackets, so that `host:port` can be dialled.
        let (text, host_start) = match host.contains(':') {
            true => (format!("{name}@[{host}]:{port}"), name.len() + 2),
            false => (format!("{name}@{host}:{port}"), name.len() + 1),
        };
        Ok(NodeId {
            name_len: name.len(),
            host_start,
            host_end: host_start + host.len(),
            port,
            text: Arc::from(text),
        })
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.text[..self.name_len]
    }

    /// The host other nodes connect to (an IPv6 address without its brackets).
    pub fn host(&self) -> &str {
        &self.text[self.host_start..self.host_end]
    }

    /// The port other nodes connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port` (`[host]:port` for an IPv6 address), to dial.
    pub fn address(&self) -> &str {
        &self.text[self.name_len + 1..]
    }

    /// The whole id, `name@host:port`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn as_arc(&self) -> Arc<str> {
        self.text.clone()
    }
}

/// A node id travels as its text, `name@host:port`, and is validated when it arrives.
impl serde::Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for NodeId {
    type Err = NodeIdError;

    fn from_str(text: &str) -> Result<NodeId, NodeIdError> {
        let (name, address) = text
            .split_once('@')
            .ok_or_else(|| NodeIdError::MissingAt(text.to_owned()))?;
        let (host, port) = split_address(address)?;
        NodeId::new(name, host, port)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.text, f)
    }
}

/// `host:port` → (host, port), with brackets of an IPv6 host removed.
pub(crate) fn split_address(address: &str) -> Result<(&str, u16), NodeIdError> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| NodeIdError::MissingPort(address.to_owned()))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| NodeIdError::BadPort(port.to_owned()))?;
    validate_host(host)?;
    Ok((host, port))
}

fn validate_name(name: &str) -> Result<(), NodeIdError> {
    let mut chars = name.chars();
    let valid = name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(NodeIdError::BadName(name.to_owned()))
    }
}

fn validate_host(host: &str) -> Result<(), NodeIdError> {
    let bad = || NodeIdError::BadHost(host.to_owned());
    if host.is_empty() || host.len() > 253 {
        return Err(bad());
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    // Something that looks like an IPv4 address but is not one is a typo, not a host name.
    if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if labels_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_node_ids() {
        let id: NodeId = "a@127.0.0.1:4000".parse().unwrap();
        assert_eq!((id.name(), id.host(), id.port()), ("a", "127.0.0.1", 4000));
        assert_eq!(id.to_string(), "a@127.0.0.1:4000");
        assert_eq!(id.address(), "127.0.0.1:4000");
        let v6: NodeId = "b@[::1]:5".parse().unwrap();
        assert_eq!((v6.host(), v6.address()), ("::1", "[::1]:5"));
        assert_eq!(v6.to_string(), "b@[::1]:5");
        assert_eq!(NodeId::new("b", "::1", 5), Ok(v6.clone()));
        assert_eq!(
            v6.address()
                .parse::<std::net::SocketAddr>()
                .ok()
                .map(|a| a.port()),
            Some(5)
        );
        let dns: NodeId = "c_1@db-2.example.com:80".parse().unwrap();
        assert_eq!(dns.host(), "db-2.example.com");
    }

    #[test]
    fn rejects_bad_node_ids_with_typed_errors() {
        let err = |s: &str| s.parse::<NodeId>().unwrap_err();
        assert!(matches!(err("a127.0.0.1:4000"), NodeIdError::MissingAt(_)));
        assert!(matches!(err("@127.0.0.1:4000"), NodeIdError::BadName(_)));
        assert!(matches!(err("1a@127.0.0.1:4000"), NodeIdError::BadName(_)));
        assert!(matches!(err("a b@127.0.0.1:4000"), NodeIdError::BadName(_)));
        assert!(matches!(err("a@127.0.0.1"), NodeIdError::MissingPort(_)));
        assert!(matches!(err("a@127.0.0.1:0"), NodeIdError::BadPort(_)));
        assert!(matches!(err("a@127.0.0.1:70000"), NodeIdError::BadPort(_)));
        assert!(matches!(err("a@999.1.1.1:5"), NodeIdError::BadHost(_)));
        assert!(matches!(err("a@:5"), NodeIdError::BadHost(_)));
        assert!(matches!(err("a@bad_host:5"), NodeIdError::BadHost(_)));
    }
}
