//! How `gamesa top` draws its [`Model`] into a ratatui [`Frame`]: the connection and
//! tick, the components, the market of one resource, the split of the node's power
//! cap, the live signals and the last vetoes. Pure: the same model and `now` draw the
//! same screen.

use std::time::Instant;

use gamesa_proto::{Resource, TelemetryFrame};
use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Paragraph},
};

use super::model::{Link, Model, Snapshot, power_headroom_mw, thermal_headroom_mc};

/// Eight heights of a sparkline's bar, lowest first.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// What the footer says the keys do.
const KEYS: &str = " q quit · p/space pause · r/Tab next resource · Shift-Tab previous";
/// Height of the market and power-split row, borders included.
const MARKET_ROWS: u16 = 9;
/// Width of the components table's columns before the sparkline, separators included.
const TABLE_WIDTH: usize = 10 + 7 + 9 + 9 + 10 + 8 + 8 + 9 + 2;

/// Draws the whole screen.
pub fn render(frame: &mut Frame, model: &Model, now: Instant) {
    let shown = model.shown();
    let components = shown
        .frame
        .as_ref()
        .map_or(1, |telemetry| telemetry.components.len());
    // Borders, the column names and the node's line around one line per component.
    let components_rows = u16::try_from(components)
        .unwrap_or(u16::MAX)
        .saturating_add(4);
    let [header, components_area, market_row, events_row, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(components_rows),
        Constraint::Length(MARKET_ROWS),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    render_header(frame, header, model, now);
    render_components(frame, components_area, shown, now);
    let [market, split] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(market_row);
    render_market(frame, market, shown, model.resource());
    render_split(frame, split, shown);
    let [signals, vetoes] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
            .areas(events_row);
    render_signals(frame, signals, shown);
    render_vetoes(frame, vetoes, shown);
    render_footer(frame, footer, shown);
}

fn render_header(frame: &mut Frame, area: Rect, model: &Model, now: Instant) {
    let mut left = vec![Span::styled(
        " gamesa top ",
        Style::new().add_modifier(Modifier::BOLD),
    )];
    match model.link() {
        Link::Connecting => left.push(Span::styled("connecting…", Style::new().fg(Color::Yellow))),
        Link::Connected { server } => {
            left.push(Span::styled("connected", Style::new().fg(Color::Green)));
            if let Some(server) = server {
                left.push(Span::raw(format!(" to {server}")));
            }
            if let Some(silent) = model.silent_for(now) {
                left.push(Span::styled(
                    format!(" (nothing read for {} s)", silent.as_secs()),
                    Style::new().fg(Color::Yellow),
                ));
            }
        }
        Link::Disconnected { reason, since } => {
            left.push(Span::styled(
                format!(
                    "disconnected, retrying ({} s): {reason}",
                    now.saturating_duration_since(*since).as_secs()
                ),
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            ));
        }
    }
    if let Some(tick) = model.shown().tick {
        left.push(Span::raw(format!(" · tick {tick}")));
    }
    let right = if model.paused() {
        Span::styled(
            " PAUSED (p to resume) ",
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        )
    } else {
        Span::raw("")
    };
    let right_width = u16::try_from(right.width()).unwrap_or(u16::MAX);
    let [left_area, right_area] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(right_width)]).areas(area);
    frame.render_widget(Paragraph::new(Line::from(left)), left_area);
    frame.render_widget(Paragraph::new(Line::from(right)), right_area);
}

