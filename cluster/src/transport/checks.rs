//! What a node checks on a frame from another node before any handler sees it, gathered by
//! wire name: the table fuzzers and protocol tests run untrusted bytes through. Each crate that
//! declares wire messages lists its own ([`crate::gcs::wire_checks`] here, the scheduler's, the
//! object manager's and the node manager's in theirs); the `raya` crate gathers them all.

use super::{Caller, Frame, Sequenced, WireCheck, WireMessage, check_body, route_of};

/// The checks this crate's transport declares: the ordered links' batches.
pub fn transport_checks() -> Vec<WireCheck> {
    vec![(Sequenced::NAME, check_body::<Sequenced>)]
}

/// Checks `frame` from `from` as the router would: the frame's route must be one of `checks`,
/// its body must pass that check, and a batch of an ordered link must hold no batch and only
/// frames that pass theirs. Returns the first refusal.
pub fn check_frame(checks: &[WireCheck], frame: &Frame, from: &Caller) -> Result<(), String> {
    let Some((name, check)) = checks
        .iter()
        .find(|(name, _)| route_of(name) == frame.route)
    else {
        return Err(format!("no route {:#x}", frame.route));
    };
    check(&frame.body, from)?;
    if *name != Sequenced::NAME {
        return Ok(());
    }
    let batch = Sequenced::decode(&frame.body).map_err(|e| e.to_string())?;
    for inner in &batch.frames {
        if inner.route == route_of(Sequenced::NAME) {
            return Err("a batch inside a batch".into());
        }
        check_frame(checks, inner, from)?;
    }
    Ok(())
}
