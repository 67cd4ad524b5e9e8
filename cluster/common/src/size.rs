//! Memory-size estimates of live values, for the object store's budget.
//!
//! A live value is never serialized just to learn its size. The estimate is the value's inline
//! size plus the heap it owns, which is known exactly for the common bulk types (vectors of
//! numbers, strings, byte buffers). Other types count their inline size only, unless the program
//! registers a measure for them with [`register_heap_size`].

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

type Measure = Arc<dyn Fn(&dyn Any) -> usize + Send + Sync>;

fn registry() -> &'static RwLock<HashMap<TypeId, Measure>> {
    static R: OnceLock<RwLock<HashMap<TypeId, Measure>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Teaches the object store how much heap memory values of type `T` own.
///
/// Without a registered measure a value of a type the runtime does not know counts only its
/// inline size (`size_of::<T>()`) against the store's memory budget.
///
/// ```
/// struct Image { pixels: Vec<u32> }
/// raya_common::size::register_heap_size::<Image>(|img| img.pixels.capacity() * 4);
/// let img = Image { pixels: vec![0; 1000] };
/// assert!(raya_common::size::estimate(&img) >= 4000);
/// ```
pub fn register_heap_size<T: 'static>(measure: fn(&T) -> usize) {
    let f: Measure = Arc::new(move |v: &dyn Any| v.downcast_ref::<T>().map_or(0, measure));
    registry()
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(TypeId::of::<T>(), f);
}

macro_rules! vec_of_plain {
    ($v:expr, $($t:ty),*) => {
        $(
            if let Some(v) = $v.downcast_ref::<Vec<$t>>() {
                return Some(v.capacity() * std::mem::size_of::<$t>());
            }
            if let Some(v) = $v.downcast_ref::<Box<[$t]>>() {
                return Some(v.len() * std::mem::size_of::<$t>());
            }
        )*
    };
}

fn known_heap(v: &dyn Any) -> Option<usize> {
    vec_of_plain!(
        v, u8, i8, u16, i16, u32, i32, u64, i64, u128, i128, usize, isize, f32, f64, bool, char
    );
    if let Some(s) = v.downcast_ref::<String>() {
        return Some(s.capacity());
    }
    if let Some(v) = v.downcast_ref::<Vec<String>>() {
        return Some(
            v.capacity() * std::mem::size_of::<String>()
                + v.iter().map(String::capacity).sum::<usize>(),
        );
    }
    if let Some(v) = v.downcast_ref::<Vec<Vec<u8>>>() {
        return Some(
            v.capacity() * std::mem::size_of::<Vec<u8>>()
                + v.iter().map(Vec::capacity).sum::<usize>(),
        );
    }
    if let Some(v) = v.downcast_ref::<Vec<Vec<f64>>>() {
        return Some(
            v.capacity() * std::mem::size_of::<Vec<f64>>()
                + v.iter().map(|x| x.capacity() * 8).sum::<usize>(),
        );
    }
    if let Some(v) = v.downcast_ref::<Vec<Vec<f32>>>() {
        return Some(
            v.capacity() * std::mem::size_of::<Vec<f32>>()
                + v.iter().map(|x| x.capacity() * 4).sum::<usize>(),
        );
    }
    None
}

/// Estimated bytes of memory held by `value`: inline size plus owned heap where known.
pub fn estimate<T: 'static>(value: &T) -> usize {
    std::mem::size_of::<T>() + heap_of(value as &dyn Any)
}

/// Estimated heap bytes owned by a type-erased value.
pub fn heap_of(value: &dyn Any) -> usize {
    if let Some(n) = known_heap(value) {
        return n;
    }
    let reg = registry().read().unwrap_or_else(|p| p.into_inner());
    if reg.is_empty() {
        return 0;
    }
    reg.get(&value.type_id()).map_or(0, |m| m(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_types_count_their_heap() {
        assert!(estimate(&vec![0u8; 1 << 20]) >= 1 << 20);
        assert!(estimate(&vec![0f64; 1000]) >= 8000);
        assert!(estimate(&"x".repeat(5000)) >= 5000);
        assert!(estimate(&vec!["abc".repeat(100); 10]) >= 3000);
        assert_eq!(estimate(&7u64), 8);
    }

    #[test]
    fn registered_measure_is_used() {
        struct Blob(Vec<u16>);
        assert_eq!(estimate(&Blob(vec![0; 100])), std::mem::size_of::<Blob>());
        register_heap_size::<Blob>(|b| b.0.capacity() * 2);
        assert!(estimate(&Blob(vec![0; 100])) >= 200);
    }
}
