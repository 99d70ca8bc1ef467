//! The order of the six signal domains, and the split between pre-empting (rank 0)
//! signals and the rest.
//!
//! # Invariants
//! - `order` is a permutation of [`Domain::ALL`]: every domain appears exactly once
//! - `rank_by_index[order[r].index()] == r` for every rank `r`

use gamesa_proto::{Domain, Signal};
use serde::{Deserialize, Serialize};

use crate::SignalError;

const DOMAIN_COUNT: usize = Domain::ALL.len();

/// A total order of the signal domains, most important first. Rank 0 pre-empts: its
/// signals bypass the market and go straight to the guardian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<Domain>", into = "Vec<Domain>")]
pub struct DomainRanking {
    order: [Domain; DOMAIN_COUNT],
    /// Indexed by [`Domain::index`], so `rank_of` is one array read.
    rank_by_index: [u8; DOMAIN_COUNT],
}

impl DomainRanking {
    /// Builds a ranking from all six domains, most important first. A list that repeats
    /// a domain or leaves one out is refused; the first problem found is reported
    /// (a duplicate, in list order, before a missing domain, in [`Domain::ALL`] order).
    pub fn new(order: &[Domain]) -> Result<DomainRanking, SignalError> {
        let mut seen = [false; DOMAIN_COUNT];
        for &domain in order {
            if std::mem::replace(&mut seen[domain.index()], true) {
                return Err(SignalError::DuplicateDomain { domain });
            }
        }
        if let Some(domain) = Domain::ALL.into_iter().find(|d| !seen[d.index()]) {
            return Err(SignalError::MissingDomain { domain });
        }
        // No duplicate and none missing, so `order` holds exactly DOMAIN_COUNT domains.
        let mut ranking = DomainRanking {
            order: Domain::ALL,
            rank_by_index: [0; DOMAIN_COUNT],
        };
        for (rank, &domain) in order.iter().enumerate() {
            ranking.order[rank] = domain;
            // rank < DOMAIN_COUNT (6), so it fits in a u8.
            ranking.rank_by_index[domain.index()] = rank as u8;
        }
        Ok(ranking)
    }

    /// The rank of a domain: 0 for the most important, 5 for the least.
    pub fn rank_of(&self, domain: Domain) -> u8 {
        self.rank_by_index[domain.index()]
    }

    /// The domains, most important first.
    pub fn order(&self) -> &[Domain; DOMAIN_COUNT] {
        &self.order
    }

    /// The rank-0 domain, whose signals pre-empt the market.
    pub fn preempting_domain(&self) -> Domain {
        self.order[0]
    }
}

impl Default for DomainRanking {
    /// Safety > thermal > power > performance > efficiency > background.
    fn default() -> DomainRanking {
        DomainRanking {
            order: Domain::ALL,
            rank_by_index: [0, 1, 2, 3, 4, 5],
        }
    }
}

impl TryFrom<Vec<Domain>> for DomainRanking {
    type Error = SignalError;

    fn try_from(order: Vec<Domain>) -> Result<Self, Self::Error> {
        DomainRanking::new(&order)
    }
}

impl From<DomainRanking> for Vec<Domain> {
    fn from(ranking: DomainRanking) -> Vec<Domain> {
        ranking.order.to_vec()
    }
}

/// Whether a signal pre-empts the market: it belongs to the rank-0 domain of `ranking`
/// (safety by default), so the guardian acts on it at once.
pub fn is_preempting(signal: &Signal, ranking: &DomainRanking) -> bool {
    ranking.rank_of(signal.domain) == 0
}

