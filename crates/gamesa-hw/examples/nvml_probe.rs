//! Prints every NVIDIA GPU's telemetry through GAMESA's NVML source. With `--write`,
//! also lowers one GPU's power limit by 10 W (clamped to its minimum) through the real
//! NVML writer, reads the enforced limit back, restores the original with
//! `restore_all` and checks it is back.
//!
//! ```text
//! cargo run -p gamesa-hw --example nvml_probe               # read only
//! cargo run -p gamesa-hw --example nvml_probe -- --write    # GPU 0, needs root
//! cargo run -p gamesa-hw --example nvml_probe -- --write --gpu 1
//! ```

use anyhow::{Context, Result, bail};
use gamesa_hw::{Actuator, ActuatorConfig, LinuxActuator, NvmlSource};
use gamesa_proto::Actuation;
use nvml_wrapper::Nvml;

/// How much `--write` lowers the limit.
const STEP_MW: u32 = 10_000;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let write = args.iter().any(|arg| arg == "--write");
    let gpu: u32 = match args.iter().position(|arg| arg == "--gpu") {
        Some(at) => args
            .get(at + 1)
            .context("--gpu needs an index")?
            .parse()
            .context("--gpu needs an index")?,
        None => 0,
    };

    let mut source = NvmlSource::init().context("initialising NVML")?;
    println!("NVML: {} GPU(s)", source.gpu_count());
    for err in source.take_discovery_errors() {
        println!("  discovery error: {err}");
    }
    let reading = source.read();
    for (gpu, component) in reading.gpus.iter().zip(&reading.components) {
        println!("{gpu:#?}");
        println!("{component:#?}");
    }
    for err in &reading.errors {
        println!("error: {err}");
    }
    if !reading.unsupported.is_empty() {
        println!("not supported: {}", reading.unsupported.join(", "));
    }
    if !write {
        println!("read only; pass --write to exercise the power-limit writer and restore");
        return Ok(());
    }
    write_and_restore(gpu)
}

fn write_and_restore(gpu: u32) -> Result<()> {
    let nvml = Nvml::init().context("initialising NVML for checks")?;
    let device = nvml.device_by_index(gpu).context("device_by_index")?;
    let original_mw = device
        .power_management_limit()
        .context("power_management_limit")?;
    let enforced_mw = device
        .enforced_power_limit()
        .context("enforced_power_limit")?;
    let constraints = device
        .power_management_limit_constraints()
        .context("power_management_limit_constraints")?;
    println!(
        "step 1: gpu{gpu} management limit {original_mw} mW, enforced {enforced_mw} mW, \
         constraints {}..={} mW",
        constraints.min_limit, constraints.max_limit
    );
    let wanted_mw = original_mw
        .saturating_sub(STEP_MW)
        .max(constraints.min_limit);

    let state_dir = tempfile::tempdir().context("temp dir for the state file")?;
    let state_file = state_dir.path().join("actuator-state.json");
    let target = format!("power.limit:gpu{gpu}");
    let mut actuator = LinuxActuator::new(ActuatorConfig {
        state_file: state_file.clone(),
        enabled_targets: vec![target.clone()],
        ..ActuatorConfig::default()
    })
    .context("starting the actuator")?;
    println!(
        "step 2: actuator started, state file {}",
        state_file.display()
    );

    let applied = actuator.apply(&Actuation::PowerLimit {
        component: format!("gpu{gpu}"),
        limit_mw: u64::from(wanted_mw),
    });
    match &applied {
        Ok(applied) => println!("step 3: applied {wanted_mw} mW: {applied:?}"),
        Err(err) => println!("step 3: apply {wanted_mw} mW FAILED: {err}"),
    }
    if let Ok(state) = std::fs::read_to_string(&state_file) {
        println!("step 4: state file while changed:\n{state}");
    }
    let now_management = device.power_management_limit().context("read back")?;
    let now_enforced = device.enforced_power_limit().context("read back")?;
    println!("step 5: read back: management {now_management} mW, enforced {now_enforced} mW");

    let report = actuator.restore_all();
    println!("step 6: restore_all: {report:?}");
    let restored_mw = device
        .power_management_limit()
        .context("power_management_limit after restore")?;
    println!(
        "step 7: after restore: management {restored_mw} mW, enforced {} mW",
        device
            .enforced_power_limit()
            .context("enforced_power_limit")?
    );
    let records_left = actuator.recorded_targets();
    println!("step 8: records left: {records_left:?}");

    applied.context("the write failed")?;
    if now_management != wanted_mw {
        bail!("the management limit read {now_management} mW after writing {wanted_mw} mW");
    }
    if restored_mw != original_mw {
        bail!("restore left {restored_mw} mW, the original was {original_mw} mW");
    }
    if !records_left.is_empty() || !report.failed.is_empty() {
        bail!("restore incomplete: {report:?}");
    }
    println!("OK: wrote, read back, restored {original_mw} mW");
    Ok(())
}
