//! The long-running service: preflight, scheduler, job executor, cleanup.