fn render_components(frame: &mut Frame, area: Rect, shown: &Snapshot, now: Instant) {
    let block = Block::bordered().title(" components ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(telemetry) = &shown.frame else {
        frame.render_widget(
            Paragraph::new("waiting for the first telemetry frame (query telemetry)"),
            inner,
        );
        return;
    };
    let spark_width = usize::from(inner.width).saturating_sub(TABLE_WIDTH);
    let mut lines = vec![Line::styled(
        format!(
            "{:<10}{:>7}{:>9}{:>9}{:>10}{:>8}{:>8}{:>9}  {}",
            "component",
            "util %",
            "draw W",
            "limit W",
            "headroom",
            "temp °C",
            "t_max",
            "t room",
            "draw, last minute"
        ),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    for component in &telemetry.components {
        let headroom = power_headroom_mw(component);
        let headroom_style = match headroom {
            Some(mw) if mw < 0 => Style::new().fg(Color::Red),
            _ => Style::new(),
        };
        let history = shown.draw_history(&component.id, now, spark_width);
        let top = history
            .iter()
            .flatten()
            .copied()
            .chain(component.limit_mw)
            .max()
            .unwrap_or(0);
        lines.push(Line::from(vec![
            Span::raw(format!(
                "{:<10}{:>7.1}{:>9}{:>9}",
                component.id,
                f64::from(component.utilization_permille) / 10.0,
                watts(component.power_mw),
                watts(component.limit_mw),
            )),
            Span::styled(
                format!(
                    "{:>10}",
                    headroom.map_or_else(dash, |mw| format!("{:+.1}", mw as f64 / 1000.0))
                ),
                headroom_style,
            ),
            Span::raw(format!(
                "{:>8}{:>8}{:>9}  ",
                celsius(component.temp_mc),
                celsius(component.t_max_mc),
                thermal_headroom_mc(component)
                    .map_or_else(dash, |mc| format!("{:+.1}", f64::from(mc) / 1000.0)),
            )),
            Span::styled(sparkline(&history, top), Style::new().fg(Color::Cyan)),
        ]));
    }
    lines.push(Line::raw(node_line(telemetry)));
    frame.render_widget(Paragraph::new(lines), inner);
}

fn node_line(telemetry: &TelemetryFrame) -> String {
    match (telemetry.node.draw_mw, telemetry.node.cap_mw) {
        (Some(draw), Some(cap)) => format!(
            "node: draw {} W of the {} W cap (headroom {:+.1} W)",
            watts(Some(draw)),
            watts(Some(cap)),
            (cap as f64 - draw as f64) / 1000.0
        ),
        (draw, cap) => format!("node: draw {} W, cap {} W", watts(draw), watts(cap)),
    }
}

fn render_market(frame: &mut Frame, area: Rect, shown: &Snapshot, resource: Resource) {
    let block = Block::bordered().title(format!(
        " market: {resource} ({}/{}, r/Tab: next) ",
        resource.index() + 1,
        Resource::ALL.len()
    ));
    let mut lines = match shown.prices(resource) {
        Some(line) => {
            let price =
                |price: Option<gamesa_proto::Price>| price.map_or_else(dash, |p| p.0.to_string());
            let spread = match (line.best_bid, line.best_ask) {
                (Some(bid), Some(ask)) => (i128::from(ask.0) - i128::from(bid.0)).to_string(),
                _ => dash(),
            };
            vec![
                Line::raw(format!("last    {}", price(line.last))),
                Line::styled(
                    format!("bid     {}", price(line.best_bid)),
                    Style::new().fg(Color::Green),
                ),
                Line::styled(
                    format!("ask     {}", price(line.best_ask)),
                    Style::new().fg(Color::Red),
                ),
                Line::raw(format!("spread  {spread}")),
            ]
        }
        None => vec![Line::raw("no prices yet (topic prices)")],
    };
    let (count, units) = shown.leased(resource);
    lines.push(Line::raw(format!(
        "leases  {count} live, {units} {} held",
        unit_of(resource)
    )));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn render_split(frame: &mut Frame, area: Rect, shown: &Snapshot) {
    let block = Block::bordered().title(" node power cap: power_budget_mw leases ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let split = shown.power_split();
    let leased: u64 = split.iter().map(|(_, held)| held).sum();
    let cap = shown.frame.as_ref().and_then(|frame| frame.node.cap_mw);
    let mut lines = vec![Line::raw(match cap {
        Some(cap) => format!(
            "{} W leased of the {} W cap",
            watts(Some(leased)),
            watts(Some(cap))
        ),
        None => format!("{} W leased (cap unknown)", watts(Some(leased))),
    })];
    if split.is_empty() {
        lines.push(Line::raw("no power budget leased"));
    }
    let whole = cap.unwrap_or(leased).max(1);
    // Name, watts, then the bar in what is left of the line.
    let bar_width = usize::from(inner.width).saturating_sub(12 + 10 + 1);
    for (holder, held) in split {
        let filled = ((u128::from(held) * bar_width as u128).div_ceil(u128::from(whole)) as usize)
            .min(bar_width);
        lines.push(Line::from(vec![
            Span::raw(format!("{:<12}{:>8} W ", holder, watts(Some(held)))),
            Span::styled("█".repeat(filled), Style::new().fg(Color::Magenta)),
            Span::styled(
                "░".repeat(bar_width - filled),
                Style::new().fg(Color::DarkGray),
            ),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn render_signals(frame: &mut Frame, area: Rect, shown: &Snapshot) {
    let block = Block::bordered().title(" live signals, newest first ");
    let lines: Vec<Line> = if shown.signals.is_empty() {
        vec![Line::raw("none live")]
    } else {
        shown
            .signals
            .iter()
            .map(|live| {
                let left = shown
                    .tick
                    .map_or(0, |tick| live.expires_at.0.saturating_sub(tick.0));
                Line::raw(format!(
                    "{} {} {:.2} from {} · {left} ticks left",
                    live.signal.kind,
                    live.signal.domain,
                    live.signal.strength.as_unit(),
                    live.signal.source_name
                ))
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn render_vetoes(frame: &mut Frame, area: Rect, shown: &Snapshot) {
    let block = Block::bordered().title(" vetoes, newest first ");
    let mut lines = Vec::new();
    for shown in &shown.vetoes {
        let veto = &shown.veto;
        lines.push(Line::from(vec![
            Span::styled(
                format!("tick {} {} {}", shown.tick, veto.decision, veto.subject),
                Style::new().fg(Color::Red),
            ),
            Span::raw(format!(
                " of {}: {}",
                veto.principal_name.as_deref().unwrap_or("guardian"),
                veto.request
            )),
        ]));
        lines.push(Line::styled(
            format!("  {}", veto.reason),
            Style::new().fg(Color::DarkGray),
        ));
    }
    if lines.is_empty() {
        lines.push(Line::raw("none"));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn render_footer(frame: &mut Frame, area: Rect, shown: &Snapshot) {
    let mut spans = vec![Span::styled(KEYS, Style::new().fg(Color::DarkGray))];
    if shown.lost_events > 0 {
        spans.push(Span::styled(
            format!(" · {} events lost", shown.lost_events),
            Style::new().fg(Color::Yellow),
        ));
    }
    if let Some(notice) = &shown.notice {
        spans.push(Span::styled(
            format!(" · {notice}"),
            Style::new().fg(Color::Yellow),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// One bar per value, scaled so that `top` is the full height; a blank where none was
/// read.
fn sparkline(values: &[Option<u64>], top: u64) -> String {
    let top = u128::from(top.max(1));
    values
        .iter()
        .map(|value| match value {
            None => ' ',
            Some(value) => {
                let level = (u128::from(*value) * BARS.len() as u128).div_ceil(top);
                // Clamped to 1..=8 before indexing, so the index is in bounds.
                BARS[(level.clamp(1, BARS.len() as u128) - 1) as usize]
            }
        })
        .collect()
}

fn watts(mw: Option<u64>) -> String {
    mw.map_or_else(dash, |mw| format!("{:.1}", mw as f64 / 1000.0))
}

fn celsius(mc: Option<i32>) -> String {
    mc.map_or_else(dash, |mc| format!("{:.1}", f64::from(mc) / 1000.0))
}

fn dash() -> String {
    "-".to_owned()
}

/// The unit of a resource's quantities, for the market panel.
fn unit_of(resource: Resource) -> &'static str {
    match resource {
        Resource::PowerBudgetMw => "mW",
        Resource::ThermalHeadroomMc => "m°C",
        Resource::CpuCores => "cores",
        Resource::CpuTimeUs => "µs",
        Resource::GpuComputePct => "%",
        Resource::GpuMemoryMb | Resource::MemoryMb => "MB",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gamesa_proto::Tick;
    use gamesa_wire::AllocationsResult;
    use ratatui::{Terminal, backend::TestBackend};

    use super::*;
    use crate::cli::top::model::{
        Update,
        tests::{component, lease, prices, signal, telemetry, veto},
    };

    /// The screen as text, one line per row.
    fn screen(model: &Model, now: Instant, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|frame| render(frame, model, now)).unwrap();
        let buffer = terminal.backend().buffer();
        let mut text = String::new();
        for y in 0..height {
            for x in 0..width {
                text.push_str(buffer[(x, y)].symbol());
            }
            text.push('\n');
        }
        text
    }

    /// A model fed what a running daemon sends: telemetry, leases, prices of two
    /// resources, a signal and a veto.
    fn fed(now: Instant) -> Model {
        let mut model = Model::new();
        model.apply(
            Update::Connected {
                server: Some("gamesa/0.1.0".into()),
            },
            now,
        );
        for second in 0..30u64 {
            model.apply(
                telemetry(
                    100 + second,
                    vec![
                        component("cpu", 40_000 + 500 * second, 65_000, 55_000),
                        component("gpu0", 180_000, 200_000, 71_500),
                    ],
                ),
                now - Duration::from_secs(30 - second),
            );
        }
        model.apply(
            Update::Allocations(AllocationsResult {
                tick: Some(Tick(130)),
                leases: vec![
                    lease("gpu0", Resource::PowerBudgetMw, 30_000),
                    lease("cpu", Resource::PowerBudgetMw, 12_000),
                ],
            }),
            now,
        );
        model.apply(prices(130, Resource::PowerBudgetMw, 1234, 1200, 1300), now);
        model.apply(prices(130, Resource::CpuCores, 777, 770, 780), now);
        model.apply(signal(128, "game_started", 50), now);
        model.apply(
            veto(
                129,
                "contract node_cap: sum(power.limit_mw) <= node.cap_mw was false",
            ),
            now,
        );
        model
    }

    #[test]
    fn the_screen_shows_components_market_split_signals_and_vetoes() {
        let now = Instant::now();
        let text = screen(&fed(now), now, 160, 50);
        for expected in [
            "connected to gamesa/0.1.0",
            "tick 130",
            // cpu: 54.5 W drawn under a 65.0 W limit, 10.5 W and 35 °C of headroom.
            "cpu",
            "54.5",
            "65.0",
            "+10.5",
            "55.0",
            "+35.0",
            // gpu0: 180 W under 200 W, at 71.5 °C under 90 °C.
            "gpu0",
            "180.0",
            "200.0",
            "+20.0",
            "+18.5",
            "node: draw 150.0 W of the 200.0 W cap (headroom +50.0 W)",
            "market: power_budget_mw (1/7",
            "last    1234",
            "bid     1200",
            "ask     1300",
            "spread  100",
            "leases  2 live, 42000 mW held",
            "42.0 W leased of the 200.0 W cap",
            "game_started performance 1.00 from game · 48 ticks left",
            "tick 129 deny fill of gpu0: buy 5000 power_budget_mw",
            "contract node_cap: sum(power.limit_mw) <= node.cap_mw was false",
        ] {
            assert!(text.contains(expected), "no {expected:?} in\n{text}");
        }
        assert!(!text.contains("PAUSED"), "{text}");
        assert!(!text.contains("disconnected"), "{text}");
        // The cpu's draw rose over the last 30 s: its sparkline ends higher than it
        // starts, and the first half minute (no samples) is blank.
        let cpu_row = text
            .lines()
            .find(|line| line.contains("│cpu "))
            .unwrap_or_default();
        let bars: Vec<char> = cpu_row.chars().filter(|c| BARS.contains(c)).collect();
        assert!(bars.len() > 10, "{cpu_row}");
        let level = |c: &char| BARS.iter().position(|bar| bar == c);
        assert!(level(&bars[0]) < level(&bars[bars.len() - 1]), "{cpu_row}");
    }

    #[test]
    fn the_power_split_draws_each_holder_with_a_bar() {
        let now = Instant::now();
        let text = screen(&fed(now), now, 160, 50);
        let gpu_row = text
            .lines()
            .find(|line| line.contains("gpu0") && line.contains("30.0 W"))
            .unwrap_or_else(|| panic!("no gpu0 lease line in\n{text}"));
        let cpu_row = text
            .lines()
            .find(|line| line.contains("cpu") && line.contains("12.0 W"))
            .unwrap_or_else(|| panic!("no cpu lease line in\n{text}"));
        let filled = |row: &str| row.chars().filter(|c| *c == '█').count();
        assert!(filled(gpu_row) > filled(cpu_row), "{gpu_row}\n{cpu_row}");
        assert!(filled(cpu_row) > 0, "{cpu_row}");
    }

    #[test]
    fn switching_resource_changes_the_market_panel() {
        let now = Instant::now();
        let mut model = fed(now);
        model.next_resource();
        let text = screen(&model, now, 160, 50);
        assert!(text.contains("market: thermal_headroom_mc (2/7"), "{text}");
        assert!(text.contains("no prices yet"), "{text}");
        assert!(!text.contains("last    1234"), "{text}");
        model.next_resource();
        let text = screen(&model, now, 160, 50);
        assert!(text.contains("market: cpu_cores (3/7"), "{text}");
        assert!(text.contains("last    777"), "{text}");
        assert!(text.contains("leases  0 live, 0 cores held"), "{text}");
    }

    #[test]
    fn paused_shows_the_marker_and_the_frozen_prices() {
        let now = Instant::now();
        let mut model = fed(now);
        model.toggle_pause();
        model.apply(
            prices(131, Resource::PowerBudgetMw, 9999, 9990, 10_000),
            now,
        );
        let text = screen(&model, now, 160, 50);
        assert!(text.contains("PAUSED"), "{text}");
        assert!(text.contains("last    1234"), "{text}");
        model.toggle_pause();
        let text = screen(&model, now, 160, 50);
        assert!(!text.contains("PAUSED"), "{text}");
        assert!(text.contains("last    9999"), "{text}");
    }

    #[test]
    fn a_lost_connection_says_disconnected_retrying_even_when_paused() {
        let now = Instant::now();
        let mut model = fed(now);
        model.toggle_pause();
        model.apply(
            Update::Disconnected {
                reason: "the server closed the connection".into(),
            },
            now,
        );
        let text = screen(&model, now + Duration::from_secs(4), 160, 50);
        assert!(
            text.contains("disconnected, retrying (4 s): the server closed the connection"),
            "{text}"
        );
        assert!(text.contains("PAUSED"), "{text}");
        // The last data read stays on screen.
        assert!(text.contains("gpu0"), "{text}");
    }

    #[test]
    fn before_any_data_the_panels_say_what_they_wait_for() {
        let now = Instant::now();
        let text = screen(&Model::new(), now, 100, 30);
        assert!(text.contains("connecting"), "{text}");
        assert!(
            text.contains("waiting for the first telemetry frame"),
            "{text}"
        );
        assert!(text.contains("no prices yet"), "{text}");
        assert!(text.contains("no power budget leased"), "{text}");
    }

    #[test]
    fn a_tiny_terminal_draws_without_panicking() {
        let now = Instant::now();
        let model = fed(now);
        for (width, height) in [(1, 1), (10, 5), (40, 12), (0, 0)] {
            screen(&model, now, width, height);
        }
    }

    #[test]
    fn sparkline_bars_scale_to_the_top() {
        assert_eq!(
            sparkline(&[None, Some(0), Some(50), Some(100)], 100),
            " ▁▄█"
        );
        assert_eq!(sparkline(&[Some(7)], 0), "█");
    }
}
