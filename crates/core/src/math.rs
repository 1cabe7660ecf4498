//! The small numeric functions that training, inference and evaluation must compute the same
//! way: the sigmoid, the `y_range` squash (with its derivative and inverse), the class of a
//! rating, a classifier's expected rating, and rating errors (RMSE / MAE).

/// The logistic function 1 / (1 + e^−x).
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A raw score squashed into `y_range`, `lo + (hi − lo)·σ(raw)`; unchanged without a range.
#[inline]
pub fn squash(raw: f32, y_range: Option<[f32; 2]>) -> f32 {
    match y_range {
        Some([lo, hi]) => lo + (hi - lo) * sigmoid(raw),
        None => raw,
    }
}

/// [`squash`] and its derivative d(output)/d(raw): (hi − lo)·σ·(1 − σ), or 1 without a range.
#[inline]
pub fn squash_slope(raw: f32, y_range: Option<[f32; 2]>) -> (f32, f32) {
    match y_range {
        Some([lo, hi]) => {
            let s = sigmoid(raw);
            (lo + (hi - lo) * s, (hi - lo) * s * (1.0 - s))
        }
        None => (raw, 1.0),
    }
}

/// The raw score that [`squash`]es to `y`: the logit of `y`'s place in the range, that place
/// clamped to [0.001, 0.999] so a value at or past an end stays finite. Trainers start their
/// output bias here, at the mean rating.
pub fn unsquash(y: f32, y_range: Option<[f32; 2]>) -> f32 {
    match y_range {
        Some([lo, hi]) => {
            let q = ((y - lo) / (hi - lo)).clamp(1e-3, 1.0 - 1e-3);
            (q / (1.0 - q)).ln()
        }
        None => y,
    }
}

/// Index of the class value nearest to `v` (the lower one on an exact tie).
pub fn nearest_class(classes: &[f32], v: f32) -> usize {
    let mut best = 0;
    for (c, &x) in classes.iter().enumerate() {
        if (x - v).abs() < (classes[best] - v).abs() {
            best = c;
        }
    }
    best
}

/// A classifier's logits `z` (one per class) as (expected rating under their softmax, the
/// index of the largest logit, the first on a tie).
pub fn softmax_expectation(z: &[f32], classes: &[f32]) -> (f32, usize) {
    let max = z.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    let (mut sum, mut ev, mut arg) = (0.0f32, 0.0f32, 0);
    for (c, &v) in z.iter().enumerate() {
        let e = (v - max).exp();
        sum += e;
        ev += e * classes[c];
        if v > z[arg] {
            arg = c;
        }
    }
    (ev / sum, arg)
}

/// Predictions beside the ratings they predict. The two sides are named fields, so they
/// cannot be passed in the wrong order.
#[derive(Debug, Clone, Copy)]
pub struct Scored<'a> {
    pub pred: &'a [f32],
    pub truth: &'a [f32],
}

/// How far predictions are from the ratings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Errors {
    pub n: usize,
    /// Summed squared error.
    pub sse: f64,
    pub rmse: f64,
    pub mae: f64,
}

impl Scored<'_> {
    /// RMSE and MAE: differences taken in f64 and summed sequentially in row order, so the
    /// figures do not depend on the thread count. No rows give NaN errors.
    pub fn errors(&self) -> Errors {
        assert_eq!(
            self.pred.len(),
            self.truth.len(),
            "one prediction per rating"
        );
        let (mut se, mut ae) = (0f64, 0f64);
        for (&p, &y) in self.pred.iter().zip(self.truth) {
            let d = p as f64 - y as f64;
            se += d * d;
            ae += d.abs();
        }
        let n = self.pred.len();
        Errors {
            n,
            sse: se,
            rmse: (se / n as f64).sqrt(),
            mae: ae / n as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squash_slope_and_unsquash_agree() {
        let r = Some([0.5f32, 5.0]);
        for raw in [-3.0f32, -0.2, 0.0, 1.7] {
            let (y, dy) = squash_slope(raw, r);
            assert_eq!(y, squash(raw, r));
            let h = 1e-3;
            let fd = (squash(raw + h, r) - squash(raw - h, r)) / (2.0 * h);
            assert!((fd - dy).abs() < 1e-2, "{raw}: {fd} vs {dy}");
            assert!((unsquash(y, r) - raw).abs() < 1e-3, "{raw}");
        }
        assert_eq!(squash_slope(2.5, None), (2.5, 1.0));
        assert_eq!(unsquash(3.0, None), 3.0);
        assert!(unsquash(9.0, r).is_finite());
    }

    #[test]
    fn classes_and_expectation() {
        let classes = [1.0, 2.0, 3.0];
        assert_eq!(
            nearest_class(&classes, 1.5),
            0,
            "ties go to the lower class"
        );
        assert_eq!(nearest_class(&classes, 2.6), 2);
        let (ev, arg) = softmax_expectation(&[0.0, 0.0, 0.0], &classes);
        assert!((ev - 2.0).abs() < 1e-6);
        assert_eq!(arg, 0);
        assert_eq!(softmax_expectation(&[0.0, 5.0, 1.0], &classes).1, 1);
    }

    #[test]
    fn errors_by_hand() {
        let e = Scored {
            pred: &[4.0, 4.0, 4.0, 4.0],
            truth: &[3.0, 5.0, 4.0, 2.0],
        }
        .errors();
        assert_eq!(e.n, 4);
        assert!((e.rmse - 1.5f64.sqrt()).abs() < 1e-12);
        assert!((e.mae - 1.0).abs() < 1e-12);
        let none = Scored {
            pred: &[],
            truth: &[],
        }
        .errors();
        assert!(none.rmse.is_nan() && none.mae.is_nan());
    }
}
