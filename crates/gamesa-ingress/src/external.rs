//! External agents' seats: which connection answers each out-of-process agent
//! (`[[agents]] kind = "external"`), and the turn it owes.
//!
//! The runtime asks ([`ExternalSeats::ask`]): the turn goes out as a `turn` event on the
//! attached connection's queue, and the `intents` request that answers it comes back
//! through a one-shot channel, which the runtime awaits until the tick's deadline.
//! Everything that can go wrong on the far side ends as an answer that does not count
//! (the channel dropped by a disconnect, bytes that are not intents, invalid intents),
//! which the engine counts as the agent's failure; nothing here waits on a client.
//!
//! # Invariants
//! - a seat has at most one attached connection and at most one open turn
//! - a turn's channel is answered at most once; dropping it (detach, a newer turn, a
//!   reload that retires the seat) is the answer "disconnected"
//! - until its first `attach`, an agent sits its turns out with no intents: a daemon
//!   starts before the processes that attach to it

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use gamesa_agent::OwnedObservation;
use gamesa_engine::ExternalAnswer;
use gamesa_proto::{AgentId, Tick};
use gamesa_wire::{AttachResult, ErrorBody, ErrorCode, IntentsRequest, Topic, TurnEvent};
use tokio::sync::oneshot;

use crate::subscriptions::{EventData, EventQueue, PublishedEvent};

/// One external agent as config names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalAgent {
    pub id: AgentId,
    pub name: String,
    /// The `[[clients]]` entry whose connections may attach it.
    pub client: String,
}

/// What [`ExternalSeats::ask`] got: an answer now, or one to await.
#[derive(Debug)]
pub enum Asked {
    Now(ExternalAnswer),
    /// Resolves with the process's answer; an error means its connection went away
    /// first.
    Later(oneshot::Receiver<ExternalAnswer>),
}

#[derive(Debug)]
struct Seat {
    agent: ExternalAgent,
    attached: Option<(u64, Arc<EventQueue>)>,
    /// Whether any connection has attached it since the daemon started.
    ever_attached: bool,
    open_turn: Option<(Tick, oneshot::Sender<ExternalAnswer>)>,
}

/// Every external agent's seat, by id.
#[derive(Debug, Default)]
pub struct ExternalSeats {
    seats: Mutex<BTreeMap<AgentId, Seat>>,
}

fn answer_error(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(code, message)
}

impl ExternalSeats {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<AgentId, Seat>> {
        // Every critical section leaves the map consistent before it could panic.
        self.seats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The external agents of a (re)loaded config. A seat whose agent keeps its id and
    /// client keeps its connection; any other is dropped with its open turn.
    pub fn set_agents(&self, agents: Vec<ExternalAgent>) {
        let mut seats = self.lock();
        let mut kept = BTreeMap::new();
        for agent in agents {
            let seat = match seats.remove(&agent.id) {
                Some(seat) if seat.agent.client == agent.client => Seat { agent, ..seat },
                _ => Seat {
                    agent,
                    attached: None,
                    ever_attached: false,
                    open_turn: None,
                },
            };
            kept.insert(seat.agent.id, seat);
        }
        *seats = kept;
    }

    /// Whether `agent` answers through a connection rather than in-process.
    pub fn is_external(&self, agent: AgentId) -> bool {
        self.lock().contains_key(&agent)
    }

    /// Hands `agent` its turn: as a `turn` event to the connection that attached it,
    /// whose `intents` will answer the returned channel. Without one, the answer is
    /// now: no intents before its first attach, "disconnected" after.
    pub fn ask(&self, observation: OwnedObservation, deadline_ms: u64) -> Asked {
        let (agent, tick) = (observation.agent, observation.tick);
        let mut seats = self.lock();
        let Some(seat) = seats.get_mut(&agent) else {
            return Asked::Now(Err("is not an external agent of this daemon".into()));
        };
        let Some((_, queue)) = &seat.attached else {
            return Asked::Now(if seat.ever_attached {
                Err("disconnected: no connection is attached to answer its turn".into())
            } else {
                Ok(Vec::new())
            });
        };
        let event = TurnEvent {
            agent: seat.agent.name.clone(),
            deadline_ms,
            observation,
        };
        queue.offer(&Arc::new(PublishedEvent {
            topic: Topic::Turn,
            tick,
            data: EventData::Turn(Box::new(event)),
        }));
        let (sender, receiver) = oneshot::channel();
        // A turn left open by a missed deadline is closed by this one.
        seat.open_turn = Some((tick, sender));
        Asked::Later(receiver)
    }

