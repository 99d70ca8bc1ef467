//! How a leader divides the pool among the nodes' orders: the market (the highest
//! bids first), or the two baselines a fleet is run with without one, an equal static
//! split and a split in proportion to demand.

use serde::{Deserialize, Serialize};

use crate::Order;

/// A rule for dividing `pool_mw` among orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Bid steps of every order, highest price first (ties by node name), until the
    /// pool or the demand runs out: the uniform-price auction's allocation.
    Market,
    /// The pool in parts by the nodes' weights (equal by default), whatever each asks.
    Static,
    /// The pool in proportion to each node's demand, never more than it.
    Proportional,
}

impl Split {
    /// Milliwatts for each order, in the orders' order; the sum is at most `pool_mw`.
    pub fn divide(self, pool_mw: u64, orders: &[Order]) -> Vec<u64> {
        match self {
            Split::Market => market(pool_mw, orders),
            Split::Static => {
                let total: u128 = orders.iter().map(|order| u128::from(order.weight)).sum();
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
    let mut steps: Vec<(u64, &str, usize, u64)> = orders
        .iter()
        .enumerate()
        .flat_map(|(index, order)| {
            order
                .bids
                .iter()
                .map(move |step| (step.price, order.node.as_str(), index, step.mw))
        })
        .collect();
    // Highest price first; a fixed order among equal prices.
    steps.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut left = pool_mw;
    let mut split = vec![0u64; orders.len()];
    for (_, _, index, mw) in steps {
        let take = mw.min(left);
        split[index] += take;
        left -= take;
        if left == 0 {
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
        assert_eq!(Split::Market.divide(150, &orders), vec![50, 80, 20]);
        assert_eq!(Split::Market.divide(1_000, &orders), vec![100, 80, 30]);
    }

    #[test]
    fn the_baselines_split_equally_or_by_demand() {
        let mut orders = [order("a", &[(300, 1)]), order("b", &[(100, 9)])];
        assert_eq!(Split::Static.divide(200, &orders), vec![100, 100]);
        orders[0].weight = 3;
        assert_eq!(Split::Static.divide(200, &orders), vec![150, 50]);
        orders[0].weight = 1;
        assert_eq!(Split::Proportional.divide(200, &orders), vec![150, 50]);
        assert_eq!(Split::Proportional.divide(1_000, &orders), vec![300, 100]);
        assert!(Split::Static.divide(10, &[]).is_empty());
    }
}
