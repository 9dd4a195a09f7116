//! The result contract: the JSON documents the CLI and the Lambda emit,
//! all described by one schema, `schema/result.schema.json`, generated
//! from the types below.
//!
//! - `probe_result`: one probe's [`ProbeResult`]. `check --json` prints it;
//!   the Lambda logs one per probe, on one line.
//! - `run_summary`: one run's [`RunSummary`], results included. `run
//!   --json` prints it; the Lambda returns it.
//!
//! Each document names itself in `document` and carries `schema_version`.
//! An added field keeps the version (consumers must ignore what they do
//! not know); a removed or renamed field, or a changed meaning, raises it.

use schemars::gen::{SchemaGenerator, SchemaSettings};
use schemars::schema::{RootSchema, Schema, SchemaObject};
use schemars::visit::{self, Visitor};
use schemars::JsonSchema;
use serde::Serialize;

use crate::pipeline::RunSummary;
use crate::probe::ProbeResult;

pub use crate::document::{
    Document, DocumentName, ProbeResultName, RunSummaryName, SchemaVersion, SCHEMA_VERSION,
};

/// One probe's result as a document of its own (`check --json`, the
/// Lambda's per-probe log line). Inside a `run_summary` the results are
/// plain [`ProbeResult`]s: the summary already names itself.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "ProbeResultDocument")]
pub struct ProbeResultDocument<'a> {
    pub document: Document<ProbeResultName>,
    pub schema_version: SchemaVersion,
    #[serde(flatten)]
    pub result: &'a ProbeResult,
}

impl<'a> ProbeResultDocument<'a> {
    pub fn new(result: &'a ProbeResult) -> Self {
        ProbeResultDocument {
            document: Document::default(),
            schema_version: SchemaVersion,
            result,
        }
    }
}

/// The Lambda's log line for one probe: the `probe_result` document on one
/// line, so CloudWatch Logs Insights reads its fields directly
/// (`filter document = "probe_result" and status = "down"`).
pub fn probe_result_line(r: &ProbeResult) -> String {
    serde_json::to_string(&ProbeResultDocument::new(r))
        .unwrap_or_else(|e| format!(r#"{{"error":"result not serialisable: {e}"}}"#))
}

/// Write [`probe_result_line`] to stdout, which the Lambda runtime sends to
/// CloudWatch Logs. Not through `tracing`: its JSON formatter would wrap
/// the record in its own envelope, as a string. `println!` holds the
/// stdout lock for the whole line (no interleaving with tracing's lines),
/// and tests that call the handler in-process capture it.
pub fn log_probe_result(r: &ProbeResult) {
    println!("{}", probe_result_line(r));
}

/// The generated schema, tightened to what is written rather than what
/// could be read:
/// - every object admits only the fields it lists, so an output that grows
///   a field the types do not declare (a `json!` merge, a hand-written
///   `Serialize`) fails validation instead of slipping through;
/// - a field with a `default` is required: schemars gives the default only
///   when serde would write it (not for `skip_serializing_if` fields), so
///   such a field is always there (`kind`, `attempts`, ...), whatever a
///   reader of old data may tolerate.
struct AsWritten;

impl Visitor for AsWritten {
    fn visit_schema_object(&mut self, schema: &mut SchemaObject) {
        if let Some(obj) = schema.object.as_mut() {
            if !obj.properties.is_empty() && obj.additional_properties.is_none() {
                obj.additional_properties = Some(Box::new(Schema::Bool(false)));
            }
            for (name, prop) in &obj.properties {
                let has_default = matches!(prop, Schema::Object(o)
                    if o.metadata.as_ref().is_some_and(|m| m.default.is_some()));
                if has_default {
                    obj.required.insert(name.clone());
                }
            }
        }
        visit::visit_schema_object(self, schema);
    }
}

/// The schema of every result document, as shipped in
/// `schema/result.schema.json`.
pub fn json_schema() -> String {
    let mut gen: SchemaGenerator = SchemaSettings::draft07().into_generator();
    let documents = vec![
        gen.subschema_for::<ProbeResultDocument<'static>>(),
        gen.subschema_for::<RunSummary>(),
    ];
    let mut schema = SchemaObject::default();
    let meta = schema.metadata();
    meta.title = Some("pop3-probe result documents".into());
    meta.description = Some(format!(
        "The JSON documents pop3-probe emits, schema_version {SCHEMA_VERSION}: \
         `probe_result` (check --json; the Lambda's per-probe log line) and \
         `run_summary` (run --json; the Lambda's returned value). \
         The `document` field says which."
    ));
    schema.subschemas().one_of = Some(documents);
    let mut root = RootSchema {
        meta_schema: gen.settings().meta_schema.clone(),
        schema,
        definitions: gen.take_definitions(),
    };
    AsWritten.visit_root_schema(&mut root);
    serde_json::to_string_pretty(&root).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_schema_file_is_current() {
        let path = format!("{}/schema/result.schema.json", env!("CARGO_MANIFEST_DIR"));
        let fresh = json_schema();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &fresh).unwrap();
        }
        let shipped = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            shipped == fresh,
            "schema/result.schema.json is stale: run `UPDATE_SCHEMA=1 cargo test --lib schema_file_is_current`"
        );
        let v: serde_json::Value = serde_json::from_str(&fresh).unwrap();
        let defs = v["definitions"].as_object().unwrap();
        for (doc, name) in [
            ("ProbeResultDocument", ProbeResultName::NAME),
            ("RunSummary", RunSummaryName::NAME),
        ] {
            let props = &defs[doc]["properties"];
            assert_eq!(props["document"]["const"], name, "{doc}");
            assert_eq!(props["schema_version"]["const"], SCHEMA_VERSION, "{doc}");
            assert_eq!(defs[doc]["additionalProperties"], false, "{doc}");
            let required = defs[doc]["required"].as_array().unwrap();
            for key in ["document", "schema_version"] {
                assert!(required.iter().any(|r| r == key), "{doc} needs {key}");
            }
        }
        let probe = defs["ProbeResult"]["required"].as_array().unwrap();
        for key in ["kind", "attempts", "monitor", "status", "message"] {
            assert!(
                probe.iter().any(|r| r == key),
                "ProbeResult must require {key}"
            );
        }
        // Round trips and OAuth2 logins are part of the contract too.
        for def in ["RoundtripFacts", "OAuth2Facts", "TlsFacts", "Capabilities"] {
            assert!(defs.contains_key(def), "schema lacks {def}");
        }
    }

    #[tokio::test]
    async fn a_probe_result_document_names_itself_and_its_version() {
        // A port nothing listens on: a real result, refused at connect.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut target = crate::probe::Target::new("t", "127.0.0.1", port);
        target.tls = crate::probe::TlsMode::None;
        let r = crate::probe::check(&target).await;
        let line = probe_result_line(&r);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["document"], "probe_result");
        assert_eq!(v["schema_version"], SCHEMA_VERSION);
        // POP3 is no longer the one kind left out.
        assert_eq!(v["kind"], "pop3");
        assert_eq!(v["failed_phase"], "connect", "{v}");
        assert!(!line.contains('\n'), "one log line");
    }
}
