//! The connector fields that steer the sync itself, whatever the source: read from the job's
//! `configuration` snapshot beside the source's own settings.

use crate::source::fields::is_on;
use serde_json::{Map, Value};

/// How a job syncs, from the connector's configuration (unset toggles are off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Full syncs skip objects unchanged since they were indexed (content-sync addition).
    pub skip_unchanged_documents: bool,
    /// Send files as `_attachment` for Elasticsearch's pipeline instead of extracting natively.
    pub use_pipeline_extraction: bool,
    /// Send files to the Data Extraction Service (`extraction_service.*` in config.yml).
    pub use_text_extraction_service: bool,
}

impl SyncOptions {
    pub fn from_configuration(cfg: &Map<String, Value>) -> Self {
        Self {
            skip_unchanged_documents: is_on(cfg, "skip_unchanged_documents"),
            use_pipeline_extraction: is_on(cfg, "use_pipeline_extraction"),
            use_text_extraction_service: is_on(cfg, "use_text_extraction_service"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn toggles_come_from_rich_or_plain_fields() {
        let cfg = json!({
            "skip_unchanged_documents": {"value": "true"},
            "use_pipeline_extraction": {"value": "false"},
            "use_text_extraction_service": true,
            "buckets": {"value": "b"},
        });
        let options = SyncOptions::from_configuration(cfg.as_object().unwrap());
        assert_eq!(
            options,
            SyncOptions {
                skip_unchanged_documents: true,
                use_pipeline_extraction: false,
                use_text_extraction_service: true,
            }
        );
        assert_eq!(
            SyncOptions::from_configuration(&Map::new()),
            SyncOptions::default()
        );
    }
}
