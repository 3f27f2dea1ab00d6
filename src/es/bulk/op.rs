//! Bulk operations and their NDJSON encoding.

/// One operation for the content index. Documents arrive already serialized, so their size is known
/// exactly (for batching, the queue's memory bound and the indexed volume).
#[derive(Debug, Clone)]
pub enum Op {
    Index {
        id: String,
        source: Vec<u8>,
        /// Docs carrying `_attachment` are exempt from `max_text_document_size` (as in Elastic).
        has_attachment: bool,
    },
    Delete {
        id: String,
        /// Whether the job's `deleted_document_count` takes this deletion. A resumed job deletes
        /// again, uncounted, what an earlier run of it counted before it died
        /// (docs/architecture.md#reconciliation).
        counted: bool,
    },
}

impl Op {
    pub fn id(&self) -> &str {
        match self {
            Op::Index { id, .. } | Op::Delete { id, .. } => id,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Op::Index { .. } => "index",
            Op::Delete { .. } => "delete",
        }
    }

    /// NDJSON lines this op takes (Elastic's `chunk_size` counts lines).
    pub fn lines(&self) -> usize {
        match self {
            Op::Index { .. } => 2,
            Op::Delete { .. } => 1,
        }
    }

    /// Appends this op's NDJSON lines to `out`.
    pub fn encode(&self, index: &str, out: &mut Vec<u8>) {
        // `{"<kind>":{"_index":…,"_id":…}}`, written directly (no JSON tree per operation).
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(self.kind().as_bytes());
        out.extend_from_slice(b"\":{\"_index\":");
        serde_json::to_writer(&mut *out, index).expect("a string serializes");
        out.extend_from_slice(b",\"_id\":");
        serde_json::to_writer(&mut *out, self.id()).expect("a string serializes");
        out.extend_from_slice(b"}}\n");
        if let Op::Index { source, .. } = self {
            out.extend_from_slice(source);
            out.push(b'\n');
        }
    }

    /// Bytes this op adds to a request (close enough: the action line is ~70 bytes).
    pub fn encoded_len(&self, index: &str) -> usize {
        let action = 40 + index.len() + self.id().len();
        match self {
            Op::Index { source, .. } => action + source.len() + 1,
            Op::Delete { .. } => action,
        }
    }
}

/// Fields that only an ingest pipeline reads (and removes); indexed without one they would be noise,
/// and `_attachment` a copy of the whole file.
pub const PIPELINE_FIELDS: [&str; 4] = [
    "_extract_binary_content",
    "_reduce_whitespace",
    "_run_ml_inference",
    "_attachment",
];

/// Removes the pipeline fields from a document that was built for a pipeline the cluster lacks.
/// Cheap for documents without them (a byte search, no parse).
pub fn strip_pipeline_fields(op: &mut Op) {
    let Op::Index {
        id,
        source,
        has_attachment,
    } = op
    else {
        return;
    };
    let carries =
        |field: &str| memchr::memmem::find(source, format!("\"{field}\"").as_bytes()).is_some();
    if !PIPELINE_FIELDS.iter().any(|f| carries(f)) {
        return;
    }
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(source)
    else {
        return;
    };
    if *has_attachment && doc.remove("_attachment").is_some() {
        tracing::warn!(id = %id, "no ingest pipeline to extract this file's text; indexed without it");
    }
    for field in PIPELINE_FIELDS {
        doc.remove(field);
    }
    *source = serde_json::to_vec(&doc).expect("document serializes");
    *has_attachment = false;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_index_and_delete_lines() {
        let mut out = Vec::new();
        Op::Index {
            id: "a\"b".into(),
            source: br#"{"x":1}"#.to_vec(),
            has_attachment: false,
        }
        .encode("idx", &mut out);
        Op::Delete {
            id: "c".into(),
            counted: true,
        }
        .encode("idx", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"index\":{\"_index\":\"idx\",\"_id\":\"a\\\"b\"}}\n{\"x\":1}\n{\"delete\":{\"_index\":\"idx\",\"_id\":\"c\"}}\n"
        );
    }

    #[test]
    fn pipeline_fields_are_stripped_and_nothing_else() {
        let mut op = Op::Index {
            id: "1".into(),
            source: br#"{"body":"say \"_attachment\"","_reduce_whitespace":true,"_attachment":"AAAA","id":"1"}"#.to_vec(),
            has_attachment: true,
        };
        strip_pipeline_fields(&mut op);
        let Op::Index {
            source,
            has_attachment,
            ..
        } = &op
        else {
            unreachable!()
        };
        let doc: serde_json::Value = serde_json::from_slice(source).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"body": "say \"_attachment\"", "id": "1"})
        );
        assert!(!has_attachment);
        let plain = br#"{"body":"x","id":"2"}"#.to_vec();
        let mut op = Op::Index {
            id: "2".into(),
            source: plain.clone(),
            has_attachment: false,
        };
        strip_pipeline_fields(&mut op);
        assert!(matches!(op, Op::Index { source, .. } if source == plain));
    }
}
