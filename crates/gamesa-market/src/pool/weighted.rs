//! Weighted pool: when capacity shrinks, every lease is scaled down by its weight.
//!
//! A lease's weight is what it paid: `price × quantity`. The new capacity is shared
//! in proportion to weight, but no lease ever grows: a lease whose share would
//! exceed its quantity keeps its quantity, and the rest is shared again among the
//! others (water-filling). With equal prices this is a plain pro-rata scale; a lease
//! that paid more per unit keeps a larger fraction.
//!
//! Integer arithmetic only (`u128` for the products). Each lease first gets the floor
//! of its share; the units left over go one each to the largest remainders, ties
//! broken by the higher price, then the older lease (lower id), so the result is
//! deterministic and sums exactly to the capacity.
//!
//! Allocation itself is plain accounting: any quantity up to the free capacity.

use gamesa_proto::LeaseId;

use super::Claim;

/// The new quantity of every claim (same order as `claims`) so that they total
/// exactly `capacity`, or are unchanged if they already fit. A zero means the lease
/// is revoked.
pub fn scaled(claims: &[Claim], capacity: u64) -> Vec<(LeaseId, u64)> {
    let total: u64 = claims.iter().map(|claim| claim.quantity.0).sum();
    if total <= capacity {
        return claims
            .iter()
            .map(|claim| (claim.lease, claim.quantity.0))
            .collect();
    }
    let weight = |claim: &Claim| u128::from(claim.price.0) * u128::from(claim.quantity.0);
    let mut kept: Vec<Option<u64>> = vec![None; claims.len()];
    let mut left = capacity;
    // Water-filling: fix every lease whose share covers its whole quantity.
    loop {
        let open_weight: u128 = claims
            .iter()
            .zip(&kept)
            .filter(|(_, kept)| kept.is_none())
            .map(|(claim, _)| weight(claim))
            .sum();
        if open_weight == 0 {
            break;
        }
        let mut fixed_any = false;
        for (claim, kept) in claims.iter().zip(kept.iter_mut()) {
            if kept.is_none()
                && u128::from(left) * weight(claim) >= u128::from(claim.quantity.0) * open_weight
            {
                *kept = Some(claim.quantity.0);
                left -= claim.quantity.0;
                fixed_any = true;
            }
        }
        if !fixed_any {
            break;
        }
    }
    let open_weight: u128 = claims
        .iter()
        .zip(&kept)
        .filter(|(_, kept)| kept.is_none())
        .map(|(claim, _)| weight(claim))
        .sum();
    let mut remainders = Vec::new();
    let mut shared = 0;
    for (index, (claim, kept)) in claims.iter().zip(kept.iter_mut()).enumerate() {
        if kept.is_none() && open_weight > 0 {
            let exact = u128::from(left) * weight(claim);
            // The share is below the claim's quantity, so it fits in a u64.
            let floor = (exact / open_weight) as u64;
            *kept = Some(floor);
            shared += floor;
            remainders.push((exact % open_weight, claim.price, claim.lease, index));
        }
    }
    // Each open share is strictly below its quantity, so one more unit still fits.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    for &(_, _, _, index) in remainders.iter().take((left - shared) as usize) {
        if let Some(kept) = &mut kept[index] {
            *kept += 1;
        }
    }
    claims
        .iter()
        .zip(kept)
        .map(|(claim, kept)| (claim.lease, kept.unwrap_or(0)))
        .collect()
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{Price, Quantity};
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Scaling never grows a lease, sums exactly to the new capacity when it
        /// shrinks, and never gives a cheaper lease a larger kept fraction (beyond
        /// one unit of rounding each way).
        #[test]
        fn scaling_fits_exactly_and_never_grows(
            leases in prop::collection::vec((1..50u64, 1..1000u64), 1..8),
            capacity in 0..3000u64,
        ) {
            let claims: Vec<Claim> = leases
                .iter()
                .enumerate()
                .map(|(id, &(price, quantity))| claim(id as u64, price, quantity))
                .collect();
            let total: u64 = claims.iter().map(|claim| claim.quantity.0).sum();
            let kept = scaled(&claims, capacity);
            prop_assert_eq!(kept.iter().map(|(_, kept)| kept).sum::<u64>(), total.min(capacity));
            for (claim, (lease, kept)) in claims.iter().zip(&kept) {
                prop_assert_eq!(claim.lease, *lease);
                prop_assert!(*kept <= claim.quantity.0);
            }
            for (a, (_, kept_a)) in claims.iter().zip(&kept) {
                for (b, (_, kept_b)) in claims.iter().zip(&kept) {
                    // Kept fractions, with one unit of rounding slack on each side:
                    // (kept_a + 1) / q_a >= (kept_b - 1) / q_b.
                    if a.price > b.price && *kept_b > 0 {
                        prop_assert!(
                            (kept_a + 1) * b.quantity.0 >= (kept_b - 1) * a.quantity.0,
                            "{:?} kept {} but {:?} kept {}", a, kept_a, b, kept_b
                        );
                    }
                }
            }
        }
    }

    fn claim(lease: u64, price: u64, quantity: u64) -> Claim {
        Claim {
            lease: LeaseId(lease),
            price: Price(price),
            quantity: Quantity(quantity),
        }
    }

    #[test]
    fn equal_prices_scale_pro_rata_with_a_deterministic_remainder() {
        let claims = [claim(1, 2, 500), claim(2, 2, 300), claim(3, 2, 200)];
        // 1000 → 700: exact shares 350, 210, 140.
        assert_eq!(
            scaled(&claims, 700),
            vec![(LeaseId(1), 350), (LeaseId(2), 210), (LeaseId(3), 140)]
        );
        // 1000 → 101: exact shares 50.5, 30.3, 20.2 → floors 50, 30, 20 and the one
        // unit left goes to the largest remainder (lease 1).
        assert_eq!(
            scaled(&claims, 101),
            vec![(LeaseId(1), 51), (LeaseId(2), 30), (LeaseId(3), 20)]
        );
    }

    #[test]
    fn higher_price_keeps_more_and_nothing_grows() {
        // Weights 500 and 50. Capacity 90: lease 1's share (81.8) exceeds its 50, so
        // it keeps 50 and lease 2 gets the other 40.
        let claims = [claim(1, 10, 50), claim(2, 1, 50)];
        assert_eq!(
            scaled(&claims, 90),
            vec![(LeaseId(1), 50), (LeaseId(2), 40)]
        );
        // Capacity 11: shares 10 and 1.
        assert_eq!(scaled(&claims, 11), vec![(LeaseId(1), 10), (LeaseId(2), 1)]);
        // Capacity 0: everything revoked.
        assert_eq!(scaled(&claims, 0), vec![(LeaseId(1), 0), (LeaseId(2), 0)]);
    }

    #[test]
    fn ties_in_remainder_go_to_higher_price_then_older_lease() {
        // Same weight (20) for both, capacity 1 of 20 units: exact shares 0.5 each.
        let claims = [claim(1, 1, 10), claim(2, 1, 10)];
        assert_eq!(scaled(&claims, 1), vec![(LeaseId(1), 1), (LeaseId(2), 0)]);
        let claims = [claim(1, 1, 20), claim(2, 2, 10)];
        assert_eq!(scaled(&claims, 1), vec![(LeaseId(1), 0), (LeaseId(2), 1)]);
    }
}
