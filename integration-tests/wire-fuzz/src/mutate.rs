//! A small mutator for the reduced runs in CI: byte flips, random bytes, cut and repeated
//! spans, splices of two inputs, and the values that matter to decoders (lengths and counts
//! at their extremes, as varints and as little-endian words).

use rand::{Rng, RngExt};

/// Values a decoder treats specially: empty, one, the largest of each width.
const INTERESTING: [u64; 8] = [0, 1, 0x7f, 0xff, 0xffff, 0xffff_ffff, u64::MAX, 1 << 31];

/// Writes `v` as a postcard varint.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// One mutation of `input`, sometimes mixed with `other`.
pub fn mutate(rng: &mut impl Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = rng.random_range(1..=4);
    for _ in 0..rounds {
        let len = out.len();
        let at = if len == 0 {
            0
        } else {
            rng.random_range(0..len)
        };
        match rng.random_range(0..8) {
            0 if len > 0 => out[at] ^= 1 << rng.random_range(0..8),
            1 if len > 0 => out[at] = rng.random(),
            2 => {
                let end = rng.random_range(at..=len);
                out.drain(at..end);
            }
            3 if len > 0 => {
                let end = rng.random_range(at..=len.min(at + 64));
                let span: Vec<u8> = out[at..end].to_vec();
                let times = rng.random_range(1..64);
                for _ in 0..times {
                    out.splice(at..at, span.iter().copied());
                }
            }
            4 => {
                let mut v = Vec::new();
                varint(INTERESTING[rng.random_range(0..INTERESTING.len())], &mut v);
                out.splice(at..at, v);
            }
            5 if len >= 4 => {
                let v = INTERESTING[rng.random_range(0..INTERESTING.len())] as u32;
                let at = rng.random_range(0..=len - 4);
                out[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            6 if !other.is_empty() => {
                let from = rng.random_range(0..other.len());
                let end = rng.random_range(from..=other.len());
                out.truncate(at);
                out.extend_from_slice(&other[from..end]);
            }
            _ => {
                let n = rng.random_range(1..32);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                out.splice(at..at, bytes);
            }
        }
    }
    out
}
