//! The node's side of discovery: a task per source that asks it for its addresses, and the
//! record of which addresses are listed, by which sources, that decides what is dialled as
//! a seed (see the module docs of `discovery`).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Weak};

use async_net::TcpListener;
use futures_lite::FutureExt;

use super::Source;
use crate::dist::cluster::Cluster;
use crate::dist::config::Seed;
use crate::dist::connect::DialKind;
use crate::dist::node_id::NodeId;

/// The addresses the node's sources list now.
#[derive(Default)]
pub(crate) struct Listings {
    by_address: HashMap<String, Listing>,
}

#[derive(Default)]
struct Listing {
    /// The sources (by index) that list it.
    sources: BTreeSet<usize>,
    /// The node an entry names there (`name@host:port`), if any: what a dial expects.
    named: Option<NodeId>,
    /// The node a dial of it reached, to leave it alone while that node is connected.
    reached: Option<NodeId>,
    /// It refused this node for good, or led to this node itself: not dialled while it
    /// stays listed.
    refused: bool,
}

impl Listings {
    /// A dial of `address` reached `node`.
    pub(crate) fn reached(&mut self, address: &str, node: &NodeId) {
        if let Some(listing) = self.by_address.get_mut(address) {
            listing.reached = Some(node.clone());
        }
    }

    /// The listed addresses of `node`, each with the node a dial of it expects: the
    /// address in its id (expecting it), and those a dial of which reached it (expecting
    /// what their entries name, as when first dialled). A node listed only under another
    /// address than its id's may be reachable there only (a name in front of a pod).
    pub(crate) fn addresses_of(&self, node: &NodeId) -> Vec<(String, Option<NodeId>)> {
        let listed = self
            .by_address
            .iter()
            .filter(|(_, listing)| !listing.refused);
        listed
            .filter_map(|(address, listing)| match address == node.address() {
                true => Some((address.clone(), Some(node.clone()))),
                false if listing.reached.as_ref() == Some(node) => {
                    Some((address.clone(), listing.named.clone()))
                }
                false => None,
            })
            .collect()
    }

    /// `address` refused this node for good, or led to this node itself.
    pub(crate) fn refused(&mut self, address: &str) {
        if let Some(listing) = self.by_address.get_mut(address) {
            listing.refused = true;
        }
    }

    /// Records that `source` lists exactly `wanted` now. Returns the addresses no source
    /// lists any more.
    fn relist(&mut self, source: usize, wanted: &HashMap<String, Option<NodeId>>) -> Vec<String> {
        let mut unlisted = Vec::new();
        self.by_address.retain(|address, listing| {
            let dropped = !wanted.contains_key(address) && listing.sources.remove(&source);
            if dropped && listing.sources.is_empty() {
                unlisted.push(address.clone());
                return false;
            }
            true
        });
        for (address, named) in wanted {
            let listing = self.by_address.entry(address.clone()).or_default();
            listing.sources.insert(source);
            listing.named.clone_from(named);
        }
        unlisted
    }
}

/// The addresses (`host:port`) at which this node is reached: never dialled.
pub(in crate::dist) fn own_addresses(id: &NodeId, listener: &TcpListener) -> Vec<String> {
    let mut own = vec![id.address().to_owned()];
    if let Ok(local) = listener.local_addr() {
        if !local.ip().is_unspecified() {
            own.push(local.to_string());
        }
    }
    own
}

/// What of a source's answer was left out.
#[derive(Default)]
struct LeftOut {
    /// Addresses past `max_members`.
    cut: usize,
    /// Invalid entries.
    invalid: usize,
    /// The first invalid entry, and why.
    first_invalid: Option<(String, String)>,
}

