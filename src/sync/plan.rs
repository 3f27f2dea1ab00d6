//! What a job lists: the source's partitions (from the advanced sync rules, else from its
//! configuration), and the basic rules every produced document must pass.

use super::SyncError;
use super::rules::{self, BasicRules, RuleError};
use crate::source::{Partition, PartitionError, Source, SourceKind};
use serde_json::Value;

/// The job's listings and its basic rules.
pub struct Plan {
    pub partitions: Vec<Partition>,
    pub basic: BasicRules,
}

/// Validates the job's filtering snapshot (docs/protocol.md#a-jobs-life) and builds the plan; advanced rules, when
/// present, decide the partitions (docs/architecture.md#the-s3-source).
pub async fn build(
    filtering: &Value,
    kind: &dyn SourceKind,
    source: &dyn Source,
) -> Result<Plan, SyncError> {
    let validation =
        rules::validate(filtering, kind).map_err(|e| SyncError::Rules(e.to_string()))?;
    if !validation.is_valid() {
        return Err(SyncError::Rules(validation.job_error_message()));
    }
    let basic =
        BasicRules::from_filtering(filtering).map_err(|e| SyncError::Rules(e.to_string()))?;
    let partitions = source
        .partitions(rules::advanced_value(filtering))
        .await
        .map_err(|e| match e {
            PartitionError::Rules(m) => {
                SyncError::Rules(RuleError::InvalidAdvancedRules(m).to_string())
            }
            PartitionError::Source(e) => SyncError::Listing(e.to_string()),
        })?;
    Ok(Plan { partitions, basic })
}

/// A plan without partitions (`buckets: *` and ListBuckets named none) lists nothing, so every
/// document of the index would look vanished. An empty bucket list is far likelier a store or
/// permission hiccup than the intent to empty the index, so that sync fails instead.
pub fn check_partitions(
    partitions: &[Partition],
    index: &str,
    existing: u64,
) -> Result<(), SyncError> {
    if partitions.is_empty() && existing > 0 {
        return Err(SyncError::NoBuckets {
            index: index.to_string(),
            documents: existing,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_target_with_indexed_documents_is_an_error() {
        let err = check_partitions(&[], "search-x", 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "buckets \"*\" matched no bucket, yet index \"search-x\" holds 3 documents; \
             nothing was deleted"
        );
        assert!(
            check_partitions(&[], "search-x", 0).is_ok(),
            "nothing to lose"
        );
        let one = Partition::whole("b");
        assert!(check_partitions(&[one], "search-x", 3).is_ok());
    }
}
