//! Elasticsearch: client, connector and job documents, bulk sink.