/// The dialable entries of a source's list, by address, with the node id an entry names
/// (if any): invalid entries and this node's own addresses left out, and of the rest the
/// first `max` addresses taken. Also what was left out.
fn wanted(
    listed: &[String],
    own: &[String],
    max: usize,
) -> (HashMap<String, Option<NodeId>>, LeftOut) {
    let mut wanted: HashMap<String, Option<NodeId>> = HashMap::new();
    let mut left_out = LeftOut::default();
    for entry in listed {
        let seed = match Seed::parse(entry) {
            Ok(seed) => seed,
            Err(error) => {
                left_out.invalid += 1;
                if left_out.first_invalid.is_none() {
                    left_out.first_invalid = Some((entry.clone(), error.to_string()));
                }
                continue;
            }
        };
        let address = seed.address().to_owned();
        if own.contains(&address) {
            continue;
        }
        let expected = match seed {
            Seed::Node(id) => Some(id),
            Seed::Address(_) => None,
        };
        if wanted.len() >= max && !wanted.contains_key(&address) {
            left_out.cut += 1;
            continue;
        }
        let named = wanted.entry(address).or_default();
        if named.is_none() {
            *named = expected;
        }
    }
    (wanted, left_out)
}

impl Cluster {
    /// `source` lists `listed` now: dials what is newly listed (or listed and not
    /// connected), and makes what no source lists any more an ordinary address, forgotten
    /// if it does not answer. Returns what was left out of the list.
    fn relist(self: &Arc<Self>, source: usize, listed: &[String], own: &[String]) -> LeftOut {
        let (wanted, left_out) = wanted(listed, own, self.config.max_members);
        let mut dial = Vec::new();
        {
            let mut state = self.lock();
            let state = &mut *state;
            for address in state.listings.relist(source, &wanted) {
                if let Some(dial) = state.dials.get_mut(&address) {
                    // Dialled on as a lost peer would be, if it was dialled as a seed.
                    dial.kind = dial.kind.min(DialKind::Lost);
                }
            }
            for (address, expected) in wanted {
                let listing = &state.listings.by_address[&address];
                if listing.refused {
                    continue;
                }
                let connected = [&listing.reached, &expected]
                    .into_iter()
                    .flatten()
                    .any(|id| state.peers.contains_key(id.as_str()))
                    || state
                        .peers
                        .values()
                        .any(|peer| peer.id.address() == address);
                if !connected {
                    dial.push((address, expected));
                }
            }
        }
        for (address, expected) in dial {
            self.dial(address, expected, DialKind::Seed);
        }
        left_out
    }
}

/// Runs `work` until it ends or the node stops (then `None`).
async fn unless_stopped<T>(cluster: &Weak<Cluster>, work: impl Future<Output = T>) -> Option<T> {
    let stopped = {
        let cluster = cluster.upgrade()?;
        // Listen before checking, so a stop in between is not missed.
        let stopped = cluster.stopped.listen();
        if cluster.is_stopping() {
            return None;
        }
        stopped
    };
    async { Some(work.await) }
        .or(async {
            stopped.await;
            None
        })
        .await
}

