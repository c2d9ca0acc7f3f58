//! Tool errors: `CallToolResult`s with `isError: true` whose text tells the model what to do next.

use rmcp::model::{CallToolResult, ContentBlock};

use crate::service::ServiceError;

/// The recurrence forms, for messages about an invalid rule.
pub(crate) const RECURRENCE_FORMS: &str = "Supported recurrence forms: daily, weekly, monthly, yearly, weekdays, \
     every N days|weeks|months|years (e.g. \"every 2 weeks\"), every monday and thursday, or an RFC 5545 RRULE \
     such as FREQ=MONTHLY;BYDAY=-1FR (last Friday of the month).";

const LEAD_FORMS: &str = "Lead times look like 30min, 1h, 2 hours, 1d, 1 week or PT30M.";

/// A failed tool call, as the text the model reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ToolError(pub(crate) String);

impl ToolError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ToolError(message.into())
    }

    /// Maps a use-case error; `not_found` says what was looked for and how to find it.
    pub(crate) fn service(e: ServiceError, not_found: impl FnOnce() -> String) -> Self {
        match e {
            ServiceError::Invalid(fields) => {
                let mut lines = vec!["Invalid input:".to_owned()];
                let mut hints: Vec<&str> = Vec::new();
                for f in &fields {
                    lines.push(format!("- {}: {}", f.field, f.message));
                    let hint = match f.field.as_str() {
                        "recurrence" => Some(RECURRENCE_FORMS),
                        "lead_time" | "reminders" => Some(LEAD_FORMS),
                        "due_date" | "due_from" | "due_to" => {
                            Some("Dates are YYYY-MM-DD, such as 2026-02-10.")
                        }
                        "due_time" => {
                            Some("Times are HH:MM (24-hour), such as 09:30, and need a due_date.")
                        }
                        "time_zone" => Some(
                            "Time zones are IANA names such as Europe/Berlin or America/New_York.",
                        ),
                        _ => None,
                    };
                    if let Some(h) = hint.filter(|h| !hints.contains(h)) {
                        hints.push(h);
                    }
                }
                lines.extend(hints.into_iter().map(str::to_owned));
                lines.push("Fix these arguments and call the tool again.".to_owned());
                ToolError(lines.join("\n"))
            }
            ServiceError::NotFound(_) => ToolError(not_found()),
            ServiceError::Conflict(message) => ToolError(format!(
                "Conflict: {message}. Call get_task to read the current version, then retry."
            )),
            ServiceError::Unavailable(_) => ToolError::new(
                "The task database is unavailable right now; nothing was changed. Try again in a moment.",
            ),
            ServiceError::Internal(source) => {
                tracing::error!(error = %source, "MCP tool failed");
                ToolError::new(
                    "The server failed to process the request; nothing is known to have changed.",
                )
            }
        }
    }

    /// The error as an MCP tool result.
    pub(crate) fn into_result(self) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text(self.0)])
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::problem::FieldError;

    #[test]
    fn invalid_recurrence_lists_the_supported_forms() {
        let e = ToolError::service(
            ServiceError::Invalid(vec![FieldError {
                field: "recurrence".into(),
                message: "bad".into(),
            }]),
            String::new,
        );
        assert!(e.0.contains("- recurrence: bad"), "{e}");
        assert!(e.0.contains("every monday and thursday"), "{e}");
        assert!(e.0.contains("FREQ=MONTHLY;BYDAY=-1FR"), "{e}");
    }

    #[test]
    fn not_found_uses_the_callers_text() {
        let e = ToolError::service(ServiceError::NotFound("task"), || "no such task".into());
        assert_eq!(e.0, "no such task");
    }
}
