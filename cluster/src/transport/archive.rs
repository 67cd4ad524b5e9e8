//! The wire format of system messages: rkyv archives, checked with bytecheck before any field
//! is read.
//!
//! A type that derives rkyv's `Archive`, `Serialize` and `Deserialize` (with validation, which
//! the workspace's rkyv features turn on) is [`Archived`]: [`Archived::to_archive`] writes it,
//! [`Archived::from_archive`] checks every offset, length, tag and character of the bytes
//! before reading one field (a malformed archive is an error, never undefined behaviour), then
//! builds the value. [`Archived::check_archive`] checks without building, for readers that
//! only look at the archive. The format is unaligned (any byte slice of a frame can be read in
//! place), little-endian, with 32-bit lengths.

use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;

use super::WireError;

/// A value with an rkyv wire form, checked when read.
///
/// ```
/// use raya_cluster::transport::archive::Archived;
/// let bytes = raya_common::NodeId::random().to_archive().unwrap();
/// assert!(raya_common::NodeId::from_archive(&bytes).is_ok());
/// assert!(raya_common::NodeId::from_archive(&bytes[..bytes.len() - 1]).is_err());
/// ```
pub trait Archived: Sized {
    /// The archive of `self`.
    fn to_archive(&self) -> Result<Vec<u8>, WireError>;
    /// Checks `bytes` as an archive of `Self`, then reads it.
    fn from_archive(bytes: &[u8]) -> Result<Self, WireError>;
    /// Checks `bytes` as an archive of `Self` without reading it into a value.
    fn check_archive(bytes: &[u8]) -> Result<(), WireError>;
}

impl<T> Archived for T
where
    T: rkyv::Archive
        + for<'a> rkyv::Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>>
        + rkyv::Deserialize<T, HighDeserializer<rancor::Error>>,
{
    fn to_archive(&self) -> Result<Vec<u8>, WireError> {
        rkyv::to_bytes::<rancor::Error>(self)
            .map(|b| b.into_vec())
            .map_err(|e| WireError::Decode(format!("cannot encode: {e}")))
    }

    fn from_archive(bytes: &[u8]) -> Result<Self, WireError> {
        rkyv::from_bytes::<T, rancor::Error>(bytes).map_err(|e| WireError::Decode(e.to_string()))
    }

    fn check_archive(bytes: &[u8]) -> Result<(), WireError> {
        rkyv::access::<T::Archived, rancor::Error>(bytes)
            .map(|_| ())
            .map_err(|e| WireError::Decode(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcs::kv::KvPut;
    use crate::transport::WireMessage;

    fn put() -> KvPut {
        KvPut {
            namespace: "application-namespace".into(),
            key: b"key".to_vec(),
            value: vec![7; 40],
            overwrite: true,
        }
    }

    #[test]
    fn a_system_message_round_trips_as_a_checked_archive() {
        let bytes = put().encode().unwrap();
        let back = KvPut::decode(&bytes).unwrap();
        assert_eq!(
            (back.namespace, back.key, back.value),
            (put().namespace, put().key, put().value)
        );
        // Not postcard: the same message's postcard bytes are not an archive of it.
        let postcard = crate::transport::encode_body(&put()).unwrap();
        assert_ne!(postcard, bytes);
    }

    #[test]
    fn a_malformed_archive_is_an_error_before_any_field_is_read() {
        let bytes = put().encode().unwrap();
        // Truncated, empty, garbage.
        assert!(KvPut::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(KvPut::decode(&[]).is_err());
        assert!(KvPut::check_archive(&[0xff; 64]).is_err());
        // The namespace's bytes made invalid UTF-8: the check finds it.
        let at = bytes
            .windows(11)
            .position(|w| w == b"application")
            .expect("the namespace is in the archive");
        let mut bad = bytes.clone();
        bad[at + 5] = 0xff;
        let r = KvPut::decode(&bad);
        assert!(
            matches!(r, Err(WireError::Decode(_))),
            "{:?}",
            r.map(|m| m.namespace)
        );
        // Every single-byte change either fails the check or reads as some valid message.
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                let _ = KvPut::decode(&b);
            }
        }
    }
}
