//! Type-erased values as the object store and task arguments hold them.
//!
//! A [`Value`] is either *live* — an `Arc` of the Rust value plus a vtable that can serialize it
//! on demand — or *bytes* in the codec of [`crate::codec`]. Values that stay on their node stay
//! live: reading one is a pointer copy and a downcast, never a decode.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{self, CodecError};

/// What a value stored in Raya must be: serializable (so it can leave its node or be spilled),
/// shareable between threads, and owning its data.
///
/// Implemented for every type that qualifies; there is nothing to derive.
pub trait Object: Serialize + DeserializeOwned + Send + Sync + 'static {}
impl<T> Object for T where T: Serialize + DeserializeOwned + Send + Sync + 'static {}

/// Appends `n` as the varint (LEB128) that prefixes a sequence in the serde encoding.
fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Encodes an object value. Byte vectors, the usual bulk payload, take a fast path that writes
/// exactly what the serde encoding would (a varint length, then the bytes) with one copy.
pub fn encode_object<T: Object>(v: &T) -> Result<Vec<u8>, CodecError> {
    if let Some(bytes) = (v as &dyn Any).downcast_ref::<Vec<u8>>() {
        let mut out = Vec::with_capacity(bytes.len() + 10);
        push_varint(&mut out, bytes.len() as u64);
        out.extend_from_slice(bytes);
        return Ok(out);
    }
    codec::encode(v)
}

/// Decodes an object value encoded by [`encode_object`] (or by serde: the forms are the same).
pub fn decode_object<T: Object>(b: &[u8]) -> Result<T, CodecError> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<Vec<u8>>() {
        let mut len: u64 = 0;
        let mut used = 0;
        for (i, byte) in b.iter().enumerate().take(10) {
            len |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                used = i + 1;
                break;
            }
        }
        if used == 0 || b.len() - used != len as usize {
            return Err(CodecError::Decode(format!(
                "byte vector of {} bytes does not match its length prefix",
                b.len()
            )));
        }
        let v: Box<dyn Any> = Box::new(b[used..].to_vec());
        return v
            .downcast::<T>()
            .map(|t| *t)
            .map_err(|_| CodecError::Decode("byte vector type mismatch".into()));
    }
    codec::decode(b)
}

/// A value had another type than asked for, or could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The live value has a different type.
    #[error("type mismatch: expected {expected}, found {found}")]
    TypeMismatch {
        /// The requested type.
        expected: &'static str,
        /// The stored type.
        found: String,
    },
    /// The bytes do not decode as the requested type.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

struct VTable {
    type_name: fn() -> &'static str,
    type_id: fn() -> TypeId,
    serialize: fn(&(dyn Any + Send + Sync)) -> Result<Vec<u8>, CodecError>,
    heap_size: fn(&dyn Any) -> usize,
    inline_size: usize,
}

struct VTableOf<T>(std::marker::PhantomData<T>);

impl<T: Object> VTableOf<T> {
    const VTABLE: VTable = VTable {
        type_name: std::any::type_name::<T>,
        type_id: TypeId::of::<T>,
        serialize: serialize_erased::<T>,
        heap_size: crate::size::heap_of,
        inline_size: std::mem::size_of::<T>(),
    };
}

fn serialize_erased<T: Object>(v: &(dyn Any + Send + Sync)) -> Result<Vec<u8>, CodecError> {
    match v.downcast_ref::<T>() {
        Some(v) => encode_object(v),
        None => Err(CodecError::Encode(format!(
            "vtable of {} used with another type",
            std::any::type_name::<T>()
        ))),
    }
}

/// The encoded form of a value as two parts written one after the other: for a live byte vector
/// a varint length and the vector's own bytes (nothing is copied), otherwise the whole encoding.
pub struct EncodedParts {
    prefix: Vec<u8>,
    body: PartsBody,
}

enum PartsBody {
    Live(Arc<dyn Any + Send + Sync>),
    Bytes(Arc<Vec<u8>>),
}

