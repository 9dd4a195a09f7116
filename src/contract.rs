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

use std::marker::PhantomData;

use schemars::gen::{SchemaGenerator, SchemaSettings};
use schemars::schema::{InstanceType, RootSchema, Schema, SchemaObject};
use schemars::visit::{self, Visitor};
use schemars::JsonSchema;
use serde::{Serialize, Serializer};

use crate::pipeline::RunSummary;
use crate::probe::ProbeResult;

/// The version every document carries. Raise it only for a change that
/// breaks a reader: a removed or renamed field, a new meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// `schema_version`: always [`SCHEMA_VERSION`]. A type of its own so that
/// serde writes it and no caller can put anything else there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchemaVersion;

impl Serialize for SchemaVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(SCHEMA_VERSION)
    }
}

impl JsonSchema for SchemaVersion {
    fn is_referenceable() -> bool {
        false
    }

    fn schema_name() -> String {
        "SchemaVersion".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut s = SchemaObject {
            instance_type: Some(InstanceType::Integer.into()),
            const_value: Some(SCHEMA_VERSION.into()),
            ..Default::default()
        };
        s.metadata().description = Some(
            "The result contract's version. Additions keep it; a removed or renamed field raises it."
                .into(),
        );
        s.into()
    }
}

/// What a document is called in its `document` field.
pub trait DocumentName {
    const NAME: &'static str;
}

/// `document`: the constant name of the document it is in.
pub struct Document<N>(PhantomData<N>);

impl<N> Default for Document<N> {
    fn default() -> Self {
        Document(PhantomData)
    }
}

// By hand: derived, these would ask `N` for Clone/Debug as well.
impl<N> Clone for Document<N> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<N> Copy for Document<N> {}

impl<N: DocumentName> std::fmt::Debug for Document<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(N::NAME)
    }
}

impl<N: DocumentName> Serialize for Document<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(N::NAME)
    }
}

impl<N: DocumentName> JsonSchema for Document<N> {
    fn is_referenceable() -> bool {
        false
    }

    fn schema_name() -> String {
        format!("Document_{}", N::NAME)
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut s = SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            const_value: Some(N::NAME.into()),
            ..Default::default()
        };
        s.metadata().description = Some("Which document this is.".into());
        s.into()
    }
}

/// The `run_summary` document's name.
#[derive(Debug, Clone, Copy)]
pub enum RunSummaryName {}

impl DocumentName for RunSummaryName {
    const NAME: &'static str = "run_summary";
}

/// The `probe_result` document's name.
#[derive(Debug, Clone, Copy)]
pub enum ProbeResultName {}

impl DocumentName for ProbeResultName {
    const NAME: &'static str = "probe_result";
}

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
