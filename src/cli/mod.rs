//! Management CLI: connectors and jobs.
