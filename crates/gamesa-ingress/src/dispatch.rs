//! What every door does with a decoded request: the one authorization path (the
//! session re-read after a reload, the effect check with its audit, the count of
//! denials) and the carrying out of the requests any door may send.
//!
//! The socket protocol (`connection.rs`) and the HTTP API (`gamesa-http`) both go
//! through here, so a client has the same rights and the same audit trail through
//! either; only framing, `hello` and subscriptions are a door's own.

use std::sync::{Arc, atomic::Ordering};

use gamesa_proto::{Price, Quantity};
use gamesa_wire::{ErrorBody, ErrorCode, OrderKind, OrderRequestBody, Request};
use tokio::sync::mpsc;

use super::{
    clients::ClientEntry,
    hub::{Deferred, IngressHub, ReplyTo},
    query,
    respond::Respond,
    session::Session,
};

/// What became of a request handed to [`carry_out`].
#[derive(Debug, Clone, PartialEq)]
pub enum Carried {
    /// Answered through the [`Respond`] already.
    Answered,
    /// To be answered after the next tick, through the [`ReplyTo`].
    AfterTick,
    /// Not carried out: the door's own to answer (`hello`, `subscribe`,
    /// `unsubscribe`, an external agent's `attach` and `intents`), or a request that
    /// needs a client where none said hello.
    Door(Request),
}

/// A reload may have changed the session's client (its effects, its token) since it
/// said hello: the roster is read again, but only when a reload happened since
/// `roster_seen`.
pub fn refresh(hub: &IngressHub, session: &mut Session, roster_seen: &mut u64) {
    let generation = hub.roster_generation();
    if generation != *roster_seen {
        *roster_seen = generation;
        session.refresh(&hub.roster().directory);
    }
}

/// Checks `request` against `session`: its client as the roster now has it (re-read
/// when a reload happened since `roster_seen`), the resting order a `cancel` names,
/// and the effect the request needs. Denials are audited and counted. Returns the
/// authenticated client, if any (`None` for what anyone may ask).
pub fn authorize(
    hub: &IngressHub,
    session: &mut Session,
    roster_seen: &mut u64,
    request: &Request,
) -> Result<Option<Arc<ClientEntry>>, ErrorBody> {
    refresh(hub, session, roster_seen);
    if let Request::Subscribe(topic) | Request::Unsubscribe(topic) = request
        && topic.topic == gamesa_wire::Topic::Turn
    {
        return Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            "field `topic`: `turn` events come with `attach`, not with a subscription",
        ));
    }
    let client = session.client().cloned();
    let cancel_resource = match (request, &client) {
        (Request::Cancel(cancel), Some(client)) => Some(
            hub.resting_order(client.agent, cancel.order)
                .ok_or_else(|| {
                    ErrorBody::new(
                        ErrorCode::UnknownOrder,
                        format!("{} is not one of your resting orders", cancel.order),
                    )
                })?,
        ),
        _ => None,
    };
    let (verdict, audit) = session.authorize(hub.current_tick(), request, cancel_resource);
    for record in audit.iter().filter(|record| !record.allowed) {
        // An operator searches the audit log by the client's configured name.
        tracing::warn!(
            target: "gamesa::audit",
            client = %hub.name_of(record.principal),
            effect = %record.effect,
            tick = record.tick.0,
            "ingress request denied: missing effect"
        );
    }
    if let Err(error) = verdict {
        hub.counters.denied.fetch_add(1, Ordering::Relaxed);
        return Err(error);
    }
    Ok(client)
}

/// Carries out an authorized query, signal, order, cancel or progress report with
/// id `id` for `client`; replies that wait for a tick go to `deferred`. Hands the
/// request back when only the door can answer it (`hello`, `subscribe`,
/// `unsubscribe`), or when it needs a client and there is none.
pub fn carry_out(
    hub: &IngressHub,
    client: Option<&Arc<ClientEntry>>,
    (id, request): (u64, Request),
    deferred: &mpsc::UnboundedSender<Deferred>,
    respond: &mut impl Respond,
) -> Carried {
    let reply_to = || ReplyTo {
        id,
        sender: deferred.clone(),
    };
    match (request, client) {
        (Request::Query(query), client) => {
            query::answer(hub, client.map(Arc::as_ref), &query, respond);
        }
        (Request::Signal(signal), Some(client)) => {
            respond.ok(&hub.inject_signal(client, id, &signal));
        }
        (Request::Order(order), Some(client)) => {
            if let Err(error) = check_order(&order) {
                respond.error(error);
                return Carried::Answered;
            }
            hub.submit_order(client, order, reply_to());
            return Carried::AfterTick;
        }
        (Request::Cancel(cancel), Some(client)) => {
            hub.submit_cancel(client, cancel.order, reply_to());
            return Carried::AfterTick;
        }
        (Request::Progress(report), Some(client)) => match hub.report_progress(client, &report) {
            Ok(result) => respond.ok(&result),
            Err(error) => respond.error(error),
        },
        (request, _) => return Carried::Door(request),
    }
    Carried::Answered
}

/// The checks of an order that need no market state.
fn check_order(order: &OrderRequestBody) -> Result<(), ErrorBody> {
    let invalid = |message: String| Err(ErrorBody::new(ErrorCode::InvalidRequest, message));
    if let Err(error) = Price::checked(order.price.0) {
        return invalid(format!("field `price`: {error}"));
    }
    if let Err(error) = Quantity::checked(order.quantity.0) {
        return invalid(format!("field `quantity`: {error}"));
    }
    match (order.time_in_force, order.expires_after_ticks) {
        (_, Some(0)) => invalid("field `expires_after_ticks`: must be at least 1".into()),
        (OrderKind::Ioc, Some(_)) => {
            invalid("an ioc order cannot carry `expires_after_ticks`".into())
        }
        _ => Ok(()),
    }
}
