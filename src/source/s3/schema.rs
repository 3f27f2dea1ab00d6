//! The configuration schema the S3 source writes to its connector document (docs/architecture.md#the-s3-source, docs/protocol.md#connector-documents).
//!
//! The first eight fields are Elastic's, byte for byte. Our additions come after them (order 9..12) and are
//! all optional, so connectors created by Kibana (which only knows the eight) stay valid.

use serde_json::{Map, Value, json};

/// The stored `type` of a configurable field; when reading values the schema's type wins (docs/architecture.md#the-s3-source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Str,
    Int,
    Bool,
    List,
}

impl FieldType {
    fn as_str(self) -> &'static str {
        match self {
            FieldType::Str => "str",
            FieldType::Int => "int",
            FieldType::Bool => "bool",
            FieldType::List => "list",
        }
    }
}

/// One configurable field of the S3 source.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    /// Key in the connector's `configuration` map.
    pub key: &'static str,
    pub label: &'static str,
    pub display: &'static str,
    pub order: u32,
    pub required: bool,
    pub sensitive: bool,
    pub tooltip: Option<&'static str>,
    pub field_type: FieldType,
    /// `ui_restrictions: ["advanced"]`.
    pub advanced: bool,
    /// `default_value`, used for a non-required field whose value is empty.
    pub default_value: Scalar,
    /// Initial `value` written with the schema.
    pub initial_value: Scalar,
    /// `true` for Elastic's original fields, which must exist in a stored configuration.
    pub elastic: bool,
}

/// A scalar default (`default_value` / initial `value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    Null,
    EmptyStr,
    Int(i64),
    Bool(bool),
}

impl Scalar {
    /// The JSON form.
    pub fn to_value(self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::EmptyStr => Value::String(String::new()),
            Scalar::Int(i) => Value::from(i),
            Scalar::Bool(b) => Value::Bool(b),
        }
    }
}

const fn elastic_field(
    key: &'static str,
    label: &'static str,
    display: &'static str,
    order: u32,
    field_type: FieldType,
) -> FieldSpec {
    FieldSpec {
        key,
        label,
        display,
        order,
        required: true,
        sensitive: false,
        tooltip: None,
        field_type,
        advanced: false,
        default_value: Scalar::Null,
        initial_value: Scalar::EmptyStr,
        elastic: true,
    }
}

/// Elastic's numeric "advanced" fields: optional ints with a default.
const fn advanced_int(
    key: &'static str,
    label: &'static str,
    order: u32,
    default: i64,
) -> FieldSpec {
    FieldSpec {
        required: false,
        advanced: true,
        default_value: Scalar::Int(default),
        ..elastic_field(key, label, "numeric", order, FieldType::Int)
    }
}

/// Our additions: optional, not required to exist in a stored configuration.
const fn addition(
    key: &'static str,
    label: &'static str,
    order: u32,
    tooltip: &'static str,
) -> FieldSpec {
    FieldSpec {
        required: false,
        tooltip: Some(tooltip),
        advanced: true,
        elastic: false,
        ..elastic_field(key, label, "text", order, FieldType::Str)
    }
}

/// An optional on/off addition, off by default.
const fn toggle_addition(
    key: &'static str,
    label: &'static str,
    order: u32,
    tooltip: &'static str,
) -> FieldSpec {
    FieldSpec {
        display: "toggle",
        field_type: FieldType::Bool,
        default_value: Scalar::Bool(false),
        initial_value: Scalar::Bool(false),
        ..addition(key, label, order, tooltip)
    }
}

