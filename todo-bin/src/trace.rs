//! W3C trace context, carried from an HTTP request into the events it causes (the CloudEvents `traceparent`
//! extension) and from an event into the consumer's logs.
//!
//! A request with a valid `traceparent` header continues that trace with a new span id; a request without one
//! starts a trace. The value lives in a task-local for the duration of the request.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static TRACEPARENT: String;
}

/// The `traceparent` of the current request, if any.
pub fn current_traceparent() -> Option<String> {
    TRACEPARENT.try_with(Clone::clone).ok()
}

/// Runs `f` with `traceparent` as the current trace context.
pub async fn with_traceparent<F: std::future::Future>(traceparent: String, f: F) -> F::Output {
    TRACEPARENT.scope(traceparent, f).await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new span in the trace of `parent` (a valid `traceparent`), or a new trace.
pub fn child_of(parent: Option<&str>) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let span: [u8; 8] = rng.random();
    let trace = parent.and_then(parse).map_or_else(
        || {
            let t: [u8; 16] = rng.random();
            hex(&t)
        },
        |(trace, _)| trace.to_owned(),
    );
    format!("00-{trace}-{}-01", hex(&span))
}

/// Splits a version-00 `traceparent` into trace id and span id, if valid.
pub fn parse(tp: &str) -> Option<(&str, &str)> {
    let mut parts = tp.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let is_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    let valid = version == "00"
        && is_hex(trace, 32)
        && is_hex(span, 16)
        && is_hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && span.bytes().any(|b| b != b'0')
        && parts.next().is_none();
    valid.then_some((trace, span))
}

/// Middleware: sets the request's trace context and echoes it in the response's `traceparent` header.
pub async fn middleware(req: Request, next: Next) -> Response {
    let incoming = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let tp = child_of(incoming.as_deref());
    let mut response = with_traceparent(tp.clone(), next.run(req)).await;
    if let Ok(v) = axum::http::HeaderValue::from_str(&tp) {
        response.headers_mut().insert("traceparent", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_keeps_the_trace_and_gets_a_new_span() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let child = child_of(Some(parent));
        let (trace, span) = parse(&child).expect("valid");
        assert_eq!(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(span, "00f067aa0ba902b7");
    }

    #[test]
    fn invalid_parents_start_a_new_trace() {
        for bad in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "01-x-y-z",
        ] {
            let tp = child_of(Some(bad));
            assert!(parse(&tp).is_some(), "{tp}");
        }
    }
}
