//! Demand for power and thermal headroom, shared by agents that buy power for one
//! component (the CPU and GPU agents): bid the marginal utility of more power, buy the
//! headroom its heat will use, and set the component's power limit from what is held.
//!
//! An agent keeps the [`PowerDemandParams`] among its params (a struct declared with
//! [`params_with_power_demand!`](crate::params_with_power_demand), so the keys sit in the
//! same flat table as its own), builds one [`PowerDemand`] from them and its weight as
//! state, and calls [`PowerDemand::decide`] every tick.
//!
//! The strategy, once per tick:
//! 1. **Limit.** The limit the component should have is `baseline + held(power_budget_mw)`,
//!    clamped to `[limit_min, max]` and lowered to the thermal cap (4.). When it differs
//!    from the enforced limit, ask for it with [`Actuation::PowerLimit`]. Budget that is
//!    not renewed therefore lowers the limit by itself as its leases expire. While a
//!    safety signal concerns the component the agent only ever asks for a *lower* limit,
//!    so it never fights the guardian's safe limit. A raise that was not applied (the
//!    guardian refused it) is asked again at half the size, then a quarter, and so on,
//!    until one passes.
//! 2. **Need.** With progress reported for the component (a performance counter, a
//!    workload's reports, the twin: `progress_micro`), the agent wants every limit it can
//!    use, up to `max` and the thermal cap, and lets its learned value (3.) decide how much
//!    of it it wins; a component doing no work wants nothing. Without progress, the
//!    utilization prior says how much it needs: saturation `s` ramps from 0 at
//!    `idle_permille` utilization to 1 at `saturated_permille`, and the wanted limit is
//!    `baseline + s · (max − baseline)`, at most the thermal cap. Either way, when the
//!    component draws well under its limit (`power < limit · bound_permille`) the limit
//!    is not what holds it back, so the wanted limit is capped at `power / bound`. The bid
//!    quantity is the wanted limit minus baseline minus the budget held beyond this tick,
//!    rounded up to `step_mw`, capped at `max`. Leases in their last tick do not count, so
//!    the agent renews them on time.
//! 3. **Price: a ladder at the learned marginal value.** With progress, the marginal work
//!    of one more watt at limit `L'` is learned ([`crate::work_model`]): the elasticity
//!    `ε` of the work rate `r` to the limit, fitted on the agent's own limit changes, gives
//!    `ε · r · L'^(ε−1) / L^ε` at the current limit `L`, in work per second per W; its
//!    utility is that times [`UTILITY_PER_W`] (1 kW), times `power_price · weight · signals`
//!    credits per mW. No law of the hardware is assumed: a memory-bound GPU, whose work
//!    barely grows with power, learns a small `ε` and bids little. Without progress the
//!    agent falls back on a prior it says it uses ([`PowerDemand::learned_elasticity`] is
//!    `None`): work taken to grow as `d^(2/3) · L^(1/3)` at utilization `d` (the
//!    cube-root law of voltage and frequency scaling), so one more mW at `L` is worth
//!    `d^(2/3) · (max / L)^(2/3) · REFERENCE_MW / max`. The bid is split into at most
//!    [`MAX_TRANCHES`] tranches from the lasting limit up, each priced at the utility of
//!    its middle, so that the book, which fills the dearest bids first, gives each watt to
//!    whoever values it most.
//!    `signals` is `(1 + boost · performance) · (1 − damping · efficiency) ·
//!    (1 − damping · thermal_warning)`, taking the strongest live signal of each domain
//!    that is global or names this component (`thermal_warning.gpu0`). Any such
//!    safety-domain signal stops all buying.
//! 4. **Heat.** The component's thermal resistance `r` (°C per W, which is m°C per mW) and
//!    the ambient temperature are the `r_c_per_w` and `ambient_mc` params or, by default,
//!    learned online from its own temperature and power ([`crate::thermal_model`]: the RC
//!    model with its ambient, fitted by recursive least squares). The **thermal cap** is
//!    the highest limit that keeps the component below `t_max − thermal_margin`:
//!    `(t_max − margin − ambient) / r` at steady state, relaxed while the component is
//!    still cool by what its fitted time constant lets it heat within
//!    [`THERMAL_HORIZON_S`]. Each mW also costs `r` m°C of headroom: the headroom bid is
//!    priced at `headroom_price` times the utility at the lasting limit, for
//!    `r · (budget held beyond this tick + the power bid)` minus headroom already held
//!    beyond this tick. Until the fit is trusted (a couple of seconds of samples), no
//!    headroom is bid and there is no cap.
//! 5. **Standby.** Budget above the wanted limit, up to what the component could use (its
//!    maximum under the thermal cap), is bid at the lowest price (`standby`, default on):
//!    nobody who values those watts is kept from them, and when the load jumps the limit
//!    is already there rather than climbing at the gate's step limit.
//! 6. **Money.** The ladder is cut where it and its headroom no longer fit in the
//!    balance.
//!
//! Missing telemetry never panics: without the component in the frame, or without a
//! baseline or maximum (from params or telemetry), the agent does nothing this tick.

use gamesa_proto::{Actuation, ComponentTelemetry, Domain, Price, Resource, Side, Signal};
use serde::de::{self, MapAccess};

use crate::{
    AgentError, Intent, Observation, pricing::price_from_utility, quote::resting_this_tick,
    thermal_model::ThermalModel, work_model::WorkModel,
};

/// The power-demand keys of an agent's `params` table: what the CPU and GPU agents (and
/// any agent that buys power for one component) read into [`PowerDemand`]. They sit in
/// the same flat table as the agent's own keys;
/// [`params_with_power_demand!`](crate::params_with_power_demand) declares such a table.
/// Every key is optional: [`PowerDemandParams::new`] gives the defaults.
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

/// How the live signals bear on this component's bids.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalPressure {
    /// Multiplies the marginal utility: above 1 boosts, below 1 dampens.
    pub factor: f64,
    /// A safety signal concerns this component: buy nothing, never raise the limit.
    pub safety: bool,
}

