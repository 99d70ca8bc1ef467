//! The misbehaviours, as plain functions that build natively: those that return (all
//! but `spin` and `hog`) have unit tests here, and the host's tests run them all in the
//! sandbox.

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use gamesa_agent::{
    Intent, OrderIntent, SignalIntent,
    proto::{Domain, OrderId, Price, Quantity, Resource, Side, SignalKind, Strength, TimeInForce},
    wire::{decode_observation, encode_intents},
};

/// What the agent does from `from_tick` on, named by its `behaviour` param.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `spin`: loops forever, to run out of fuel (or time).
    Spin,
    /// `hog`: allocates 16 MiB blocks and keeps every one, forever, to hit the memory
    /// limit.
    Hog,
    /// `trap`: executes wasm's `unreachable` instruction (a panic when not on wasm32).
    Trap,
    /// `flood`: answers [`FLOOD`] valid intents in one array.
    Flood,
    /// `garbage`: answers [`GARBAGE`], bytes that are not MessagePack intents.
    Garbage,
    /// `invalid`: answers well-formed intents the host must refuse: a bid for 0
    /// `power_budget_mw` at price 0.
    Invalid,
    /// `err`: returns an error, [`ERR`].
    Err,
    /// `peek`: reads the clocks and the random source a guest could break determinism
    /// with, and raises them as one signal ([`peek_kind`]).
    Peek,
}

/// How many intents `flood` answers.
pub const FLOOD: u64 = 100_000;
/// What `garbage` answers: `0xc1` is the one byte MessagePack never uses.
pub const GARBAGE: &[u8] = b"\xc1not intents";
/// What `err` returns.
pub const ERR: &str = "hostile agent: err on purpose";
/// No intents, as MessagePack: an empty array.
pub const NO_INTENTS: &[u8] = &[0x90];

impl Behaviour {
    pub fn parse(name: &str) -> Result<Behaviour, String> {
        Ok(match name {
            "spin" => Behaviour::Spin,
            "hog" => Behaviour::Hog,
            "trap" => Behaviour::Trap,
            "flood" => Behaviour::Flood,
            "garbage" => Behaviour::Garbage,
            "invalid" => Behaviour::Invalid,
            "err" => Behaviour::Err,
            "peek" => Behaviour::Peek,
            other => {
                return Err(format!(
                    "unknown behaviour `{other}` (expected spin, hog, trap, flood, garbage, \
                     invalid, err or peek)"
                ));
            }
        })
    }
}

/// The agent: a behaviour, the tick it starts at, and the instant `init` ran (for
/// `peek`'s monotonic clock).
#[derive(Debug)]
pub struct Hostile {
    pub behaviour: Behaviour,
    pub from_tick: u64,
    started: Instant,
}

impl Hostile {
    /// Reads `behaviour` and `from_tick` from the `params` TOML text of the WIT spec.
    pub fn from_params(params: &str) -> Result<Hostile, String> {
        let table: toml::Table = params
            .parse()
            .map_err(|error| format!("params are not a TOML table: {error}"))?;
        if let Some(key) = table
            .keys()
            .find(|key| !["behaviour", "from_tick"].contains(&key.as_str()))
        {
            return Err(format!("unknown param `{key}`"));
        }
        let behaviour = match table.get("behaviour") {
            Some(toml::Value::String(name)) => Behaviour::parse(name)?,
            Some(other) => return Err(format!("`behaviour` must be a string, not {other}")),
            None => return Err("`behaviour` is missing".to_owned()),
        };
        let from_tick = match table.get("from_tick") {
            None => 0,
            Some(toml::Value::Integer(tick)) => u64::try_from(*tick)
                .map_err(|_| format!("`from_tick` must not be negative, not {tick}"))?,
            Some(other) => return Err(format!("`from_tick` must be an integer, not {other}")),
        };
        Ok(Hostile {
            behaviour,
            from_tick,
            started: Instant::now(),
        })
    }

