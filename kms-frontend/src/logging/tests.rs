use super::*;
use std::sync::Mutex;

/// A `MakeWriter` that keeps every line written.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for Lines {
    type Writer = Self;

    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

fn alice() -> Arc<Principal> {
    Arc::new(Principal {
        arn: "arn:aws:iam::111122223333:user/alice".into(),
        account_id: "111122223333".into(),
        access_key_id: "AKIAALICE".into(),
        admin: false,
    })
}

/// The lines logged in `format` by: one warning outside a request, then a
/// request that logs before and after its principal and operation are set.
fn logged(format: LogFormat) -> (uuid::Uuid, Vec<String>) {
    let lines = Lines::default();
    let subscriber = subscriber(
        format,
        false,
        tracing_subscriber::EnvFilter::new("info"),
        lines.clone(),
    );
    let id = uuid::Uuid::new_v4();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    tracing::subscriber::with_default(subscriber, || {
        tracing::warn!("outside");
        runtime.block_on(in_request(id, async {
            tracing::warn!(detail = 7, "early");
            set_principal(&alice());
            set_operation("Encrypt");
            tokio::task::yield_now().await;
            tracing::error!("late");
        }));
        tracing::warn!("after");
    });
    let text = String::from_utf8(lines.0.lock().expect("lock").clone()).expect("utf-8");
    (id, text.lines().map(str::to_owned).collect())
}

#[test]
fn human_lines_inside_a_request_carry_its_context_before_the_target() {
    let (id, lines) = logged(LogFormat::Human);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let target = "kms_frontend::logging::tests";
    assert!(
        lines[0].ends_with(&format!(" WARN {target}: outside")),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with(&format!(
            " WARN request{{request_id=\"{id}\"}}: {target}: early detail=7"
        )),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].ends_with(&format!(
            " ERROR request{{request_id=\"{id}\" \
             principal=\"arn:aws:iam::111122223333:user/alice\" \
             operation=\"Encrypt\"}}: {target}: late"
        )),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].ends_with(&format!(" WARN {target}: after")),
        "{}",
        lines[3]
    );
}

#[test]
fn json_lines_inside_a_request_carry_its_context_as_the_span() {
    let (id, lines) = logged(LogFormat::Json);
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(parsed.len(), 4, "{lines:#?}");
    assert!(parsed[0].get("span").is_none(), "{}", lines[0]);
    assert_eq!(parsed[1]["fields"]["message"], "early");
    assert_eq!(parsed[1]["fields"]["detail"], 7);
    assert_eq!(
        parsed[1]["span"],
        serde_json::json!({ "request_id": id.to_string(), "name": "request" })
    );
    assert_eq!(
        parsed[2]["span"],
        serde_json::json!({
            "request_id": id.to_string(),
            "principal": "arn:aws:iam::111122223333:user/alice",
            "operation": "Encrypt",
            "name": "request",
        })
    );
    assert_eq!(parsed[2]["level"], "ERROR");
    assert!(parsed[3].get("span").is_none(), "{}", lines[3]);
}

#[test]
fn a_context_value_cannot_break_the_json_line() {
    let lines = Lines::default();
    let subscriber = subscriber(
        LogFormat::Json,
        false,
        tracing_subscriber::EnvFilter::new("info"),
        lines.clone(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(in_request(uuid::Uuid::nil(), async {
            set_operation("Enc\"rypt\n}");
            tracing::warn!("x");
        }));
    });
    let text = String::from_utf8(lines.0.lock().expect("lock").clone()).expect("utf-8");
    let v: serde_json::Value = serde_json::from_str(text.trim_end()).expect("one JSON object");
    assert_eq!(v["span"]["operation"], "Enc\"rypt\n}");
}
