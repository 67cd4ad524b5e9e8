//! Test support: node ids whose tag collides with another's, as an attacker grinding keys
//! would make (here found in a moment: the tag is FNV-1a over the id's bytes, and an identity
//! multihash takes any bytes).

use std::collections::HashMap;

use raya_common::NodeId;

const FNV_PRIME: u32 = 0x0100_0193;

/// A node id other than any real key's whose [`NodeId::tag`] is `tag`.
pub(crate) fn node_with_tag(tag: u32) -> NodeId {
    // The inverse of the FNV prime modulo 2^32 (Newton's iteration).
    let mut inv = FNV_PRIME;
    for _ in 0..5 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(FNV_PRIME.wrapping_mul(inv)));
    }
    let step = |h: u32, b: u8| (h ^ b as u32).wrapping_mul(FNV_PRIME);
    let back = |h: u32, b: u8| h.wrapping_mul(inv) ^ b as u32;
    // Identity multihash (code 0, 13 bytes): 8 fixed bytes, 2 chosen going forward, 3 going
    // back from the tag; the two halves meet in the middle.
    let mut bytes = vec![0u8, 13, 0x52, 0x41, 0x59, 0x41, 0x54, 0x41, 0x47, 0x53];
    let prefix = bytes.iter().fold(0x811c_9dc5u32, |h, b| step(h, *b));
    let mut forward = HashMap::with_capacity(1 << 16);
    for f in 0..=u16::MAX {
        let [a, b] = f.to_be_bytes();
        forward.insert(step(step(prefix, a), b), [a, b]);
    }
    for k in 0u32..1 << 24 {
        let [_, x, y, z] = k.to_be_bytes();
        let mid = back(back(back(tag, z), y), x);
        if let Some([a, b]) = forward.get(&mid) {
            bytes.extend([*a, *b, x, y, z]);
            let node = NodeId::from_bytes(&bytes).expect("an identity multihash is a peer id");
            assert_eq!(node.tag(), tag);
            return node;
        }
    }
    unreachable!("2^40 byte strings always reach every 32-bit tag")
}