    /// `attach` on connection `connection` of client `client`: from now on it answers
    /// `agent`'s turns.
    pub fn attach(
        &self,
        connection: u64,
        queue: &Arc<EventQueue>,
        client: &str,
        agent: &str,
        deadline_ms: u64,
    ) -> Result<AttachResult, ErrorBody> {
        let mut seats = self.lock();
        let not_yours = || {
            answer_error(
                ErrorCode::NotYours,
                format!("`{agent}` is not an external agent of client `{client}`"),
            )
        };
        let seat = seats
            .values_mut()
            .find(|seat| seat.agent.name == agent)
            .ok_or_else(not_yours)?;
        if seat.agent.client != client {
            return Err(not_yours());
        }
        if let Some((other, _)) = &seat.attached
            && *other != connection
        {
            return Err(answer_error(
                ErrorCode::NotYours,
                format!("`{agent}` is attached to another connection"),
            ));
        }
        queue.subscribe(Topic::Turn);
        seat.attached = Some((connection, Arc::clone(queue)));
        seat.ever_attached = true;
        Ok(AttachResult {
            agent: seat.agent.name.clone(),
            id: seat.agent.id,
            deadline_ms,
        })
    }

    /// An `intents` request on `connection`: the answer to its agent's open turn of
    /// `request.tick`, checked before it counts. Invalid intents are answered as the
    /// agent's failure (and the request's error).
    pub fn answer(
        &self,
        connection: u64,
        request: IntentsRequest,
    ) -> Result<(String, Tick, usize), ErrorBody> {
        let mut seats = self.lock();
        let seat = Self::seat_of(&mut seats, connection, request.agent.as_deref())?;
        let tick = request.tick;
        let open = match seat.open_turn.take() {
            Some((open, sender)) if open == tick && !sender.is_closed() => sender,
            other => {
                seat.open_turn = other;
                return Err(answer_error(
                    ErrorCode::NoTurn,
                    format!(
                        "`{}` has no open turn for tick {}: its deadline passed, it was \
                         answered, or it was never asked",
                        seat.agent.name, tick.0
                    ),
                ));
            }
        };
        let count = request.intents.len();
        match gamesa_agent::wire::check_intents(&request.intents, seat.agent.id, tick) {
            Ok(()) => {
                let _ = open.send(Ok(request.intents));
                Ok((seat.agent.name.clone(), tick, count))
            }
            Err(error) => {
                let _ = open.send(Err(format!("answered invalid intents: {error}")));
                Err(answer_error(ErrorCode::InvalidRequest, error.to_string()))
            }
        }
    }

    /// An `intents` request on `connection` that could not be read: every turn the
    /// connection's agents owe is answered as their failure.
    pub fn garbage(&self, connection: u64, why: &str) {
        for seat in self.lock().values_mut() {
            if seat
                .attached
                .as_ref()
                .is_some_and(|(on, _)| *on == connection)
                && let Some((_, sender)) = seat.open_turn.take()
            {
                let _ = sender.send(Err(format!("answered with something not intents: {why}")));
            }
        }
    }

    /// The connection closed: its agents' open turns are dropped (answered as
    /// disconnected), and their later turns fail until a connection attaches again.
    pub fn detach(&self, connection: u64) {
        for seat in self.lock().values_mut() {
            if seat
                .attached
                .as_ref()
                .is_some_and(|(on, _)| *on == connection)
            {
                seat.attached = None;
                seat.open_turn = None;
            }
        }
    }