/// Follows `source` (the `index`th of the node's) until the node stops: asks it for its
/// addresses, and again at each of its changes — or, after a failure, at its change or
/// after the reconnect backoff, whichever is first.
pub(in crate::dist) async fn discover(
    cluster: Weak<Cluster>,
    index: usize,
    source: Arc<dyn Source>,
    own: Vec<String>,
) {
    let Some((min, max)) = cluster
        .upgrade()
        .map(|c| (c.config.reconnect_min, c.config.reconnect_max))
    else {
        return;
    };
    let (mut backoff, mut failing) = (min, false);
    // The source's answers have been cut to `max_members` since the last one that was
    // not (warned of once); likewise, have listed invalid entries.
    let (mut cutting, mut invalid) = (false, false);
    loop {
        let Some(listed) = unless_stopped(&cluster, source.addresses()).await else {
            return;
        };
        let retry = match listed {
            Ok(listed) => {
                if failing {
                    tracing::info!(?source, "discovery source answers again");
                }
                (backoff, failing) = (min, false);
                let Some(cluster) = cluster.upgrade() else {
                    return;
                };
                let left_out = cluster.relist(index, &listed, &own);
                if let Some((entry, error)) = &left_out.first_invalid {
                    let count = left_out.invalid;
                    let what = "a discovery source listed invalid addresses (not dialled)";
                    if invalid {
                        tracing::debug!(?source, count, first = %entry, %error, "{what}");
                    } else {
                        tracing::warn!(?source, count, first = %entry, %error, "{what}");
                    }
                }
                invalid = left_out.invalid > 0;
                let cut = left_out.cut;
                if cut > 0 {
                    let max = cluster.config.max_members;
                    let what = format!("a discovery source listed more than max_members ({max}) addresses; the rest are not dialled");
                    if cutting {
                        tracing::debug!(?source, cut, "{what}");
                    } else {
                        tracing::warn!(?source, cut, "{what}");
                    }
                }
                cutting = cut > 0;
                None
            }
            Err(error) => {
                if failing {
                    tracing::debug!(?source, %error, "discovery source failed");
                } else {
                    tracing::warn!(?source, %error, "discovery source failed; retrying");
                }
                failing = true;
                let retry = backoff;
                backoff = backoff.saturating_mul(2).min(max);
                Some(retry)
            }
        };
        let next = async {
            match retry {
                Some(after) => {
                    let timer = async {
                        smol::Timer::after(after).await;
                    };
                    source.changed().or(timer).await;
                }
                None => source.changed().await,
            }
        };
        if unless_stopped(&cluster, next).await.is_none() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn entries_are_parsed_and_own_or_invalid_ones_left_out() {
        let listed = texts(&[
            "127.0.0.1:1",
            "b@127.0.0.1:2",
            "127.0.0.1:2",
            "127.0.0.1:3",
            "not an address",
            "127.0.0.1",
        ]);
        let (wanted, left_out) = wanted(&listed, &texts(&["127.0.0.1:3"]), 10);
        assert_eq!((left_out.cut, left_out.invalid), (0, 2));
        let (first, _) = left_out.first_invalid.unwrap();
        assert_eq!(first, "not an address");
        let mut addresses: Vec<_> = wanted.keys().cloned().collect();
        addresses.sort();
        assert_eq!(addresses, ["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(wanted["127.0.0.1:1"], None);
        // One entry names the node at that address: it is expected there.
        assert_eq!(wanted["127.0.0.1:2"].as_ref().unwrap().name(), "b");
    }

    #[test]
    fn an_answer_is_taken_up_to_the_bound() {
        let listed = texts(&[
            "127.0.0.1:3",
            "127.0.0.1:1",
            "bad",
            "127.0.0.1:2",
            "b@127.0.0.1:1",
            "127.0.0.1:4",
            "127.0.0.1:5",
        ]);
        // Its own address and invalid entries do not count; an address already taken
        // may be named again.
        let (wanted, left_out) = wanted(&listed, &texts(&["127.0.0.1:3"]), 2);
        let mut addresses: Vec<_> = wanted.keys().cloned().collect();
        addresses.sort();
        assert_eq!(addresses, ["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(wanted["127.0.0.1:1"].as_ref().unwrap().name(), "b");
        assert_eq!((left_out.cut, left_out.invalid), (2, 1));
    }

    #[test]
    fn an_address_is_listed_while_any_source_lists_it() {
        let set = |list: &[&str]| wanted(&texts(list), &[], 10).0;
        let mut listings = Listings::default();
        assert!(listings
            .relist(0, &set(&["10.0.0.1:1", "10.0.0.2:1"]))
            .is_empty());
        assert!(listings.relist(1, &set(&["10.0.0.2:1"])).is_empty());
        // Source 0 drops both: only the one source 1 does not list is unlisted.
        assert_eq!(listings.relist(0, &set(&[])), ["10.0.0.1:1"]);
        assert_eq!(listings.relist(1, &set(&[])), ["10.0.0.2:1"]);
        assert!(listings.by_address.is_empty());
    }

    #[test]
    fn a_refusal_lasts_while_the_address_is_listed() {
        let set = |list: &[&str]| wanted(&texts(list), &[], 10).0;
        let mut listings = Listings::default();
        listings.relist(0, &set(&["10.0.0.1:1"]));
        listings.refused("10.0.0.1:1");
        listings.relist(0, &set(&["10.0.0.1:1"]));
        assert!(listings.by_address["10.0.0.1:1"].refused);
        listings.relist(0, &set(&[]));
        listings.relist(0, &set(&["10.0.0.1:1"]));
        assert!(!listings.by_address["10.0.0.1:1"].refused);
    }
}
