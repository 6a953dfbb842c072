//! The report's charts, drawn as SVG by plotters (its SVG backend only: no browser, no
//! system fonts; the browser that opens the report sets the text). Every chart has a
//! title and axis labels with units; the caller checks there is data to draw (an empty
//! series is a "not enough data" note in the report, never an empty frame).

use plotters::coord::Shift;
use plotters::coord::ranged1d::{SegmentValue, SegmentedCoord};
use plotters::coord::types::RangedCoordi32;
use plotters::prelude::*;

use crate::error::{ArqError, Result};

const WIDTH: u32 = 760;
const HEIGHT: u32 = 320;
const FONT: &str = "sans-serif";

/// Aging buckets from current (green) to the oldest (dark red); other series in turn.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(46, 139, 87),
    RGBColor(154, 205, 50),
    RGBColor(255, 193, 37),
    RGBColor(255, 127, 36),
    RGBColor(220, 60, 40),
    RGBColor(139, 26, 26),
    RGBColor(70, 110, 180),
    RGBColor(120, 120, 120),
];

/// Lines in turn: blue, green, red, grey.
const LINE_COLORS: [RGBColor; 4] = [
    RGBColor(70, 110, 180),
    RGBColor(46, 139, 87),
    RGBColor(220, 60, 40),
    RGBColor(120, 120, 120),
];

/// One named series of values, one per category (None: no value there).
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// Titles of a chart.
pub struct Axes<'a> {
    pub title: &'a str,
    pub x: &'a str,
    pub y: &'a str,
}

fn failed(e: impl std::fmt::Display) -> ArqError {
    ArqError::Internal(format!("drawing a chart failed: {e}"))
}

/// `1.2M`, `350k`, `12.5` for an axis.
pub fn compact(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e9 {
        format!("{:.1}B", value / 1e9)
    } else if magnitude >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if magnitude >= 1e3 {
        format!("{:.0}k", value / 1e3)
    } else if magnitude >= 10.0 || magnitude == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// The top of a value axis: above the largest value, with room for the legend in the
/// upper left (1 when there is no positive value).
fn top(max: f64) -> f64 {
    if max > 0.0 { max * 1.4 } else { 1.0 }
}

/// `n` categories as segments `0..=n-1` (plotters' segmented range over `0..k` has k+1
/// segments).
fn segments(n: usize) -> SegmentedCoord<RangedCoordi32> {
    (0..(n as i32 - 1).max(0)).into_segmented()
}

/// A chart over categories (months, deciles) on a white ground, with its title, axis
/// descriptions and a value axis over `y`.
fn over_categories<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    axes: &Axes,
    categories: &[String],
    y: std::ops::Range<f64>,
) -> Result<CategoryChart<'a, 'b>> {
    root.fill(&WHITE).map_err(failed)?;
    let mut chart = ChartBuilder::on(root)
        .caption(axes.title, (FONT, 17))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(segments(categories.len()), y)
        .map_err(failed)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(categories.len())
        .x_label_formatter(&|v| category(categories, v))
        .y_label_formatter(&|v| compact(*v))
        .x_desc(axes.x)
        .y_desc(axes.y)
        .draw()
        .map_err(failed)?;
    Ok(chart)
}

/// A chart with categories across and values up.
type CategoryChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<SegmentedCoord<RangedCoordi32>, plotters::coord::types::RangedCoordf64>,
>;

/// Stacked vertical bars: one bar per category, one segment per series.
pub fn stacked_bars(axes: &Axes, categories: &[String], series: &[Series]) -> Result<String> {
    let totals: Vec<f64> = (0..categories.len())
        .map(|i| series.iter().map(|s| s.values[i].unwrap_or(0.0)).sum())
        .collect();
    let y_max = top(totals.iter().copied().fold(0.0, f64::max));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let mut chart = over_categories(&root, axes, categories, 0f64..y_max)?;
        let mut base = vec![0.0; categories.len()];
        for (k, s) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let bars: Vec<Rectangle<(SegmentValue<i32>, f64)>> = s
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let bottom = base[i];
                    base[i] += v.unwrap_or(0.0);
                    let mut bar = Rectangle::new(
                        [
                            (SegmentValue::Exact(i as i32), bottom),
                            (SegmentValue::Exact(i as i32 + 1), base[i]),
                        ],
                        color.filled(),
                    );
                    bar.set_margin(0, 0, 6, 6);
                    bar
                })
                .collect();
            chart
                .draw_series(bars)
                .map_err(failed)?
                .label(s.name.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        legend(&mut chart)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// Lines over categories (months), with an optional dashed target line.
pub fn lines(
    axes: &Axes,
    categories: &[String],
    series: &[Series],
    target: Option<(&str, f64)>,
) -> Result<String> {
    let values = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied());
    let max = values.chain(target.map(|(_, t)| t)).fold(0.0, f64::max);
    let min = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .fold(0.0, f64::min);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let mut chart = over_categories(&root, axes, categories, min.min(0.0)..top(max))?;
        for (k, s) in series.iter().enumerate() {
            let color = LINE_COLORS[k % LINE_COLORS.len()].mix(1.0);
            let points: Vec<(SegmentValue<i32>, f64)> = s
                .values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (SegmentValue::CenterOf(i as i32), v)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(failed)?
                .label(s.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(failed)?;
        }
        if let Some((name, value)) = target {
            let grey = RGBColor(90, 90, 90).mix(1.0);
            let ends = vec![(SegmentValue::Exact(0), value), (SegmentValue::Last, value)];
            chart
                .draw_series(DashedLineSeries::new(ends, 6, 4, grey.stroke_width(1)))
                .map_err(failed)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], grey));
        }
        legend(&mut chart)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// Lines over a numeric x axis in [0, 1] (ROC curves), with the chance diagonal.
