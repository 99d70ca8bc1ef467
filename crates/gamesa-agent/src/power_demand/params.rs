//! The power-demand keys of an agent's params table ([`PowerDemandParams`]): their
//! defaults, how they are read from the agent's own flat table
//! ([`params_with_power_demand!`](crate::params_with_power_demand)) and validated.

use serde::de::{self, MapAccess};

use crate::AgentError;

/// The power-demand keys of an agent's `params` table: what the CPU and GPU agents (and
/// any agent that buys power for one component) read into [`PowerDemand`]. They sit in
/// the same flat table as the agent's own keys;
/// [`params_with_power_demand!`](crate::params_with_power_demand) declares such a table.
/// Every key is optional: [`PowerDemandParams::new`] gives the defaults.
///
/// [`PowerDemand`]: super::PowerDemand
#[derive(Debug, Clone, PartialEq)]
pub struct PowerDemandParams {
    /// Component id in telemetry and in `PowerLimit` actuations.
    pub component: String,
    /// The limit the component has without buying anything, in mW. Default: the
    /// component's `limit_min_mw` from telemetry.
    pub baseline_mw: Option<u64>,
    /// The highest limit it buys up to, in mW. Default: `limit_max_mw` from telemetry.
    pub max_mw: Option<u64>,
    /// Credits per mW of power budget bid at full marginal utility and weight 1.
    /// Default 10.
    pub power_price: u64,
    /// Credits per m°C of thermal headroom bid at full marginal utility and weight 1.
    /// Default 2.
    pub headroom_price: u64,
    /// Power bids are whole multiples of this, in mW.
    pub step_mw: u64,
    /// At or below this utilization (‰) the component is idle and buys nothing.
    /// Default 200.
    pub idle_permille: u16,
    /// From this utilization (‰) on it is saturated and wants its maximum. Default 900.
    pub saturated_permille: u16,
    /// The limit binds when draw is at least this share (‰) of it; below, the agent wants
    /// no more than its draw can use. Default 900.
    pub bound_permille: u16,
    /// Thermal resistance in °C per W (m°C of headroom per mW). Default: learned from
    /// telemetry with the RC model ([`crate::thermal_model`]).
    pub r_c_per_w: Option<f64>,
    /// Ambient temperature, in m°C. Default: learned with the thermal model from the
    /// component's own temperature and power.
    pub ambient_mc: Option<i32>,
    /// The agent keeps its limit below what would heat the component past
    /// `t_max − thermal_margin_mc` (from its learned thermal model), in m°C. Default
    /// 4000: below the thermal agent's critical threshold (`t_max − 3 °C`).
    pub thermal_margin_mc: i32,
    /// A performance signal of strength 1 multiplies the bid by `1 + this/1000`.
    /// Default 1000 (doubles it).
    pub performance_boost_permille: u32,
    /// An efficiency signal of strength 1 multiplies the bid by `1 − this/1000`.
    /// Default 500.
    pub efficiency_damping_permille: u32,
    /// A `thermal_warning` for this component of strength 1 multiplies the bid by
    /// `1 − this/1000`. Default 750.
    pub thermal_damping_permille: u32,
    /// Hold budget up to what the component could use (its maximum, under the thermal
    /// cap) at the lowest price when nobody values it more, so that a jump in load finds
    /// the limit already there. Default true.
    pub standby: bool,
}

impl PowerDemandParams {
    /// The keys, as a params table spells them, in field order.
    pub const KEYS: [&'static str; 16] = [
        "component",
        "baseline_mw",
        "max_mw",
        "power_price",
        "headroom_price",
        "step_mw",
        "idle_permille",
        "saturated_permille",
        "bound_permille",
        "r_c_per_w",
        "ambient_mc",
        "thermal_margin_mc",
        "performance_boost_permille",
        "efficiency_damping_permille",
        "thermal_damping_permille",
        "standby",
    ];