impl EncodedParts {
    /// The parts, in order.
    pub fn slices(&self) -> [&[u8]; 2] {
        let body: &[u8] = match &self.body {
            PartsBody::Live(d) => d.downcast_ref::<Vec<u8>>().map_or(&[], |v| v.as_slice()),
            PartsBody::Bytes(b) => b.as_slice(),
        };
        [&self.prefix, body]
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        let [a, b] = self.slices();
        a.len() + b.len()
    }

    /// Whether the encoding is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A type-erased value: live or encoded.
#[derive(Clone)]
pub enum Value {
    /// A Rust value on this node.
    Live(LiveValue),
    /// An encoded value (received from another node or read back from disk), with what keeps
    /// the objects its references point at alive while it stays encoded (see
    /// [`Value::from_bytes_keeping`]).
    Bytes(Arc<Vec<u8>>, Option<KeepAlive>),
}

/// Whatever must live as long as an encoded value: the counted references to the objects the
/// value refers to, which the bytes only name.
pub type KeepAlive = Arc<dyn Any + Send + Sync>;

/// A live Rust value with the means to encode it.
#[derive(Clone)]
pub struct LiveValue {
    /// The value; `None` only once it was moved out or dropped.
    data: Option<Arc<dyn Any + Send + Sync>>,
    vtable: &'static VTable,
}

impl LiveValue {
    fn data(&self) -> &Arc<dyn Any + Send + Sync> {
        self.data
            .as_ref()
            .expect("a live value holds its data until it is dropped")
    }

    fn take(mut self) -> Arc<dyn Any + Send + Sync> {
        self.data
            .take()
            .expect("a live value holds its data until it is dropped")
    }
}

/// Dropping the last handle on a value runs the program's `Drop` for it on whichever thread let
/// go last — a worker, but also a scheduler, the object manager or the network's threads. A
/// panic there is caught and logged, so a faulty `Drop` never takes those threads down.
impl Drop for LiveValue {
    fn drop(&mut self) {
        let Some(data) = self.data.take() else {
            return;
        };
        let type_name = (self.vtable.type_name)();
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(data))).is_err() {
            tracing::error!(
                value = type_name,
                "a value's Drop panicked; the panic was contained"
            );
        }
    }
}

impl Value {
    /// Wraps a Rust value without encoding it.
    pub fn new<T: Object>(value: T) -> Value {
        Value::from_arc(Arc::new(value))
    }

    /// Wraps a shared Rust value without copying or encoding it.
    pub fn from_arc<T: Object>(value: Arc<T>) -> Value {
        Value::Live(LiveValue {
            data: Some(value),
            vtable: &VTableOf::<T>::VTABLE,
        })
    }

