//! What a job lists: targets from the advanced sync rules, else from the `buckets` setting.

use super::SyncError;
use super::rules::{self, AdvancedRule, BasicRules};
use crate::source::s3::S3Source;
use serde_json::Value;

/// One listing: a bucket, optionally narrowed by prefix (the LIST itself is narrowed) and by the
/// rule's extension/glob/regex constraints (applied to each listed key).
pub struct Target {
    pub bucket: String,
    pub prefix: Option<String>,
    pub rule: Option<AdvancedRule>,
}

impl Target {
    pub fn keeps(&self, key: &str) -> bool {
        self.rule.as_ref().is_none_or(|r| r.keeps(key))
    }
}

/// The job's listings and its basic rules.
pub struct Plan {
    pub targets: Vec<Target>,
    pub basic: BasicRules,
}

/// Validates the job's filtering snapshot (§5.3 step 7) and builds the plan. `buckets: *` is
/// resolved with ListBuckets; advanced rules, when present, replace `buckets` entirely (§7.4).
pub async fn build(filtering: &Value, source: &S3Source) -> Result<Plan, SyncError> {
    let validation = rules::validate(filtering).map_err(|e| SyncError::Rules(e.to_string()))?;
    if !validation.is_valid() {
        return Err(SyncError::Rules(validation.job_error_message()));
    }
    let basic =
        BasicRules::from_filtering(filtering).map_err(|e| SyncError::Rules(e.to_string()))?;
    let advanced = rules::advanced_rules(filtering).map_err(|e| SyncError::Rules(e.to_string()))?;
    let targets = match advanced {
        Some(rules) => rules
            .into_iter()
            .map(|rule| Target {
                bucket: rule.bucket.clone(),
                prefix: rule.prefix.clone(),
                rule: Some(rule),
            })
            .collect(),
        None => source
            .resolve_buckets()
            .await
            .map_err(|e| SyncError::Listing(e.to_string()))?
            .into_iter()
            .map(|bucket| Target {
                bucket,
                prefix: None,
                rule: None,
            })
            .collect(),
    };
    Ok(Plan { targets, basic })
}

/// A plan without targets (`buckets: *` and ListBuckets named none) lists nothing, so every
/// document of the index would look vanished. An empty bucket list is far likelier a store or
/// permission hiccup than the intent to empty the index, so that sync fails instead.
pub fn check_targets(targets: &[Target], index: &str, existing: usize) -> Result<(), SyncError> {
    if targets.is_empty() && existing > 0 {
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
        let err = check_targets(&[], "search-x", 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "buckets \"*\" matched no bucket, yet index \"search-x\" holds 3 documents; \
             nothing was deleted"
        );
        assert!(check_targets(&[], "search-x", 0).is_ok(), "nothing to lose");
        let one = Target {
            bucket: "b".into(),
            prefix: None,
            rule: None,
        };
        assert!(check_targets(&[one], "search-x", 3).is_ok());
    }
}