    /// The defaults, for an agent whose component is `component` by default and whose
    /// power bids come in multiples of `step_mw` by default (the two that differ between
    /// the CPU and the GPU agents).
    pub fn new(component: &str, step_mw: u64) -> PowerDemandParams {
        PowerDemandParams {
            component: component.to_owned(),
            baseline_mw: None,
            max_mw: None,
            power_price: 10,
            headroom_price: 2,
            step_mw,
            idle_permille: 200,
            saturated_permille: 900,
            bound_permille: 900,
            r_c_per_w: None,
            ambient_mc: None,
            thermal_margin_mc: 4_000,
            performance_boost_permille: 1_000,
            efficiency_damping_permille: 500,
            thermal_damping_permille: 750,
            standby: true,
        }
    }

    /// Reads the value of `key` from `map` when `key` is one of [`Self::KEYS`], and says
    /// whether it was; any other key is left to the caller, with its value unread.
    pub fn read_key<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<bool, A::Error> {
        match key {
            "component" => self.component = map.next_value()?,
            "baseline_mw" => self.baseline_mw = map.next_value()?,
            "max_mw" => self.max_mw = map.next_value()?,
            "power_price" => self.power_price = map.next_value()?,
            "headroom_price" => self.headroom_price = map.next_value()?,
            "step_mw" => self.step_mw = map.next_value()?,
            "idle_permille" => self.idle_permille = map.next_value()?,
            "saturated_permille" => self.saturated_permille = map.next_value()?,
            "bound_permille" => self.bound_permille = map.next_value()?,
            "r_c_per_w" => self.r_c_per_w = map.next_value()?,
            "ambient_mc" => self.ambient_mc = map.next_value()?,
            "thermal_margin_mc" => self.thermal_margin_mc = map.next_value()?,
            "performance_boost_permille" => self.performance_boost_permille = map.next_value()?,
            "efficiency_damping_permille" => self.efficiency_damping_permille = map.next_value()?,
            "thermal_damping_permille" => self.thermal_damping_permille = map.next_value()?,
            "standby" => self.standby = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks the demand keys of agent `agent`'s params; the `InvalidParams` message
    /// names the offending key.
    pub fn validate(&self, agent: &str) -> Result<(), AgentError> {
        self.check().map_err(|message| AgentError::InvalidParams {
            agent: agent.to_owned(),
            message,
        })
    }

    fn check(&self) -> Result<(), String> {
        let name_ok = !self.component.is_empty()
            && self
                .component
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b));
        if !name_ok {
            return Err(format!(
                "`component` must be a non-empty name of [a-z0-9_-], got `{}`",
                self.component
            ));
        }
        if let (Some(baseline), Some(max)) = (self.baseline_mw, self.max_mw)
            && baseline >= max
        {
            return Err(format!(
                "`baseline_mw` ({baseline}) must be below `max_mw` ({max})"
            ));
        }
        if self.max_mw == Some(0) {
            return Err("`max_mw` must be positive".into());
        }
        for (key, value) in [
            ("power_price", self.power_price),
            ("headroom_price", self.headroom_price),
            ("step_mw", self.step_mw),
        ] {
            if value == 0 {
                return Err(format!("`{key}` must be at least 1"));
            }
        }
        if self.saturated_permille > 1000 || self.idle_permille >= self.saturated_permille {
            return Err(format!(
                "`idle_permille` ({}) must be below `saturated_permille` ({}), which is at \
                 most 1000",
                self.idle_permille, self.saturated_permille
            ));
        }
        if !(1..=1000).contains(&self.bound_permille) {
            return Err(format!(
                "`bound_permille` must be in 1..=1000, got {}",
                self.bound_permille
            ));
        }
        if let Some(r) = self.r_c_per_w
            && !(r.is_finite() && r > 0.0 && r <= 100.0)
        {
            return Err(format!("`r_c_per_w` must be in (0, 100] °C/W, got {r}"));
        }
        for (key, value) in [
            (
                "efficiency_damping_permille",
                self.efficiency_damping_permille,
            ),
            ("thermal_damping_permille", self.thermal_damping_permille),
        ] {
            if value > 1000 {
                return Err(format!("`{key}` must be at most 1000, got {value}"));
            }
        }
        if !(0..=50_000).contains(&self.thermal_margin_mc) {
            return Err(format!(
                "`thermal_margin_mc` must be in 0..=50000, got {}",
                self.thermal_margin_mc
            ));
        }
        if self.performance_boost_permille > 100_000 {
            return Err(format!(
                "`performance_boost_permille` must be at most 100000, got {}",
                self.performance_boost_permille
            ));
        }
        Ok(())
    }
}

