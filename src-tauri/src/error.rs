//! The error type of the desktop app's commands, serialized for the
//! window's script as `{"kind", "message"}`.

use serde::ser::SerializeStruct;

/// The reason a desktop command or the server's start failed.
#[derive(Debug, thiserror::Error)]
pub enum DesktopError {
    /// The embedded server is not running, so nothing can reach it.
    #[error("the Hearth server is stopped; start it from the tray menu")]
    ServerStopped,
    /// The embedded server failed to start. The start-up code reports
    /// with `anyhow`, so its causes are kept as one text.
    #[error("the Hearth server failed to start: {reason}")]
    Start {
        /// The error and its causes, from outermost to innermost.
        reason: String,
    },
    /// The server responded to a request from this app with an error status.
    #[error("{method} {path} returned {status}: {message}")]
    Api {
        /// Method of the request.
        method: &'static str,
        /// Path of the request.
        path: &'static str,
        /// HTTP status of the response.
        status: u16,
        /// The `error` field of the response's JSON body.
        message: String,
    },
    /// The server's response body could not be read.
    #[error("failed to read the response of {path}")]
    Body {
        /// Path of the request.
        path: &'static str,
        /// The read error.
        #[source]
        source: axum::Error,
    },
    /// The server's response was not the JSON this app expects.
    #[error("the response of {path} is not the expected JSON")]
    Json {
        /// Path of the request.
        path: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The request task on the server's runtime ended without a response.
    #[error("the request to {path} was cancelled: the server is stopping")]
    Cancelled {
        /// Path of the request.
        path: &'static str,
    },
    /// The folder picker returned a path that is not valid UTF-8, which the
    /// API cannot carry.
    #[error("the folder {path} has a name that is not valid UTF-8; rename it or add it with `hearth serve --library`")]
    PathNotUtf8 {
        /// The path, with invalid bytes replaced.
        path: String,
    },
    /// The native folder picker failed.
    #[error("the folder picker failed")]
    Dialog(#[source] tauri_plugin_dialog::Error),
}

impl DesktopError {
    /// Returns a short, stable name of the variant for the script.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ServerStopped => "server_stopped",
            Self::Start { .. } => "start",
            Self::Api { .. } => "api",
            Self::Body { .. } => "body",
            Self::Json { .. } => "json",
            Self::Cancelled { .. } => "cancelled",
            Self::PathNotUtf8 { .. } => "path_not_utf8",
            Self::Dialog(_) => "dialog",
        }
    }
}

impl serde::Serialize for DesktopError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        let mut state = serializer.serialize_struct("DesktopError", 2)?;
        state.serialize_field("kind", self.kind())?;
        state.serialize_field("message", &message)?;
        state.end()
    }
}

#[cfg(test)]
mod tests {
    use super::DesktopError;

    #[test]
    fn serializes_kind_and_message_with_causes() {
        let source = serde_json::from_str::<u8>("x").unwrap_err();
        let error = DesktopError::Json { path: "/api/v1/admin/libraries", source };
        let value = serde_json::to_value(&error).unwrap();
        assert_eq!(value["kind"], "json");
        let message = value["message"].as_str().unwrap();
        assert!(message.starts_with("the response of /api/v1/admin/libraries is not the expected JSON: expected value"), "{message}");
    }
}