/// Every field of the S3 source, in schema order.
pub static FIELDS: [FieldSpec; 14] = [
    FieldSpec {
        tooltip: Some("AWS Buckets are ignored when Advanced Sync Rules are used."),
        ..elastic_field("buckets", "AWS Buckets", "textarea", 1, FieldType::List)
    },
    elastic_field(
        "aws_access_key_id",
        "AWS Access Key Id",
        "text",
        2,
        FieldType::Str,
    ),
    FieldSpec {
        sensitive: true,
        ..elastic_field(
            "aws_secret_access_key",
            "AWS Secret Key",
            "text",
            3,
            FieldType::Str,
        )
    },
    advanced_int("read_timeout", "Read timeout", 4, 90),
    advanced_int("connect_timeout", "Connection timeout", 5, 90),
    advanced_int("max_attempts", "Maximum retry attempts", 6, 5),
    advanced_int("page_size", "Maximum size of page", 7, 100),
    FieldSpec {
        tooltip: Some(
            "Requires a separate deployment of the Elastic Text Extraction Service. Requires that pipeline settings disable text extraction.",
        ),
        advanced: true,
        initial_value: Scalar::Bool(false),
        ..elastic_field(
            "use_text_extraction_service",
            "Use text extraction service",
            "toggle",
            8,
            FieldType::Bool,
        )
    },
    FieldSpec {
        advanced: false,
        ..addition(
            "endpoint_url",
            "S3-compatible endpoint URL",
            9,
            "Leave empty for Amazon S3. Set it to use an S3-compatible store such as MinIO, Ceph, Cloudflare R2 or \
             Wasabi, e.g. http://minio.local:9000.",
        )
    },
    addition(
        "region",
        "AWS Region",
        10,
        "Region of the default client, e.g. eu-west-1. Leave empty to use the AWS default chain (environment, \
         profile), else us-east-1. Buckets in other regions are still found through their location.",
    ),
    toggle_addition(
        "force_path_style",
        "Force path-style addressing",
        11,
        "Address buckets as <endpoint>/<bucket> instead of <bucket>.<endpoint>. Needed by most S3-compatible \
         stores; it is switched on automatically for localhost and IP-address endpoints.",
    ),
    FieldSpec {
        sensitive: true,
        ..addition(
            "aws_session_token",
            "AWS Session Token",
            12,
            "Session token for temporary credentials; used together with the access key id and secret key.",
        )
    },
    toggle_addition(
        "skip_unchanged_documents",
        "Skip unchanged objects in full syncs",
        13,
        "Full syncs re-index every object (Elastic's behaviour). When on, objects whose last-modified time and \
         ETag match the indexed document are neither downloaded nor re-indexed. Incremental syncs always skip them.",
    ),
    toggle_addition(
        "use_pipeline_extraction",
        "Extract text in Elasticsearch",
        14,
        "Off: content-sync extracts the text of supported files itself into `body`. On: files are sent \
         base64-encoded as `_attachment`, as Elastic's service does, for the ingest pipeline's attachment \
         processor (the pipeline must exist and extract binary content).",
    ),
];

/// Looks up a field by key.
pub fn field(key: &str) -> Option<&'static FieldSpec> {
    FIELDS.iter().find(|f| f.key == key)
}

impl FieldSpec {
    /// The rich configurable field (docs/protocol.md#connector-documents): the 13 keys in their canonical order.
    pub fn to_rich_field(&self) -> Value {
        json!({
            "default_value": self.default_value.to_value(),
            "depends_on": [],
            "display": self.display,
            "label": self.label,
            "options": [],
            "order": self.order,
            "required": self.required,
            "sensitive": self.sensitive,
            "tooltip": self.tooltip,
            "type": self.field_type.as_str(),
            "ui_restrictions": if self.advanced { vec!["advanced"] } else { vec![] },
            "validations": [],
            "value": self.initial_value.to_value(),
        })
    }
}

/// The configuration schema written to a new S3 connector: Elastic's eight fields then our four additions.
pub fn configuration_schema() -> Map<String, Value> {
    FIELDS
        .iter()
        .map(|f| (f.key.to_owned(), f.to_rich_field()))
        .collect()
}

