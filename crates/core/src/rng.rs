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
        self.normal_f64() as f32
    }

    /// [`SplitMix64::normal`] before rounding to `f32`.
    pub fn normal_f64(&mut self) -> f64 {
        // 1 - u avoids ln(0).
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
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

    /// Uniform in `0..n` by one multiply-shift, without [`SplitMix64::below`]'s rejection
    /// step: biased by at most n / 2^64. The synthetic data set draws with it, so the files a
    /// seed generates never change.
    pub fn below_biased(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
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

/// NumPy's legacy `np.random.RandomState(seed)`: MT19937 seeded with `init_genrand`, and
/// `permutation(n)` as NumPy draws it (Fisher–Yates from the end, each index by masked
/// rejection sampling on 32-bit outputs). It exists so a split can reproduce, row for row,
/// what `sklearn.model_selection.train_test_split(df, random_state=seed)` or
/// `df.sample(frac, random_state=seed)` gave a notebook user.
#[derive(Clone)]
pub struct NumpyRandomState {
    mt: [u32; 624],
    pos: usize,
}

impl std::fmt::Debug for NumpyRandomState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NumpyRandomState")
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl NumpyRandomState {
    /// `RandomState(seed)` for an integer seed (NumPy accepts 0..=2^32-1).
    pub fn new(seed: u32) -> Self {
        let mut mt = [0u32; 624];
        mt[0] = seed;
        for i in 1..624 {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        NumpyRandomState { mt, pos: 624 }
    }

    fn generate(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        for i in 0..624 {
            let y = (self.mt[i] & UPPER) | (self.mt[(i + 1) % 624] & LOWER);
            let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
            self.mt[i] = self.mt[(i + 397) % 624] ^ (y >> 1) ^ mag;
        }
        self.pos = 0;
    }

    /// The next raw 32-bit output (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= 624 {
            self.generate();
        }
        let mut y = self.mt[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// Uniform in `0..=max` as NumPy's `random_interval` draws it (max below 2^32).
    fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mask = u32::MAX >> max.leading_zeros();
        loop {
            let v = self.next_u32() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `RandomState.permutation(n)`: a shuffled `0..n`, identical to NumPy's for n < 2^32.
    pub fn permutation(&mut self, n: usize) -> Vec<u32> {
        assert!(n <= u32::MAX as usize, "permutation of more than 2^32 rows");
        let mut v: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            let j = self.interval(i as u32) as usize;
            v.swap(i, j);
        }
        v
    }
}

#[cfg(test)]
mod numpy_tests {
    use super::NumpyRandomState;

    // Reference values printed by NumPy 2.4 (`np.random.RandomState(s)`).
    #[test]
    fn raw_outputs_match_numpy_mt19937() {
        let mut r = NumpyRandomState::new(42);
        let got: Vec<u32> = (0..3).map(|_| r.next_u32()).collect();
        assert_eq!(got, [1608637542, 3421126067, 4083286876]);
        let mut r = NumpyRandomState::new(5489);
        assert_eq!([r.next_u32(), r.next_u32()], [3499211612, 581869302]);
    }

    #[test]
    fn permutations_match_numpy() {
        assert_eq!(
            NumpyRandomState::new(2137).permutation(10),
            [3, 2, 1, 9, 7, 4, 8, 5, 6, 0]
        );
        assert_eq!(
            NumpyRandomState::new(u32::MAX).permutation(5),
            [4, 1, 0, 2, 3]
        );
        assert_eq!(NumpyRandomState::new(0).permutation(1), [0]);
        assert!(NumpyRandomState::new(0).permutation(0).is_empty());
        // The bundled ratings.csv has 100,836 rows: sklearn's 90/10 split with seed 42 holds
        // out the first 10,084 of this permutation (values from NumPy 2.x).
        let p = NumpyRandomState::new(42).permutation(100_836);
        assert_eq!(p[..6], [67037, 42175, 93850, 6187, 12229, 7433]);
        assert_eq!(p[p.len() - 3..], [76820, 860, 15795]);
    }
}
