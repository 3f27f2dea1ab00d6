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
    },
}

impl Op {
    pub fn id(&self) -> &str {
        match self {
            Op::Index { id, .. } | Op::Delete { id } => id,
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
        let action = serde_json::json!({ self.kind(): {"_index": index, "_id": self.id()} });
        serde_json::to_writer(&mut *out, &action).expect("action serializes");
        out.push(b'\n');
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
        Op::Delete { id: "c".into() }.encode("idx", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"index\":{\"_index\":\"idx\",\"_id\":\"a\\\"b\"}}\n{\"x\":1}\n{\"delete\":{\"_index\":\"idx\",\"_id\":\"c\"}}\n"
        );
    }
}
