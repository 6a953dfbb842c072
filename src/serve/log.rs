//! The server's log: one JSON object per line on stderr, for a log shipper (Vector,
//! Fluent Bit, Loki's promtail all read JSON lines). Every line has `ts` (UTC, RFC 3339
//! with milliseconds) and `event`:
//!
//! - `listening` (`addr`, `tls`, `users`, `snapshot`), `reload` (`snapshot`, or `error`),
//!   `shutdown` and `closing` (`connections` still open), `stopped`;
//! - `accept_failed` and `connection_error` (`error`) for the socket's own failures;
//! - `connect` / `disconnect` (`conn`, `addr`, `user`, `tls`; `duration_ms` on disconnect);
//! - `auth_failed` (`conn`, `addr`, `user`, `sqlstate`) — never the password;
//! - `refused` (`addr`, `reason`) for connections turned away before startup;
//! - `statement` (`conn`, `user`, `duration_ms`, `rows`, `sqlstate` and `error` when it
//!   failed, `sql` cut to 2,000 characters).

use std::io::Write;

use serde_json::{Map, Value};

/// Longest SQL text a statement line carries.
const SQL_CHARS: usize = 2000;

/// A log line being built.
pub struct Line(Map<String, Value>);

/// Starts a line of `event`.
pub fn event(event: &str) -> Line {
    let mut map = Map::new();
    map.insert(
        "ts".into(),
        Value::String(
            chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
        ),
    );
    map.insert("event".into(), Value::String(event.into()));
    Line(map)
}

impl Line {
    /// Adds a field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Line {
        self.0.insert(key.into(), value.into());
        self
    }

    /// Adds the SQL text, cut to [`SQL_CHARS`] characters.
    pub fn sql(self, sql: &str) -> Line {
        let text: String = sql.chars().take(SQL_CHARS).collect();
        self.with("sql", text)
    }

    /// Writes the line to stderr (one write, so concurrent lines never interleave).
    pub fn write(self) {
        let mut text = Value::Object(self.0).to_string();
        text.push('\n');
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object() {
        let line = event("statement")
            .with("user", "ana")
            .with("rows", 3)
            .sql(&"x".repeat(3000));
        let value = Value::Object(line.0);
        let text = value.to_string();
        assert!(!text.contains('\n'));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["event"], "statement");
        assert_eq!(back["rows"], 3);
        assert_eq!(back["sql"].as_str().unwrap().len(), SQL_CHARS);
    }
}
