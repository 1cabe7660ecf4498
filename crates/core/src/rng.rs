//! SplitMix64 (Steele, Lea & Flood 2014), written out rather than taken from `rand` so a
//! seed gives the same split, sample and model on every recpipe version: cached artifacts
//! and published figures stay reproducible even when a dependency changes its generators.

#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// An independent stream for `tag` (init, shuffle, dropout), so adding draws to one
    /// use does not shift the others.
    pub fn stream(seed: u64, tag: u64) -> Self {
        let mut r = SplitMix64::new(seed ^ tag.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 bits.
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in [0, 1) with 53 bits.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box-Muller; one draw per call keeps the stream simple).
    pub fn normal(&mut self) -> f32 {
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// Uniform in `0..n` without modulo bias (Lemire 2019, multiply and reject).
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// Fisher-Yates shuffle of the whole slice.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }

    /// Moves a uniform random sample of `m` elements, in random order, to the front of
    /// `slice` (the first `m` steps of Fisher-Yates): only as many draws as rows picked.
    pub fn partial_shuffle<T>(&mut self, slice: &mut [T], m: usize) {
        let n = slice.len();
        for i in 0..m.min(n) {
            let j = i + self.below((n - i) as u64) as usize;
            slice.swap(i, j);
        }
    }

    /// A seeded sample of `m` of `items` (all of them when `m` exceeds the count), sorted.
    pub fn sample_sorted(&mut self, items: &[u32], m: usize) -> Vec<u32> {
        let mut v = items.to_vec();
        self.partial_shuffle(&mut v, m);
        v.truncate(m.min(items.len()));
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_distinct_and_well_distributed() {
        assert_eq!(
            SplitMix64::stream(42, 1).next_u64(),
            SplitMix64::stream(42, 1).next_u64()
        );
        assert_ne!(
            SplitMix64::stream(42, 1).next_u64(),
            SplitMix64::stream(42, 2).next_u64()
        );
        let mut r = SplitMix64::new(7);
        let n: Vec<f32> = (0..20_000).map(|_| r.normal()).collect();
        let mean = n.iter().sum::<f32>() / n.len() as f32;
        let var = n.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n.len() as f32;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
        let mut counts = [0u32; 7];
        for _ in 0..70_000 {
            counts[r.below(7) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
        let mut v: Vec<u32> = (0..100).collect();
        r.shuffle(&mut v);
        let mut s = v.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        assert_ne!(v, s);
        let mut w: Vec<u32> = (0..100).collect();
        r.partial_shuffle(&mut w, 10);
        let mut head = w[..10].to_vec();
        head.sort();
        head.dedup();
        assert_eq!(head.len(), 10);
    }

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
