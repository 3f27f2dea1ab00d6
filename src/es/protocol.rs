//! Direct-index mode or `_connector` API mode (§2.3).

use super::EsClient;
use crate::config::ApiMode;
use reqwest::Method;

/// Whether the connector/job writes that Elastic routes through the `_connector` APIs use them.
/// `auto` (our default) asks the cluster once: `GET /_connector?size=1` answers on Elasticsearch 8.12+.
pub async fn use_connector_api(es: &EsClient, mode: ApiMode) -> bool {
    match mode {
        ApiMode::True => true,
        ApiMode::False => false,
        ApiMode::Auto => match es
            .json(Method::GET, &["_connector"], &[("size", "1".into())], None)
            .await
        {
            Ok(_) => true,
            Err(e) => {
                tracing::debug!(reason = %e, "no _connector API");
                false
            }
        },
    }
}
