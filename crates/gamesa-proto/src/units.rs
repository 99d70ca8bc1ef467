//! Integer units of the market: prices, quantities, credits and ticks. No floats.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ProtoError;

macro_rules! integer_unit {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize,
            Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

integer_unit!(
    /// Credits per unit of a resource. Valid book prices lie in `[Price::MIN, Price::MAX]`.
    Price
);
integer_unit!(
    /// An amount of a resource, in the resource's own unit (mW, m°C, cores, µs, %, MB).
    Quantity
);
integer_unit!(
    /// An amount of the central bank's currency.
    Credits
);
integer_unit!(
    /// A tick of the conductor: the market's only notion of time.
    Tick
);

impl Price {
    pub const MIN: Price = Price(1);
    /// Chosen so that `Price::MAX * Quantity::MAX` fits in a `u64` of credits.
    pub const MAX: Price = Price(1_000_000_000);

    /// Returns the price if it lies in the valid book range.
    pub fn checked(value: u64) -> Result<Price, ProtoError> {
        let price = Price(value);
        if (Price::MIN..=Price::MAX).contains(&price) {
            Ok(price)
        } else {
            Err(ProtoError::PriceOutOfRange {
                price,
                min: Price::MIN,
                max: Price::MAX,
            })
        }
    }
}

impl Quantity {
    pub const MAX: Quantity = Quantity(1_000_000_000);

    /// Returns the quantity if it is positive and at most [`Quantity::MAX`].
    pub fn checked(value: u64) -> Result<Quantity, ProtoError> {
        if (1..=Quantity::MAX.0).contains(&value) {
            Ok(Quantity(value))
        } else {
            Err(ProtoError::QuantityOutOfRange {
                quantity: Quantity(value),
                max: Quantity::MAX,
            })
        }
    }
}

impl Credits {
    /// The cost of `quantity` units at `price`. Cannot overflow for validated inputs,
    /// since `Price::MAX * Quantity::MAX < u64::MAX`; saturates otherwise.
    pub fn cost(price: Price, quantity: Quantity) -> Credits {
        Credits(price.0.saturating_mul(quantity.0))
    }
}

impl Tick {
    pub fn next(self) -> Tick {
        Tick(self.0.saturating_add(1))
    }

    pub fn plus(self, ticks: u64) -> Tick {
        Tick(self.0.saturating_add(ticks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_bounds_are_checked() {
        assert_eq!(Price::checked(1), Ok(Price(1)));
        assert_eq!(
            Price::checked(0),
            Err(ProtoError::PriceOutOfRange {
                price: Price(0),
                min: Price::MIN,
                max: Price::MAX
            })
        );
        assert!(Price::checked(Price::MAX.0 + 1).is_err());
    }

    #[test]
    fn zero_quantity_is_rejected() {
        assert_eq!(
            Quantity::checked(0),
            Err(ProtoError::QuantityOutOfRange {
                quantity: Quantity(0),
                max: Quantity::MAX
            })
        );
    }

    #[test]
    fn max_cost_fits_in_credits() {
        assert!(Price::MAX.0.checked_mul(Quantity::MAX.0).is_some());
    }
}
