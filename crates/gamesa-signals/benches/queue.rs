//! Push + pop cost of the signal queue at 1k and 100k held signals, to show O(log n).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gamesa_proto::{AgentId, Domain, Signal, SignalKind, Strength, Tick};
use gamesa_signals::{DomainRanking, SignalQueue};

const KINDS: [&str; 4] = ["thermal_high", "power_over_cap", "game_started", "idle"];

/// A deterministic spread of domains and strengths (no random source needed).
fn rank_of(i: u64) -> (Domain, Strength) {
    let mixed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (
        Domain::ALL[(mixed >> 32) as usize % Domain::ALL.len()],
        Strength::from_permille((mixed % 1001) as u16).unwrap(),
    )
}

fn signal(i: u64) -> Signal {
    let (domain, strength) = rank_of(i);
    Signal {
        kind: SignalKind::new(KINDS[(i % 4) as usize]).unwrap(),
        domain,
        strength,
        source: AgentId((i / 4) as u32),
        ttl_ticks: u32::MAX,
        correlation: None,
    }
}

fn push_pop(c: &mut Criterion) {
    let mut group = c.benchmark_group("signal_queue/push_pop");
    for held in [1_000u64, 100_000] {
        let now = Tick(0);
        let mut queue = SignalQueue::new(DomainRanking::default());
        for i in 0..held {
            queue.push(signal(i), now).unwrap();
        }
        let mut round = held;
        group.bench_with_input(BenchmarkId::from_parameter(held), &held, |b, _| {
            b.iter(|| {
                // Pop the best, then push it back with a new domain and strength, so the
                // queue stays at `held` signals and every push lands somewhere new.
                let mut top = queue.pop(now).unwrap();
                (top.domain, top.strength) = rank_of(round);
                round += 1;
                black_box(queue.push(top, now).unwrap());
            });
        });
        assert_eq!(queue.len() as u64, held);
    }
    group.finish();
}

criterion_group!(benches, push_pop);
criterion_main!(benches);
