//! How a leader divides the pool among the nodes' orders: the market (the highest
//! bids first), or the two baselines a fleet is run with without one, an equal static
//! split and a split in proportion to demand.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Order;

/// A rule for dividing `pool_mw` among orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Bid steps of every order, highest price first, until the pool or the demand runs
    /// out: the uniform-price auction's allocation. Steps at the marginal price share
    /// what is left in proportion to their size.
    Market,
    /// A fixed part of the pool per configured node, by weight (equal by default),
    /// whatever each asks: the static per-node split. A node that sends no order (dead,
    /// cut off) leaves its part unused, as a static cap would.
    Static,
    /// The pool in proportion to each node's demand, never more than it.
    Proportional,
}

impl Split {
    /// Milliwatts for each order, in the orders' order; the sum is at most `pool_mw`.
    /// `configured` is how many nodes the fleet has, ordering or not (a silent one
    /// counts with weight 1).
    pub fn divide(self, pool_mw: u64, orders: &[Order], configured: usize) -> Vec<u64> {
        match self {
            Split::Market => market(pool_mw, orders),
            Split::Static => {
                let silent = configured.saturating_sub(orders.len()) as u128;
                let total: u128 = orders
                    .iter()
                    .map(|order| u128::from(order.weight))
                    .sum::<u128>()
                    + silent;
                orders
                    .iter()
                    .map(|order| {
                        (u128::from(pool_mw) * u128::from(order.weight) / total.max(1)) as u64
                    })
                    .collect()
            }
            Split::Proportional => {
                let demand: Vec<u64> = orders.iter().map(Order::demand_mw).collect();
                let total: u128 = demand.iter().map(|&mw| u128::from(mw)).sum();
                if total <= u128::from(pool_mw) {
                    return demand;
                }
                demand
                    .iter()
                    .map(|&mw| (u128::from(mw) * u128::from(pool_mw) / total) as u64)
                    .collect()
            }
        }
    }
}

fn market(pool_mw: u64, orders: &[Order]) -> Vec<u64> {
    // Every step, highest price first; steps at one price share what is left of the
    // pool in proportion to their size (so no node wins a tie by its name).
    let mut levels: BTreeMap<std::cmp::Reverse<u64>, Vec<(usize, u64)>> = BTreeMap::new();
    for (index, order) in orders.iter().enumerate() {
        for step in &order.bids {
            levels
                .entry(std::cmp::Reverse(step.price))
                .or_default()
                .push((index, step.mw));
        }
    }
    let mut left = pool_mw;
    let mut split = vec![0u64; orders.len()];
    for steps in levels.values() {
        if left == 0 {
            break;
        }
        let wanted: u128 = steps.iter().map(|(_, mw)| u128::from(*mw)).sum();
        if wanted <= u128::from(left) {
            for &(index, mw) in steps {
                split[index] += mw;
            }
            left -= wanted as u64;
        } else {
            let share = |mw: u64| (u128::from(mw) * u128::from(left) / wanted) as u64;
            for &(index, mw) in steps {
                split[index] += share(mw);
            }
            break;
        }
    }
    split
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BidStep;

    fn order(node: &str, bids: &[(u64, u64)]) -> Order {
        Order {
            node: node.into(),
            request: 1,
            draw_mw: 0,
            weight: 1,
            bids: bids
                .iter()
                .map(|&(mw, price)| BidStep { mw, price })
                .collect(),
        }
    }

    #[test]
    fn the_market_serves_the_highest_bids_first() {
        let orders = [
            order("a", &[(50, 10), (50, 2)]),
            order("b", &[(80, 7)]),
            order("c", &[(30, 7)]),
        ];
        // 50 to a at 10; b and c tie at 7 for the 100 left: 80:30 of it.
        assert_eq!(
            Split::Market.divide(150, &orders, orders.len()),
            vec![50, 72, 27]
        );
        assert_eq!(
            Split::Market.divide(1_000, &orders, orders.len()),
            vec![100, 80, 30]
        );
    }

    #[test]
    fn the_baselines_split_equally_or_by_demand() {
        let mut orders = [order("a", &[(300, 1)]), order("b", &[(100, 9)])];
        assert_eq!(
            Split::Static.divide(200, &orders, orders.len()),
            vec![100, 100]
        );
        orders[0].weight = 3;
        assert_eq!(
            Split::Static.divide(200, &orders, orders.len()),
            vec![150, 50]
        );
        orders[0].weight = 1;
        assert_eq!(
            Split::Proportional.divide(200, &orders, orders.len()),
            vec![150, 50]
        );
        assert_eq!(
            Split::Proportional.divide(1_000, &orders, orders.len()),
            vec![300, 100]
        );
        assert!(Split::Static.divide(10, &[], 0).is_empty());
        // A third node that sends nothing keeps its part from the others.
        assert_eq!(Split::Static.divide(300, &orders, 3), vec![100, 100]);
    }
}