/// Field names in schema order.
pub fn schema_field_names() -> Vec<&'static str> {
    FIELDS.iter().map(|f| f.key).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/architecture.md#the-s3-source, verbatim.
    const ELASTIC_SCHEMA: &str = r#"{"buckets":{"default_value":null,"depends_on":[],"display":"textarea","label":"AWS Buckets","options":[],"order":1,"required":true,"sensitive":false,"tooltip":"AWS Buckets are ignored when Advanced Sync Rules are used.","type":"list","ui_restrictions":[],"validations":[],"value":""},
 "aws_access_key_id":{"default_value":null,"depends_on":[],"display":"text","label":"AWS Access Key Id","options":[],"order":2,"required":true,"sensitive":false,"tooltip":null,"type":"str","ui_restrictions":[],"validations":[],"value":""},
 "aws_secret_access_key":{"default_value":null,"depends_on":[],"display":"text","label":"AWS Secret Key","options":[],"order":3,"required":true,"sensitive":true,"tooltip":null,"type":"str","ui_restrictions":[],"validations":[],"value":""},
 "read_timeout":{"default_value":90,"depends_on":[],"display":"numeric","label":"Read timeout","options":[],"order":4,"required":false,"sensitive":false,"tooltip":null,"type":"int","ui_restrictions":["advanced"],"validations":[],"value":""},
 "connect_timeout":{"default_value":90,"depends_on":[],"display":"numeric","label":"Connection timeout","options":[],"order":5,"required":false,"sensitive":false,"tooltip":null,"type":"int","ui_restrictions":["advanced"],"validations":[],"value":""},
 "max_attempts":{"default_value":5,"depends_on":[],"display":"numeric","label":"Maximum retry attempts","options":[],"order":6,"required":false,"sensitive":false,"tooltip":null,"type":"int","ui_restrictions":["advanced"],"validations":[],"value":""},
 "page_size":{"default_value":100,"depends_on":[],"display":"numeric","label":"Maximum size of page","options":[],"order":7,"required":false,"sensitive":false,"tooltip":null,"type":"int","ui_restrictions":["advanced"],"validations":[],"value":""},
 "use_text_extraction_service":{"default_value":null,"depends_on":[],"display":"toggle","label":"Use text extraction service","options":[],"order":8,"required":true,"sensitive":false,"tooltip":"Requires a separate deployment of the Elastic Text Extraction Service. Requires that pipeline settings disable text extraction.","type":"bool","ui_restrictions":["advanced"],"validations":[],"value":false}}"#;

    #[test]
    fn first_eight_fields_are_elastic_verbatim() {
        let expected: Map<String, Value> = serde_json::from_str(ELASTIC_SCHEMA).unwrap();
        let ours: Map<String, Value> = configuration_schema().into_iter().take(8).collect();
        // Serialized comparison: checks key order at both levels, which `Map` equality ignores.
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
    }

    #[test]
    fn additions_follow_in_order_and_are_optional() {
        let schema = configuration_schema();
        let names: Vec<&str> = schema.keys().map(String::as_str).collect();
        assert_eq!(names, schema_field_names());
        assert_eq!(
            &names[8..],
            [
                "endpoint_url",
                "region",
                "force_path_style",
                "aws_session_token",
                "skip_unchanged_documents",
                "use_pipeline_extraction"
            ]
        );
        for (i, name) in names[8..].iter().enumerate() {
            let f = &schema[*name];
            assert_eq!(f["order"], 9 + i as u64);
            assert_eq!(f["required"], false);
            let advanced = f["ui_restrictions"] == json!(["advanced"]);
            assert_eq!(advanced, *name != "endpoint_url", "{name}");
        }
        assert_eq!(
            schema["endpoint_url"]["label"],
            "S3-compatible endpoint URL"
        );
        assert_eq!(schema["region"]["label"], "AWS Region");
        assert_eq!(schema["force_path_style"]["type"], "bool");
        assert_eq!(schema["force_path_style"]["display"], "toggle");
        assert_eq!(schema["force_path_style"]["default_value"], false);
        assert_eq!(schema["aws_session_token"]["sensitive"], true);
    }

    #[test]
    fn every_field_has_the_13_rich_keys_in_order() {
        let keys = crate::es::connector::RICH_KEYS;
        for (name, f) in configuration_schema() {
            let got: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(got, keys, "{name}");
        }
    }
}
