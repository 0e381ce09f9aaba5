//! Log lines on stderr (human or JSON) and the request context they carry.
//!
//! While a request is served ([`in_request`]) a task-local holds its id and,
//! once known, its principal and operation ([`set_principal`],
//! [`set_operation`]). Every line logged inside it gets them, in the shape a
//! `request` span gave before: `request{request_id=".." principal=".."
//! operation=".."}: ` ahead of the target (human), or a
//! `"span":{"request_id":..,"principal":..,"operation":..,"name":"request"}`
//! member (JSON). No tracing span is made per request: creating one and
//! recording into it cost about 2 µs of a worker per request (some 8% of
//! the workers' CPU under load), for lines that are almost never logged
//! (BENCHMARKS.md, seventh round).

use crate::config::LogFormat;
use crate::principal::Principal;
use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::sync::Arc;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// What the lines logged while serving one request carry.
struct Context {
    request_id: uuid::Uuid,
    principal: Option<Arc<Principal>>,
    operation: Option<String>,
}

tokio::task_local! {
    static REQUEST: RefCell<Context>;
}

/// Runs `fut` as the request `request_id`: lines it logs carry the id (and
/// the principal and operation once set).
pub(crate) async fn in_request<F: Future>(request_id: uuid::Uuid, fut: F) -> F::Output {
    let context = Context {
        request_id,
        principal: None,
        operation: None,
    };
    REQUEST.scope(RefCell::new(context), fut).await
}

/// The current request's caller (no effect outside [`in_request`]).
pub(crate) fn set_principal(principal: &Arc<Principal>) {
    let _ = REQUEST.try_with(|c| c.borrow_mut().principal = Some(Arc::clone(principal)));
}

/// The current request's operation (no effect outside [`in_request`]).
pub(crate) fn set_operation(operation: &str) {
    let _ = REQUEST.try_with(|c| c.borrow_mut().operation = Some(operation.to_owned()));
}

/// Installs the global subscriber: `format` lines on stderr, filtered by
/// `RUST_LOG`, else `level`, else `info`.
pub fn init(format: LogFormat, level: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::try_new(level.unwrap_or("info"))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    });
    let ansi = format == LogFormat::Human && std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::util::SubscriberInitExt::init(subscriber(
        format,
        ansi,
        filter,
        std::io::stderr,
    ));
}

/// The subscriber writing `format` lines to `writer` (tests: a buffer).
fn subscriber<W>(
    format: LogFormat,
    ansi: bool,
    filter: tracing_subscriber::EnvFilter,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Human => Box::new(
            builder
                .event_format(WithRequest {
                    inner: format::format().with_ansi(ansi),
                    json: false,
                })
                .finish(),
        ),
        LogFormat::Json => Box::new(
            builder
                .fmt_fields(JsonFields::new())
                .event_format(WithRequest {
                    inner: format::format()
                        .json()
                        .with_current_span(true)
                        .with_span_list(false),
                    json: true,
                })
                .finish(),
        ),
    }
}

/// An event format that adds the request context to `inner`'s line.
struct WithRequest<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithRequest<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        let added = REQUEST
            .try_with(|c| {
                let c = c.try_borrow().ok()?;
                self.inner
                    .format_event(ctx, Writer::new(&mut line), event)
                    .ok()?;
                Some(if self.json {
                    with_json_context(&mut line, &c, ctx.lookup_current().is_some())
                } else {
                    let target = event.metadata().target();
                    with_human_context(&mut line, &c, target, writer.has_ansi_escapes())
                })
            })
            .ok()
            .flatten();
        match added {
            Some(result) => {
                result?;
                writer.write_str(&line)
            }
            None => self.inner.format_event(ctx, writer, event),
        }
    }
}

/// Inserts `request{..}: ` before the target of a human `line`.
fn with_human_context(line: &mut String, c: &Context, target: &str, ansi: bool) -> fmt::Result {
    let mut text = String::from("request{");
    write!(
        text,
        "request_id={:?}",
        c.request_id.hyphenated().to_string()
    )?;
    if let Some(p) = &c.principal {
        write!(text, " principal={:?}", p.arn)?;
    }
    if let Some(op) = &c.operation {
        write!(text, " operation={op:?}")?;
    }
    text.push_str("}: ");
    let at = line.find(target).map_or(line.len(), |at| {
        // With colours the target is dimmed: insert before its escape.
        let dim = "\x1b[2m";
        if ansi && line[..at].ends_with(dim) {
            at - dim.len()
        } else {
            at
        }
    });
    line.insert_str(at, &text);
    Ok(())
}

/// Adds the `"span"` member (or `"request"`, if another span is current)
/// to a JSON `line`.
fn with_json_context(line: &mut String, c: &Context, other_span: bool) -> fmt::Result {
    let Some(end) = line.rfind('}') else {
        return Ok(());
    };
    let mut member = serde_json::Map::new();
    member.insert(
        "request_id".into(),
        c.request_id.hyphenated().to_string().into(),
    );
    if let Some(p) = &c.principal {
        member.insert("principal".into(), p.arn.clone().into());
    }
    if let Some(op) = &c.operation {
        member.insert("operation".into(), op.clone().into());
    }
    member.insert("name".into(), "request".into());
    let key = if other_span { "request" } else { "span" };
    let text = format!(",\"{key}\":{}", serde_json::Value::Object(member));
    line.insert_str(end, &text);
    Ok(())
}

#[cfg(test)]
mod tests;
