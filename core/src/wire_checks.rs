//! Every check a node runs on what another node sends it, gathered from the crates that
//! declare wire messages: for fuzzers and protocol tests, which run untrusted bytes through
//! exactly what a node runs before any handler sees them.

use raya_cluster::transport::WireCheck;

/// Every wire name of the protocol catalogue with the check a node runs on its frame bodies
/// (decoding them, who may send them, their bounds; see
/// `raya_cluster::transport::WireMessage::check_from`). Run a frame through them with
/// `raya_cluster::transport::checks::check_frame`.
///
/// ```
/// let names: Vec<&str> = raya::wire_checks().iter().map(|(n, _)| *n).collect();
/// assert!(names.contains(&"local_scheduler/PlaceTask"));
/// ```
pub fn wire_checks() -> Vec<WireCheck> {
    use raya_cluster::transport::{WireMessage, check_body};
    let mut checks = raya_cluster::transport::checks::transport_checks();
    checks.extend(raya_cluster::gcs::wire_checks());
    checks.extend(raya_scheduler::wire_checks::wire_checks());
    checks.extend(raya_store::object_manager::wire_checks());
    checks.push((
        crate::actor_host::wire::DeliverCalls::NAME,
        check_body::<crate::actor_host::wire::DeliverCalls>,
    ));
    checks.push((
        crate::actor_host::wire::ControlActor::NAME,
        check_body::<crate::actor_host::wire::ControlActor>,
    ));
    checks
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_name_of_the_catalogue_has_its_check_and_no_other_does() {
        let mut checked: Vec<&str> = super::wire_checks().iter().map(|(n, _)| *n).collect();
        checked.sort_unstable();
        let mut listed: Vec<String> = raya_cluster::transport::protocol::catalogue()
            .into_iter()
            .map(|e| e.name)
            .collect();
        listed.sort_unstable();
        assert_eq!(checked, listed);
    }
}
