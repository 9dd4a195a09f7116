//! The marks every result document carries, `document` and
//! `schema_version`: a leaf module, so the result types (in `pipeline` and
//! `probe`) can carry them while `contract`, which generates the schema
//! from those types, sits above them.

use std::marker::PhantomData;

use schemars::gen::SchemaGenerator;
use schemars::schema::{InstanceType, Schema, SchemaObject};
use schemars::JsonSchema;
use serde::{Serialize, Serializer};

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
