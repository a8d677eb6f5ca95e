//! The tool's errors and their exit codes.

use std::fmt;

/// Why a command stopped without finishing its job. Each kind has its exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments or a request the socket type cannot do (exit 2, as clap's own errors).
    Usage(String),
    /// `--timeout` ran out (exit 3).
    Timeout(String),
    /// Ctrl-C or SIGTERM (exit 130).
    Interrupted,
    /// Anything else: socket, network, I/O, malformed input (exit 1).
    Failed(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Failed(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Timeout(_) => 3,
            CliError::Interrupted => 130,
        }
    }

    /// A usage error.
    pub fn usage(msg: impl Into<String>) -> Self {
        CliError::Usage(msg.into())
    }

    /// A failure.
    pub fn failed(msg: impl Into<String>) -> Self {
        CliError::Failed(msg.into())
    }

    /// A zmtp-std error, with what was being done. Endpoint and option errors are usage
    /// errors; a timeout is a timeout.
    pub fn socket(doing: impl fmt::Display, e: zmtp_std::Error) -> Self {
        match e {
            zmtp_std::Error::InvalidEndpoint { .. } | zmtp_std::Error::InvalidOption { .. } => {
                CliError::Usage(format!("{doing}: {e}"))
            }
            zmtp_std::Error::Timeout => CliError::Timeout(format!("{doing}: timed out")),
            e => CliError::Failed(format!("{doing}: {e}")),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Timeout(m) | CliError::Failed(m) => f.write_str(m),
            CliError::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// Shorthand.
pub type Result<T = ()> = std::result::Result<T, CliError>;
