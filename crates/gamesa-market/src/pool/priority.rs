//! Priority pool: when capacity shrinks, whole leases are revoked, lowest priority first.
//!
//! A lease's priority is the price it paid per unit, then its age: among leases that
//! paid the same price the newest goes first (lease ids grow with time, so the
//! highest id is the newest). Leases are revoked whole, never trimmed, until what
//! remains fits the new capacity: a component either holds its headroom or gets the
//! safe default, never a sliver it did not bid for.
//!
//! Allocation itself is plain accounting: any quantity up to the free capacity.

use gamesa_proto::LeaseId;

use super::Claim;

/// The leases to revoke, in revocation order, so that the rest total at most
/// `capacity`.
pub fn revocations(claims: &[Claim], capacity: u64) -> Vec<LeaseId> {
    let mut total: u64 = claims.iter().map(|claim| claim.quantity.0).sum();
    let mut by_priority: Vec<&Claim> = claims.iter().collect();
    // Lowest price first; at one price, the newest (highest id) first.
    by_priority.sort_by_key(|claim| (claim.price, std::cmp::Reverse(claim.lease)));
    let mut revoked = Vec::new();
    for claim in by_priority {
        if total <= capacity {
            break;
        }
        total -= claim.quantity.0;
        revoked.push(claim.lease);
    }
    revoked
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{Price, Quantity};

    use super::*;

    fn claim(lease: u64, price: u64, quantity: u64) -> Claim {
        Claim {
            lease: LeaseId(lease),
            price: Price(price),
            quantity: Quantity(quantity),
        }
    }

    #[test]
    fn revokes_cheapest_then_newest_until_it_fits() {
        let claims = [
            claim(1, 5, 400),
            claim(2, 3, 300),
            claim(3, 3, 200),
            claim(4, 9, 100),
        ];
        // Total 1000. Down to 800: the cheapest price is 3, and of those lease 3 is
        // the newest: revoking it (200) is enough.
        assert_eq!(revocations(&claims, 800), vec![LeaseId(3)]);
        // Down to 600: lease 3, then lease 2 (still 3 credits).
        assert_eq!(revocations(&claims, 600), vec![LeaseId(3), LeaseId(2)]);
        // Down to 50: everything but nothing fits, so all four go.
        assert_eq!(revocations(&claims, 50).len(), 4);
        assert!(revocations(&claims, 1000).is_empty());
    }
}
