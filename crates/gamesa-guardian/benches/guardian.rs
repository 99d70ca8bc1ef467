#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One guardian check of a fill: effects of both parties, pre-conditions, invariants and
//! post-conditions on the proposed power allocation, and ledger settlement. The target
//! in DESIGN.md is < 2 µs.
//!
//! Each iteration re-escrows the bid, checks and settles the fill, releases the power it
//! added to the proposed state, and drains the audit trail and the ledger journal, so
//! the guardian is in the same state at the start of every iteration.
//!
//! Run: `cargo bench -p gamesa-guardian --bench guardian -- --warm-up-time 1 --measurement-time 3`

use std::{collections::BTreeMap, hint::black_box};

use criterion::{Criterion, criterion_group, criterion_main};
use gamesa_guardian::{
    ContractPhase, ContractScope, Guardian, GuardianConfig, LedgerConfig, Subject,
    schema_for_components,
};
use gamesa_proto::{
    AgentId, ComponentKind, ComponentTelemetry, Credits, Fill, NodeTelemetry, OrderId, Price,
    Quantity, Resource, Side, TelemetryFrame, Tick,
};

const GPU_AGENT: AgentId = AgentId(1);
const POWER_AGENT: AgentId = AgentId(2);

fn frame() -> TelemetryFrame {
    let component = |id: &str, kind, temp_mc, limit_mw| ComponentTelemetry {
        id: id.into(),
        kind,
        utilization_permille: 900,
        power_mw: Some(limit_mw - 10_000),
        temp_mc: Some(temp_mc),
        t_max_mc: Some(95_000),
        limit_mw: Some(limit_mw),
        limit_min_mw: Some(50_000),
        limit_max_mw: Some(300_000),
        progress_micro: None,
        work_left_micro: None,
    };
    TelemetryFrame {
        tick: Tick(1),
        components: vec![
            component("cpu", ComponentKind::Cpu, 60_000, 100_000),
            component("gpu0", ComponentKind::Gpu, 70_000, 200_000),
        ],
        node: NodeTelemetry {
            draw_mw: Some(280_000),
            cap_mw: Some(350_000),
        },
        ..TelemetryFrame::default()
    }
}

fn guardian() -> Guardian {
    let config = GuardianConfig {
        ledger: LedgerConfig {
            allowance_per_epoch: Credits(1_000_000_000_000_000),
            cap_epochs: 1,
        },
        ..GuardianConfig::default()
    };
    let mut guardian = Guardian::new(config, schema_for_components(["cpu", "gpu0"]));
    guardian.set_constant("gpu0.r_th", 0.25);
    let power = ContractScope::Resource(Resource::PowerBudgetMw);
    guardian
        .add_contract(
            ContractPhase::Invariant,
            ContractScope::All,
            "power_cap",
            "sum(power.limit_mw) <= node.cap_mw",
        )
        .unwrap();
    guardian
        .add_contract(
            ContractPhase::Pre,
            power.clone(),
            "cool_enough",
            "cpu.temp_c < 85 and gpu0.temp_c < 85",
        )
        .unwrap();
    guardian
        .add_contract(
            ContractPhase::Post,
            power,
            "gpu_headroom",
            "gpu0.temp_c + gpu0.r_th * gpu0.delta_power_w < gpu0.t_max_c - 5",
        )
        .unwrap();
    guardian.bind_power_component(GPU_AGENT, "gpu0");
    for agent in [GPU_AGENT, POWER_AGENT] {
        guardian
            .effects_mut()
            .grant(agent, "order:power_budget_mw".parse().unwrap());
    }
    guardian
        .ledger_mut()
        .mint_epoch(1, &[(GPU_AGENT, 1)])
        .unwrap();
    guardian.observe(&frame(), &BTreeMap::new());
    // A resting bid, so the escrow map never empties and reallocates.
    guardian
        .ledger_mut()
        .escrow(OrderId(1), GPU_AGENT, Price(1), Quantity(1))
        .unwrap();
    guardian
}

fn fill() -> Fill {
    Fill {
        tick: Tick(1),
        resource: Resource::PowerBudgetMw,
        buyer: GPU_AGENT,
        seller: POWER_AGENT,
        buy_order: OrderId(2),
        sell_order: OrderId(3),
        price: Price(4),
        quantity: Quantity(1_000),
        aggressor: Side::Bid,
    }
}

fn bench_fill(c: &mut Criterion) {
    let mut guardian = guardian();
    let fill = fill();
    c.bench_function("guardian check_fill (effects + contracts + ledger)", |b| {
        b.iter(|| {
            guardian
                .ledger_mut()
                .escrow(fill.buy_order, GPU_AGENT, Price(5), fill.quantity)
                .unwrap();
            let verdict = guardian.check_fill(Tick(1), black_box(&fill));
            assert!(verdict.is_allowed());
            guardian.release_power(GPU_AGENT, fill.quantity.0);
            guardian.effects_mut().drain_audit().for_each(drop);
            guardian.ledger_mut().drain_postings().for_each(drop);
            verdict
        })
    });

    let guardian = self::guardian();
    c.bench_function(
        "contracts check_proposed (invariant + post-condition)",
        |b| {
            b.iter(|| {
                guardian.contracts().check_proposed(
                    Subject::Fill(Resource::PowerBudgetMw),
                    black_box(guardian.env().proposed()),
                    guardian.config().missing_values,
                )
            })
        },
    );
}

criterion_group!(benches, bench_fill);
criterion_main!(benches);
