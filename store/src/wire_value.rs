//! A value as it crosses nodes: its bytes, and the references to the objects it names.
//!
//! The bytes of a value only name the objects its `ObjectRef`s point at; a node that receives
//! them must count those references at once, not when (or if) it decodes the value, or the
//! objects could be freed meanwhile. So a value travels with the list of its references, and the
//! receiver turns the list into counted references (registering itself as a borrower with each
//! foreign owner) that live as long as the bytes do.

use std::sync::Arc;

use raya_common::{CodecError, Value};
use serde::{Deserialize, Serialize};

use crate::raw_ref::{RawRef, collect_refs};

/// A value and the references it contains, in the form that crosses nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireValue {
    bytes: Vec<u8>,
    refs: Vec<RawRef>,
}

impl WireValue {
    /// The wire form of `value`: a live value is encoded (the references it serializes are
    /// collected); an encoded one brings the references that keep its objects alive.
    pub fn encode(value: &Value) -> Result<WireValue, CodecError> {
        if let Some(refs) = contained(value) {
            return Ok(WireValue {
                bytes: value.encode()?.to_vec(),
                refs,
            });
        }
        let (bytes, refs) = collect_refs(|| value.encode());
        Ok(WireValue {
            bytes: bytes?.to_vec(),
            refs,
        })
    }

    /// Encoded bytes, in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the encoding is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The value, encoded, holding the references its objects need.
    pub fn into_value(self) -> Value {
        keeping(self.bytes, self.refs)
    }
}

/// `bytes`, holding `refs` while they stay encoded.
pub fn keeping(bytes: Vec<u8>, refs: Vec<RawRef>) -> Value {
    if refs.is_empty() {
        Value::from_bytes(bytes)
    } else {
        Value::from_bytes_keeping(bytes, Arc::new(refs))
    }
}

/// The references an encoded value holds, when it is encoded and holds any.
pub fn contained(value: &Value) -> Option<Vec<RawRef>> {
    value
        .keep_alive()
        .and_then(|k| k.downcast_ref::<Vec<RawRef>>())
        .cloned()
}