    /// One tick: the observation must decode (the host sent it), then the agent behaves
    /// or misbehaves by its tick.
    pub fn observe(&self, observation: &[u8]) -> Result<Vec<u8>, String> {
        let observation = decode_observation(observation).map_err(|error| error.to_string())?;
        if observation.tick.0 < self.from_tick {
            return Ok(NO_INTENTS.to_vec());
        }
        match self.behaviour {
            Behaviour::Spin => spin(),
            Behaviour::Hog => hog(),
            Behaviour::Trap => trap(),
            Behaviour::Flood => Ok(flood()),
            Behaviour::Garbage => Ok(GARBAGE.to_vec()),
            Behaviour::Invalid => Ok(encode_intents(&[invalid()])),
            Behaviour::Err => Err(ERR.to_owned()),
            Behaviour::Peek => Ok(encode_intents(&[peek(self.started)])),
        }
    }
}

/// Never returns: only fuel (or an epoch deadline) stops it.
fn spin() -> ! {
    let mut turns: u64 = 0;
    loop {
        // Opaque to the optimiser, so the loop is not folded away.
        turns = std::hint::black_box(turns.wrapping_add(1));
    }
}

/// Never returns: 16 MiB at a time, nothing freed, until an allocation fails (which
/// aborts: a trap). Linear memory is committed when it grows, so the blocks are not
/// filled: writing every byte would spend the fuel before the memory ran out.
fn hog() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = Vec::with_capacity(16 << 20);
        block.push(0xa5_u8);
        hoard.push(block);
        std::hint::black_box(&mut hoard);
    }
}

#[cfg(target_arch = "wasm32")]
fn trap() -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(not(target_arch = "wasm32"))]
fn trap() -> ! {
    panic!("hostile agent: trap")
}

/// [`FLOOD`] copies of one valid intent (a cancel of order 1) in one array, about 2 MB.
///
/// The copies are made by copying bytes, not by encoding each: the flood costs the guest
/// little fuel and memory, so it is the host's limit on an answer's size that stops it,
/// not fuel or a memory limit.
fn flood() -> Vec<u8> {
    let count = u32::try_from(FLOOD).unwrap_or(u32::MAX);
    // An array of one intent is 0x91 (a fixarray of length 1) and the intent.
    let one = encode_intents(&[Intent::Cancel(OrderId(1))]);
    // MessagePack's array 32: 0xdd, then the length, big-endian.
    let mut bytes = vec![0xdd];
    bytes.extend_from_slice(&count.to_be_bytes());
    bytes.extend_from_slice(&one[1..].repeat(count as usize));
    bytes
}

/// A bid for 0 `power_budget_mw` at 0 credits: it decodes, and the host refuses it.
fn invalid() -> Intent {
    Intent::Place(OrderIntent {
        resource: Resource::PowerBudgetMw,
        side: Side::Bid,
        price: Price(0),
        quantity: Quantity(0),
        time_in_force: TimeInForce::Limit { expires_at: None },
    })
}

/// One signal that carries what the guest read from its clocks and random source.
fn peek(started: Instant) -> Intent {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| saturating_nanos(elapsed.as_nanos()));
    let elapsed = saturating_nanos(started.elapsed().as_nanos());
    // std seeds `RandomState`'s keys from the platform's random source (WASI's
    // `random` on wasm32-wasip2), so this hash is 8 bytes of it, mixed.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    let random = hasher.finish();
    Intent::Raise(SignalIntent {
        kind: peek_kind(since_epoch, elapsed, random),
        domain: Domain::Background,
        strength: Strength::MAX,
        ttl_ticks: 1,
    })
}

/// `peek_<ns since the epoch>_<ns since init>_<16 hex digits of random>`: at most 63
/// characters, all of them valid in a signal kind.
pub fn peek_kind(since_epoch_ns: u64, elapsed_ns: u64, random: u64) -> SignalKind {
    let name = format!("peek_{since_epoch_ns}_{elapsed_ns}_{random:016x}");
    SignalKind::new(name)
        .unwrap_or_else(|error| unreachable!("two u64s and 16 hex digits fit a kind: {error}"))
}