pub fn xy_lines(axes: &Axes, series: &[(String, Vec<(f64, f64)>)]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT + 80)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(axes.title, (FONT, 17))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_desc(axes.x)
            .y_desc(axes.y)
            .x_label_formatter(&|v| format!("{:.0} %", v * 100.0))
            .y_label_formatter(&|v| format!("{:.0} %", v * 100.0))
            .draw()
            .map_err(failed)?;
        let grey = RGBColor(150, 150, 150).mix(1.0);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, 0.0), (1.0, 1.0)],
                6,
                4,
                grey.into(),
            ))
            .map_err(failed)?
            .label("chance")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], grey));
        for (k, (name, points)) in series.iter().enumerate() {
            let color = LINE_COLORS[k % LINE_COLORS.len()].mix(1.0);
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(failed)?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font((FONT, 12))
            .draw()
            .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// Horizontal bars, one per label (a ranking, largest first as given).
pub fn bars(axes: &Axes, labels: &[String], values: &[f64]) -> Result<String> {
    let n = labels.len() as i32;
    let max = values.iter().copied().fold(0.0, f64::max);
    let min = values.iter().copied().fold(0.0, f64::min);
    let height = (90 + 26 * labels.len() as u32).max(160);
    // Slot 0 is at the bottom: the first label goes in the top slot.
    let slots: Vec<String> = labels.iter().rev().cloned().collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(axes.title, (FONT, 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(label_width(labels))
            .build_cartesian_2d(min..max.max(1.0) * 1.1, segments(labels.len()))
            .map_err(failed)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(labels.len())
            .y_label_formatter(&|v| category(&slots, v))
            .x_label_formatter(&|v| compact(*v))
            .x_desc(axes.x)
            .y_desc(axes.y)
            .draw()
            .map_err(failed)?;
        let color = RGBColor(70, 110, 180);
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                // The first label on top.
                let slot = n - 1 - i as i32;
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(slot)),
                        (*v, SegmentValue::Exact(slot + 1)),
                    ],
                    color.filled(),
                );
                bar.set_margin(4, 4, 0, 0);
                bar
            }))
            .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// Room for the longest label at the axis font (about 6.5 px a character).
fn label_width(labels: &[String]) -> u32 {
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u32;
    (longest * 13 / 2 + 24).clamp(60, 420)
}

/// The label of a segment's centre; nothing elsewhere.
fn category(labels: &[String], value: &SegmentValue<i32>) -> String {
    match value {
        SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    }
}

fn legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>) -> Result<()>
where
    DB: DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font((FONT, 12))
        .draw()
        .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_their_titles_and_escaped_labels() {
        let axes = Axes {
            title: "Aging <USD>",
            x: "month",
            y: "USD",
        };
        let months = vec!["2026-09".to_string(), "2026-10".to_string()];
        let series = vec![
            Series {
                name: "current".into(),
                values: vec![Some(10.0), Some(12.0)],
            },
            Series {
                name: "1-30".into(),
                values: vec![Some(3.0), None],
            },
        ];
        let svg = stacked_bars(&axes, &months, &series).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("Aging &lt;USD&gt;"), "{svg}");
        assert!(svg.contains("2026-10") && svg.contains("1-30"));
        assert!(!svg.contains("NaN"));
        let svg = lines(&axes, &months, &series, Some(("target", 80.0))).unwrap();
        assert!(svg.contains("target"));
        let labels = vec!["K0001".to_string(), "K0002".to_string()];
        let svg = bars(&axes, &labels, &[90.0, 75.5]).unwrap();
        assert!(svg.contains("K0001") && svg.contains("K0002"));
    }

    #[test]
    fn axis_numbers_are_compact() {
        assert_eq!(compact(1_250_000.0), "1.2M");
        assert_eq!(compact(350_000.0), "350k");
        assert_eq!(compact(45.0), "45");
        assert_eq!(compact(2.5), "2.5");
        assert_eq!(compact(0.0), "0");
    }
}
