//! The `[[phases]]` entries checked, and the random ones drawn, with the scenario's seed,
//! into ordinary phases, so that the checked [`Scenario`](super::Scenario) and the
//! schedule only ever see fixed phases and anyone can read what was drawn.
//!
//! # Invariants
//! - the phases returned are sorted by `at_s`, every `at_s` in `[0, duration_s)` and every
//!   demand in `[0, 1]` for a declared component;
//! - a random entry draws from its own stream ([`Stream::RandomPhase`] of its index), so
//!   the same scenario always expands to the same phases, and editing one entry does not
//!   change what another draws;
//! - a random entry draws at most [`MAX_DRAWN_PHASES`] phases.

use std::collections::BTreeMap;

use super::{
    super::rng::{Stream, rng_for, uniform},
    Phase, ScenarioError, check_demand, check_time,
    file::PhaseValue,
    inconsistent, out_of_range,
};

/// The most phases one random entry may draw: `(until_s − at_s) / every_s` is bounded so
/// that its lengths, at least half of `every_s` each, give at most this many.
pub const MAX_DRAWN_PHASES: usize = 10_000;

/// The shortest mean phase length a random entry may ask for, in seconds.
const MIN_EVERY_S: f64 = 0.01;

/// The keys of a `[[phases]]` entry that are not component names.
pub(super) const PHASE_KEYS: [&str; 4] = ["at_s", "random", "until_s", "every_s"];

/// Checks `entries` (the `[[phases]]` tables in file order) and expands the random ones.
pub(super) fn check_phases(
    entries: Vec<BTreeMap<String, PhaseValue>>,
    duration_s: f64,
    seed: u64,
    known: &dyn Fn(&str) -> bool,
) -> Result<Vec<Phase>, ScenarioError> {
    let mut phases: Vec<Phase> = Vec::with_capacity(entries.len());
    // The start of the previous entry, and the end of the draws of a random one: the
    // next entry may not start before either.
    let mut previous_at_s: Option<f64> = None;
    let mut drawn: Option<(usize, f64)> = None;
    for (index, mut entry) in entries.into_iter().enumerate() {
        let field = |key: &str| format!("phases[{index}].{key}");
        let at_s = match entry.remove("at_s") {
            Some(value) => number(&field("at_s"), value)?,
            None => {
                return Err(ScenarioError::MissingField {
                    field: field("at_s"),
                    needed_by: "a phase",
                });
            }
        };
        check_time(&field("at_s"), at_s, duration_s)?;
        if let Some(previous_at_s) = previous_at_s
            && at_s < previous_at_s
        {
            return Err(ScenarioError::NotSorted {
                field: field("at_s"),
                at_s,
                previous_at_s,
            });
        }
        if let Some((random_index, until_s)) = drawn
            && at_s < until_s
        {
            return Err(inconsistent(
                &field("at_s"),
                format!(
                    "{at_s} s is inside the random phases[{random_index}], which draws \
                     until {until_s} s"
                ),
            ));
        }
        previous_at_s = Some(at_s);
        let random = match entry.remove("random") {
            None => false,
            Some(PhaseValue::Flag(random)) => random,
            Some(_) => {
                return Err(inconsistent(
                    &field("random"),
                    "expected `true` or `false`".into(),
                ));
            }
        };
        if random {
            let until_s = match entry.remove("until_s") {
                Some(value) => number(&field("until_s"), value)?,
                None => duration_s,
            };
            if !(until_s.is_finite() && until_s > at_s && until_s <= duration_s) {
                return Err(out_of_range(
                    &field("until_s"),
                    until_s,
                    "a time in (at_s, duration_s]",
                ));
            }
            let every_s = match entry.remove("every_s") {
                Some(value) => number(&field("every_s"), value)?,
                None => {
                    return Err(ScenarioError::MissingField {
                        field: field("every_s"),
                        needed_by: "a random phase",
                    });
                }
            };
            if !(every_s.is_finite() && every_s >= MIN_EVERY_S) {
                return Err(out_of_range(
                    &field("every_s"),
                    every_s,
                    "a mean phase length of at least 0.01 s",
                ));
            }
            if (until_s - at_s) / every_s > (MAX_DRAWN_PHASES / 2) as f64 {
                return Err(out_of_range(
                    &field("every_s"),
                    every_s,
                    "long enough to draw at most 10000 phases: (until_s − at_s) / every_s \
                     at most 5000",
                ));
            }
            let ranges = ranges_of(index, entry, known)?;
            let mut rng = rng_for(seed, Stream::RandomPhase(index));
            let mut start_s = at_s;
            while start_s < until_s {
                let demands = ranges
                    .iter()
                    .map(|(name, &(low, high))| {
                        let demand = round_to_thousandths(uniform(&mut rng, low, high));
                        (name.clone(), demand.clamp(low, high))
                    })
                    .collect();
                phases.push(Phase {
                    at_s: start_s,
                    demands,
                });
                let length_s = every_s * uniform(&mut rng, 0.5, 1.5);
                start_s = round_to_thousandths(start_s + length_s);
            }
            drawn = Some((index, until_s));
        } else {
            for key in ["until_s", "every_s"] {
                if entry.contains_key(key) {
                    return Err(inconsistent(
                        &field(key),
                        format!("only a random phase (`random = true`) has `{key}`"),
                    ));
                }
            }
            let mut demands = BTreeMap::new();
            for (name, value) in entry {
                let field = field(&name);
                known_component(&field, &name, known)?;
                let demand = match value {
                    PhaseValue::Number(demand) => demand,
                    PhaseValue::Range(..) => {
                        return Err(inconsistent(
                            &field,
                            "a demand range needs a random phase (`random = true`)".into(),
                        ));
                    }
                    PhaseValue::Flag(_) => {
                        return Err(inconsistent(&field, "expected a demand in [0, 1]".into()));
                    }
                };
                check_demand(&field, demand)?;
                demands.insert(name, demand);
            }
            phases.push(Phase { at_s, demands });
        }
    }
    Ok(phases)
}

