//! `gamesa sim`: runs scenarios on the twin in virtual time under the market or a
//! baseline policy, and prints the metrics, a comparison of every policy, JSON or a
//! plot; `gamesa sim generate` writes random scenarios from a seed; `gamesa sim report`
//! writes (or checks) the generated tables of `docs/evaluation.md`. The work is done by
//! `gamesa-sim`; this file is the command line around it.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use gamesa_agent::AgentRegistry;
use gamesa_hw::twin::Scenario;
use gamesa_runtime::Config;
use gamesa_sim::{
    Comparison, Metrics, Policy, RunOutcome, RunSpec, SuiteReport, SuiteTargets, compare::Row,
    generate, plot, report, run,
};

/// `gamesa sim --scenario FILE [--policy P] [--seed N] [--json] [--plot OUT.svg] [--compare]`,
/// or `gamesa sim generate --seed N [--count K] --out DIR`,
/// or `gamesa sim report [--check] [--scenario DIR] [--config FILE] [--out FILE] [--holdout DIR]`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SimArgs {
    #[command(subcommand)]
    command: Option<SimCommand>,
    /// A scenario file, or a directory whose `*.toml` files are all run, in name order.
    /// May be given more than once.
    #[arg(long, short, required_unless_present = "fleet")]
    scenario: Vec<PathBuf>,
    /// A fleet file (`docs/fleet.md`): many twin nodes under one power budget, run under
    /// the fleet's market, a static split and a proportional split, compared.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["scenario", "compare", "plot", "policy"])]
    fleet: Option<PathBuf>,
    /// What decides the power split: market; optimum (the physical limit: the best
    /// limits over the whole run, knowing everything, set straight on the twin);
    /// greedy-oracle (knowing everything, one step ahead); static-equal, static-tdp,
    /// proportional, thermal-proportional, balancer (the fair baselines); or none.
    #[arg(long, short, default_value = "market", value_parser = parse_policy)]
    policy: Policy,
    /// Seeds the runtime (correlation ids); default: each scenario's own seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Print JSON instead of tables: deterministic (wall-time tick costs go to stderr).
    #[arg(long)]
    json: bool,
    /// Write an SVG of the run over time (of `--policy` when comparing); one scenario only.
    #[arg(long, value_name = "OUT.svg")]
    plot: Option<PathBuf>,
    /// Run every policy and print one table per scenario, plus the targets over them.
    #[arg(long)]
    compare: bool,
    /// The runtime config the runs are fitted from.
    #[arg(long, short, default_value = "config/sim.toml")]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum SimCommand {
    /// Write random but plausible scenario files (machines, workloads, events, noisy
    /// sensors), drawn from a seed: the same seed always writes the same bytes.
    Generate(GenerateArgs),
    /// Run the public suite (every scenario, every policy) and write the generated
    /// tables of docs/evaluation.md between their marker lines; with --check, write
    /// nothing and fail if the file differs from what the code produces.
    Report(ReportArgs),
}

/// `gamesa sim report [--check] [--scenario DIR] [--config FILE] [--out FILE] [--holdout DIR]`
#[derive(Debug, Args)]
struct ReportArgs {
    /// Write nothing; exit non-zero, with a summary of what differs, when the file is
    /// not what the code produces.
    #[arg(long)]
    check: bool,
    /// The suite: every `*.toml` in this directory, in name order.
    #[arg(long, value_name = "DIR", default_value = "scenarios/")]
    scenario: PathBuf,
    /// The runtime config the runs are fitted from (no `GAMESA__` overrides are read:
    /// the report is a function of the files alone).
    #[arg(long, default_value = "config/sim.toml")]
    config: PathBuf,
    /// The page whose generated sections are written.
    #[arg(long, value_name = "FILE", default_value = "docs/evaluation.md")]
    out: PathBuf,
    /// A hold-out set, summarised in its own section (one row per scenario).
    #[arg(long, value_name = "DIR")]
    holdout: Option<PathBuf>,
}

