//! The closed sets of strings of the connectors protocol (docs/protocol.md): job status, job type,
//! trigger method and connector status, as enums written and read as Elastic's strings.
//!
//! Reading is lenient where documents are read ([`JobStatus::parse`] and friends give `None` for a
//! string this service does not know, and the document keeps it as it is); writing is exact.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// What every protocol enum offers, for code generic over them ([`Read`]).
pub trait ProtocolEnum: Sized + Copy {
    /// The value written as `text`; `None` for a string this service does not know.
    fn parse(text: &str) -> Option<Self>;
    /// Elastic's string.
    fn as_str(self) -> &'static str;
}

/// A protocol string as a document holds it: a value this service knows, or any other string,
/// kept as written so that a read-modify-write gives it back unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read<T> {
    Known(T),
    Other(String),
}

impl<T: ProtocolEnum> Read<T> {
    /// The known value, if it is one.
    pub fn known(&self) -> Option<T> {
        match self {
            Read::Known(v) => Some(*v),
            Read::Other(_) => None,
        }
    }

    /// The string as written.
    pub fn as_str(&self) -> &str {
        match self {
            Read::Known(v) => v.as_str(),
            Read::Other(s) => s,
        }
    }
}

impl<T: ProtocolEnum> Serialize for Read<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de, T: ProtocolEnum> Deserialize<'de> for Read<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(match T::parse(&text) {
            Some(v) => Read::Known(v),
            None => Read::Other(text),
        })
    }
}

/// One protocol enum: its variants and their strings, `as_str`, `parse`, `Display` and serde.
macro_rules! protocol_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order the protocol lists them.
            pub const ALL: &[$name] = &[$($name::$variant),+];

            /// Elastic's string.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value written as `text`; `None` for a string this service does not know.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl ProtocolEnum for $name {
            fn parse(text: &str) -> Option<Self> {
                $name::parse(text)
            }
            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                $name::parse(&text).ok_or_else(|| {
                    let expected: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    serde::de::Error::custom(format_args!(
                        "unknown {} {text:?}, expected one of {}",
                        stringify!($name),
                        expected.join(", ")
                    ))
                })
            }
        }

        impl From<$name> for serde_json::Value {
            fn from(value: $name) -> Self {
                serde_json::Value::from(value.as_str())
            }
        }
    };
}

protocol_enum! {
    /// A sync job's `status` (docs/protocol.md#a-jobs-life); also a connector's `last_sync_status`.
    JobStatus {
        Pending = "pending",
        InProgress = "in_progress",
        Completed = "completed",
        Error = "error",
        Canceling = "canceling",
        Canceled = "canceled",
        Suspended = "suspended",
    }
}

protocol_enum! {
    /// A sync job's `job_type`.
    JobType {
        Full = "full",
        Incremental = "incremental",
        AccessControl = "access_control",
    }
}

protocol_enum! {
    /// A sync job's `trigger_method`: started by a person (Kibana, the CLI) or by a schedule.
    TriggerMethod {
        OnDemand = "on_demand",
        Scheduled = "scheduled",
    }
}

protocol_enum! {
    /// A connector's `status`.
    ConnectorStatus {
        Created = "created",
        NeedsConfiguration = "needs_configuration",
        Configured = "configured",
        Connected = "connected",
        Error = "error",
    }
}

impl JobStatus {
    /// Whether the job is over: nothing will change it any more.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Error | Self::Canceled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn written_and_read_as_elastics_strings() {
        assert_eq!(json!(JobStatus::InProgress), json!("in_progress"));
        assert_eq!(json!(JobType::AccessControl), json!("access_control"));
        assert_eq!(json!(TriggerMethod::OnDemand), json!("on_demand"));
        assert_eq!(
            json!(ConnectorStatus::NeedsConfiguration),
            json!("needs_configuration")
        );
        for status in JobStatus::ALL {
            let back: JobStatus = serde_json::from_value(json!(status.as_str())).unwrap();
            assert_eq!(back, *status);
        }
        assert_eq!(JobStatus::parse("suspended"), Some(JobStatus::Suspended));
        assert_eq!(JobStatus::parse("paused"), None);
        let e = serde_json::from_value::<JobType>(json!("partial")).unwrap_err();
        assert!(e.to_string().contains("unknown JobType \"partial\""), "{e}");
    }

    #[test]
    fn a_read_string_keeps_what_this_service_does_not_know() {
        let known: Read<JobStatus> = serde_json::from_value(json!("canceling")).unwrap();
        assert_eq!(known.known(), Some(JobStatus::Canceling));
        let other: Read<JobStatus> = serde_json::from_value(json!("paused")).unwrap();
        assert_eq!((other.known(), other.as_str()), (None, "paused"));
        assert_eq!(json!(other), json!("paused"));
    }

    #[test]
    fn the_terminal_statuses() {
        let terminal: Vec<_> = JobStatus::ALL.iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(
            terminal,
            [
                &JobStatus::Completed,
                &JobStatus::Error,
                &JobStatus::Canceled
            ]
        );
    }
}
