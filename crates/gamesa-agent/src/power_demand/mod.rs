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
//!
//! # Layout
//!
//! - `params`: [`PowerDemandParams`], the keys of an agent's params table, their defaults
//!   and validation, and [`params_with_power_demand!`](crate::params_with_power_demand),
//!   which reads them from the agent's own flat table ([`unknown_key`] names a typo);
//! - `demand`: [`PowerDemand`], the demand side's state, and [`PowerDemand::decide`],
//!   which runs the steps above once per tick;
//! - `limit`: the power limit it asks for (1.), a refused raise retried smaller;
//! - `signals`: how live signals bear on the bids ([`SignalPressure`]);
//! - `strategy`: the bids (2., 3., 5., 6.): how much power to bid for, at what price (the
//!   learned marginal value or the utilization prior), the standby bid and the headroom
//!   that covers the heat of the power;
//! - `thermal`: the thermal model in use, the thermal cap under `t_max − thermal_margin`
//!   (4.).
//! - `fixtures` and `tests` (tests only): what the unit tests share, and the tests of the
//!   whole tick.
//!
//! [`Actuation::PowerLimit`]: gamesa_proto::Actuation::PowerLimit

mod demand;
#[cfg(test)]
mod fixtures;
mod limit;
mod params;
mod signals;
mod strategy;
#[cfg(test)]
mod tests;
mod thermal;

pub use demand::PowerDemand;
pub use params::{PowerDemandParams, unknown_key};
pub use signals::SignalPressure;
pub use strategy::{MAX_TRANCHES, REFERENCE_MW, UTILITY_PER_W};
pub use thermal::THERMAL_HORIZON_S;
