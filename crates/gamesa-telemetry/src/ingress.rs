//! The hook for the ingress server: an `ingress.request` span per client request, and
//! the link that ties an injected signal to the tick that takes it in.
//!
//! The ingress server opens [`request_span`] for each request, stamps the signal it
//! injects with the request's correlation id, and hands [`IngressLink::of`] the span
//! together with the signal to `Runtime::inject_linked`. `gamesa run` routes those
//! spans to the telemetry pipeline with [`route_requests_to`], since the server runs on
//! threads of its own. The tick that takes the
//! signal in links its `gamesa.tick` span and an `ingress.signal` child to the
//! request's span, and carries the correlation id, so searching
//! `gamesa.correlation_id` finds the request and the tick that acted on it.

use std::sync::{PoisonError, RwLock};

use gamesa_proto::CorrelationId;
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use tracing::{Dispatch, Level, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The target of ingress spans; the telemetry layer takes every `gamesa*` target.
pub const TARGET: &str = "gamesa::ingress";

/// Where `request_span` makes its spans when set: the ingress server runs on threads
/// of its own, which the daemon's thread-local subscriber does not reach.
static ROUTE: RwLock<Option<Dispatch>> = RwLock::new(None);

/// Makes [`request_span`] create its spans in `dispatch` (usually
/// `Telemetry::dispatch()`), on whatever thread it is called; `None` goes back to the
/// calling thread's subscriber.
pub fn route_requests_to(dispatch: Option<Dispatch>) {
    *ROUTE.write().unwrap_or_else(PoisonError::into_inner) = dispatch;
}

/// A root span for one client request. `request_type` is the request's kind (`inject`,
/// `query`, ...); `request_id` is the client's own id for it.
pub fn request_span(
    client: &str,
    request_type: &str,
    request_id: &str,
    correlation: CorrelationId,
) -> Span {
    let make = || {
        tracing::span!(
            target: TARGET,
            parent: None,
            Level::DEBUG,
            "ingress.request",
            "gamesa.client" = client,
            "gamesa.request.type" = request_type,
            "gamesa.request.id" = request_id,
            "gamesa.correlation_id" = %correlation,
            "otel.kind" = "server",
        )
    };
    let route = ROUTE.read().unwrap_or_else(PoisonError::into_inner).clone();
    match route {
        Some(dispatch) => tracing::dispatcher::with_default(&dispatch, make),
        None => make(),
    }
}

/// `span`'s W3C `traceparent`, to carry it to another process; `None` when the span is
/// not recorded (telemetry off).
pub fn traceparent(span: &Span) -> Option<String> {
    if span.is_disabled() {
        return None;
    }
    let context = span.context().span().span_context().clone();
    context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            context.trace_id(),
            context.span_id(),
            context.trace_flags().to_u8()
        )
    })
}

/// Where an injected signal came from, in OpenTelemetry terms. Also a fleet leader's
/// clearing that a grant came from ([`IngressLink::remote`]).
#[derive(Debug, Clone, PartialEq)]
pub struct IngressLink {
    correlation: Option<CorrelationId>,
    context: Option<SpanContext>,
}

impl IngressLink {
    /// The link to `span` (usually a [`request_span`]) for a signal with `correlation`.
    /// Take it while the span is open; it stays valid after the span closes.
    pub fn of(span: &Span, correlation: Option<CorrelationId>) -> IngressLink {
        let context = if span.is_disabled() {
            None
        } else {
            Some(span.context().span().span_context().clone()).filter(SpanContext::is_valid)
        };
        IngressLink {
            correlation,
            context,
        }
    }

    /// A link to a span of another process, from its W3C `traceparent`
    /// (`00-<trace id>-<span id>-<flags>`): a fleet leader's `fleet.clear`, whose grant
    /// the node's next tick runs under. `None` when `traceparent` is not one.
    pub fn remote(traceparent: &str) -> Option<IngressLink> {
        let mut parts = traceparent.split('-');
        let (Some("00"), Some(trace), Some(span), Some(flags), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        if trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
            return None;
        }
        let context = SpanContext::new(
            opentelemetry::trace::TraceId::from_hex(trace).ok()?,
            opentelemetry::trace::SpanId::from_hex(span).ok()?,
            opentelemetry::trace::TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
            true,
            opentelemetry::trace::TraceState::default(),
        );
        context.is_valid().then_some(IngressLink {
            correlation: None,
            context: Some(context),
        })
    }

    /// A link that carries only a correlation id (tracing off, or no span).
    pub fn correlation_only(correlation: CorrelationId) -> IngressLink {
        IngressLink {
            correlation: Some(correlation),
            context: None,
        }
    }

    pub fn correlation(&self) -> Option<CorrelationId> {
        self.correlation
    }

    pub fn span_context(&self) -> Option<&SpanContext> {
        self.context.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_link_reads_a_traceparent_and_refuses_anything_else() {
        let link =
            IngressLink::remote("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let context = link.span_context().unwrap();
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.span_id().to_string(), "00f067aa0ba902b7");
        assert!(context.is_remote() && context.is_sampled());
        assert_eq!(link.correlation(), None);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(IngressLink::remote(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_span_that_is_not_recorded_has_no_traceparent() {
        assert_eq!(traceparent(&Span::none()), None);
    }
}