    /// Wraps encoded bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Value {
        Value::Bytes(Arc::new(bytes), None)
    }

    /// Wraps encoded bytes that refer to objects, with `keep`, which keeps those objects alive
    /// for as long as the value stays encoded.
    pub fn from_bytes_keeping(bytes: Vec<u8>, keep: KeepAlive) -> Value {
        Value::Bytes(Arc::new(bytes), Some(keep))
    }

    /// What keeps the objects an encoded value refers to alive, if anything does.
    pub fn keep_alive(&self) -> Option<&KeepAlive> {
        match self {
            Value::Bytes(_, keep) => keep.as_ref(),
            Value::Live(_) => None,
        }
    }

    /// Whether the value is a live Rust value.
    pub fn is_live(&self) -> bool {
        matches!(self, Value::Live(_))
    }

    /// The Rust type name of a live value.
    pub fn type_name(&self) -> Option<&'static str> {
        match self {
            Value::Live(l) => Some((l.vtable.type_name)()),
            Value::Bytes(..) => None,
        }
    }

    /// Whether a live value is of type `T`.
    pub fn is<T: 'static>(&self) -> bool {
        match self {
            Value::Live(l) => (l.vtable.type_id)() == TypeId::of::<T>(),
            Value::Bytes(..) => false,
        }
    }

    /// Whether both are the same allocation (not just equal contents).
    pub fn ptr_eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Live(a), Value::Live(b)) => Arc::ptr_eq(a.data(), b.data()),
            (Value::Bytes(a, _), Value::Bytes(b, _)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Estimated memory held: for live values inline size plus known heap, for bytes their length.
    pub fn size(&self) -> usize {
        match self {
            Value::Live(l) => l.vtable.inline_size + (l.vtable.heap_size)(&**l.data() as &dyn Any),
            Value::Bytes(b, _) => b.len(),
        }
    }

    fn mismatch<T>(&self) -> ValueError {
        ValueError::TypeMismatch {
            expected: std::any::type_name::<T>(),
            found: self.type_name().unwrap_or("<bytes>").to_string(),
        }
    }

    /// The value as a shared `Arc<T>`: free for a live value, a decode for bytes.
    pub fn to_arc<T: Object>(&self) -> Result<Arc<T>, ValueError> {
        match self {
            Value::Live(l) => Arc::clone(l.data())
                .downcast::<T>()
                .map_err(|_| self.mismatch::<T>()),
            Value::Bytes(b, _) => Ok(Arc::new(decode_object::<T>(b)?)),
        }
    }

    /// The value as an `Arc<T>`, consuming this handle (so the `Arc` is unique when this was the
    /// only handle).
    pub fn into_arc<T: Object>(self) -> Result<Arc<T>, ValueError> {
        match self {
            Value::Live(l) => {
                let found = (l.vtable.type_name)();
                l.take()
                    .downcast::<T>()
                    .map_err(|_| ValueError::TypeMismatch {
                        expected: std::any::type_name::<T>(),
                        found: found.to_string(),
                    })
            }
            Value::Bytes(b, _) => Ok(Arc::new(decode_object::<T>(&b)?)),
        }
    }

    /// A reference to a live value of type `T`.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        match self {
            Value::Live(l) => l.data().downcast_ref::<T>(),
            Value::Bytes(..) => None,
        }
    }

    /// A copy of the value as `T`: a clone for a live value, a decode for bytes.
    pub fn clone_as<T: Object + Clone>(&self) -> Result<T, ValueError> {
        match self {
            Value::Live(l) => l
                .data()
                .downcast_ref::<T>()
                .cloned()
                .ok_or_else(|| self.mismatch::<T>()),
            Value::Bytes(b, _) => Ok(decode_object::<T>(b)?),
        }
    }

    /// The value as `T`, moved out when this is the only reference to it, cloned otherwise.
    pub fn into_inner<T: Object + Clone>(self) -> Result<T, ValueError> {
        match self {
            Value::Live(l) => {
                let mismatch = ValueError::TypeMismatch {
                    expected: std::any::type_name::<T>(),
                    found: (l.vtable.type_name)().to_string(),
                };
                let arc = l.take().downcast::<T>().map_err(|_| mismatch)?;
                Ok(Arc::try_unwrap(arc).unwrap_or_else(|shared| (*shared).clone()))
            }
            Value::Bytes(b, _) => Ok(decode_object::<T>(&b)?),
        }
    }

    /// The encoded form as parts, without copying a live byte vector (see [`EncodedParts`]).
    ///
    /// ```
    /// let v = raya_common::Value::new(vec![1u8, 2, 3]);
    /// let parts = v.encoded_parts().unwrap();
    /// assert_eq!(parts.slices().concat(), *v.encode().unwrap());
    /// ```
    pub fn encoded_parts(&self) -> Result<EncodedParts, CodecError> {
        if let Value::Live(l) = self
            && let Some(bytes) = l.data().downcast_ref::<Vec<u8>>()
        {
            let mut prefix = Vec::with_capacity(10);
            push_varint(&mut prefix, bytes.len() as u64);
            return Ok(EncodedParts {
                prefix,
                body: PartsBody::Live(Arc::clone(l.data())),
            });
        }
        Ok(EncodedParts {
            prefix: Vec::new(),
            body: PartsBody::Bytes(self.encode()?),
        })
    }

    /// The encoded form: encodes a live value (the only place a live value is ever serialized).
    pub fn encode(&self) -> Result<Arc<Vec<u8>>, CodecError> {
        match self {
            Value::Live(l) => (l.vtable.serialize)(&**l.data()).map(Arc::new),
            Value::Bytes(b, _) => Ok(Arc::clone(b)),
        }
    }

    /// Decodes bytes into a live `T` value; a live value is returned as it is (after a type check).
    pub fn decode_live<T: Object>(self) -> Result<Value, ValueError> {
        match self {
            Value::Live(_) if self.is::<T>() => Ok(self),
            Value::Live(_) => Err(self.mismatch::<T>()),
            Value::Bytes(b, _) => Ok(Value::new(decode_object::<T>(&b)?)),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Live(l) => write!(f, "Value::Live({})", (l.vtable.type_name)()),
            Value::Bytes(b, _) => write!(f, "Value::Bytes({} bytes)", b.len()),
        }
    }
}