/// How far ahead the thermal cap looks: the limit may exceed the steady-state bound
/// while the component is cool, as long as it stays below target over this horizon.
pub const THERMAL_HORIZON_S: f64 = 5.0;

/// Power bids are split into at most this many tranches, each priced at the marginal
/// utility of its middle, so that the book fills the most valuable watts first.
pub const MAX_TRANCHES: u64 = 8;

/// The power at which a component's marginal utility is measured: one more mW at a limit
/// of `max` is worth `REFERENCE_MW / max` of a mW at full utility.
pub const REFERENCE_MW: f64 = 100_000.0;

/// One unit of learned utility: the work per second that 1 kW more would buy at the
/// current marginal rate. Prices are `power_price` credits per mW per unit, so a GPU
/// doing one unit of work per second near 300 W at elasticity 0.4 bids about
/// `1.3 · power_price`, close to what the utilization prior bids.
pub const UTILITY_PER_W: f64 = 1000.0;

/// The demand side's state: what it learned from telemetry and what it last asked for.
#[derive(Debug, Clone)]
pub struct PowerDemand {
    params: PowerDemandParams,
    /// The agent's weight: it scales every price.
    weight: u32,
    /// The RC model fitted to the component's own samples.
    thermal: ThermalModel,
    /// What a watt is worth to the component, learned from its progress.
    work: WorkModel,
    /// The last limit asked for, compared against when telemetry has no limit reading.
    last_limit_mw: Option<u64>,
    /// Consecutive raises that were not applied (the guardian refused them): each halves
    /// the next raise, so that a raise too large for a contract is retried smaller.
    refused_raises: u32,
}

impl PowerDemand {
    /// Demand from validated params (see [`PowerDemandParams::validate`]) for an agent of
    /// weight `weight`, with nothing learned yet.
    pub fn new(params: PowerDemandParams, weight: u32) -> PowerDemand {
        PowerDemand {
            params,
            weight,
            thermal: ThermalModel::default(),
            work: WorkModel::default(),
            last_limit_mw: None,
            refused_raises: 0,
        }
    }

    /// The intents of one tick: at most one power limit, one power bid, one headroom bid.
    pub fn decide(&mut self, obs: &Observation<'_>) -> Vec<Intent> {
        let mut intents = Vec::new();
        let Some(component) = obs.frame.component(&self.params.component) else {
            return intents;
        };
        self.observe_heat(component, obs.frame.interval_ms);
        self.work.observe(component, obs.frame.interval_ms);
        let baseline = self.params.baseline_mw.or(component.limit_min_mw);
        let max = self.params.max_mw.or(component.limit_max_mw);
        let (Some(baseline), Some(max)) = (baseline, max) else {
            return intents;
        };
        if max <= baseline {
            return intents;
        }
        let pressure = self.signal_pressure(obs.signals);
        let held = obs.held(Resource::PowerBudgetMw);
        let floor = component.limit_min_mw.unwrap_or(baseline).min(max);
        let thermal_cap = self.thermal_cap_mw(component).map(|cap| cap.max(floor));
        let limit = baseline
            .saturating_add(held)
            .min(thermal_cap.unwrap_or(u64::MAX))
            .max(floor)
            .min(max);
        intents.extend(self.limit_change(component.limit_mw, limit, pressure.safety));
        if !pressure.safety {
            let max_wanted = thermal_cap.map_or(max, |cap| cap.min(max));
            intents.extend(self.bids(obs, component, baseline, max, max_wanted, pressure.factor));
        }
        intents
    }

    /// Strongest live signal per domain among those that concern this component.
    pub fn signal_pressure(&self, signals: &[Signal]) -> SignalPressure {
        let (mut performance, mut efficiency, mut thermal) = (0u16, 0u16, 0u16);
        let mut safety = false;
        for signal in signals.iter().filter(|s| self.concerns_me(s)) {
            let strength = signal.strength.permille();
            match signal.domain {
                Domain::Safety => safety = true,
                Domain::Thermal => thermal = thermal.max(strength),
                Domain::Performance => performance = performance.max(strength),
                Domain::Efficiency => efficiency = efficiency.max(strength),
                Domain::Power | Domain::Background => {}
            }
        }
        let scaled = |permille: u32, strength: u16| {
            f64::from(permille) / 1000.0 * f64::from(strength) / 1000.0
        };
        let boost = 1.0 + scaled(self.params.performance_boost_permille, performance);
        let efficiency =
            (1.0 - scaled(self.params.efficiency_damping_permille, efficiency)).max(0.0);
        let thermal = (1.0 - scaled(self.params.thermal_damping_permille, thermal)).max(0.0);
        SignalPressure {
            factor: boost * efficiency * thermal,
            safety,
        }
    }

    /// A signal concerns this component when it is global (`game_started`) or names it
    /// after a dot (`thermal_warning.gpu0`).
    fn concerns_me(&self, signal: &Signal) -> bool {
        match signal.kind.as_str().split_once('.') {
            None => true,
            Some((_, target)) => target == self.params.component,
        }
    }

    /// Saturation in `[0, 1]`: 0 up to `idle_permille`, 1 from `saturated_permille`.
    pub fn saturation(&self, utilization_permille: u16) -> f64 {
        let utilization = f64::from(utilization_permille.min(1000));
        let idle = f64::from(self.params.idle_permille);
        let saturated = f64::from(self.params.saturated_permille);
        // Params validation guarantees idle < saturated, so the span is positive.
        ((utilization - idle) / (saturated - idle)).clamp(0.0, 1.0)
    }

    /// Thermal resistance in use: the param, else the RC model fitted to telemetry
    /// (`None` until that fit is trusted, a couple of seconds after the start).
    pub fn thermal_resistance(&self) -> Option<f64> {
        self.params.r_c_per_w.or(self.thermal.resistance())
    }