/// Splits a ranked list into the pre-empting signals and the rest, keeping the order of
/// each part.
pub fn split_preempting(
    ranked: Vec<Signal>,
    ranking: &DomainRanking,
) -> (Vec<Signal>, Vec<Signal>) {
    ranked
        .into_iter()
        .partition(|signal| is_preempting(signal, ranking))
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{AgentId, SignalKind, Strength};

    use super::*;

    fn signal(kind: &str, domain: Domain) -> Signal {
        Signal {
            kind: SignalKind::new(kind).unwrap(),
            domain,
            strength: Strength::MAX,
            source: AgentId(1),
            ttl_ticks: 1,
            correlation: None,
        }
    }

    #[test]
    fn default_ranks_safety_first_and_background_last() {
        let ranking = DomainRanking::default();
        assert_eq!(ranking.order(), &Domain::ALL);
        for (rank, domain) in Domain::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(ranking.rank_of(domain)), rank);
        }
        assert_eq!(ranking.preempting_domain(), Domain::Safety);
        assert_eq!(DomainRanking::new(&Domain::ALL), Ok(ranking));
    }

    #[test]
    fn custom_ranking_follows_the_given_order() {
        let order = [
            Domain::Thermal,
            Domain::Safety,
            Domain::Background,
            Domain::Power,
            Domain::Efficiency,
            Domain::Performance,
        ];
        let ranking = DomainRanking::new(&order).unwrap();
        assert_eq!(ranking.order(), &order);
        assert_eq!(ranking.rank_of(Domain::Thermal), 0);
        assert_eq!(ranking.rank_of(Domain::Safety), 1);
        assert_eq!(ranking.rank_of(Domain::Background), 2);
        assert_eq!(ranking.rank_of(Domain::Performance), 5);
        assert_eq!(ranking.preempting_domain(), Domain::Thermal);
    }

    #[test]
    fn ranking_with_a_duplicate_is_refused() {
        let order = [
            Domain::Safety,
            Domain::Thermal,
            Domain::Power,
            Domain::Thermal,
            Domain::Efficiency,
            Domain::Background,
        ];
        assert_eq!(
            DomainRanking::new(&order),
            Err(SignalError::DuplicateDomain {
                domain: Domain::Thermal
            })
        );
        let mut seven = Domain::ALL.to_vec();
        seven.push(Domain::Safety);
        assert_eq!(
            DomainRanking::new(&seven),
            Err(SignalError::DuplicateDomain {
                domain: Domain::Safety
            })
        );
    }

    #[test]
    fn ranking_with_a_missing_domain_is_refused() {
        let order = [
            Domain::Safety,
            Domain::Thermal,
            Domain::Power,
            Domain::Efficiency,
            Domain::Background,
        ];
        assert_eq!(
            DomainRanking::new(&order),
            Err(SignalError::MissingDomain {
                domain: Domain::Performance
            })
        );
        assert_eq!(
            DomainRanking::new(&[]),
            Err(SignalError::MissingDomain {
                domain: Domain::Safety
            })
        );
    }

    #[test]
    fn ranking_reads_from_config_as_a_list_of_names() {
        let json = r#"["power","safety","thermal","performance","efficiency","background"]"#;
        let ranking: DomainRanking = serde_json::from_str(json).unwrap();
        assert_eq!(ranking.preempting_domain(), Domain::Power);
        assert_eq!(serde_json::to_string(&ranking).unwrap(), json);
        let short = r#"["safety","thermal"]"#;
        let error = serde_json::from_str::<DomainRanking>(short).unwrap_err();
        assert!(error.to_string().contains("`power` is missing"), "{error}");
    }

    #[test]
    fn only_the_rank_zero_domain_preempts() {
        let default = DomainRanking::default();
        let thermal_first = DomainRanking::new(&[
            Domain::Thermal,
            Domain::Safety,
            Domain::Power,
            Domain::Performance,
            Domain::Efficiency,
            Domain::Background,
        ])
        .unwrap();
        let critical = signal("thermal_critical", Domain::Safety);
        let hot = signal("thermal_high", Domain::Thermal);
        assert!(is_preempting(&critical, &default));
        assert!(!is_preempting(&hot, &default));
        assert!(!is_preempting(&critical, &thermal_first));
        assert!(is_preempting(&hot, &thermal_first));
    }

    #[test]
    fn split_keeps_the_order_of_each_part() {
        let ranked = vec![
            signal("a", Domain::Safety),
            signal("b", Domain::Safety),
            signal("c", Domain::Thermal),
            signal("d", Domain::Background),
        ];
        let (preempting, rest) = split_preempting(ranked, &DomainRanking::default());
        let kinds = |list: &[Signal]| list.iter().map(|s| s.kind.to_string()).collect::<Vec<_>>();
        assert_eq!(kinds(&preempting), ["a", "b"]);
        assert_eq!(kinds(&rest), ["c", "d"]);
    }
}
