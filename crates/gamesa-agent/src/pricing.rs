//! Book prices from credits: deterministic rounding of utilities and reserves into the
//! book's integer range `[Price::MIN, Price::MAX]`, and the check of a reserve range
//! given in params.
//!
//! # Invariants
//! - every `Price` these functions return lies in `[Price::MIN, Price::MAX]`;
//! - none of them panics, whatever the input (NaN, infinities, `u64::MAX`).

use gamesa_proto::Price;

use crate::AgentError;

/// Clamps an integer price into the book's valid range.
pub fn clamp_price(credits: u64) -> Price {
    Price(credits.clamp(Price::MIN.0, Price::MAX.0))
}

/// A buyer's price: rounds a utility-derived price (credits per unit) half away from
/// zero; `None` when it is not positive or not finite, so a worthless unit is never bid
/// for. Positive prices below one round up to [`Price::MIN`].
pub fn price_from_utility(credits: f64) -> Option<Price> {
    if !credits.is_finite() || credits <= 0.0 {
        return None;
    }
    // `as` saturates for values beyond u64, and `clamp_price` bounds the result.
    Some(clamp_price(credits.round().max(1.0) as u64))
}

/// A seller's reserve price: rounds half away from zero into the book's range; a price
/// that is not a number is taken as the highest, since a seller errs dear.
pub fn reserve_price(credits: f64) -> Price {
    if credits.is_nan() {
        return Price::MAX;
    }
    // `as` saturates (and maps -inf to 0), and `clamp_price` bounds the result.
    clamp_price(credits.round() as u64)
}

/// The reserve price of a capacity offer: `idle` at 0 ‰ utilization rising linearly to
/// `busy` at 1000 ‰, in integer arithmetic. Utilization above 1000 ‰ counts as 1000 ‰.
pub fn reserve_for_utilization(idle: u64, busy: u64, utilization_permille: u16) -> Price {
    let utilization = u64::from(utilization_permille.min(1000));
    let rise = busy.saturating_sub(idle).saturating_mul(utilization) / 1000;
    clamp_price(idle.saturating_add(rise))
}

/// Checks a seller's reserve range from agent `agent`'s params: the low price is at
/// least 1 and the high one at least the low. Each is given as `(key, value)`, and the
/// `InvalidParams` message names the offending key.
pub fn validate_reserve_range(
    agent: &str,
    (low_key, low): (&str, u64),
    (high_key, high): (&str, u64),
) -> Result<(), AgentError> {
    let message = if low == 0 {
        format!("`{low_key}` must be at least 1")
    } else if high < low {
        format!("`{high_key}` ({high}) must be at least `{low_key}` ({low})")
    } else {
        return Ok(());
    };
    Err(AgentError::InvalidParams {
        agent: agent.to_owned(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utilities_round_to_valid_prices() {
        assert_eq!(price_from_utility(0.0), None);
        assert_eq!(price_from_utility(-3.0), None);
        assert_eq!(price_from_utility(f64::NAN), None);
        assert_eq!(price_from_utility(0.2), Some(Price(1)));
        assert_eq!(price_from_utility(2.5), Some(Price(3)));
        assert_eq!(price_from_utility(1e300), Some(Price::MAX));
    }

    #[test]
    fn reserve_prices_stay_in_the_book_range() {
        assert_eq!(reserve_price(0.0), Price::MIN);
        assert_eq!(reserve_price(-5.0), Price::MIN);
        assert_eq!(reserve_price(2.5), Price(3));
        assert_eq!(reserve_price(f64::INFINITY), Price::MAX);
        assert_eq!(reserve_price(f64::NAN), Price::MAX);
    }

    #[test]
    fn reserve_rises_with_utilization() {
        assert_eq!(reserve_for_utilization(100, 1100, 0), Price(100));
        assert_eq!(reserve_for_utilization(100, 1100, 500), Price(600));
        assert_eq!(reserve_for_utilization(100, 1100, 60_000), Price(1100));
        assert_eq!(reserve_for_utilization(0, 0, 0), Price::MIN);
        assert_eq!(
            reserve_for_utilization(u64::MAX, u64::MAX, 1000),
            Price::MAX
        );
    }

    #[test]
    fn a_reserve_range_starts_at_one_and_does_not_fall() {
        let check = |low, high| validate_reserve_range("seller", ("floor", low), ("ceiling", high));
        assert_eq!(check(1, 1), Ok(()));
        assert_eq!(
            check(0, 5),
            Err(AgentError::InvalidParams {
                agent: "seller".into(),
                message: "`floor` must be at least 1".into()
            })
        );
        assert_eq!(
            check(5, 2),
            Err(AgentError::InvalidParams {
                agent: "seller".into(),
                message: "`ceiling` (2) must be at least `floor` (5)".into()
            })
        );
    }
}