    fn seat_of<'a>(
        seats: &'a mut BTreeMap<AgentId, Seat>,
        connection: u64,
        agent: Option<&str>,
    ) -> Result<&'a mut Seat, ErrorBody> {
        let mut mine = seats.values_mut().filter(|seat| {
            seat.attached
                .as_ref()
                .is_some_and(|(on, _)| *on == connection)
                && agent.is_none_or(|name| seat.agent.name == name)
        });
        match (mine.next(), mine.next()) {
            (Some(seat), None) => Ok(seat),
            (None, _) => Err(answer_error(
                ErrorCode::NoTurn,
                match agent {
                    Some(name) => format!("this connection has not attached `{name}`"),
                    None => "this connection has attached no external agent".to_owned(),
                },
            )),
            (Some(_), Some(_)) => Err(answer_error(
                ErrorCode::InvalidRequest,
                "field `agent`: required when the connection attached several agents",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{Intent, OrderId};

    use super::*;

    fn seats() -> (ExternalSeats, Arc<EventQueue>) {
        let seats = ExternalSeats::default();
        seats.set_agents(vec![ExternalAgent {
            id: AgentId(4),
            name: "py".into(),
            client: "bot".into(),
        }]);
        (seats, Arc::new(EventQueue::new(8)))
    }

    fn ask(seats: &ExternalSeats, tick: u64) -> Asked {
        let world = gamesa_agent::testkit::World::default();
        let mut observation = OwnedObservation::from(&world.observation(AgentId(4)));
        observation.tick = Tick(tick);
        seats.ask(observation, 50)
    }

    fn intents(tick: u64, intents: Vec<Intent>) -> IntentsRequest {
        IntentsRequest {
            agent: None,
            tick: Tick(tick),
            intents,
        }
    }

    fn later(asked: Asked) -> oneshot::Receiver<ExternalAnswer> {
        match asked {
            Asked::Later(receiver) => receiver,
            Asked::Now(answer) => panic!("answered now: {answer:?}"),
        }
    }

    #[test]
    fn before_the_first_attach_turns_pass_and_after_a_detach_they_fail() {
        let (seats, queue) = seats();
        assert!(matches!(ask(&seats, 1), Asked::Now(Ok(i)) if i.is_empty()));
        seats.attach(7, &queue, "bot", "py", 50).unwrap();
        let mut receiver = later(ask(&seats, 2));
        let mut out = Vec::new();
        assert_eq!(
            queue.drain_into(&mut out, 1 << 20).unwrap(),
            1,
            "the turn went out"
        );
        seats.detach(7);
        assert!(receiver.try_recv().is_err(), "a detach drops the open turn");
        assert!(matches!(
            ask(&seats, 3),
            Asked::Now(Err(why)) if why.contains("disconnected")
        ));
    }

    #[test]
    fn only_the_configured_client_attaches_and_only_once() {
        let (seats, queue) = seats();
        let error = seats.attach(7, &queue, "other", "py", 50).unwrap_err();
        assert_eq!(error.code, ErrorCode::NotYours);
        let error = seats.attach(7, &queue, "bot", "nobody", 50).unwrap_err();
        assert_eq!(error.code, ErrorCode::NotYours);
        seats.attach(7, &queue, "bot", "py", 50).unwrap();
        let error = seats.attach(8, &queue, "bot", "py", 50).unwrap_err();
        assert!(error.message.contains("another connection"), "{error:?}");
    }

    #[test]
    fn an_answer_counts_once_for_its_own_tick_and_invalid_intents_fail_the_turn() {
        let (seats, queue) = seats();
        seats.attach(7, &queue, "bot", "py", 50).unwrap();
        let mut receiver = later(ask(&seats, 2));
        let error = seats.answer(7, intents(1, Vec::new())).unwrap_err();
        assert_eq!(error.code, ErrorCode::NoTurn);
        let error = seats.answer(8, intents(2, Vec::new())).unwrap_err();
        assert_eq!(error.code, ErrorCode::NoTurn, "another connection");
        let cancel = vec![Intent::Cancel(OrderId(3))];
        assert_eq!(
            seats.answer(7, intents(2, cancel.clone())).unwrap(),
            ("py".to_owned(), Tick(2), 1)
        );
        assert_eq!(receiver.try_recv().unwrap(), Ok(cancel));
        let error = seats.answer(7, intents(2, Vec::new())).unwrap_err();
        assert_eq!(error.code, ErrorCode::NoTurn, "answered twice");

        let mut receiver = later(ask(&seats, 3));
        let bad = vec![Intent::Raise(gamesa_proto::SignalIntent {
            kind: gamesa_proto::SignalKind::new("x").unwrap(),
            domain: gamesa_proto::Domain::Power,
            strength: gamesa_proto::Strength::MAX,
            ttl_ticks: 0,
        })];
        let error = seats.answer(7, intents(3, bad)).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
        let failed = receiver.try_recv().unwrap().unwrap_err();
        assert!(failed.contains("invalid intents"), "{failed}");
    }

    #[test]
    fn garbage_fails_the_open_turn_and_a_reload_keeps_only_unchanged_seats() {
        let (seats, queue) = seats();
        seats.attach(7, &queue, "bot", "py", 50).unwrap();
        let mut receiver = later(ask(&seats, 2));
        seats.garbage(7, "field `intents`: invalid type");
        assert!(
            receiver
                .try_recv()
                .unwrap()
                .unwrap_err()
                .contains("not intents")
        );

        let _receiver = later(ask(&seats, 3));
        seats.set_agents(vec![ExternalAgent {
            id: AgentId(4),
            name: "py".into(),
            client: "bot".into(),
        }]);
        assert!(matches!(ask(&seats, 4), Asked::Later(_)));
        seats.set_agents(vec![ExternalAgent {
            id: AgentId(4),
            name: "py".into(),
            client: "new-bot".into(),
        }]);
        assert!(matches!(ask(&seats, 5), Asked::Now(Ok(_))));
    }
}