fn saturating_nanos(nanos: u128) -> u64 {
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use gamesa_agent::{
        proto::{AgentId, Tick},
        testkit::World,
        wire::{decode_intents, encode_observation},
    };

    use super::*;

    fn at(tick: u64) -> Vec<u8> {
        let world = World {
            tick: Tick(tick),
            ..World::default()
        };
        encode_observation(&world.observation(AgentId(9)))
    }

    fn hostile(params: &str) -> Hostile {
        Hostile::from_params(params).unwrap()
    }

    #[test]
    fn params_are_read_and_checked() {
        let agent = hostile("behaviour = \"spin\"\nfrom_tick = 120");
        assert_eq!((agent.behaviour, agent.from_tick), (Behaviour::Spin, 120));
        assert_eq!(hostile("behaviour = \"err\"").from_tick, 0);
        for (params, error) in [
            ("", "`behaviour` is missing"),
            ("behaviour = \"nice\"", "unknown behaviour `nice`"),
            ("behaviour = 3", "`behaviour` must be a string"),
            (
                "behaviour = \"err\"\nfrom_tick = -1",
                "must not be negative",
            ),
            (
                "behaviour = \"err\"\nfrom_tick = \"1\"",
                "must be an integer",
            ),
            (
                "behaviour = \"err\"\nform_tick = 1",
                "unknown param `form_tick`",
            ),
            ("behaviour = ", "not a TOML table"),
        ] {
            let message = Hostile::from_params(params).unwrap_err();
            assert!(message.contains(error), "{params:?}: {message}");
        }
    }

    #[test]
    fn before_from_tick_it_answers_no_intents() {
        let agent = hostile("behaviour = \"spin\"\nfrom_tick = 120");
        assert_eq!(agent.observe(&at(119)).unwrap(), NO_INTENTS);
        assert_eq!(decode_intents(NO_INTENTS).unwrap(), []);
    }

    #[test]
    fn garbage_err_and_invalid_answer_what_they_say() {
        assert_eq!(
            hostile("behaviour = \"garbage\"")
                .observe(&at(100))
                .unwrap(),
            GARBAGE
        );
        assert!(decode_intents(GARBAGE).is_err());
        assert_eq!(
            hostile("behaviour = \"err\"")
                .observe(&at(100))
                .unwrap_err(),
            ERR
        );
        let bytes = hostile("behaviour = \"invalid\"")
            .observe(&at(100))
            .unwrap();
        assert_eq!(decode_intents(&bytes).unwrap(), [invalid()]);
        assert!(hostile("behaviour = \"err\"").observe(b"\xc1").is_err());
    }

    #[test]
    fn flood_is_a_hundred_thousand_valid_intents_in_over_a_mib() {
        let bytes = hostile("behaviour = \"flood\"").observe(&at(100)).unwrap();
        let intents = decode_intents(&bytes).unwrap();
        assert_eq!(intents.len() as u64, FLOOD);
        assert!(
            intents
                .iter()
                .all(|intent| *intent == Intent::Cancel(OrderId(1)))
        );
        assert!(bytes.len() > 1 << 20, "{}", bytes.len());
    }

    #[test]
    #[should_panic(expected = "hostile agent: trap")]
    fn trap_panics_natively() {
        let _ = hostile("behaviour = \"trap\"").observe(&at(100));
    }

    #[test]
    fn peek_raises_one_valid_signal() {
        let bytes = hostile("behaviour = \"peek\"").observe(&at(100)).unwrap();
        let intents = decode_intents(&bytes).unwrap();
        let [Intent::Raise(signal)] = intents.as_slice() else {
            panic!("not one signal")
        };
        assert!(signal.kind.as_str().starts_with("peek_"), "{}", signal.kind);
        assert_eq!(
            signal.kind.as_str().split('_').count(),
            4,
            "{}",
            signal.kind
        );
        let widest = peek_kind(u64::MAX, u64::MAX, u64::MAX);
        assert_eq!(widest.as_str().len(), 63);
        assert_eq!(peek_kind(0, 0, 0xab).as_str(), "peek_0_0_00000000000000ab");
    }
}
