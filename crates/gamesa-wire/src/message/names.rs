//! [`wire_names!`]: declares an enum of unit variants whose wire names are written once,
//! for serde and for `as_str`, `parse` and `ALL` alike.

/// Declares an enum of unit variants, each with its wire name: serde writes and reads
/// the variant as that name, `as_str` returns it, `parse` reads it back (`None` for any
/// other name, even where serde falls back to a `#[serde(other)]` variant), and `ALL`
/// lists the variants in order. The enum derives `Serialize` and `Deserialize` here; its
/// docs, other derives and variant attributes pass through.
macro_rules! wire_names {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident = $wire:literal,
            )*
        }
    ) => {
        #[derive(serde::Serialize, serde::Deserialize)]
        $(#[$meta])*
        $vis enum $name {
            $(
                $(#[$variant_meta])*
                #[serde(rename = $wire)]
                $variant,
            )*
        }

        impl $name {
            /// Every variant, in order.
            pub const ALL: [$name; [$($wire),*].len()] = [$($name::$variant),*];

            /// The name on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }

            /// The variant with this wire name.
            pub fn parse(name: &str) -> Option<$name> {
                $name::ALL
                    .into_iter()
                    .find(|variant| variant.as_str() == name)
            }
        }
    };
}

pub(super) use wire_names;

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use serde::{Serialize, de::DeserializeOwned};

    use crate::message::{ErrorCode, QueryName, RequestType, Topic};

    /// Serde writes each variant as its `as_str`, and serde and `parse` read it back.
    fn names_agree<T, const N: usize>(
        all: [T; N],
        as_str: fn(T) -> &'static str,
        parse: fn(&str) -> Option<T>,
    ) where
        T: Copy + PartialEq + Debug + Serialize + DeserializeOwned,
    {
        for variant in all {
            let bytes = rmp_serde::to_vec_named(&variant).unwrap();
            let name: String = rmp_serde::from_slice(&bytes).unwrap();
            assert_eq!(name, as_str(variant), "{variant:?}");
            assert_eq!(rmp_serde::from_slice::<T>(&bytes).unwrap(), variant);
            assert_eq!(parse(&name), Some(variant));
        }
    }

    #[test]
    fn wire_names_are_the_serde_names() {
        names_agree(ErrorCode::ALL, ErrorCode::as_str, ErrorCode::parse);
        names_agree(RequestType::ALL, RequestType::as_str, RequestType::parse);
        names_agree(QueryName::ALL, QueryName::as_str, QueryName::parse);
        names_agree(Topic::ALL, Topic::as_str, Topic::parse);
        assert_eq!(RequestType::parse("teleport"), None);
    }
}
