//! A small, fast hasher for the model's lookup tables.
//!
//! The tables are keyed by short element and type names and are probed for every JSON property
//! of every resource the FHIR endpoint reads (10,000 creates/s is the target), so SipHash's cost
//! shows. The keys are fixed, built from the committed model, so hash flooding by a client is not
//! a concern: a client's strings only probe. This is the Fx hash (as in rustc): multiply-rotate
//! over 8-byte words.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with the Fx hash.
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinguishes_keys_and_finds_them() {
        let mut map: FastMap<&str, u32> = FastMap::default();
        let keys = [
            "id",
            "identifier",
            "name",
            "name.given",
            "valueQuantity",
            "valueQuantity2",
            "",
        ];
        for (i, k) in keys.iter().enumerate() {
            map.insert(k, i as u32);
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(map.get(k), Some(&(i as u32)));
        }
        assert_eq!(map.get("nam"), None);
    }
}
