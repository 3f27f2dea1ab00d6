//! A search or scroll answer, decoded straight into the fields its caller reads: the hits with
//! their `_source` as a caller's struct, the shard and time-out flags that say whether the page
//! is complete, the total and the scroll id. The content index is read this way once per listed
//! object (versions) and once per indexed document (the stale pass), so no JSON tree is built.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;
use std::fmt;

/// One page of a search (`S`: what a hit's `_source` is read into), borrowing the answer's text
/// where it can (`'a`: the answer's bytes).
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "S: Deserialize<'de>"))]
pub struct SearchPage<'a, S> {
    #[serde(default)]
    pub timed_out: bool,
    #[serde(rename = "_shards", default)]
    pub shards: Option<Shards>,
    #[serde(borrow, default)]
    pub hits: Option<Hits<'a, S>>,
    #[serde(rename = "_scroll_id", default)]
    pub scroll_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Shards {
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub failed: u64,
    #[serde(default)]
    pub failures: Vec<ShardFailure>,
}

#[derive(Debug, Deserialize)]
pub struct ShardFailure {
    #[serde(default)]
    pub reason: Option<Reason>,
}

#[derive(Debug, Deserialize)]
pub struct Reason {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "S: Deserialize<'de>"))]
pub struct Hits<'a, S> {
    #[serde(default)]
    pub total: Option<Total>,
    #[serde(borrow)]
    pub hits: Vec<SearchHit<'a, S>>,
}

/// `hits.total`: `{"value": n, "relation": "eq" | "gte"}`, or a plain number from older versions.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Total {
    Plain(u64),
    Counted { value: u64, relation: String },
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "S: Deserialize<'de>"))]
pub struct SearchHit<'a, S> {
    /// Borrowed from the answer unless it holds escapes.
    #[serde(rename = "_id", borrow)]
    pub id: Cow<'a, str>,
    #[serde(rename = "_source", default = "none")]
    pub source: Option<S>,
}

fn none<S>() -> Option<S> {
    None
}

/// A `_source` field read as text when it is a string, as absent when it is anything else (a
/// document someone else wrote may hold a number there); nothing else of it is built. The text is
/// borrowed from the answer where it needs no unescaping (serde's own `Cow<str>` always copies).
pub fn text_borrowed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(V)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map
                .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                .is_some()
            {}
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// A `_source` flag: `true` only when the field is the JSON `true`.
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Other(de::IgnoredAny),
    }
    Ok(matches!(Flag::deserialize(d)?, Flag::Bool(true)))
}

impl<S> SearchPage<'_, S> {
    /// The exact number of documents the search matched, when the answer gives it.
    pub fn exact_total(&self) -> Option<u64> {
        match self.hits.as_ref()?.total.as_ref()? {
            Total::Plain(n) => Some(*n),
            Total::Counted { value, relation } => (relation == "eq").then_some(*value),
        }
    }

    /// The first shard failure, as `type: reason`.
    pub fn first_failure(&self) -> Option<String> {
        let reason = self.shards.as_ref()?.failures.first()?.reason.as_ref()?;
        Some(format!(
            "{}: {}",
            reason.kind.as_deref().unwrap_or_default(),
            reason.reason.as_deref().unwrap_or_default()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Src {
        bucket: Option<String>,
    }

    #[test]
    fn a_page_reads_its_hits_totals_and_failures() {
        let answer = json!({
            "_scroll_id": "s1", "took": 1, "timed_out": false,
            "_shards": {"total": 2, "successful": 1, "skipped": 0, "failed": 1, "failures": [
                {"shard": 1, "index": "x", "reason": {"type": "node_disconnected_exception",
                 "reason": "node left"}}]},
            "hits": {"total": {"value": 2, "relation": "eq"}, "max_score": null, "hits": [
                {"_index": "x", "_id": "a", "_score": null, "_source": {"bucket": "b", "size": 1},
                 "sort": [0]},
                {"_index": "x", "_id": "b"}]}
        })
        .to_string();
        let page: SearchPage<Src> = serde_json::from_str(&answer).unwrap();
        assert_eq!(page.scroll_id.as_deref(), Some("s1"));
        assert_eq!(page.exact_total(), Some(2));
        assert_eq!(page.shards.as_ref().unwrap().failed, 1);
        assert_eq!(
            page.first_failure().as_deref(),
            Some("node_disconnected_exception: node left")
        );
        let hits = &page.hits.as_ref().unwrap().hits;
        assert_eq!(hits[0].id, "a");
        assert!(
            matches!(hits[0].id, Cow::Borrowed(_)),
            "read without a copy"
        );
        assert_eq!(
            hits[0].source,
            Some(Src {
                bucket: Some("b".into())
            })
        );
        assert_eq!(hits[1].source, None);
    }

    fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        text_borrowed(d).map(|t| t.map(Cow::into_owned))
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Lenient {
        #[serde(default, deserialize_with = "text")]
        t: Option<String>,
        #[serde(default, deserialize_with = "flag")]
        f: bool,
    }

    #[test]
    fn lenient_fields_read_what_they_can_and_skip_the_rest() {
        let read = |v| serde_json::from_value::<Lenient>(v).unwrap();
        assert_eq!(
            read(json!({"t": "x", "f": true})),
            Lenient {
                t: Some("x".into()),
                f: true
            }
        );
        for other in [
            json!(1),
            json!(null),
            json!([1, {"a": 2}]),
            json!({"a": [3]}),
            json!(1.5),
        ] {
            let got = read(json!({"t": other.clone(), "f": other}));
            assert_eq!(got, Lenient { t: None, f: false });
        }
        assert_eq!(read(json!({})), Lenient { t: None, f: false });
    }

    #[test]
    fn only_an_exact_total_counts() {
        let total = |answer: serde_json::Value| {
            serde_json::from_str::<SearchPage<Src>>(&answer.to_string())
                .unwrap()
                .exact_total()
        };
        assert_eq!(total(json!({"hits": {"total": 7, "hits": []}})), Some(7));
        let counted = json!({"hits": {"total": {"value": 10000, "relation": "gte"}, "hits": []}});
        assert_eq!(total(counted), None);
        assert_eq!(total(json!({"hits": {"hits": []}})), None);
    }
}
