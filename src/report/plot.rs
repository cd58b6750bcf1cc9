//! SVG plots for reports: learning curves with error bars and
//! predicted-vs-true scatter plots.
//!
//! Plots are rendered fully in memory and then written atomically
//! (temp file + rename), so an interrupted run never leaves a truncated SVG
//! that a report page would then embed.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

/// One line of a line plot; each point is `(x, mean, std)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64, f64)>,
}

const WIDTH: u32 = 800;
const HEIGHT: u32 = 500;

/// Tableau-10 colours: distinguishable and colour-blind friendlier than
/// plotters' primary colours.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Writes `contents` to `path` via a sibling temp file and a rename, which
/// is atomic on the same filesystem.
fn write_atomic(path: &Path, contents: &str) -> Result<()> {
    let tmp = path.with_extension("svg.tmp");
    std::fs::write(&tmp, contents)
        .with_context(|| format!("writing temporary plot file {}", tmp.display()))?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        // Best effort: do not leave the temp file behind on failure.
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()));
    }
    Ok(())
}

/// `(min, max)` of an iterator, or `None` if it is empty.
fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Pads a linear range by 5% of its span on each side; a degenerate range
/// gets a fixed margin so plotters still has a non-empty axis.
fn pad_linear(lo: f64, hi: f64) -> (f64, f64) {
    let span = hi - lo;
    let m = if span > 0.0 {
        0.05 * span
    } else {
        (0.05 * lo.abs()).max(1e-3)
    };
    (lo - m, hi + m)
}

/// Pads a positive range multiplicatively, the natural margin on a log axis.
fn pad_log(lo: f64, hi: f64) -> (f64, f64) {
    (lo / 1.15, hi * 1.15)
}

