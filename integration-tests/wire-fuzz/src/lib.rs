//! What a Raya node does with the bytes another node sends it, packaged as fuzz targets.
//!
//! - [`targets::frame`]: the request-response frame decoder (a length prefix and a frame), then
//!   every check the node runs on the frame (its route's, and those of each frame in an ordered
//!   link's batch);
//! - [`targets::route`]: one route's check on a body (the route chosen by the input's first two
//!   bytes), so the fuzzer spends its effort on message bodies;
//! - [`targets::gcs_live`]: a frame handed to the routes of live GCS tables, handlers included.
//!
//! The cargo-fuzz targets in `fuzz/` call these; [`seeds`] writes their seed corpus of valid
//! frames and [`mutate`] drives the reduced runs in CI (`tests/reduced.rs`). No input may panic,
//! hang or allocate what it merely claims.

pub mod mutate;
pub mod seeds;
pub mod targets;
