//! How the node takes part in a cluster, and starting its network.

use raya_cluster::transport::{self, ClusterKey, NetConfig, Network, Role, Router};

use crate::config::Config;
use crate::error::{Error, Result};

/// How the node takes part in a cluster.
#[derive(Debug, Clone)]
pub(super) enum Mode {
    /// A one-node cluster in this process; no network.
    Embedded,
    /// The head: runs the GCS and the global scheduler, listens for nodes.
    Head(Network),
    /// A node joining the head it finds through the network.
    Join(Network),
}

impl Mode {
    pub(super) fn net(&self) -> Option<&Network> {
        match self {
            Mode::Embedded => None,
            Mode::Head(n) | Mode::Join(n) => Some(n),
        }
    }
}

/// The address to join: the config's, else `RAYA_ADDRESS`.
pub(super) fn join_address(config: &Config) -> Option<String> {
    config.address.clone().or_else(|| {
        std::env::var("RAYA_ADDRESS")
            .ok()
            .filter(|a| !a.trim().is_empty())
    })
}

/// Starts the network when `config` asks for a cluster (a head, or an address to join, from the
/// config or `RAYA_ADDRESS`), with the cluster key (see [`super::cluster_key`]) it uses.
pub(super) fn start_network(
    config: &Config,
    key: &libp2p_identity::Keypair,
    session: &std::path::Path,
) -> Result<(Mode, Option<ClusterKey>)> {
    let address = join_address(config);
    if !config.head && address.is_none() {
        return Ok((Mode::Embedded, None));
    }
    let cluster_key = super::cluster_key::resolve(config, session)?;
    let host = transport::parse_address(&format!("{}:{}", config.host, config.port))
        .or_else(|_| transport::parse_address(&format!("[{}]:{}", config.host, config.port)))
        .map_err(|e| Error::Node(e.to_string()))?;
    let mut nc = NetConfig::new(if config.head { Role::Head } else { Role::Node });
    nc.listen = vec![host];
    nc.topics = raya_cluster::gcs::TOPICS
        .iter()
        .map(|t| t.to_string())
        .collect();
    nc.mdns = config.mdns;
    nc.delivery_timeout = config.delivery_timeout;
    nc.cluster_key = cluster_key;
    if !config.head
        && let Some(a) = &address
    {
        // `auto`: the head this machine started last, else whatever mDNS finds.
        let a = if a == "auto" {
            std::fs::read_to_string(super::node_files::current_cluster_file())
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        } else {
            a.clone()
        };
        if !a.is_empty() {
            nc.bootstrap =
                vec![transport::parse_address(&a).map_err(|e| Error::Node(e.to_string()))?];
        }
        // A node given its head's address needs no discovery; with `auto`, the recorded head
        // may be gone, so mDNS stays on.
        if address.as_deref() != Some("auto") {
            nc.mdns = false;
        }
    }
    let network =
        Network::start(key.clone(), nc, Router::new()).map_err(|e| Error::Node(e.to_string()))?;
    let mode = if config.head {
        Mode::Head(network)
    } else {
        Mode::Join(network)
    };
    Ok((mode, cluster_key))
}