/// Line plot of `series` with mean ± std error bars and a legend, written
/// atomically to `path` as an 800x500 SVG.
///
/// Intended for learning curves (metric vs. training-set size), hence the
/// optional log-scale x axis. Points with a non-finite x or mean are skipped
/// since they cannot be placed; a non-finite std just draws no error bar.
/// Errors if there is nothing left to plot, or if `log_x` is set and some
/// x is not positive.
pub fn line_plot_svg(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
) -> Result<()> {
    let cleaned: Vec<Series> = series
        .iter()
        .map(|s| Series {
            name: s.name.clone(),
            points: s
                .points
                .iter()
                .filter(|(x, m, _)| x.is_finite() && m.is_finite())
                .map(|&(x, m, sd)| (x, m, if sd.is_finite() { sd.abs() } else { 0.0 }))
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect();

    let all = || cleaned.iter().flat_map(|s| s.points.iter());
    let Some((x_lo, x_hi)) = min_max(all().map(|p| p.0)) else {
        bail!(
            "nothing to plot: no finite points in {} series",
            series.len()
        );
    };
    let (y_lo, y_hi) = min_max(all().flat_map(|&(_, m, sd)| [m - sd, m + sd]))
        .ok_or_else(|| anyhow!("nothing to plot"))?;
    let (y_lo, y_hi) = pad_linear(y_lo, y_hi);

    let mut svg = String::new();
    if log_x {
        if x_lo <= 0.0 {
            bail!("log-scale x axis needs positive x values, found {x_lo}");
        }
        let (lo, hi) = pad_log(x_lo, x_hi);
        let ticks = log_ticks(all().map(|p| p.0), lo, hi);
        draw_lines(
            &mut svg,
            (lo..hi).log_scale().with_key_points(ticks),
            y_lo..y_hi,
            title,
            x_label,
            y_label,
            &cleaned,
        )
    } else {
        let (lo, hi) = pad_linear(x_lo, x_hi);
        draw_lines(
            &mut svg,
            lo..hi,
            y_lo..y_hi,
            title,
            x_label,
            y_label,
            &cleaned,
        )
    }
    .with_context(|| format!("rendering line plot {}", path.display()))?;

    write_atomic(path, &svg)
}

/// Tick positions for a log x axis.
///
/// plotters' own log ticks are only decades plus evenly spaced minor ticks
/// (100, 200, ..., 1000), which misses the interesting sizes below 100. When
/// there are few distinct x values (the usual learning-curve case: a handful
/// of training-set sizes) label exactly those; otherwise use a 1-2-5
/// sequence.
fn log_ticks(xs: impl Iterator<Item = f64>, lo: f64, hi: f64) -> Vec<f64> {
    let mut distinct: Vec<f64> = xs.collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if distinct.len() <= 10 {
        return distinct;
    }
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let t = decade * m;
            if (lo..=hi).contains(&t) {
                ticks.push(t);
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// Compact tick label: integers without a trailing ".0", very large or
/// small magnitudes in scientific notation, otherwise up to 3 decimals.
fn fmt_tick(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        format!("{v:.1e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Draws the line plot into `svg`. Generic over the x-axis coordinate so the
/// same code serves linear and log scales.
fn draw_lines<X>(
    svg: &mut String,
    x_spec: X,
    y_range: std::ops::Range<f64>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(x_spec, y_range)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&|v| fmt_tick(*v))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(plot_err)?;

    for (i, s) in series.iter().enumerate() {
        let c = colour(i);
        let line_style = c.stroke_width(2);
        chart
            .draw_series(LineSeries::new(
                s.points.iter().map(|&(x, m, _)| (x, m)),
                line_style,
            ))
            .map_err(plot_err)?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(
                s.points
                    .iter()
                    .map(|&(x, m, _)| Circle::new((x, m), 3, c.filled())),
            )
            .map_err(plot_err)?;
        // Error bars: a vertical segment in data coordinates plus short
        // horizontal caps in pixel offsets, so caps keep their width on a
        // log axis.
        let bars = s.points.iter().filter(|p| p.2 > 0.0);
        chart
            .draw_series(bars.clone().map(|&(x, m, sd)| {
                PathElement::new(vec![(x, m - sd), (x, m + sd)], c.stroke_width(1))
            }))
            .map_err(plot_err)?;
        chart
            .draw_series(bars.flat_map(|&(x, m, sd)| {
                [m - sd, m + sd].map(|y| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(-4, 0), (4, 0)], c.stroke_width(1))
                })
            }))
            .map_err(plot_err)?;
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

/// Scatter plot of `(x, y)` points (e.g. true vs. predicted accuracy),
/// written atomically to `path` as an 800x500 SVG.
///
/// Non-finite points are skipped; errors if none remain.
pub fn scatter_svg(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64)],
) -> Result<()> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let (Some((x_lo, x_hi)), Some((y_lo, y_hi))) = (
        min_max(pts.iter().map(|p| p.0)),
        min_max(pts.iter().map(|p| p.1)),
    ) else {
        bail!("nothing to plot: no finite points among {}", points.len());
    };
    let (x_lo, x_hi) = pad_linear(x_lo, x_hi);
    let (y_lo, y_hi) = pad_linear(y_lo, y_hi);

    let mut svg = String::new();
    draw_scatter(
        &mut svg,
        x_lo..x_hi,
        y_lo..y_hi,
        title,
        x_label,
        y_label,
        &pts,
    )
    .with_context(|| format!("rendering scatter plot {}", path.display()))?;
    write_atomic(path, &svg)
}

fn draw_scatter(
    svg: &mut String,
    x_range: std::ops::Range<f64>,
    y_range: std::ops::Range<f64>,
    title: &str,
    x_label: &str,
    y_label: &str,
    pts: &[(f64, f64)],
) -> Result<()> {
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(x_range, y_range)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(plot_err)?;
    // Translucent markers so dense regions read as darker.
    let style = colour(0).mix(0.5).filled();
    chart
        .draw_series(pts.iter().map(|&p| Circle::new(p, 2, style)))
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

/// Plotters errors borrow nothing but are generic over the backend; turning
/// them into messages keeps the public API plain `anyhow`.
fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("plotters: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn unique_path(stem: &str) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        std::env::temp_dir().join(format!(
            "hypernas_plot_{stem}_{}_{}_{nanos}.svg",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ))
    }

    fn sample_series() -> Vec<Series> {
        let xs = [39.0, 78.0, 156.0, 391.0, 782.0, 1563.0];
        vec![
            Series {
                name: "hypernas-alpha".into(),
                points: xs
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| (x, 0.3 + 0.08 * i as f64, 0.02))
                    .collect(),
            },
            Series {
                name: "baseline-beta".into(),
                points: xs
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| (x, 0.2 + 0.06 * i as f64, 0.05))
                    .collect(),
            },
        ]
    }

    #[test]
    fn line_plot_writes_svg() {
        for log_x in [true, false] {
            let path = unique_path("line");
            line_plot_svg(
                &path,
                "Kendall tau",
                "train size",
                "tau",
                &sample_series(),
                log_x,
            )
            .expect("plot renders");
            let s = std::fs::read_to_string(&path).expect("read back");
            assert!(s.starts_with("<svg"), "{}", &s[..s.len().min(80)]);
            assert!(s.contains("hypernas-alpha"));
            assert!(s.contains("baseline-beta"));
            assert!(!path.with_extension("svg.tmp").exists());
            std::fs::remove_file(&path).expect("cleanup");
        }
    }

    #[test]
    fn scatter_writes_svg() {
        let path = unique_path("scatter");
        let pts: Vec<(f64, f64)> = (0..50)
            .map(|i| (i as f64 / 50.0, (i as f64 / 50.0).powi(2)))
            .collect();
        scatter_svg(&path, "pred vs true", "true", "pred", &pts).expect("plot renders");
        let s = std::fs::read_to_string(&path).expect("read back");
        assert!(s.starts_with("<svg"));
        assert!(s.contains("pred vs true"));
        std::fs::remove_file(&path).expect("cleanup");
    }

    #[test]
    fn degenerate_inputs() {
        // A single point (zero x and y span) still renders.
        let path = unique_path("single");
        let one = [Series {
            name: "one".into(),
            points: vec![(100.0, 0.5, 0.0)],
        }];
        line_plot_svg(&path, "t", "x", "y", &one, true).expect("single point renders");
        std::fs::remove_file(&path).expect("cleanup");
    }

    #[test]
    fn tick_helpers() {
        assert_eq!(fmt_tick(1563.0), "1563");
        assert_eq!(fmt_tick(0.25), "0.25");
        assert_eq!(fmt_tick(2e7), "2.0e7");
        let few = log_ticks([39.0, 78.0, 39.0].into_iter(), 30.0, 100.0);
        assert_eq!(few, vec![39.0, 78.0]);
        let many = log_ticks((1..=20).map(|i| i as f64 * 50.0), 40.0, 1100.0);
        assert_eq!(many, vec![50.0, 100.0, 200.0, 500.0, 1000.0]);
    }

    #[test]
    fn empty_input_errors() {
        let path = unique_path("empty");
        let err = line_plot_svg(&path, "t", "x", "y", &[], false).unwrap_err();
        assert!(err.to_string().contains("nothing to plot"));
        let empty = [Series {
            name: "e".into(),
            points: vec![(f64::NAN, 1.0, 0.0)],
        }];
        assert!(line_plot_svg(&path, "t", "x", "y", &empty, true).is_err());
        let err = scatter_svg(&path, "t", "x", "y", &[]).unwrap_err();
        assert!(err.to_string().contains("nothing to plot"));
        let neg = [Series {
            name: "n".into(),
            points: vec![(0.0, 1.0, 0.0)],
        }];
        assert!(line_plot_svg(&path, "t", "x", "y", &neg, true).is_err());
        assert!(!path.exists());
    }
}