impl std::fmt::Debug for EncodedParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedParts")
            .field("len", &self.len())
            .finish()
    }
}

impl std::fmt::Debug for LiveValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveValue").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize)]
    struct PanicsOnDrop(u8);

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("dropped {}", self.0);
        }
    }

    #[test]
    fn a_panicking_drop_does_not_unwind_through_the_thread_that_drops_the_value() {
        let v = Value::new(PanicsOnDrop(1));
        let shared = v.clone();
        drop(v);
        // The last handle runs the value's Drop: its panic stops there.
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(shared)));
        assert!(dropped.is_ok());
        // Moving the value out still hands over the value itself.
        let moved = Value::new(PanicsOnDrop(2)).into_arc::<PanicsOnDrop>();
        let arc = moved.expect("same type");
        assert_eq!(arc.0, 2);
        std::mem::forget(arc);
    }

    #[test]
    fn byte_vectors_take_a_fast_path_with_the_serde_encoding() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let v: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let fast = encode_object(&v).unwrap();
            assert_eq!(fast, codec::encode(&v).unwrap(), "length {len}");
            assert_eq!(decode_object::<Vec<u8>>(&fast).unwrap(), v);
            assert_eq!(codec::decode::<Vec<u8>>(&fast).unwrap(), v);
        }
        let mut bad = encode_object(&vec![1u8, 2, 3]).unwrap();
        bad.push(9);
        assert!(decode_object::<Vec<u8>>(&bad).is_err());
        assert!(decode_object::<Vec<u8>>(&[0x80]).is_err());
        assert!(decode_object::<Vec<u8>>(&[]).is_err());
    }
    use serde::{Deserialize, Serializer};

    #[test]
    fn live_values_are_read_without_encoding() {
        #[derive(Clone, Debug, PartialEq, Deserialize)]
        struct NoSer(u32);
        impl Serialize for NoSer {
            fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                panic!("a live value must not be serialized")
            }
        }
        let v = Value::new(NoSer(5));
        assert_eq!(v.clone_as::<NoSer>().unwrap(), NoSer(5));
        assert_eq!(*v.to_arc::<NoSer>().unwrap(), NoSer(5));
        assert_eq!(v.into_inner::<NoSer>().unwrap(), NoSer(5));
    }

    #[test]
    fn type_mismatch_is_reported_with_both_types() {
        let v = Value::new(5i64);
        let e = v.clone_as::<i32>().unwrap_err();
        assert_eq!(e.to_string(), "type mismatch: expected i32, found i64");
    }

    #[test]
    fn bytes_decode_to_the_asked_type() {
        let v = Value::new(vec![1u32, 2, 3]);
        let b = v.encode().unwrap();
        let back = Value::Bytes(b, None);
        assert_eq!(back.clone_as::<Vec<u32>>().unwrap(), vec![1, 2, 3]);
        assert!(
            back.clone_as::<u64>().is_err(),
            "trailing bytes must not decode"
        );
        let live = back.decode_live::<Vec<u32>>().unwrap();
        assert!(live.is_live());
        assert_eq!(live.downcast_ref::<Vec<u32>>().unwrap().len(), 3);
    }

    #[test]
    fn into_inner_moves_a_unique_value_and_clones_a_shared_one() {
        let v = Value::new(vec![7u8; 10]);
        let keep = v.clone();
        let a: Vec<u8> = v.into_inner().unwrap();
        assert_eq!(a, vec![7u8; 10]);
        assert_eq!(keep.downcast_ref::<Vec<u8>>().unwrap().len(), 10);
        assert!(keep.size() >= 10);
    }
}
