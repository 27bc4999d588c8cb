//! The discovery sources noex has: a fixed list, and a DNS name.

use std::time::Duration;

use super::{Discovery, DiscoveryError, DEFAULT_DISCOVERY_INTERVAL};
use crate::dist::config::Seed;
use crate::dist::node_id::{split_address, NodeIdError};

/// A fixed list of seeds, each `host:port` or `name@host:port`: the source that
/// [`ClusterConfig::seed`](crate::ClusterConfig::seed) feeds. It is asked once, when the
/// node starts; its seeds are dialled until they answer.
///
/// ```
/// use noex::{ClusterConfig, StaticSeeds};
///
/// let seeds = StaticSeeds::new(["coordinator@10.0.0.2:4370", "10.0.0.3:4370"]).unwrap();
/// let config = ClusterConfig::new("worker-1").discovery(seeds);
/// # let _ = config;
/// assert!(StaticSeeds::new(["10.0.0.3"]).is_err()); // no port
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticSeeds {
    seeds: Vec<String>,
}

impl StaticSeeds {
    /// The seeds, checked: an entry that is not `host:port` or `name@host:port` is an
    /// error.
    pub fn new<S: Into<String>>(seeds: impl IntoIterator<Item = S>) -> Result<Self, NodeIdError> {
        let seeds = Self::unchecked(seeds.into_iter().map(Into::into).collect());
        for seed in &seeds.seeds {
            Seed::parse(seed)?;
        }
        Ok(seeds)
    }

    /// Seeds checked elsewhere (a configuration's, when the node starts).
    pub(crate) fn unchecked(seeds: Vec<String>) -> Self {
        StaticSeeds { seeds }
    }
}

impl Discovery for StaticSeeds {
    async fn addresses(&self) -> Result<Vec<String>, DiscoveryError> {
        Ok(self.seeds.clone())
    }

    /// Never: the list does not change.
    async fn changed(&self) {
        futures_lite::future::pending::<()>().await;
    }
}

/// A DNS name and a port, `host:port`, whose addresses are the seeds: every address the
/// name resolves to is dialled, and the name is resolved again every
/// [`interval`](Self::interval) (default [`DEFAULT_DISCOVERY_INTERVAL`], 5 s), so that
/// members that appear later are found and those that are gone are no longer dialled.
/// For a Kubernetes headless service, whose name resolves to the address of every ready
/// pod behind it.
///
/// The name is resolved off the scheduler threads (by [`async_net::resolve`], on the
/// `blocking` thread pool). A lookup that fails is logged and retried; the addresses of
/// the last lookup that succeeded stay listed meanwhile. The node's own address, which
/// the name may list, is not dialled.
///
/// ```
/// use std::time::Duration;
/// use noex::{ClusterConfig, DnsSeeds};
///
/// let members = DnsSeeds::new("noex.default.svc.cluster.local:4370")
///     .unwrap()
///     .interval(Duration::from_secs(10));
/// let config = ClusterConfig::new("worker-1").discovery(members);
/// # let _ = config;
/// assert!(DnsSeeds::new("noex.default.svc.cluster.local").is_err()); // no port
/// ```
#[derive(Debug, Clone)]
#[must_use = "a DnsSeeds does nothing until a ClusterConfig takes it (ClusterConfig::discovery)"]
pub struct DnsSeeds {
    name: String,
    interval: Duration,
}

impl DnsSeeds {
    /// The seeds named by `name`, `host:port` (the port is that of every node behind the
    /// name). A malformed name is an error; one that does not resolve is not (it is
    /// retried: the service may not exist yet).
    pub fn new(name: impl Into<String>) -> Result<Self, NodeIdError> {
        let name = name.into();
        split_address(&name)?;
        Ok(DnsSeeds {
            name,
            interval: DEFAULT_DISCOVERY_INTERVAL,
        })
    }

    /// How often the name is resolved again (at least every 10 ms).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }
}

impl Discovery for DnsSeeds {
    async fn addresses(&self) -> Result<Vec<String>, DiscoveryError> {
        let resolved = async_net::resolve(self.name.as_str())
            .await
            .map_err(|error| DiscoveryError::Resolve {
                name: self.name.clone(),
                error,
            })?;
        let mut addresses: Vec<String> = Vec::with_capacity(resolved.len());
        for address in resolved {
            let address = address.to_string();
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
        Ok(addresses)
    }

    async fn changed(&self) {
        smol::Timer::after(self.interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dns_seed_is_a_host_and_a_port() {
        for name in [
            "localhost:4370",
            "noex.default.svc:1",
            "10.0.0.2:4370",
            "[::1]:4370",
        ] {
            assert!(DnsSeeds::new(name).is_ok(), "{name}");
        }
        let err = |name: &str| DnsSeeds::new(name).unwrap_err();
        assert!(matches!(err("localhost"), NodeIdError::MissingPort(_)));
        assert!(matches!(err("localhost:0"), NodeIdError::BadPort(_)));
        assert!(matches!(err("bad_host:4370"), NodeIdError::BadHost(_)));
        // A name resolves to many nodes: it cannot be one node's id.
        assert!(matches!(err("a@localhost:4370"), NodeIdError::BadHost(_)));
    }

    #[test]
    fn static_seeds_are_checked() {
        assert!(StaticSeeds::new(["a@10.0.0.2:4370", "localhost:4370"]).is_ok());
        assert!(StaticSeeds::new(Vec::<String>::new()).is_ok());
        let err = |seed: &str| StaticSeeds::new([seed]).unwrap_err();
        assert!(matches!(err("10.0.0.2"), NodeIdError::MissingPort(_)));
        assert!(matches!(err("1a@10.0.0.2:4370"), NodeIdError::BadName(_)));
    }

    #[test]
    fn the_interval_has_a_floor() {
        let seeds = DnsSeeds::new("localhost:4370").unwrap();
        assert_eq!(seeds.interval, DEFAULT_DISCOVERY_INTERVAL);
        assert_eq!(
            seeds.interval(Duration::ZERO).interval,
            Duration::from_millis(10)
        );
    }

    #[test]
    fn a_name_lists_every_address_it_resolves_to_once() {
        // Whatever this machine's resolver says of localhost (127.0.0.1, maybe ::1 too),
        // all of it, each address once.
        let mut expected: Vec<String> = std::net::ToSocketAddrs::to_socket_addrs("localhost:4370")
            .unwrap()
            .map(|a| a.to_string())
            .collect();
        expected.sort();
        expected.dedup();
        let mut listed =
            smol::block_on(DnsSeeds::new("localhost:4370").unwrap().addresses()).unwrap();
        listed.sort();
        assert_eq!(listed, expected);
        assert!(listed.contains(&"127.0.0.1:4370".to_owned()));
    }

    #[test]
    fn an_ip_address_lists_itself() {
        let seeds = DnsSeeds::new("[::1]:4370").unwrap();
        let listed = smol::block_on(seeds.addresses()).unwrap();
        assert_eq!(listed, ["[::1]:4370"]);
    }
}
