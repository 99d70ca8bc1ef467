//! An SVG of one run over time, in three panels: each component's power limit and
//! draw with the node cap; temperatures against their `t_max`; the clearing (last
//! trade) price of power.

use plotters::{
    coord::Shift,
    prelude::{
        BLACK, ChartBuilder, DrawingArea, IntoDrawingArea, LineSeries, PathElement, RGBColor,
        SVGBackend, ShapeStyle, WHITE,
    },
    style::Color,
};

use crate::{SimError, run::RunTrace};

/// One colour per component, cycled.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];
const CAP_COLOR: RGBColor = RGBColor(0, 0, 0);

/// At most this many points per series: longer runs are thinned evenly, which keeps
/// the file small and leaves the shape intact at plot resolution.
const MAX_POINTS: usize = 3_000;

fn plot_error(error: impl std::fmt::Display) -> SimError {
    SimError::Plot(error.to_string())
}

fn color(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// Every `stride`-th index, and the last, so a series keeps its end.
fn thinned(len: usize) -> Vec<usize> {
    let stride = len.div_ceil(MAX_POINTS).max(1);
    let mut indices: Vec<usize> = (0..len).step_by(stride).collect();
    if len > 0 && indices.last() != Some(&(len - 1)) {
        indices.push(len - 1);
    }
    indices
}

/// Renders `trace` as an SVG document titled `title`.
pub fn render_svg(trace: &RunTrace, title: &str) -> Result<String, SimError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1200, 1000)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let root = root.titled(title, ("sans-serif", 22)).map_err(plot_error)?;
        let panels = root.split_evenly((3, 1));
        power_panel(&panels[0], trace)?;
        temperature_panel(&panels[1], trace)?;
        price_panel(&panels[2], trace)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// Writes the SVG of `trace` to `path`.
pub fn write_svg(path: &std::path::Path, trace: &RunTrace, title: &str) -> Result<(), SimError> {
    let svg = render_svg(trace, title)?;
    std::fs::write(path, svg)
        .map_err(|error| SimError::Plot(format!("{}: {error}", path.display())))
}

/// A point of a series, or none where the value is unknown (NaN: a live run's reading
/// the sensors did not give).
fn point(time_s: f64, value: f64) -> Option<(f64, f64)> {
    value.is_finite().then_some((time_s, value))
}

fn end_time_s(trace: &RunTrace) -> f64 {
    trace
        .twin
        .steps
        .last()
        .map_or(1.0, |step| step.time_s)
        .max(1e-3)
}

fn legend(color: RGBColor, dashed: bool) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| {
        let style = ShapeStyle::from(color).stroke_width(if dashed { 1 } else { 2 });
        PathElement::new(vec![(x, y), (x + 20, y)], style)
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn power_panel(area: &Area<'_>, trace: &RunTrace) -> Result<(), SimError> {
    let steps = &trace.twin.steps;
    let indices = thinned(steps.len());
    let top_w = steps
        .iter()
        .flat_map(|step| {
            std::iter::once(step.cap_w)
                .chain(step.components.iter().map(|c| c.limit_w.max(c.power_w)))
        })
        .fold(1.0f64, f64::max)
        * 1.08;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "power: limit (thin) and draw (thick) per component, node cap",
            ("sans-serif", 16),
        )
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..end_time_s(trace), 0.0..top_w)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("W")
        .draw()
        .map_err(plot_error)?;
    chart
        .draw_series(LineSeries::new(
            indices
                .iter()
                .filter_map(|&i| point(steps[i].time_s, steps[i].cap_w)),
            ShapeStyle::from(CAP_COLOR).stroke_width(2),
        ))
        .map_err(plot_error)?
        .label("cap")
        .legend(legend(CAP_COLOR, false));
    for (index, name) in trace.twin.components.iter().enumerate() {
        let c = color(index);
        chart
            .draw_series(LineSeries::new(
                indices.iter().filter_map(|&i| {
                    point(steps[i].time_s, steps[i].components.get(index)?.limit_w)
                }),
                ShapeStyle::from(c.mix(0.6)).stroke_width(1),
            ))
            .map_err(plot_error)?
            .label(format!("{name} limit"))
            .legend(legend(c, true));
        chart
            .draw_series(LineSeries::new(
                indices.iter().filter_map(|&i| {
                    point(steps[i].time_s, steps[i].components.get(index)?.power_w)
                }),
                ShapeStyle::from(c).stroke_width(2),
            ))
            .map_err(plot_error)?
            .label(format!("{name} draw"))
            .legend(legend(c, false));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)
}

fn temperature_panel(area: &Area<'_>, trace: &RunTrace) -> Result<(), SimError> {
    let steps = &trace.twin.steps;
    let indices = thinned(steps.len());
    let end_s = end_time_s(trace);
    let hottest = steps
        .iter()
        .flat_map(|step| step.components.iter().map(|c| c.temp_c))
        .chain(trace.t_max_c.iter().copied())
        .fold(0.0f64, f64::max);
    let coolest = steps
        .iter()
        .flat_map(|step| step.components.iter().map(|c| c.temp_c))
        .fold(hottest, f64::min);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "temperature (solid) against t_max (dashed)",
            ("sans-serif", 16),
        )
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..end_s, (coolest - 5.0).max(0.0)..hottest + 5.0)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("°C")
        .draw()
        .map_err(plot_error)?;
    for (index, name) in trace.twin.components.iter().enumerate() {
        let c = color(index);
        chart
            .draw_series(LineSeries::new(
                indices.iter().filter_map(|&i| {
                    point(steps[i].time_s, steps[i].components.get(index)?.temp_c)
                }),
                ShapeStyle::from(c).stroke_width(2),
            ))
            .map_err(plot_error)?
            .label(format!("{name} temperature"))
            .legend(legend(c, false));
        if let Some(&t_max_c) = trace.t_max_c.get(index).filter(|t| t.is_finite()) {
            // Dashes: short segments along the line.
            let dashes = (0..60).map(|k| {
                let from = end_s * f64::from(k) / 60.0;
                let to = end_s * (f64::from(k) + 0.5) / 60.0;
                PathElement::new(vec![(from, t_max_c), (to, t_max_c)], ShapeStyle::from(c))
            });
            chart
                .draw_series(dashes)
                .map_err(plot_error)?
                .label(format!("{name} t_max"))
                .legend(legend(c, true));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)
}

fn price_panel(area: &Area<'_>, trace: &RunTrace) -> Result<(), SimError> {
    let steps = &trace.twin.steps;
    let prices = &trace.power_price;
    let top = prices.iter().flatten().copied().fold(1.0f64, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "clearing price of power (last trade of power_budget_mw; none without a market)",
            ("sans-serif", 16),
        )
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..end_time_s(trace), 0.0..top)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("credits per mW")
        .draw()
        .map_err(plot_error)?;
    let points: Vec<(f64, f64)> = thinned(prices.len().min(steps.len()))
        .into_iter()
        .filter_map(|i| Some((steps[i].time_s, prices[i]?)))
        .collect();
    let c = RGBColor(214, 39, 40);
    chart
        .draw_series(LineSeries::new(points, ShapeStyle::from(c).stroke_width(2)))
        .map_err(plot_error)?
        .label("power_budget_mw")
        .legend(legend(c, false));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)
}
