#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What running an agent as WebAssembly costs, beside the same strategy compiled in:
//! the `FixedCores` strategy of `examples/fixed-cores`, built in (`observe/builtin`) and
//! as the example module (`observe/wasm`: encoding the observation, entering the
//! sandbox with fresh fuel, the guest's decode, strategy and encode, and checking its
//! intents), on one observation of a two-component frame with a lease and a signal.
//! Then a new instance of a compiled module, `init` included (`instantiate/wasm`: what
//! a restart costs), and compiling the module (`compile/wasm`: once per module digest,
//! at start or when a reload brings new bytes). The targets (issue 18) are 20 µs per
//! observe and 50 ms per instantiation.
//!
//! Run: `cargo bench -p gamesa-wasm --bench observe -- --warm-up-time 1 --measurement-time 3`

#[path = "../tests/build_guest/mod.rs"]
mod build_guest;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gamesa_agent::{
    Agent as _, AgentSpec, ModuleSpec,
    proto::{AgentId, ComponentKind, Domain, Resource, Tick},
    testkit::{World, component_with_limits, lease, signal},
};
use gamesa_wasm::WasmHost;

const ME: AgentId = AgentId(6);

fn spec(kind: &str) -> AgentSpec {
    AgentSpec {
        id: ME,
        name: "cores0".into(),
        kind: kind.into(),
        weight: 1,
        params: "cores = 2\nprice = 500".parse().unwrap(),
        module: (kind == ModuleSpec::KIND).then(|| ModuleSpec {
            path: build_guest::module(build_guest::EXAMPLE),
            fuel: 10_000_000,
            memory_bytes: 64 << 20,
        }),
    }
}

fn world() -> World {
    let mut world = World::with_components(vec![
        component_with_limits("cpu", ComponentKind::Cpu),
        component_with_limits("gpu0", ComponentKind::Gpu),
    ]);
    world
        .signals
        .push(signal("game_started", Domain::Performance, 800));
    world
        .leases
        .push(lease(AgentId(9), Resource::CpuCores, 1, Tick(110)));
    world
}

fn observe(c: &mut Criterion) {
    let world = world();
    let observation = world.observation(ME);
    let mut group = c.benchmark_group("observe");
    let mut builtin = gamesa_example_fixed_cores::build(&spec("fixed_cores")).unwrap();
    let host = WasmHost::new().unwrap();
    let mut wasm = host.create(&spec(ModuleSpec::KIND)).unwrap();
    // Both answer the same, or the comparison means nothing.
    assert_eq!(
        builtin.observe(&observation).unwrap(),
        wasm.observe(&observation).unwrap()
    );
    group.bench_function("builtin", |b| {
        b.iter(|| black_box(builtin.observe(black_box(&observation)).unwrap()))
    });
    group.bench_function("wasm", |b| {
        b.iter(|| black_box(wasm.observe(black_box(&observation)).unwrap()))
    });
    group.finish();
    println!(
        "fuel used by one wasm observe: {}",
        wasm.fuel() - wasm.fuel_left()
    );
}

fn instantiate(c: &mut Criterion) {
    let host = WasmHost::new().unwrap();
    let spec = spec(ModuleSpec::KIND);
    host.create(&spec).unwrap();
    c.bench_function("instantiate/wasm", |b| {
        b.iter(|| black_box(host.create(&spec).unwrap()))
    });
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    group.bench_function("wasm", |b| {
        b.iter(|| black_box(WasmHost::new().unwrap().create(&spec).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, observe, instantiate);
criterion_main!(benches);