/// `gamesa sim generate --seed N [--count K] --out DIR`
#[derive(Debug, Args)]
struct GenerateArgs {
    /// The seed the set is drawn from.
    #[arg(long)]
    seed: u64,
    /// How many scenarios to write.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    count: u32,
    /// The directory to write `gen-SEED-INDEX.toml` files to (created if missing;
    /// files of the same names are replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

fn parse_policy(text: &str) -> Result<Policy, String> {
    text.parse()
        .map_err(|error: gamesa_sim::SimError| error.to_string())
}

/// Runs `gamesa sim`; errors are printed, and the exit code says how it went.
pub fn main(args: SimArgs, registry: &AgentRegistry) -> ExitCode {
    let result = match &args.command {
        Some(SimCommand::Generate(generate)) => write_generated(generate),
        Some(SimCommand::Report(report)) => write_report(report, registry),
        None => match &args.fleet {
            Some(fleet) => sim_fleet(fleet, &args, registry),
            None => sim(&args, registry),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gamesa sim: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `gamesa sim --fleet FILE`: the fleet under each split, a table (or JSON) and the
/// market's time to solution against each baseline's.
fn sim_fleet(path: &Path, args: &SimArgs, registry: &AgentRegistry) -> anyhow::Result<()> {
    use gamesa_fleet::Split;
    let template: Config = run::load_template(&args.config, std::env::vars(), registry)?;
    let fleet = gamesa_sim::fleet::load(path)?;
    let mut runs = Vec::new();
    for split in [Split::Market, Split::Static, Split::Proportional] {
        let started = std::time::Instant::now();
        let metrics = gamesa_sim::fleet::run(&fleet, &template, registry, split)
            .with_context(|| format!("{} under {split:?}", path.display()))?;
        eprintln!(
            "gamesa sim: fleet {} {split:?}: {} nodes, run {:.2} s (wall time, not in the JSON)",
            fleet.name,
            fleet.nodes.len(),
            started.elapsed().as_secs_f64()
        );
        runs.push(metrics);
    }
    let started = std::time::Instant::now();
    let bound = gamesa_sim::fleet::run_unconstrained(&fleet, &template, registry)
        .with_context(|| format!("{} with no budget", path.display()))?;
    eprintln!(
        "gamesa sim: fleet {} with no budget: run {:.2} s (wall time, not in the JSON)",
        fleet.name,
        started.elapsed().as_secs_f64()
    );
    runs.push(bound);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(());
    }
    let tts =
        |seconds: Option<f64>| seconds.map_or("not finished".to_owned(), |s| format!("{s:.1} s"));
    println!(
        "fleet {}: {} nodes, budget {:.0} W, epoch {} ms",
        fleet.name,
        fleet.nodes.len(),
        fleet.budget_mw as f64 / 1_000.0,
        fleet.epoch_ms
    );
    println!(
        "{:<13} {:>16} {:>10} {:>12} {:>17} {:>17}",
        "split",
        "time to solution",
        "unfinished",
        "energy kJ",
        "caps over budget",
        "draw over budget"
    );
    for run in &runs {
        let label = run.split.map_or("no budget".to_owned(), |split| {
            format!("{split:?}").to_lowercase()
        });
        println!(
            "{:<13} {:>16} {:>10} {:>12.1} {:>17} {:>17}",
            label,
            tts(run.time_to_solution_s),
            run.unfinished,
            run.energy_j / 1_000.0,
            run.caps_over_budget_steps,
            run.draw_over_budget_steps
        );
    }
    if let Some(market) = runs[0].time_to_solution_s {
        for run in &runs[1..] {
            if let (Some(split), Some(other)) = (run.split, run.time_to_solution_s) {
                println!(
                    "market vs {split:?}: time to solution {:+.1} % ({:.1} s against {:.1} s)",
                    (other - market) / other * 100.0,
                    market,
                    other
                );
            }
        }
        let (statik, bound) = (runs[1].time_to_solution_s, runs[3].time_to_solution_s);
        if let (Some(statik), Some(bound)) = (statik, bound)
            && statik > bound
        {
            println!(
                "market closes {:.0} % of the gap from static to the bound ({:.1} s with no \
                 budget, which no split should beat)",
                (statik - market) / (statik - bound) * 100.0,
                bound
            );
        }
    }
    Ok(())
}

/// Every scenario file named, directories expanded, in the order given.
fn scenario_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("{}: cannot list", path.display()))?
                .filter_map(|entry| Some(entry.ok()?.path()))
                .filter(|file| file.extension().is_some_and(|ext| ext == "toml"))
                .collect();
            found.sort();
            if found.is_empty() {
                bail!("{}: no *.toml scenario in this directory", path.display());
            }
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn sim(args: &SimArgs, registry: &AgentRegistry) -> anyhow::Result<()> {
    let template: Config = run::load_template(&args.config, std::env::vars(), registry)?;
    let files = scenario_files(&args.scenario)?;
    if args.plot.is_some() && files.len() != 1 {
        bail!(
            "--plot draws one run: give one scenario file (got {})",
            files.len()
        );
    }
    let scenarios: Vec<(PathBuf, Scenario)> = files
        .into_iter()
        .map(|path| Ok((path.clone(), run::load_scenario(&path)?)))
        .collect::<anyhow::Result<_>>()?;
    let policies: Vec<Policy> = if args.compare {
        Policy::ALL.to_vec()
    } else {
        vec![args.policy]
    };

    let mut comparisons = Vec::new();
    for (path, scenario) in &scenarios {
        let mut runs = Vec::new();
        let mut costs = Vec::new();
        for &policy in &policies {
            let outcome = run::run(&RunSpec {
                scenario,
                scenario_path: path,
                template: &template,
                registry,
                policy,
                seed: args.seed,
                trace: args.plot.is_some() && policy == args.policy,
            })
            .with_context(|| format!("{} under {policy}", path.display()))?;
            if let (Some(out), Some(_)) = (&args.plot, &outcome.trace) {
                write_plot(out, &outcome, path)?;
            }
            if args.json {
                eprintln!(
                    "gamesa sim: {} {policy}: {} ticks, mean {:.1} µs, max {:.1} µs, run {:.3} s \
                     (wall time, not in the JSON)",
                    scenario.name(),
                    outcome.cost.ticks,
                    outcome.cost.mean_us,
                    outcome.cost.max_us,
                    outcome.cost.run_s
                );
            }
            costs.push(outcome.cost);
            runs.push(outcome.metrics);
        }
        let comparison = Comparison {
            scenario: scenario.name().to_owned(),
            runs,
        };
        if !args.json {
            println!("== {} ({})", comparison.scenario, path.display());
            print!("{}", comparison.table(Some(&costs)));
            println!();
        }
        comparisons.push(comparison);
    }

    if args.json {
        let text = if args.compare {
            serde_json::to_string_pretty(&SuiteReport {
                comparisons: comparisons.iter().map(Comparison::report).collect(),
                targets: SuiteTargets::check(&comparisons).ok(),
            })
        } else {
            let rows: Vec<Row> = comparisons
                .iter()
                .flat_map(|comparison| comparison.report().rows)
                .collect();
            if let [row] = rows.as_slice() {
                serde_json::to_string_pretty(&row.metrics)
            } else {
                serde_json::to_string_pretty(
                    &rows.into_iter().map(|row| row.metrics).collect::<Vec<_>>(),
                )
            }
        }
        .context("serializing the results")?;
        println!("{text}");
    } else if args.compare {
        let targets = SuiteTargets::check(&comparisons)?;
        println!("== targets");
        print!("{}", targets.table());
    }
    Ok(())
}

/// Writes the set, one file per scenario, and prints each path.
fn write_generated(args: &GenerateArgs) -> anyhow::Result<()> {
    let files = generate::generate_set(args.seed, args.count)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create", args.out.display()))?;
    for (name, text) in files {
        let path = args.out.join(name);
        std::fs::write(&path, text).with_context(|| format!("{}: cannot write", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// Runs the suite (and the hold-out set) and writes or checks the page's generated
/// sections.
fn write_report(args: &ReportArgs, registry: &AgentRegistry) -> anyhow::Result<()> {
    let template: Config = run::load_template(&args.config, std::iter::empty(), registry)?;
    let config = args.config.display().to_string();
    let committed = std::fs::read_to_string(&args.out)
        .with_context(|| format!("{}: cannot read", args.out.display()))?;

    let mut sections = vec![(report::SUITE, &args.scenario)];
    sections.extend(args.holdout.iter().map(|dir| (report::HOLDOUT, dir)));
    // The markers are checked before the minutes the runs take.
    for (section, _) in &sections {
        report::splice(&committed, section, "")
            .with_context(|| format!("{}", args.out.display()))?;
    }
    let mut page = committed.clone();
    for (section, dir) in sections {
        let comparisons = compare_every_policy(dir, &template, registry)?;
        let targets = SuiteTargets::check(&comparisons)?;
        let scenarios = dir.display().to_string();
        let source = report::Source {
            scenarios: &scenarios,
            config: &config,
        };
        let content = if section == report::SUITE {
            report::suite_section(&source, &comparisons, &targets)
        } else {
            report::holdout_section(&source, &comparisons, &targets)
        };
        page = report::splice(&page, &section, &content)
            .with_context(|| format!("{}", args.out.display()))?;
    }

    let out = args.out.display();
    match report::drift(&committed, &page) {
        None => println!("{out}: up to date"),
        Some(drift) if args.check => bail!(
            "{out} is not what the code produces: {drift}\
             rewrite it with `{}` and commit it",
            rewrite_command(args)
        ),
        Some(drift) => {
            std::fs::write(&args.out, &page).with_context(|| format!("{out}: cannot write"))?;
            println!(
                "{out}: wrote the generated sections ({} line(s) changed)",
                drift.differing_lines
            );
        }
    }
    Ok(())
}

/// The command that rewrites what `args --check` checks.
fn rewrite_command(args: &ReportArgs) -> String {
    // The debug profile, as `cargo test` builds it: the tests check the page with it.
    let mut command = String::from("cargo run -- sim report");
    let defaults = [
        ("--scenario", &args.scenario, "scenarios/"),
        ("--config", &args.config, "config/sim.toml"),
        ("--out", &args.out, "docs/evaluation.md"),
    ];
    for (flag, path, default) in defaults {
        if path.as_path() != Path::new(default) {
            command.push_str(&format!(" {flag} {}", path.display()));
        }
    }
    if let Some(holdout) = &args.holdout {
        command.push_str(&format!(" --holdout {}", holdout.display()));
    }
    command
}

/// Every policy on every scenario of `dir`, one comparison per scenario in name order.
/// The runs are independent (each starts its own actix system) and deterministic, so
/// they run on every core, and the result does not depend on how they were scheduled.
fn compare_every_policy(
    dir: &Path,
    template: &Config,
    registry: &gamesa_agent::AgentRegistry,
) -> anyhow::Result<Vec<Comparison>> {
    let scenarios: Vec<(PathBuf, Scenario)> = scenario_files(&[dir.to_path_buf()])?
        .into_iter()
        .map(|path| Ok((path.clone(), run::load_scenario(&path)?)))
        .collect::<anyhow::Result<_>>()?;
    let jobs: Vec<(usize, Policy)> = (0..scenarios.len())
        .flat_map(|index| Policy::ALL.map(|policy| (index, policy)))
        .collect();
    let results: Mutex<Vec<Option<anyhow::Result<Metrics>>>> =
        Mutex::new(jobs.iter().map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(jobs.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let job = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(index, policy)) = jobs.get(job) else {
                        break;
                    };
                    let (path, scenario) = &scenarios[index];
                    let outcome = run::run(&RunSpec {
                        scenario,
                        scenario_path: path,
                        template,
                        registry,
                        policy,
                        seed: None,
                        trace: false,
                    })
                    .map(|outcome| outcome.metrics)
                    .with_context(|| format!("{} under {policy}", path.display()));
                    results.lock().unwrap_or_else(PoisonError::into_inner)[job] = Some(outcome);
                }
            });
        }
    });
    let mut results = results
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .into_iter();
    let mut comparisons = Vec::new();
    for (_, scenario) in &scenarios {
        let runs = results
            .by_ref()
            .take(Policy::ALL.len())
            // Every job was taken by a worker before the scope ended.
            .map(|result| result.unwrap_or_else(|| bail!("a run did not finish")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        comparisons.push(Comparison {
            scenario: scenario.name().to_owned(),
            runs,
        });
    }
    Ok(comparisons)
}

fn write_plot(out: &Path, outcome: &RunOutcome, scenario_path: &Path) -> anyhow::Result<()> {
    let Some(trace) = &outcome.trace else {
        return Ok(());
    };
    let metrics = &outcome.metrics;
    let title = format!(
        "{} under {} ({}): work {:.1}, {:.0} s over the cap, {:.1} s throttled",
        metrics.scenario,
        metrics.policy,
        scenario_path.display(),
        metrics.work,
        metrics.over_cap_s,
        metrics.throttled_s
    );
    plot::write_svg(out, trace, &title)?;
    eprintln!("gamesa sim: wrote {}", out.display());
    Ok(())
}