/// The error for a params key that is neither one of `own_keys` nor a power-demand key,
/// worded as serde's for an unknown field (it names the key and lists every valid one).
pub fn unknown_key<E: de::Error>(key: &str, own_keys: &[&str]) -> E {
    let expected: Vec<String> = PowerDemandParams::KEYS
        .iter()
        .chain(own_keys)
        .map(|key| format!("`{key}`"))
        .collect();
    E::custom(format_args!(
        "unknown field `{key}`, expected one of {}",
        expected.join(", ")
    ))
}

/// Declares an agent's `params` struct whose first field holds the
/// [`PowerDemandParams`](crate::power_demand::PowerDemandParams), read from the same flat
/// table as the struct's own keys: `params = { step_mw = 500, cores = 4 }`.
///
/// The generated `Deserialize` does what `#[serde(deny_unknown_fields, default)]` does on
/// a struct with every key side by side, which serde's `flatten` cannot give (it cannot
/// be combined with `deny_unknown_fields`):
/// - a missing key keeps its value from the struct's `Default`, which you write;
/// - a key that is neither a field nor a power-demand key is an error that names it;
/// - each value is read at its key, so [`AgentSpec::params`](crate::AgentSpec::params)
///   names the key of a wrong-typed one.
///
/// ```
/// use gamesa_agent::{params_with_power_demand, power_demand::PowerDemandParams};
///
/// params_with_power_demand! {
///     #[derive(Debug, Clone, PartialEq)]
///     pub struct FanParams {
///         pub demand: PowerDemandParams,
///         /// Fans sold.
///         pub fans: u32,
///     }
/// }
///
/// impl Default for FanParams {
///     fn default() -> Self {
///         FanParams { demand: PowerDemandParams::new("fan0", 500), fans: 2 }
///     }
/// }
///
/// let table: toml::Table = "step_mw = 100\nfans = 3".parse().unwrap();
/// let params: FanParams = toml::Value::Table(table).try_into().unwrap();
/// assert_eq!((params.demand.step_mw, params.demand.component.as_str(), params.fans), (100, "fan0", 3));
///
/// let typo: toml::Table = "fanz = 3".parse().unwrap();
/// let err = toml::Value::Table(typo).try_into::<FanParams>().unwrap_err();
/// assert!(err.to_string().contains("unknown field `fanz`"));
/// ```
#[macro_export]
macro_rules! params_with_power_demand {
    (
        $(#[$struct_attr:meta])*
        $vis:vis struct $name:ident {
            $(#[$demand_attr:meta])*
            $demand_vis:vis $demand:ident: PowerDemandParams,
            $(
                $(#[$field_attr:meta])*
                $field_vis:vis $field:ident: $field_ty:ty,
            )*
        }
    ) => {
        $(#[$struct_attr])*
        $vis struct $name {
            $(#[$demand_attr])*
            $demand_vis $demand: $crate::power_demand::PowerDemandParams,
            $(
                $(#[$field_attr])*
                $field_vis $field: $field_ty,
            )*
        }

        impl<'de> $crate::__serde::Deserialize<'de> for $name {
            fn deserialize<D>(deserializer: D) -> ::core::result::Result<Self, D::Error>
            where
                D: $crate::__serde::Deserializer<'de>,
            {
                struct Keys;

                impl<'de> $crate::__serde::de::Visitor<'de> for Keys {
                    type Value = $name;

                    fn expecting(
                        &self,
                        formatter: &mut ::core::fmt::Formatter<'_>,
                    ) -> ::core::fmt::Result {
                        formatter.write_str(::core::concat!("struct ", ::core::stringify!($name)))
                    }

                    fn visit_map<A>(self, mut map: A) -> ::core::result::Result<$name, A::Error>
                    where
                        A: $crate::__serde::de::MapAccess<'de>,
                    {
                        let mut params = <$name as ::core::default::Default>::default();
                        while let ::core::option::Option::Some(key) =
                            map.next_key::<::std::string::String>()?
                        {
                            match key.as_str() {
                                $(::core::stringify!($field) => params.$field = map.next_value()?,)*
                                _ if params.$demand.read_key(&key, &mut map)? => {}
                                _ => {
                                    return ::core::result::Result::Err(
                                        $crate::power_demand::unknown_key(
                                            &key,
                                            &[$(::core::stringify!($field)),*],
                                        ),
                                    );
                                }
                            }
                        }
                        ::core::result::Result::Ok(params)
                    }
                }

                deserializer.deserialize_map(Keys)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::power_demand::fixtures::ME;

    crate::params_with_power_demand! {
        #[derive(Debug, Clone, PartialEq)]
        struct FanParams {
            demand: PowerDemandParams,
            fans: u32,
            fan_price: Option<u64>,
        }
    }

    impl Default for FanParams {
        fn default() -> Self {
            FanParams {
                demand: PowerDemandParams::new("fan0", 500),
                fans: 2,
                fan_price: None,
            }
        }
    }

    fn fan_params(table: &str) -> Result<FanParams, AgentError> {
        crate::AgentSpec {
            id: ME,
            name: "fan".into(),
            kind: "fan".into(),
            weight: 1,
            params: table.parse().unwrap(),
            module: None,
        }
        .params()
    }

    #[test]
    fn demand_keys_and_own_keys_are_read_from_one_flat_table() {
        let params = fan_params(
            r#"
            component = "fan1"
            baseline_mw = 1
            max_mw = 2
            power_price = 3
            headroom_price = 4
            step_mw = 5
            idle_permille = 6
            saturated_permille = 7
            bound_permille = 8
            r_c_per_w = 9
            ambient_mc = 10
            thermal_margin_mc = 11
            performance_boost_permille = 12
            efficiency_damping_permille = 13
            thermal_damping_permille = 14
            fans = 15
            "#,
        )
        .unwrap();
        let demand = PowerDemandParams {
            component: "fan1".into(),
            baseline_mw: Some(1),
            max_mw: Some(2),
            power_price: 3,
            headroom_price: 4,
            step_mw: 5,
            idle_permille: 6,
            saturated_permille: 7,
            bound_permille: 8,
            r_c_per_w: Some(9.0),
            ambient_mc: Some(10),
            thermal_margin_mc: 11,
            performance_boost_permille: 12,
            efficiency_damping_permille: 13,
            thermal_damping_permille: 14,
            standby: true,
        };
        assert_eq!(
            params,
            FanParams {
                demand,
                fans: 15,
                fan_price: None
            }
        );
        // A missing key keeps its default, the agent's own defaults included.
        assert_eq!(fan_params("").unwrap(), FanParams::default());
        assert_eq!(
            fan_params("fan_price = 7").unwrap().demand,
            PowerDemandParams::new("fan0", 500)
        );
    }

    #[test]
    fn every_listed_key_is_read() {
        for key in PowerDemandParams::KEYS {
            let value = match key {
                "component" => "\"x\"",
                "standby" => "false",
                _ => "1",
            };
            let params = fan_params(&format!("{key} = {value}"));
            assert!(params.is_ok(), "{key}: {params:?}");
            assert_ne!(params.unwrap(), FanParams::default(), "{key}");
        }
    }

    #[test]
    fn an_unknown_key_is_an_error_that_names_it_and_every_valid_key() {
        let Err(AgentError::InvalidParams { agent, message }) = fan_params("stepmw = 10") else {
            panic!("a typo was accepted");
        };
        assert_eq!(agent, "fan");
        assert_eq!(
            message,
            "unknown field `stepmw`, expected one of `component`, `baseline_mw`, `max_mw`, \
             `power_price`, `headroom_price`, `step_mw`, `idle_permille`, \
             `saturated_permille`, `bound_permille`, `r_c_per_w`, `ambient_mc`, \
             `thermal_margin_mc`, `performance_boost_permille`, \
             `efficiency_damping_permille`, `thermal_damping_permille`, `standby`, `fans`, `fan_price`"
        );
    }

    #[test]
    fn a_wrong_typed_value_is_named_by_its_key() {
        for (table, key) in [("step_mw = \"x\"", "step_mw"), ("fans = -1", "fans")] {
            let Err(AgentError::InvalidParams { message, .. }) = fan_params(table) else {
                panic!("{table} was accepted");
            };
            assert!(
                message.starts_with(&format!("`{key}`: ")),
                "{table}: {message}"
            );
        }
    }
}
