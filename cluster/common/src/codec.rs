//! The compact binary encoding of user values (postcard over serde).
//!
//! Used only when a value must leave its node or be written to disk; values that stay on their
//! node are never encoded.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum CodecError {
    /// The value's `Serialize` impl failed.
    #[error("cannot encode value: {0}")]
    Encode(String),
    /// The bytes are not a valid encoding of the expected type.
    #[error("cannot decode value: {0}")]
    Decode(String),
    /// The bytes decode, but describe something invalid.
    #[error("invalid data: {0}")]
    Invalid(String),
}

/// Encodes `value`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    postcard::to_stdvec(value).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decodes a `T` from exactly `bytes`; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (v, rest) =
        postcard::take_from_bytes(bytes).map_err(|e| CodecError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::Decode(format!("{} trailing bytes", rest.len())));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_garbage() {
        let v = (1u64, "two".to_string(), vec![3.0f64]);
        let b = encode(&v).unwrap();
        assert_eq!(decode::<(u64, String, Vec<f64>)>(&b).unwrap(), v);
        let mut longer = b.clone();
        longer.push(0);
        assert!(matches!(
            decode::<(u64, String, Vec<f64>)>(&longer),
            Err(CodecError::Decode(_))
        ));
        assert!(decode::<(u64, String, Vec<f64>)>(&b[..b.len() - 1]).is_err());
    }
}
