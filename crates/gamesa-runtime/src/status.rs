//! The status line `gamesa run` prints every second: prices, allocations, vetoes and
//! restarts, summed over the ticks since the previous line.

use std::fmt::Write;

use gamesa_proto::{Actuation, Resource};

use gamesa_engine::TickOutput;
use gamesa_guardian::SupervisionDecision;

/// Accumulates tick reports between two status lines.
#[derive(Debug, Clone, Default)]
pub struct StatusWindow {
    ticks: u64,
    fills: u64,
    vetoes: u64,
    restarts: u64,
    isolations: u64,
    last: Option<TickOutput>,
    /// The most recent clamp or deny, with its reason, so a user sees why.
    last_veto: Option<String>,
    limits_mw: std::collections::BTreeMap<String, u64>,
}

impl StatusWindow {
    pub fn record(&mut self, report: &TickOutput) {
        self.ticks += 1;
        self.fills += report.fills.len() as u64;
        self.vetoes += report.vetoes().count() as u64;
        if let Some(veto) = report.vetoes().last() {
            self.last_veto = Some(veto.to_string());
        }
        for failure in &report.failures {
            match failure.decision {
                SupervisionDecision::Restart { .. } => self.restarts += 1,
                SupervisionDecision::Isolate { .. } => self.isolations += 1,
                SupervisionDecision::AlreadyIsolated => {}
            }
        }
        for record in &report.actuations {
            if let (Some(Ok(_)), Actuation::PowerLimit { component, .. }) =
                (&record.outcome, &record.requested)
            {
                let applied = match &record.verdict {
                    gamesa_guardian::Verdict::Clamp {
                        to: Actuation::PowerLimit { limit_mw, .. },
                        ..
                    } => *limit_mw,
                    _ => match &record.requested {
                        Actuation::PowerLimit { limit_mw, .. } => *limit_mw,
                        _ => continue,
                    },
                };
                self.limits_mw.insert(component.clone(), applied);
            }
        }
        self.last = Some(report.clone());
    }

    /// The line for the window so far, and a fresh window.
    pub fn take_line(&mut self) -> Option<String> {
        let last = self.last.take()?;
        let mut line = format!("tick {}", last.tick);
        if let Some(cpu) = &last.frame.cpu {
            let _ = write!(
                line,
                " | cpu {:.1}%",
                f64::from(cpu.utilization_permille) / 10.0
            );
        }
        if let Some(memory) = &last.frame.memory {
            let _ = write!(line, " mem {}/{} MB", memory.used_mb, memory.total_mb);
        }
        for component in &last.frame.components {
            let _ = write!(line, " | {}", component.id);
            if let Some(power_mw) = component.power_mw {
                let _ = write!(line, " {:.1}W", power_mw as f64 / 1000.0);
            }
            if let Some(temp_mc) = component.temp_mc {
                let _ = write!(line, " {:.1}°C", f64::from(temp_mc) / 1000.0);
            }
        }
        let prices: Vec<String> = Resource::ALL
            .into_iter()
            .filter_map(|resource| {
                last.market
                    .last_price(resource)
                    .map(|price| format!("{resource}={price}"))
            })
            .collect();
        if !prices.is_empty() {
            let _ = write!(line, " | prices {}", prices.join(" "));
        }
        if !self.limits_mw.is_empty() {
            let limits: Vec<String> = self
                .limits_mw
                .iter()
                .map(|(component, mw)| format!("{component}={:.1}W", *mw as f64 / 1000.0))
                .collect();
            let _ = write!(line, " | limits {}", limits.join(" "));
        }
        let _ = write!(
            line,
            " | fills {} vetoes {} restarts {} isolated {}",
            self.fills, self.vetoes, self.restarts, self.isolations
        );
        if let Some(veto) = &self.last_veto {
            let _ = write!(line, " | last veto: {veto}");
        }
        *self = StatusWindow {
            limits_mw: std::mem::take(&mut self.limits_mw),
            ..StatusWindow::default()
        };
        Some(line)
    }
}
