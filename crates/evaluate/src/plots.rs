//! SVG plots drawn with plotters: learning curves, predicted vs actual rating distribution,
//! and error by user activity. Each is rendered into a string and written atomically.

use crate::error::EvaluateError;
use crate::history::History;
use crate::metrics::rating::BucketMetrics;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

const SIZE: (u32, u32) = (800, 480);
const FONT: &str = "sans-serif";

fn fail(path: &Path, e: impl std::fmt::Display) -> EvaluateError {
    EvaluateError::Plot {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn render(
    path: &Path,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<(), String>,
) -> Result<(), EvaluateError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(path, e))?;
        draw(&root).map_err(|e| fail(path, e))?;
        root.present().map_err(|e| fail(path, e))?;
    }
    recpipe_core::fsutil::write_atomic(path, svg.as_bytes())?;
    Ok(())
}

/// (lo, hi) of the finite values, padded by 5% so lines do not touch the frame.
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    (lo - pad, hi + pad)
}

/// The frame every plot shares: the caption, margins and axis label areas.
fn frame<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.caption(caption, (FONT, 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60);
    b
}

/// One labelled line with a dot at every point.
fn line_with_dots<X, Y>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, Y>>,
    pts: Vec<(X::ValueType, Y::ValueType)>,
    label: &str,
    color: RGBAColor,
    dot: i32,
) -> Result<(), String>
where
    X: Ranged,
    Y: Ranged,
    X::ValueType: Clone + 'static,
    Y::ValueType: Clone + 'static,
{
    chart
        .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
        .map_err(|e| e.to_string())?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    chart
        .draw_series(pts.into_iter().map(|p| Circle::new(p, dot, color.filled())))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The legend box, top right.
fn legend<'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// Train loss and valid RMSE per epoch.
pub fn learning_curve(path: &Path, model: &str, h: &History) -> Result<(), EvaluateError> {
    let (y0, y1) = padded_range(h.train_loss.iter().chain(&h.valid_rmse).copied());
    let (x0, x1) = padded_range(h.epoch.iter().copied());
    render(path, |root| {
        let mut chart = frame(root, &format!("Learning curve: {model}"))
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("train loss / valid RMSE")
            .draw()
            .map_err(|e| e.to_string())?;
        let series = [
            ("train loss", &h.train_loss, BLUE),
            ("valid RMSE", &h.valid_rmse, RED),
        ];
        for (label, ys, color) in series {
            let pts: Vec<(f64, f64)> = h
                .epoch
                .iter()
                .zip(ys.iter())
                .filter(|(_, y)| y.is_finite())
                .map(|(&x, &y)| (x, y))
                .collect();
            if pts.is_empty() {
                continue;
            }
            line_with_dots(&mut chart, pts, label, color.to_rgba(), 3)?;
        }
        legend(&mut chart)
    })
}

/// Share of ratings per half-star bin; predictions are rounded to the nearest half star.
pub fn histogram(values: &[f32], lo: f32, n_bins: usize) -> Vec<f64> {
    let mut counts = vec![0f64; n_bins];
    for &v in values.iter().filter(|v| v.is_finite()) {
        let b = ((v - lo) * 2.0).round().clamp(0.0, (n_bins - 1) as f32) as usize;
        counts[b] += 1.0;
    }
    let total = values.len().max(1) as f64;
    counts.iter().map(|c| 100.0 * c / total).collect()
}

/// Side-by-side histograms of actual and predicted ratings.
pub fn rating_distribution(
    path: &Path,
    title: &str,
    actual: &[f32],
    pred: &[f32],
) -> Result<(), EvaluateError> {
    let finite = || actual.iter().chain(pred).copied().filter(|v| v.is_finite());
    let lo = (finite().fold(f32::INFINITY, f32::min) * 2.0).floor() / 2.0;
    let hi = (finite().fold(f32::NEG_INFINITY, f32::max) * 2.0).ceil() / 2.0;
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 5.0) };
    let n_bins = ((hi - lo) * 2.0) as usize + 1;
    let ha = histogram(actual, lo, n_bins);
    let hp = histogram(pred, lo, n_bins);
    let ymax = ha.iter().chain(&hp).copied().fold(1.0, f64::max) * 1.1;
    render(path, |root| {
        let mut chart = frame(root, title)
            .build_cartesian_2d((lo - 0.5) as f64..(hi + 0.5) as f64, 0.0..ymax)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("rating (predictions rounded to the nearest half star)")
            .y_desc("% of ratings")
            .disable_x_mesh()
            .draw()
            .map_err(|e| e.to_string())?;
        let series = [("actual", &ha, -0.2, BLUE), ("predicted", &hp, 0.0, RED)];
        for (label, h, offset, color) in series {
            chart
                .draw_series(h.iter().enumerate().map(|(b, &y)| {
                    let x = (lo + b as f32 * 0.5) as f64 + offset;
                    Rectangle::new([(x, 0.0), (x + 0.2, y)], color.mix(0.8).filled())
                }))
                .map_err(|e| e.to_string())?
                .label(label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        legend(&mut chart)
    })
}

/// RMSE per user-activity bucket, one line per model or baseline.
pub fn error_by_activity(
    path: &Path,
    title: &str,
    rows: &[(String, Vec<BucketMetrics>)],
) -> Result<(), EvaluateError> {
    let Some((_, first)) = rows.first() else {
        return Ok(());
    };
    let labels: Vec<String> = first
        .iter()
        .map(|b| format!("{} ({} users)", b.label, b.n_users))
        .collect();
    let n = labels.len() as i32;
    let (y0, y1) = padded_range(rows.iter().flat_map(|(_, b)| b.iter().map(|m| m.rmse)));
    render(path, |root| {
        let mut chart = frame(root, title)
            .build_cartesian_2d((0..n).into_segmented(), y0.min(0.0).max(y0 - 0.2)..y1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("train ratings per user")
            .y_desc("RMSE")
            .x_labels(labels.len())
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    labels.get(*i as usize).cloned().unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
            .draw()
            .map_err(|e| e.to_string())?;
        for (c, (name, buckets)) in rows.iter().enumerate() {
            let color = Palette99::pick(c).to_rgba();
            let pts: Vec<(SegmentValue<i32>, f64)> = buckets
                .iter()
                .enumerate()
                .filter(|(_, b)| b.rmse.is_finite())
                .map(|(i, b)| (SegmentValue::CenterOf(i as i32), b.rmse))
                .collect();
            line_with_dots(&mut chart, pts, name, color, 4)?;
        }
        legend(&mut chart)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bins_by_half_star() {
        let h = histogram(&[1.0, 1.2, 1.3, 5.0], 1.0, 9);
        assert_eq!(h[0], 50.0);
        assert_eq!(h[1], 25.0, "1.3 rounds to 1.5");
        assert_eq!(h[8], 25.0);
    }

    #[test]
    fn plots_are_svg_files() {
        let dir = tempfile::tempdir().unwrap();
        let h = History {
            epoch: vec![1.0, 2.0, 3.0],
            train_loss: vec![1.2, 0.9, 0.8],
            valid_rmse: vec![1.0, f64::NAN, 0.9],
        };
        let p = dir.path().join("lc.svg");
        learning_curve(&p, "m", &h).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with("<svg") && text.contains("valid RMSE"),
            "{text:.200}"
        );
        let p = dir.path().join("dist.svg");
        rating_distribution(&p, "dist", &[1.0, 4.0], &[2.2, 3.9]).unwrap();
        assert!(std::fs::read_to_string(&p).unwrap().contains("predicted"));
    }
}