/// The demand range of each component a random entry names (a plain number is a range
/// of one value).
fn ranges_of(
    index: usize,
    entry: BTreeMap<String, PhaseValue>,
    known: &dyn Fn(&str) -> bool,
) -> Result<BTreeMap<String, (f64, f64)>, ScenarioError> {
    let mut ranges = BTreeMap::new();
    for (name, value) in entry {
        let field = format!("phases[{index}].{name}");
        known_component(&field, &name, known)?;
        let (low, high) = match value {
            PhaseValue::Number(demand) => (demand, demand),
            PhaseValue::Range(low, high) => (low, high),
            PhaseValue::Flag(_) => {
                return Err(inconsistent(
                    &field,
                    "expected a demand range `[low, high]` or a demand".into(),
                ));
            }
        };
        check_demand(&field, low)?;
        check_demand(&field, high)?;
        if low > high {
            return Err(inconsistent(
                &field,
                format!("the range [{low}, {high}] has its low end above its high end"),
            ));
        }
        ranges.insert(name, (low, high));
    }
    if ranges.is_empty() {
        return Err(inconsistent(
            &format!("phases[{index}]"),
            "a random phase draws a demand for at least one component".into(),
        ));
    }
    Ok(ranges)
}

fn known_component(
    field: &str,
    name: &str,
    known: &dyn Fn(&str) -> bool,
) -> Result<(), ScenarioError> {
    if known(name) {
        Ok(())
    } else {
        Err(ScenarioError::UnknownComponent {
            field: field.to_owned(),
            component: name.to_owned(),
        })
    }
}

fn number(field: &str, value: PhaseValue) -> Result<f64, ScenarioError> {
    match value {
        PhaseValue::Number(number) => Ok(number),
        PhaseValue::Flag(_) | PhaseValue::Range(..) => {
            Err(inconsistent(field, "expected a number of seconds".into()))
        }
    }
}

