//! SplitMix64 (Steele, Lea & Flood 2014), written out so a seed picks the same ranking-user
//! sample on every recpipe version, whatever `rand` does to its generators.

pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` without modulo bias (Lemire's multiply and reject).
    pub fn below(&mut self, n: u64) -> u64 {
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// A uniform sample of `m` of `items`, returned sorted (partial Fisher-Yates).
    pub fn sample_sorted(&mut self, items: &[u32], m: usize) -> Vec<u32> {
        let mut v = items.to_vec();
        let n = v.len();
        for i in 0..m.min(n) {
            let j = i + self.below((n - i) as u64) as usize;
            v.swap(i, j);
        }
        v.truncate(m.min(n));
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_seeded_distinct_and_sized() {
        let all: Vec<u32> = (0..100).collect();
        let a = SplitMix64::new(7).sample_sorted(&all, 10);
        assert_eq!(a, SplitMix64::new(7).sample_sorted(&all, 10));
        assert_ne!(a, SplitMix64::new(8).sample_sorted(&all, 10));
        assert_eq!(a.len(), 10);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(SplitMix64::new(1).sample_sorted(&all, 500), all);
    }
}
