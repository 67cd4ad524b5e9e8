//! The catalogue of the wire protocol, rendered from `protocol.md` beside this file: read it
//! below, or there. [`catalogue`] parses the same table, so tests can hold the code to it.
#![doc = ""]
#![doc = include_str!("protocol.md")]

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Request-response on [`super::RPC_PROTOCOL`]: served by a route of the receiver's
    /// [`super::Router`].
    RequestResponse,
    /// Gossipsub.
    Gossip,
    /// A raw stream.
    Stream,
}

/// One message of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The message's wire name.
    pub name: String,
    /// Who sends it to whom.
    pub sender_receiver: String,
    /// How it travels: the first of the ways its row names, and whether a receiver also serves
    /// it as a request (see [`Entry::served`]).
    pub transport: Transport,
    /// Whether the receiving node serves it as a request-response route.
    pub served: bool,
    /// What the sender gets back.
    pub reply: String,
    /// Its bounds.
    pub limits: String,
}

/// The catalogue's table as source text.
pub const CATALOGUE: &str = include_str!("protocol.md");

/// The rows of the catalogue, in order.
///
/// ```
/// let rows = raya_cluster::transport::protocol::catalogue();
/// assert!(rows.iter().any(|e| e.name == "gcs/RegisterNode" && e.served));
/// ```
pub fn catalogue() -> Vec<Entry> {
    CATALOGUE
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            let [name, sender_receiver, transport, reply, limits] = cells[..] else {
                return None;
            };
            let kind = if transport.starts_with("request-response") {
                Transport::RequestResponse
            } else if transport.starts_with("gossip") {
                Transport::Gossip
            } else {
                Transport::Stream
            };
            Some(Entry {
                name: name.trim_matches('`').to_string(),
                sender_receiver: sender_receiver.to_string(),
                transport: kind,
                served: transport.contains("request-response"),
                reply: reply.to_string(),
                limits: limits.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_parses_and_names_are_unique() {
        let rows = catalogue();
        let table_rows = CATALOGUE.lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(rows.len(), table_rows, "a row of the table does not parse");
        let mut names: Vec<&str> = rows.iter().map(|e| e.name.as_str()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a name is listed twice");
        for e in &rows {
            assert!(e.name.contains('/'), "{} is not component/Message", e.name);
            assert!(
                !e.sender_receiver.is_empty() && !e.reply.is_empty(),
                "{e:?}"
            );
        }
    }

    #[test]
    fn the_gcs_serves_exactly_its_rows() {
        let dir = std::env::temp_dir().join(format!("raya-protocol-{}", std::process::id()));
        actix_rt::System::new().block_on(async {
            let tables = crate::GcsTables::start(
                &crate::GcsConfig {
                    dir: dir.clone(),
                    node_timeout: std::time::Duration::from_secs(5),
                    max_task_events: 10,
                    max_kv_bytes: crate::gcs::kv::DEFAULT_MAX_BYTES,
                    head: None,
                },
                &actix_rt::Arbiter::current(),
            )
            .unwrap();
            let router = super::super::Router::new();
            tables.serve(&router);
            let served = router.names();
            let listed: Vec<String> = catalogue()
                .into_iter()
                .filter(|e| {
                    e.served && (e.name.starts_with("gcs/") || e.name.starts_with("transport/"))
                })
                .map(|e| e.name)
                .collect();
            let mut listed: Vec<&str> = listed.iter().map(String::as_str).collect();
            listed.sort_unstable();
            assert_eq!(served, listed);
        });
        let _ = std::fs::remove_dir_all(dir);
    }
}