    /// The ambient temperature in use, °C: the param, else the fitted one.
    pub fn ambient_c(&self) -> Option<f64> {
        self.params
            .ambient_mc
            .map(|ambient_mc| f64::from(ambient_mc) / 1000.0)
            .or(self.thermal.ambient_c())
    }

    /// What the agent has learned of its component's work: the elasticity of its work
    /// rate to its limit and how many limit changes it was learned from, or `None`
    /// while the component reports no progress (the agent then bids on the utilization
    /// prior).
    pub fn learned_elasticity(&self) -> Option<(f64, u32)> {
        self.work.rate()?;
        Some((self.work.elasticity(), self.work.changes()))
    }

    /// The highest limit that keeps the component below `t_max − thermal_margin`: at
    /// steady state (`T_amb + R · P`), relaxed while it is still cool by what its time
    /// constant lets it heat within [`THERMAL_HORIZON_S`]. `None` without a `t_max`, a
    /// temperature or a resistance.
    pub fn thermal_cap_mw(&self, component: &ComponentTelemetry) -> Option<u64> {
        let t_max_mc = component.t_max_mc?;
        let temp_c = f64::from(component.temp_mc?) / 1000.0;
        let r = self.thermal_resistance()?;
        let target_c = f64::from(t_max_mc.saturating_sub(self.params.thermal_margin_mc)) / 1000.0;
        let ambient_c = self.ambient_c()?;
        // T(H) = T_ss + (T − T_ss) · e^(−H/τ) ≤ target  ⇔  T_ss ≤ (target − T·e) / (1 − e).
        let decay = match (self.params.r_c_per_w, self.thermal.time_constant_s()) {
            (None, Some(tau)) if tau > 0.0 => (-THERMAL_HORIZON_S / tau).exp(),
            _ => 0.0,
        };
        let steady_max_c = if temp_c >= target_c {
            target_c
        } else {
            (target_c - temp_c * decay) / (1.0 - decay)
        };
        let cap_w = (steady_max_c - ambient_c) / r;
        // `as` saturates: a huge cap is no cap, a negative one is zero.
        cap_w.is_finite().then(|| (cap_w * 1000.0).max(0.0) as u64)
    }

    fn observe_heat(&mut self, component: &ComponentTelemetry, interval_ms: u64) {
        if self.params.r_c_per_w.is_some() {
            return;
        }
        let (Some(temp_mc), Some(power_mw)) = (component.temp_mc, component.power_mw) else {
            return;
        };
        self.thermal.observe(
            f64::from(temp_mc) / 1000.0,
            power_mw as f64 / 1000.0,
            interval_ms as f64 / 1000.0,
        );
    }

