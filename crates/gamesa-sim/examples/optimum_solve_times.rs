//! Solve time of the optimum: per scenario file given, or over generated scenarios.
//!
//! ```text
//! cargo run --release -p gamesa-sim --example optimum_solve_times -- scenarios/*.toml
//! cargo run --release -p gamesa-sim --example optimum_solve_times -- --generated 100 [SEED]
//! ```
//!
//! `--generated N [SEED]` solves the first N scenarios `gamesa sim generate` draws from
//! SEED (default 1): 60 to 180 s at 100 ms steps with 2 to 9 components.

use std::time::Instant;

use gamesa_hw::twin::Scenario;
use gamesa_sim::{generate, optimum};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scenarios: Vec<Scenario> = if args.first().map(String::as_str) == Some("--generated") {
        let count: u32 = args.get(1).map_or(Ok(100), |n| n.parse())?;
        let seed: u64 = args.get(2).map_or(Ok(1), |n| n.parse())?;
        generate::generate_set(seed, count)?
            .iter()
            .map(|(_, text)| Scenario::from_toml_str(text))
            .collect::<Result<_, _>>()?
    } else {
        args.iter().map(Scenario::load).collect::<Result<_, _>>()?
    };
    println!(
        "scenario  steps  components  solve s  iterations  gap_rel  status  objective  attempts"
    );
    let mut total_s = 0.0;
    let mut worst_s: f64 = 0.0;
    let mut failed = 0;
    for scenario in &scenarios {
        let started = Instant::now();
        let planned = optimum::plan(scenario);
        let solve_s = started.elapsed().as_secs_f64();
        total_s += solve_s;
        worst_s = worst_s.max(solve_s);
        let plan = match planned {
            Ok(plan) => plan,
            Err(error) => {
                failed += 1;
                println!("{}  FAILED after {solve_s:.3} s: {error}", scenario.name());
                continue;
            }
        };
        println!(
            "{}  {}  {}  {solve_s:.3}  {}  {:.1e}  {}  {:.3}  {}",
            scenario.name(),
            scenario.steps(),
            scenario.components().len(),
            plan.solver.iterations,
            plan.solver.gap_rel,
            plan.solver.status,
            plan.objective,
            plan.solver.attempts
        );
    }
    println!(
        "{} scenarios, {failed} failed: {total_s:.2} s in total, {:.3} s mean, {worst_s:.3} s worst",
        scenarios.len(),
        total_s / scenarios.len().max(1) as f64
    );
    Ok(())
}
