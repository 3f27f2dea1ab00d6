//! One sync job: list → filter → fetch → bulk → reconcile.