    fn limit_change(
        &mut self,
        enforced_mw: Option<u64>,
        limit_mw: u64,
        safety: bool,
    ) -> Option<Intent> {
        let current = enforced_mw.or(self.last_limit_mw);
        let wanted = match current {
            _ if limit_mw == 0 => false,
            Some(current) if safety => limit_mw < current,
            Some(current) => limit_mw != current,
            None => !safety,
        };
        if !wanted {
            self.refused_raises = 0;
            return None;
        }
        let mut limit_mw = limit_mw;
        if let (Some(enforced), Some(asked)) = (enforced_mw, self.last_limit_mw)
            && asked > enforced
            && limit_mw > enforced
        {
            // The last raise did not happen: ask for less, halving each time.
            self.refused_raises = self.refused_raises.saturating_add(1).min(16);
            let step = (limit_mw - enforced) >> self.refused_raises;
            limit_mw =
                enforced.saturating_add(step.max(self.params.step_mw.min(limit_mw - enforced)));
        } else {
            self.refused_raises = 0;
        }
        self.last_limit_mw = Some(limit_mw);
        Some(Intent::Actuate(Actuation::PowerLimit {
            component: self.params.component.clone(),
            limit_mw,
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn bids(
        &self,
        obs: &Observation<'_>,
        component: &ComponentTelemetry,
        baseline: u64,
        max: u64,
        max_wanted: u64,
        signal_factor: f64,
    ) -> Vec<Intent> {
        let mut intents = Vec::new();
        let span = max - baseline;
        // With progress, the agent wants all it can use and lets its learned value decide
        // how much it wins; without, the utilization prior says how much it needs.
        let learned_rate = self.work.rate();
        let mut wanted_limit = match learned_rate {
            Some(rate) if rate <= 0.0 => baseline,
            Some(_) => max_wanted,
            None => baseline
                .saturating_add(
                    (self.saturation(component.utilization_permille) * span as f64).round() as u64,
                )
                .min(max_wanted),
        };
        if let (Some(power), Some(limit)) = (component.power_mw, component.limit_mw) {
            let bound = u64::from(self.params.bound_permille);
            if power.saturating_mul(1000) < limit.saturating_mul(bound) {
                // Drawing well under the limit: more limit would not be used.
                let useful = power.saturating_mul(1000) / bound;
                wanted_limit = wanted_limit.min(useful.max(baseline));
            }
        }
        let lasting_power = held_beyond_now(obs, Resource::PowerBudgetMw);
        let lasting_limit = baseline.saturating_add(lasting_power);
        let need = wanted_limit.saturating_sub(lasting_limit);
        let room = span.saturating_sub(lasting_power);
        let step = self.params.step_mw;
        let wanted = need.div_ceil(step).saturating_mul(step).min(room);

        let scale = f64::from(self.weight) * signal_factor;
        let enforced_limit = component.limit_mw.unwrap_or(lasting_limit).max(1);
        let max_mw = max as f64;
        // The utilization prior: work taken to grow as d^(2/3) · L^(1/3) (the cube-root
        // law of voltage and frequency scaling at utilization d), so one more mW at L is
        // worth d^(2/3) · (max / L)^(2/3) / max, scaled to REFERENCE_MW.
        let prior_demand =
            (f64::from(component.utilization_permille.min(1000)) / 1000.0).powf(2.0 / 3.0);
        let utility_at = |limit_mw: f64| match learned_rate {
            Some(_) => {
                scale
                    * self
                        .work
                        .marginal_per_w(enforced_limit, limit_mw)
                        .unwrap_or(0.0)
                    * UTILITY_PER_W
            }
            None => {
                scale * prior_demand * (max_mw / limit_mw.max(1.0)).powf(2.0 / 3.0) * REFERENCE_MW
                    / max_mw
            }
        };
        let resistance = self.thermal_resistance();
        let headroom_price = price_from_utility(
            self.params.headroom_price as f64 * utility_at(lasting_limit as f64),
        );
        let heat_price_per_mw = match (resistance, headroom_price) {
            (Some(r), Some(price)) => r * price.0 as f64,
            _ => 0.0,
        };

        // The ladder: tranches from the lasting limit up, each at the utility of its
        // middle, cut where the balance runs out.
        let tranche = wanted
            .div_ceil(MAX_TRANCHES)
            .div_ceil(step)
            .saturating_mul(step)
            .max(step);
        let mut budget = obs.balance.0 as f64;
        let mut from = lasting_limit;
        let mut left = wanted;
        let mut bought = 0u64;
        while left > 0 {
            let quantity = tranche.min(left);
            let middle = from as f64 + quantity as f64 / 2.0;
            let Some(price) =
                price_from_utility(self.params.power_price as f64 * utility_at(middle))
            else {
                break;
            };
            let per_mw = price.0 as f64 + heat_price_per_mw;
            let affordable = (budget / per_mw).floor().max(0.0) as u64;
            let quantity = quantity.min(affordable);
            if quantity == 0 {
                break;
            }
            intents.extend(resting_this_tick(
                obs,
                Resource::PowerBudgetMw,
                Side::Bid,
                price,
                quantity,
            ));
            budget -= price.0 as f64 * quantity as f64;
            from = from.saturating_add(quantity);
            left -= quantity;
            bought = bought.saturating_add(quantity);
        }

        // Standby: budget up to what the component could use (its maximum, under the
        // thermal cap) that nobody values more is held at the lowest price, so that when
        // its load jumps the limit is already there instead of climbing at the gate's
        // step limit. Any bid that values the watts outbids it at the next lease.
        let standby_from = lasting_limit.saturating_add(wanted).max(from);
        let standby = (max_wanted.min(max).saturating_sub(standby_from) / step)
            .saturating_mul(step)
            .min(budget.max(0.0) as u64 / Price::MIN.0);
        if self.params.standby && standby > 0 {
            intents.extend(resting_this_tick(
                obs,
                Resource::PowerBudgetMw,
                Side::Bid,
                Price::MIN,
                standby,
            ));
            budget -= (Price::MIN.0 * standby) as f64;
        }

        if let (Some(r), Some(headroom_price)) = (resistance, headroom_price) {
            let covered_mw = lasting_power.saturating_add(bought);
            let heat_mc = (covered_mw as f64 * r).ceil() as u64;
            let need_mc = heat_mc.saturating_sub(held_beyond_now(obs, Resource::ThermalHeadroomMc));
            let left = budget.max(0.0) as u64;
            let headroom_quantity = need_mc.min(left / headroom_price.0);
            intents.extend(resting_this_tick(
                obs,
                Resource::ThermalHeadroomMc,
                Side::Bid,
                headroom_price,
                headroom_quantity,
            ));
        }
        intents
    }
}

/// What this agent holds of `resource` in leases that outlive the current tick: leases
/// in their last tick are about to lapse and are renewed as if already gone.
fn held_beyond_now(obs: &Observation<'_>, resource: Resource) -> u64 {
    obs.leases
        .iter()
        .filter(|lease| {
            lease.holder == obs.agent && lease.resource == resource && lease.expires_at > obs.tick
        })
        .map(|lease| lease.quantity.0)
        .fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{AgentId, ComponentKind, Credits, Quantity, Tick, TimeInForce};

    use super::*;
    use crate::testkit::{World, component, component_with_limits, lease, signal};

    const ME: AgentId = AgentId(1);

    fn params() -> PowerDemandParams {
        PowerDemandParams {
            component: "gpu0".into(),
            baseline_mw: None,
            max_mw: None,
            power_price: 4,
            headroom_price: 2,
            step_mw: 1_000,
            idle_permille: 200,
            saturated_permille: 900,
            bound_permille: 900,
            r_c_per_w: Some(0.2),
            ambient_mc: Some(25_000),
            thermal_margin_mc: 4_000,
            performance_boost_permille: 1_000,
            efficiency_damping_permille: 500,
            thermal_damping_permille: 750,
            standby: false,
        }
    }

    /// A GPU with limits 100..300 W, bound by its limit, at `utilization` ‰.
    fn gpu(utilization: u16, limit_mw: u64) -> ComponentTelemetry {
        ComponentTelemetry {
            utilization_permille: utilization,
            power_mw: Some(limit_mw),
            limit_mw: Some(limit_mw),
            ..component_with_limits("gpu0", ComponentKind::Gpu)
        }
    }

    /// The bids for `resource`: the price of the first (the dearest tranche) and the
    /// total quantity of all.
    fn bid(intents: &[Intent], resource: Resource) -> Option<(Price, Quantity)> {
        let bids = ladder(intents, resource);
        let (price, _) = *bids.first()?;
        Some((price, Quantity(bids.iter().map(|(_, q)| q.0).sum())))
    }

    fn ladder(intents: &[Intent], resource: Resource) -> Vec<(Price, Quantity)> {
        intents
            .iter()
            .filter_map(|intent| match intent {
                Intent::Place(order) if order.resource == resource && order.side == Side::Bid => {
                    Some((order.price, order.quantity))
                }
                _ => None,
            })
            .collect()
    }

    fn limit(intents: &[Intent]) -> Option<u64> {
        intents.iter().find_map(|intent| match intent {
            Intent::Actuate(Actuation::PowerLimit { limit_mw, .. }) => Some(*limit_mw),
            _ => None,
        })
    }

    fn decide(params: PowerDemandParams, world: &World) -> Vec<Intent> {
        PowerDemand::new(params, 1).decide(&world.observation(ME))
    }

    #[test]
    fn saturated_component_below_max_outbids_a_moderately_busy_one() {
        let busy = World::with_components(vec![gpu(1000, 100_000)]);
        let moderate = World::with_components(vec![gpu(500, 100_000)]);
        let (busy_price, busy_quantity) =
            bid(&decide(params(), &busy), Resource::PowerBudgetMw).unwrap();
        let (moderate_price, moderate_quantity) =
            bid(&decide(params(), &moderate), Resource::PowerBudgetMw).unwrap();
        assert!(
            busy_price > moderate_price,
            "{busy_price} vs {moderate_price}"
        );
        assert!(busy_quantity > moderate_quantity);
        // Saturated: wants the whole range up to max.
        assert_eq!(busy_quantity, Quantity(200_000));
    }

    #[test]
    fn bids_rest_through_the_current_tick_only() {
        let world = World::with_components(vec![gpu(1000, 100_000)]);
        let intents = decide(params(), &world);
        for intent in &intents {
            if let Intent::Place(order) = intent {
                assert_eq!(
                    order.time_in_force,
                    TimeInForce::Limit {
                        expires_at: Some(world.tick)
                    }
                );
            }
        }
    }

    #[test]
    fn idle_component_bids_nothing_and_its_limit_falls_as_leases_expire() {
        let mut world = World::with_components(vec![gpu(50, 150_000)]);
        world.leases = vec![lease(ME, Resource::PowerBudgetMw, 50_000, world.tick)];
        let mut demand = PowerDemand::new(params(), 1);
        // The lease is live this tick: limit 150 W, as enforced; nothing to bid.
        let intents = demand.decide(&world.observation(ME));
        assert_eq!(intents, vec![]);
        // Next tick the lease has lapsed: the agent asks for its baseline.
        world.tick = world.tick.next();
        world.leases.clear();
        let intents = demand.decide(&world.observation(ME));
        assert_eq!(limit(&intents), Some(100_000));
        assert_eq!(bid(&intents, Resource::PowerBudgetMw), None);
        assert_eq!(bid(&intents, Resource::ThermalHeadroomMc), None);
    }

    #[test]
    fn held_budget_raises_the_limit_up_to_max() {
        let mut world = World::with_components(vec![gpu(1000, 100_000)]);
        world.leases = vec![
            lease(ME, Resource::PowerBudgetMw, 150_000, world.tick.plus(5)),
            lease(ME, Resource::PowerBudgetMw, 150_000, world.tick.plus(5)),
            // Someone else's lease does not count.
            lease(
                AgentId(9),
                Resource::PowerBudgetMw,
                50_000,
                world.tick.plus(5),
            ),
        ];
        let intents = decide(params(), &world);
        assert_eq!(limit(&intents), Some(300_000));
        // At max already: nothing more to buy.
        assert_eq!(bid(&intents, Resource::PowerBudgetMw), None);
    }

    #[test]
    fn a_lease_in_its_last_tick_is_renewed() {
        let mut world = World::with_components(vec![gpu(1000, 300_000)]);
        world.leases = vec![lease(ME, Resource::PowerBudgetMw, 200_000, world.tick)];
        let intents = decide(params(), &world);
        assert_eq!(limit(&intents), None, "the limit is already right");
        let (_, quantity) = bid(&intents, Resource::PowerBudgetMw).unwrap();
        assert_eq!(quantity, Quantity(200_000));
    }

    #[test]
    fn performance_signal_raises_the_bid_and_efficiency_lowers_it() {
        let plain = World::with_components(vec![gpu(800, 100_000)]);
        let (plain_price, _) = bid(&decide(params(), &plain), Resource::PowerBudgetMw).unwrap();

        let mut boosted = plain.clone();
        boosted.signals = vec![signal("game_started", Domain::Performance, 1000)];
        let (boosted_price, _) = bid(&decide(params(), &boosted), Resource::PowerBudgetMw).unwrap();
        assert!(
            boosted_price > plain_price,
            "{boosted_price} vs {plain_price}"
        );

        let mut thrifty = plain.clone();
        thrifty.signals = vec![signal("battery_saver", Domain::Efficiency, 1000)];
        let (thrifty_price, _) = bid(&decide(params(), &thrifty), Resource::PowerBudgetMw).unwrap();
        assert!(
            thrifty_price < plain_price,
            "{thrifty_price} vs {plain_price}"
        );
    }

    #[test]
    fn own_thermal_warning_dampens_but_another_components_does_not() {
        let plain = World::with_components(vec![gpu(1000, 100_000)]);
        let (plain_price, _) = bid(&decide(params(), &plain), Resource::PowerBudgetMw).unwrap();

        let mut other = plain.clone();
        other.signals = vec![signal("thermal_warning.cpu", Domain::Thermal, 1000)];
        let (other_price, _) = bid(&decide(params(), &other), Resource::PowerBudgetMw).unwrap();
        assert_eq!(other_price, plain_price);

        let mut mine = plain.clone();
        mine.signals = vec![signal("thermal_warning.gpu0", Domain::Thermal, 1000)];
        let (mine_price, _) = bid(&decide(params(), &mine), Resource::PowerBudgetMw).unwrap();
        assert!(mine_price < plain_price, "{mine_price} vs {plain_price}");
    }

    #[test]
    fn safety_signal_stops_buying_and_never_raises_the_limit() {
        let mut world = World::with_components(vec![gpu(1000, 100_000)]);
        world.leases = vec![lease(
            ME,
            Resource::PowerBudgetMw,
            50_000,
            world.tick.plus(3),
        )];
        world.signals = vec![signal("thermal_critical.gpu0", Domain::Safety, 1000)];
        // The guardian has cut the limit to 100 W; the agent must not push it back up.
        let intents = decide(params(), &world);
        assert_eq!(intents, vec![]);

        // But a lower limit is still asked for when budget lapses.
        world.components_mut()[0].limit_mw = Some(200_000);
        let intents = decide(params(), &world);
        assert_eq!(limit(&intents), Some(150_000));
        assert_eq!(bid(&intents, Resource::PowerBudgetMw), None);
    }

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

    #[test]
    fn weight_scales_the_price() {
        let world = World::with_components(vec![gpu(1000, 100_000)]);
        let params = PowerDemandParams {
            power_price: 1_000,
            ..params()
        };
        let (light, _) = bid(&decide(params.clone(), &world), Resource::PowerBudgetMw).unwrap();
        let heavy = PowerDemand::new(params, 3).decide(&world.observation(ME));
        let (heavy, _) = bid(&heavy, Resource::PowerBudgetMw).unwrap();
        // Three times the price, to within the rounding of each to a whole credit.
        assert!(heavy.0.abs_diff(light.0 * 3) <= 2, "{heavy} vs 3 × {light}");
    }

    #[test]
    fn a_refused_raise_is_retried_smaller() {
        let mut world = World::with_components(vec![gpu(1000, 100_000)]);
        world.leases = vec![lease(
            ME,
            Resource::PowerBudgetMw,
            200_000,
            world.tick.plus(5),
        )];
        let mut demand = PowerDemand::new(params(), 1);
        let mut ask = |world: &World| limit(&demand.decide(&world.observation(ME)));
        assert_eq!(ask(&world), Some(300_000));
        // Still at 100 W: the guardian refused the raise. Half of it, then a quarter.
        assert_eq!(ask(&world), Some(200_000));
        assert_eq!(ask(&world), Some(150_000));
        // Once a raise is applied, the next one asks for everything again.
        world.components_mut()[0].limit_mw = Some(150_000);
        assert_eq!(ask(&world), Some(300_000));
    }

    #[test]
    fn the_bid_is_a_ladder_whose_dearest_watts_come_first() {
        let world = World::with_components(vec![gpu(1000, 100_000)]);
        let params = PowerDemandParams {
            power_price: 1_000,
            step_mw: 5_000,
            ..params()
        };
        let bids = ladder(&decide(params, &world), Resource::PowerBudgetMw);
        // 200 W wanted in 8 tranches of 25 W, each priced at the marginal utility of its
        // middle: d^(2/3) · (max / L)^(2/3) · 100 W / max, max = 300 W, d = 1.
        assert_eq!(bids.len(), 8);
        assert!(
            bids.iter()
                .all(|(_, quantity)| *quantity == Quantity(25_000))
        );
        let expected = |middle_w: f64| (1_000.0 * (300.0 / middle_w).powf(2.0 / 3.0) / 3.0).round();
        assert_eq!(bids[0].0, Price(expected(112.5) as u64));
        assert_eq!(bids[7].0, Price(expected(287.5) as u64));
        assert!(
            bids.windows(2).all(|pair| pair[0].0 > pair[1].0),
            "{bids:?}"
        );
    }

    #[test]
    fn the_limit_and_the_bids_stay_under_the_thermal_cap() {
        // R = 0.225 °C/W with t_max 90 °C: t_max − 4 °C = 86 °C allows
        // (86 − 25) / 0.225 = 271.1 W at steady state.
        let mut world = World::with_components(vec![ComponentTelemetry {
            temp_mc: Some(70_000),
            ..gpu(1000, 200_000)
        }]);
        world.leases = vec![lease(
            ME,
            Resource::PowerBudgetMw,
            190_000,
            world.tick.plus(5),
        )];
        let mut demand = PowerDemand::new(
            PowerDemandParams {
                r_c_per_w: Some(0.225),
                ..params()
            },
            1,
        );
        let intents = demand.decide(&world.observation(ME));
        let cap = demand.thermal_cap_mw(&world.frame.components[0]).unwrap();
        assert_eq!(cap, 271_111);
        // It holds 290 W of budget, but asks for no more than the cap...
        assert_eq!(limit(&intents), Some(271_111));
        // ...and bids for nothing more.
        assert_eq!(bid(&intents, Resource::PowerBudgetMw), None);
    }

    /// A demand side that watched its GPU do `0.8 · ((L − 30) / 270)^alpha` units per
    /// second through a staircase of limits from 100 to 240 W and back to 100 W.
    fn learned(alpha: f64) -> (PowerDemand, World) {
        let mut world = World::with_components(vec![gpu(1000, 100_000)]);
        world.frame.interval_ms = 100;
        // Money never binds here: the test is about value.
        world.balance = Credits(1_000_000_000_000);
        let params = PowerDemandParams {
            power_price: 1000,
            ..params()
        };
        let mut demand = PowerDemand::new(params, 1);
        let mut progress = 0.0;
        for step in (0..15).chain((0..15).rev()) {
            let limit_w = 100.0 + 10.0 * f64::from(step);
            for _ in 0..5 {
                progress += 0.8 * ((limit_w - 30.0) / 270.0_f64).powf(alpha) * 0.1;
                let gpu0 = &mut world.components_mut()[0];
                gpu0.limit_mw = Some((limit_w * 1000.0) as u64);
                gpu0.power_mw = gpu0.limit_mw;
                gpu0.progress_micro = Some((progress * 1e6) as u64);
                demand.decide(&world.observation(ME));
            }
        }
        (demand, world)
    }

    #[test]
    fn with_progress_a_memory_bound_gpu_learns_to_bid_less_than_a_compute_bound_one() {
        let (mut memory_bound, memory_world) = learned(0.05);
        let (mut compute_bound, compute_world) = learned(0.5);
        let (memory_elasticity, memory_changes) = memory_bound.learned_elasticity().unwrap();
        let (compute_elasticity, _) = compute_bound.learned_elasticity().unwrap();
        assert!(memory_changes > 20, "{memory_changes}");
        assert!(memory_elasticity < 0.15, "{memory_elasticity}");
        assert!(compute_elasticity > 0.5, "{compute_elasticity}");
        let (memory_price, memory_quantity) = bid(
            &memory_bound.decide(&memory_world.observation(ME)),
            Resource::PowerBudgetMw,
        )
        .unwrap();
        let (compute_price, compute_quantity) = bid(
            &compute_bound.decide(&compute_world.observation(ME)),
            Resource::PowerBudgetMw,
        )
        .unwrap();
        // Both want everything up to their maximum; the compute-bound one values it more.
        assert_eq!(memory_quantity, compute_quantity);
        assert!(
            compute_price.0 > 3 * memory_price.0,
            "{compute_price} vs {memory_price}"
        );
    }

    #[test]
    fn without_progress_the_agent_says_it_bids_on_the_utilization_prior() {
        let world = World::with_components(vec![gpu(1000, 100_000)]);
        let mut demand = PowerDemand::new(params(), 1);
        demand.decide(&world.observation(ME));
        assert_eq!(demand.learned_elasticity(), None);
    }

    #[test]
    fn an_idle_component_holds_spare_budget_on_standby_at_the_lowest_price() {
        // Drawing 40 W under a 100 W limit: no valued bid, but the watts up to its
        // 300 W maximum are held at the lowest price, in whole steps.
        let world = World::with_components(vec![ComponentTelemetry {
            power_mw: Some(40_000),
            ..gpu(100, 100_000)
        }]);
        let standby = PowerDemandParams {
            standby: true,
            ..params()
        };
        let bids = ladder(&decide(standby, &world), Resource::PowerBudgetMw);
        assert_eq!(bids, vec![(Price::MIN, Quantity(200_000))]);
        assert_eq!(
            ladder(&decide(params(), &world), Resource::PowerBudgetMw),
            vec![]
        );
    }

    #[test]
    fn more_held_power_lowers_the_marginal_utility() {
        let low = World::with_components(vec![gpu(1000, 100_000)]);
        let mut high = World::with_components(vec![gpu(1000, 250_000)]);
        let beyond_now = Tick(high.tick.0 + 5);
        high.leases = vec![lease(ME, Resource::PowerBudgetMw, 150_000, beyond_now)];
        let params = PowerDemandParams {
            power_price: 100,
            ..params()
        };
        let (low_price, _) = bid(&decide(params.clone(), &low), Resource::PowerBudgetMw).unwrap();
        let (high_price, _) = bid(&decide(params, &high), Resource::PowerBudgetMw).unwrap();
        assert!(high_price < low_price, "{high_price} vs {low_price}");
    }

    #[test]
    fn a_lapsing_lease_is_renewed_at_the_price_it_was_bought_at() {
        let fresh = World::with_components(vec![gpu(1000, 100_000)]);
        let mut renewing = World::with_components(vec![gpu(1000, 250_000)]);
        renewing.leases = vec![lease(ME, Resource::PowerBudgetMw, 150_000, renewing.tick)];
        let (fresh_price, _) = bid(&decide(params(), &fresh), Resource::PowerBudgetMw).unwrap();
        let (renewal_price, quantity) =
            bid(&decide(params(), &renewing), Resource::PowerBudgetMw).unwrap();
        assert_eq!(renewal_price, fresh_price);
        assert!(quantity.0 >= 150_000, "{quantity}");
    }

    #[test]
    fn headroom_is_bid_for_the_heat_of_the_power() {
        let world = World::with_components(vec![gpu(1000, 100_000)]);
        let intents = decide(params(), &world);
        let (_, power) = bid(&intents, Resource::PowerBudgetMw).unwrap();
        let (_, heat) = bid(&intents, Resource::ThermalHeadroomMc).unwrap();
        // 200 W at 0.2 °C/W is 40 °C.
        assert_eq!(power, Quantity(200_000));
        assert_eq!(heat, Quantity(40_000));
    }

    #[test]
    fn thermal_resistance_and_ambient_are_learned_from_telemetry() {
        // Without a t_max the thermal cap does not bind. The GPU (R = 0.4 °C/W,
        // C = 100 J/°C) sits in a 30 °C room: 3 s at 100 W, then 3 s at 140 W.
        let mut world = World::with_components(vec![ComponentTelemetry {
            temp_mc: Some(30_000),
            t_max_mc: None,
            ..gpu(1000, 100_000)
        }]);
        let mut demand = PowerDemand::new(
            PowerDemandParams {
                r_c_per_w: None,
                ambient_mc: None,
                ..params()
            },
            1,
        );
        world.frame.interval_ms = 100;
        let mut temp_c = 30.0;
        let mut intents = Vec::new();
        for tick in 0..60 {
            let power_w = if tick < 30 { 100.0 } else { 140.0 };
            temp_c += 0.1 * (power_w - (temp_c - 30.0) / 0.4) / 100.0;
            let gpu0 = &mut world.components_mut()[0];
            gpu0.temp_mc = Some((temp_c * 1000.0_f64).round() as i32);
            gpu0.power_mw = Some((power_w * 1000.0) as u64);
            gpu0.limit_mw = gpu0.power_mw;
            intents = demand.decide(&world.observation(ME));
        }
        let r = demand.thermal_resistance().unwrap();
        assert!((r - 0.4).abs() < 0.02, "{r}");
        let ambient_c = demand.ambient_c().unwrap();
        assert!((ambient_c - 30.0).abs() < 1.0, "{ambient_c}");
        // The headroom bid covers the heat of the power bid: R m°C per mW.
        let (_, power) = bid(&intents, Resource::PowerBudgetMw).unwrap();
        let (_, heat) = bid(&intents, Resource::ThermalHeadroomMc).unwrap();
        assert_eq!(heat.0, (power.0 as f64 * r).ceil() as u64);
    }

    #[test]
    fn no_headroom_bid_without_a_resistance_estimate() {
        let world = World::with_components(vec![gpu(1000, 100_000)]);
        let intents = decide(
            PowerDemandParams {
                r_c_per_w: None,
                ..params()
            },
            &world,
        );
        assert!(bid(&intents, Resource::PowerBudgetMw).is_some());
        assert_eq!(bid(&intents, Resource::ThermalHeadroomMc), None);
    }

    #[test]
    fn bids_are_bounded_by_the_balance() {
        let mut world = World::with_components(vec![gpu(1000, 100_000)]);
        world.balance = Credits(100_000);
        let intents = decide(params(), &world);
        let (_, power) = bid(&intents, Resource::PowerBudgetMw).unwrap();
        let escrow: u64 = ladder(&intents, Resource::PowerBudgetMw)
            .into_iter()
            .chain(ladder(&intents, Resource::ThermalHeadroomMc))
            .map(|(price, quantity)| Credits::cost(price, quantity).0)
            .sum();
        assert!(escrow <= 100_000, "{escrow}");
        assert!(power.0 > 0 && power.0 < 200_000);

        world.balance = Credits(0);
        assert_eq!(decide(params(), &world), vec![]);
    }

    #[test]
    fn a_component_drawing_well_under_its_limit_asks_for_no_more() {
        let world = World::with_components(vec![ComponentTelemetry {
            power_mw: Some(120_000),
            ..gpu(1000, 200_000)
        }]);
        let mut params = params();
        params.r_c_per_w = None;
        let mut demand = PowerDemand::new(params, 1);
        let mut observed = world.clone();
        observed.leases = vec![lease(
            ME,
            Resource::PowerBudgetMw,
            100_000,
            world.tick.plus(5),
        )];
        let intents = demand.decide(&observed.observation(ME));
        assert_eq!(bid(&intents, Resource::PowerBudgetMw), None);
        // Without the lease it only wants what its draw can use: 120 W / 0.9 ≈ 133.3 W.
        let intents = demand.decide(&world.observation(ME));
        assert_eq!(
            bid(&intents, Resource::PowerBudgetMw).map(|(_, q)| q),
            Some(Quantity(34_000))
        );
    }

    #[test]
    fn explicit_baseline_and_max_override_telemetry() {
        let world = World::with_components(vec![gpu(1000, 100_000)]);
        let params = PowerDemandParams {
            baseline_mw: Some(120_000),
            max_mw: Some(160_000),
            ..params()
        };
        let intents = decide(params, &world);
        assert_eq!(limit(&intents), Some(120_000));
        assert_eq!(
            bid(&intents, Resource::PowerBudgetMw).map(|(_, q)| q),
            Some(Quantity(40_000))
        );
    }

    #[test]
    fn missing_telemetry_gives_no_bid_and_no_panic() {
        // No component at all.
        assert_eq!(decide(params(), &World::with_components(vec![])), vec![]);
        // No limits known: no baseline, no max.
        let bare = World::with_components(vec![ComponentTelemetry {
            utilization_permille: 1000,
            ..component("gpu0", ComponentKind::Gpu)
        }]);
        assert_eq!(decide(params(), &bare), vec![]);
        // Limits known but no readings: bids by utilization, and asks for its limit once.
        let mut partial = bare.clone();
        partial.components_mut()[0].limit_min_mw = Some(100_000);
        partial.components_mut()[0].limit_max_mw = Some(300_000);
        let mut demand = PowerDemand::new(params(), 1);
        let intents = demand.decide(&partial.observation(ME));
        assert_eq!(limit(&intents), Some(100_000));
        assert!(bid(&intents, Resource::PowerBudgetMw).is_some());
        assert_eq!(limit(&demand.decide(&partial.observation(ME))), None);
    }

    #[test]
    fn extreme_telemetry_does_not_panic() {
        let world = World::with_components(vec![ComponentTelemetry {
            utilization_permille: u16::MAX,
            power_mw: Some(u64::MAX),
            temp_mc: Some(i32::MAX),
            t_max_mc: Some(i32::MIN),
            limit_mw: Some(u64::MAX),
            limit_min_mw: Some(0),
            limit_max_mw: Some(u64::MAX),
            ..component_with_limits("gpu0", ComponentKind::Gpu)
        }]);
        let mut demand = PowerDemand::new(
            PowerDemandParams {
                r_c_per_w: None,
                ..params()
            },
            1,
        );
        let mut extreme = world.clone();
        extreme.balance = Credits(u64::MAX);
        extreme.leases = vec![
            lease(ME, Resource::PowerBudgetMw, Quantity::MAX.0, Tick(u64::MAX)),
            lease(ME, Resource::PowerBudgetMw, Quantity::MAX.0, Tick(u64::MAX)),
        ];
        for world in [&world, &extreme] {
            for intent in demand.decide(&world.observation(ME)) {
                if let Intent::Place(order) = intent {
                    assert!(order.price >= Price::MIN && order.price <= Price::MAX);
                    assert!(order.quantity.0 >= 1 && order.quantity <= Quantity::MAX);
                }
            }
        }
        let zero = World::with_components(vec![ComponentTelemetry {
            power_mw: Some(0),
            limit_mw: Some(0),
            temp_mc: Some(0),
            ..gpu(1000, 0)
        }]);
        demand.decide(&zero.observation(ME));
    }

    #[test]
    fn same_observation_gives_same_intents() {
        let mut world = World::with_components(vec![gpu(730, 140_000)]);
        world.signals = vec![
            signal("game_started", Domain::Performance, 800),
            signal("thermal_warning.gpu0", Domain::Thermal, 300),
        ];
        world.leases = vec![lease(
            ME,
            Resource::PowerBudgetMw,
            40_000,
            world.tick.plus(2),
        )];
        let first = decide(params(), &world);
        assert_eq!(first, decide(params(), &world));
        assert!(!first.is_empty());
    }
}
