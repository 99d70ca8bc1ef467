//! The bytes an agent in another address space trades with the daemon: a WASM module's
//! `observe` (wit/agent.wit) and an external agent's turn. Observations go out, intents
//! and past epochs come in, all as MessagePack maps with named fields, in the shapes of
//! `gamesa-proto`'s serde types, so one schema serves every language.

use gamesa_proto::{AgentId, Experience, Intent, OrderRequest, ProtoError, Quantity, Tick};

use crate::{AgentError, Observation, OwnedObservation};

/// An observation as the agent on the far side receives it.
pub fn encode_observation(observation: &Observation<'_>) -> Vec<u8> {
    encode(observation)
}

/// The observation [`encode_observation`] wrote.
pub fn decode_observation(bytes: &[u8]) -> Result<OwnedObservation, AgentError> {
    decode(bytes, "observation")
}

/// An agent's answer to one observation.
pub fn encode_intents(intents: &[Intent]) -> Vec<u8> {
    encode(intents)
}

/// The intents an agent on the far side answered. Bytes that are not an array of
/// intents are the agent's failure, said in words.
pub fn decode_intents(bytes: &[u8]) -> Result<Vec<Intent>, AgentError> {
    decode(bytes, "intents")
}

/// Checks intents from an agent the daemon does not trust the way it trusts its own
/// code: each must be well-formed at `now` (prices and quantities in range, expiries
/// ahead, signals that live at least a tick, actuations with valid names and values).
/// One that is not makes the whole answer a failure that names it.
pub fn check_intents(intents: &[Intent], agent: AgentId, now: Tick) -> Result<(), AgentError> {
    for (index, intent) in intents.iter().enumerate() {
        let checked = match intent {
            Intent::Place(order) => OrderRequest {
                owner: agent,
                resource: order.resource,
                side: order.side,
                price: order.price,
                quantity: order.quantity,
                time_in_force: order.time_in_force,
            }
            .validate(now),
            // Offering nothing is fine; offering more than a quantity can be is not.
            Intent::SetCapacity { quantity, .. } if *quantity > Quantity::MAX => {
                Quantity::checked(quantity.0).map(drop)
            }
            Intent::SetCapacity { .. } | Intent::Cancel(_) => Ok(()),
            Intent::Raise(signal) if signal.ttl_ticks == 0 => Err(ProtoError::ZeroTtl),
            Intent::Raise(_) => Ok(()),
            Intent::Actuate(actuation) => actuation.validate(),
        };
        checked.map_err(|error| {
            AgentError::Failed(format!("intent {index} ({intent}) is invalid: {error}"))
        })?;
    }
    Ok(())
}

/// An agent's past epochs, oldest first, for its `warm`.
pub fn encode_experiences(past: &[Experience]) -> Vec<u8> {
    encode(past)
}

/// The past epochs [`encode_experiences`] wrote.
pub fn decode_experiences(bytes: &[u8]) -> Result<Vec<Experience>, AgentError> {
    decode(bytes, "experiences")
}

fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // These types serialize to plain maps, arrays, strings and integers: MessagePack can
    // hold every one of them, so an error here would be a bug in a serde derive (as the
    // bare-number cancel was; the round-trip test encodes each kind of intent).
    rmp_serde::to_vec_named(value).unwrap_or_else(|error| {
        unreachable!("MessagePack encodes every gamesa-proto value: {error}")
    })
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, AgentError> {
    rmp_serde::from_slice(bytes)
        .map_err(|error| AgentError::Failed(format!("undecodable {what}: {error}")))
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{
        AgentId, ComponentKind, Domain, OrderIntent, Price, Quantity, Resource, Side, Tick,
        TimeInForce,
    };

    use super::*;
    use crate::testkit::{World, component_with_limits, lease, signal};

    #[test]
    fn an_observation_and_intents_cross_unchanged() {
        let mut world = World::with_components(vec![
            component_with_limits("cpu", ComponentKind::Cpu),
            component_with_limits("gpu0", ComponentKind::Gpu),
        ]);
        world
            .signals
            .push(signal("game_started", Domain::Performance, 800));
        world
            .leases
            .push(lease(AgentId(3), Resource::PowerBudgetMw, 5_000, Tick(110)));
        world.market.last_price[Resource::PowerBudgetMw.index()] = Some(Price(90));
        let observation = world.observation(AgentId(3));
        let owned = decode_observation(&encode_observation(&observation)).unwrap();
        assert_eq!(owned, OwnedObservation::from(&observation));
        assert_eq!(
            encode_observation(&owned.view()),
            encode_observation(&observation)
        );

        let intents = vec![
            Intent::Place(OrderIntent {
                resource: Resource::PowerBudgetMw,
                side: Side::Bid,
                price: Price(114),
                quantity: Quantity(5_000),
                time_in_force: TimeInForce::Limit { expires_at: None },
            }),
            Intent::SetCapacity {
                resource: Resource::CpuCores,
                quantity: Quantity(2),
            },
            Intent::Cancel(gamesa_proto::OrderId(7)),
            Intent::Actuate(gamesa_proto::Actuation::PowerLimit {
                component: "gpu0".into(),
                limit_mw: 200_000,
            }),
        ];
        assert_eq!(decode_intents(&encode_intents(&intents)).unwrap(), intents);
    }

    #[test]
    fn an_invalid_intent_fails_the_answer_and_is_named() {
        let order = |price, quantity, expires_at| {
            Intent::Place(OrderIntent {
                resource: Resource::PowerBudgetMw,
                side: Side::Bid,
                price: Price(price),
                quantity: Quantity(quantity),
                time_in_force: TimeInForce::Limit { expires_at },
            })
        };
        let now = Tick(100);
        let me = AgentId(3);
        assert_eq!(
            check_intents(&[order(5, 1_000, Some(now))], me, now),
            Ok(())
        );
        for (intent, says) in [
            (order(0, 1_000, None), "price"),
            (order(5, 0, None), "quantity"),
            (order(5, 1_000, Some(Tick(99))), "expir"),
        ] {
            let Err(AgentError::Failed(message)) =
                check_intents(&[order(5, 1, None), intent], me, now)
            else {
                panic!("an invalid order passed")
            };
            assert!(message.starts_with("intent 1 ("), "{message}");
            assert!(message.to_lowercase().contains(says), "{message}");
        }
    }

    #[test]
    fn garbage_is_a_failure_that_says_what_it_was() {
        for bytes in [
            &b""[..],
            b"\xc1",
            b"\x92\x01\x02",
            b"\x91\x81\xa6intent\xa4nope",
        ] {
            let Err(AgentError::Failed(message)) = decode_intents(bytes) else {
                panic!("{bytes:?} decoded as intents")
            };
            assert!(message.starts_with("undecodable intents"), "{message}");
        }
    }
}
