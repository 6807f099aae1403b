//! The mux's hash for packed IPv4 5-tuples: one seeded 64×64→128-bit multiply, folded
//! (the construction of foldhash and wyhash), in place of SipHash-1-3's rounds over the
//! 16-byte key. Remote addresses and ports are chosen by strangers, so the seed is random
//! per table (drawn from std's `RandomState`, the OS's randomness): without it a sender
//! cannot aim at one bucket. Entries are only added for a session's own ufrag (at most
//! [`crate::mux::MAX_REMOTES_PER_SESSION`] each) or an authenticated nominated pair.

use std::hash::{BuildHasher, Hasher, RandomState};

/// Builds [`TupleHasher`]s with one random seed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TupleHash {
    seed: [u64; 2],
}

impl Default for TupleHash {
    fn default() -> Self {
        let r = RandomState::new();
        TupleHash {
            seed: [r.hash_one(0x5eed_u64), r.hash_one(0xf10e_u64)],
        }
    }
}

impl BuildHasher for TupleHash {
    type Hasher = TupleHasher;

    fn build_hasher(&self) -> TupleHasher {
        TupleHasher {
            seed: self.seed,
            h: 0,
        }
    }
}

/// Hashes one `u128` (other input is folded in 8 bytes at a time).
#[derive(Debug)]
pub(crate) struct TupleHasher {
    seed: [u64; 2],
    h: u64,
}

/// The high and low halves of the full product, xored.
fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    #[allow(clippy::cast_possible_truncation)] // the halves, on purpose
    let (lo, hi) = (p as u64, (p >> 64) as u64);
    lo ^ hi
}

impl Hasher for TupleHasher {
    fn write_u128(&mut self, k: u128) {
        #[allow(clippy::cast_possible_truncation)] // the halves, on purpose
        let (lo, hi) = (k as u64, (k >> 64) as u64);
        self.h = folded_multiply(lo ^ self.seed[0] ^ self.h, hi ^ self.seed[1]);
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word.get_mut(..chunk.len())
                .unwrap_or_default()
                .copy_from_slice(chunk);
            self.write_u128(u128::from(u64::from_le_bytes(word)) | 1 << 64);
        }
    }

    fn finish(&self) -> u64 {
        // A second fold spreads the bits hashbrown takes from the top (its 7-bit tag)
        // and the bottom (the bucket).
        folded_multiply(self.h, self.seed[0] ^ 0x9e37_79b9_7f4a_7c15)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_ports_and_addresses_spread_over_buckets_and_tags() {
        let b = TupleHash::default();
        let mut buckets = [0u32; 1024];
        let mut tags = [0u32; 128];
        // 32 ports on each of 2048 consecutive addresses, as one NAT's pool looks.
        for ip in 0..2048u128 {
            for port in 0..32u128 {
                let k = (0x0a00_0001u128 << 96)
                    | (3478 << 80)
                    | ((0xc633_0000 + ip) << 48)
                    | ((40_000 + port) << 32);
                let h = b.hash_one(k);
                buckets[usize::try_from(h & 1023).unwrap()] += 1;
                tags[usize::try_from(h >> 57).unwrap()] += 1;
            }
        }
        // 65,536 keys: 64 per bucket and 512 per tag on average.
        assert!(
            buckets.iter().all(|&n| (20..=120).contains(&n)),
            "{buckets:?}"
        );
        assert!(tags.iter().all(|&n| (350..=700).contains(&n)), "{tags:?}");
    }

    #[test]
    fn seeds_differ_between_tables() {
        let (a, b) = (TupleHash::default(), TupleHash::default());
        assert_ne!(a.hash_one(42u128), b.hash_one(42u128));
    }
}