/// Drawn demands and times are kept to three decimals (a per-mille demand, a
/// millisecond), so the expansion reads as well as a hand-written file.
fn round_to_thousandths(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::super::Scenario;
    use super::*;

    /// A 100 s scenario (seed `seed`) with a CPU and a GPU, plus `phases`.
    fn scenario_with(seed: u64, phases: &str) -> Result<Scenario, ScenarioError> {
        Scenario::from_toml_str(&format!(
            "name = \"phases\"\nseed = {seed}\nduration_s = 100\nstep_ms = 100\nambient_c = 25\n\
             node = {{ cap_w = 400 }}\n\
             [components]\n\
             cpu = {{ kind = \"cpu\", tdp_w = 125, idle_w = 15, min_w = 30, max_w = 150, \
             r_c_per_w = 0.35, c_j_per_c = 60, t_max_c = 95 }}\n\
             gpu0 = {{ kind = \"gpu\", tdp_w = 300, idle_w = 30, min_w = 100, max_w = 350, \
             r_c_per_w = 0.2, c_j_per_c = 150, t_max_c = 87 }}\n\
             {phases}"
        ))
    }

    const RANDOM: &str = "[[phases]]\nat_s = 0\ncpu = 0.5\n\
                          [[phases]]\nat_s = 10\nrandom = true\nuntil_s = 70\nevery_s = 5\n\
                          gpu0 = [0.2, 0.9]\ncpu = [0, 0.3]\n\
                          [[phases]]\nat_s = 80\ngpu0 = 0.1";

    fn error_of(phases: &str) -> ScenarioError {
        match scenario_with(1, phases) {
            Ok(scenario) => panic!("accepted: {:?}", scenario.phases()),
            Err(error) => error,
        }
    }

    #[test]
    fn a_random_phase_expands_into_ordinary_phases_within_its_ranges() {
        let scenario = scenario_with(3, RANDOM).unwrap();
        let phases = scenario.phases();
        assert_eq!(phases[0].at_s, 0.0);
        assert_eq!(phases.last().unwrap().at_s, 80.0);
        let drawn = &phases[1..phases.len() - 1];
        // 60 s at a mean of 5 s, each length in [2.5, 7.5] s: 8 to 24 phases.
        assert!((8..=24).contains(&drawn.len()), "{}", drawn.len());
        assert_eq!(drawn[0].at_s, 10.0);
        for pair in drawn.windows(2) {
            let length_s = pair[1].at_s - pair[0].at_s;
            assert!((2.5 - 1e-9..=7.5 + 1e-9).contains(&length_s), "{length_s}");
        }
        assert!(drawn.last().unwrap().at_s < 70.0);
        for phase in drawn {
            let gpu = phase.demands["gpu0"];
            let cpu = phase.demands["cpu"];
            assert!((0.2..=0.9).contains(&gpu) && (0.0..=0.3).contains(&cpu));
            assert_eq!((gpu * 1000.0).round() / 1000.0, gpu);
        }
        // Not all the same draw.
        assert!(drawn.iter().any(|phase| phase.demands != drawn[0].demands));
    }

    #[test]
    fn the_expansion_follows_the_seed_and_only_the_seed() {
        let phases = |seed| scenario_with(seed, RANDOM).unwrap().phases().to_vec();
        assert_eq!(phases(3), phases(3));
        assert_ne!(phases(3), phases(4));
        // A fixed entry before it does not change what it draws.
        let shifted = scenario_with(3, &RANDOM.replace("cpu = 0.5", "cpu = 0.6")).unwrap();
        assert_eq!(shifted.phases()[1..], phases(3)[1..]);
    }

    #[test]
    fn until_s_defaults_to_the_end_and_a_plain_number_is_a_fixed_demand() {
        let scenario = scenario_with(
            9,
            "[[phases]]\nat_s = 0\nrandom = true\nevery_s = 20\ngpu0 = [0.5, 1]\ncpu = 0.25",
        )
        .unwrap();
        let phases = scenario.phases();
        assert!(phases.len() >= 4, "{phases:?}");
        assert!(phases.last().unwrap().at_s < 100.0);
        assert!(phases.iter().all(|phase| phase.demands["cpu"] == 0.25));
    }

    #[test]
    fn random_false_is_an_ordinary_phase() {
        let scenario = scenario_with(1, "[[phases]]\nat_s = 0\nrandom = false\ncpu = 0.4").unwrap();
        assert_eq!(
            scenario.phases(),
            [Phase {
                at_s: 0.0,
                demands: BTreeMap::from([("cpu".to_owned(), 0.4)]),
            }]
        );
    }

    #[test]
    fn bad_random_phases_name_the_field() {
        let random = "[[phases]]\nat_s = 10\nrandom = true\nevery_s = 5\ngpu0 = [0.2, 0.9]";
        let cases: [(String, &str); 12] = [
            (random.replace("every_s = 5\n", ""), "phases[0].every_s"),
            (
                random.replace("every_s = 5", "every_s = 0.001"),
                "phases[0].every_s",
            ),
            (
                random.replace("every_s = 5", "every_s = 0.015"),
                "phases[0].every_s",
            ),
            (
                random.replace("every_s = 5", "every_s = -1"),
                "phases[0].every_s",
            ),
            (format!("{random}\nuntil_s = 10"), "phases[0].until_s"),
            (format!("{random}\nuntil_s = 101"), "phases[0].until_s"),
            (random.replace("[0.2, 0.9]", "[0.9, 0.2]"), "phases[0].gpu0"),
            (random.replace("[0.2, 0.9]", "[0.2, 1.5]"), "phases[0].gpu0"),
            (
                random.replace("gpu0 = [0.2, 0.9]", "gpu7 = [0.2, 0.9]"),
                "phases[0].gpu7",
            ),
            (random.replace("\ngpu0 = [0.2, 0.9]", ""), "phases[0]"),
            (
                random.replace("random = true", "random = 1"),
                "phases[0].random",
            ),
            (
                random.replace("gpu0 = [0.2, 0.9]", "gpu0 = true"),
                "phases[0].gpu0",
            ),
        ];
        for (phases, field) in cases {
            let error = error_of(&phases);
            assert_eq!(error.field(), Some(field), "{phases}: {error:?}");
        }
    }

    #[test]
    fn a_range_or_timing_key_needs_a_random_phase() {
        for (phases, field) in [
            ("[[phases]]\nat_s = 0\ngpu0 = [0.2, 0.9]", "phases[0].gpu0"),
            (
                "[[phases]]\nat_s = 0\ngpu0 = 0.2\nevery_s = 3",
                "phases[0].every_s",
            ),
            (
                "[[phases]]\nat_s = 0\ngpu0 = 0.2\nuntil_s = 30",
                "phases[0].until_s",
            ),
            ("[[phases]]\nat_s = true\ngpu0 = 0.2", "phases[0].at_s"),
        ] {
            let error = error_of(phases);
            assert!(
                matches!(&error, ScenarioError::Inconsistent { field: named, .. } if named == field),
                "{phases}: {error:?}"
            );
        }
    }

    #[test]
    fn a_range_of_three_numbers_is_a_toml_error_naming_the_key() {
        let error =
            error_of("[[phases]]\nat_s = 0\nrandom = true\nevery_s = 5\ngpu0 = [0.1, 0.2, 0.3]");
        assert!(matches!(error, ScenarioError::Toml { .. }), "{error:?}");
        assert_eq!(error.field(), Some("phases[0].gpu0"), "{error:?}");
    }

    #[test]
    fn a_phase_inside_the_draws_of_a_random_one_is_refused() {
        let error = error_of(&RANDOM.replace("at_s = 80", "at_s = 60"));
        assert!(
            matches!(&error, ScenarioError::Inconsistent { field, reason }
                if field == "phases[2].at_s" && reason.contains("phases[1]")),
            "{error:?}"
        );
        // Right at until_s is fine.
        scenario_with(1, &RANDOM.replace("at_s = 80", "at_s = 70")).unwrap();
        let unsorted = error_of(
            &RANDOM
                .replace("at_s = 10", "at_s = 0\n")
                .replace("at_s = 0\ncpu", "at_s = 5\ncpu"),
        );
        assert!(
            matches!(unsorted, ScenarioError::NotSorted { .. }),
            "{unsorted:?}"
        );
    }

    proptest::proptest! {
        /// Whatever the seed, window, mean length and range, a random entry expands into
        /// phases sorted by time, starting at `at_s`, all before `until_s`, with every
        /// demand inside its range and to the thousandth, and the same input gives the
        /// same phases.
        #[test]
        fn an_expansion_is_sorted_inside_its_window_and_ranges(
            seed in proptest::prelude::any::<u32>(),
            at_s in 0_u32..90,
            length_s in 1_u32..60,
            every_s in 0.05..30.0_f64,
            low in 0.0..=1.0_f64,
            width in 0.0..=1.0_f64,
        ) {
            let until_s = (at_s + length_s).min(100);
            let every_s = every_s.max(f64::from(until_s - at_s) / 5_000.0);
            let high = (low + width).min(1.0);
            let phases = format!(
                "[[phases]]\nat_s = {at_s}\nrandom = true\nuntil_s = {until_s}\n\
                 every_s = {every_s}\ngpu0 = [{low}, {high}]"
            );
            let scenario = scenario_with(u64::from(seed), &phases)
                .unwrap_or_else(|error| panic!("{error}"));
            let drawn = scenario.phases();
            proptest::prop_assert_eq!(drawn[0].at_s, f64::from(at_s));
            proptest::prop_assert!(drawn.len() <= MAX_DRAWN_PHASES);
            for pair in drawn.windows(2) {
                proptest::prop_assert!(pair[0].at_s < pair[1].at_s);
            }
            proptest::prop_assert!(drawn.last().unwrap().at_s < f64::from(until_s));
            for phase in drawn {
                let demand = phase.demands["gpu0"];
                proptest::prop_assert!((low..=high).contains(&demand));
            }
            let again = scenario_with(u64::from(seed), &phases).unwrap();
            proptest::prop_assert_eq!(again.phases(), drawn);
        }
    }
}
