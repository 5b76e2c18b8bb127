//! The command line: [`Cli`] and its subcommands, parsed by clap.

use clap::{Args, Parser, Subcommand};

/// A client of the filestore API.
#[derive(Debug, Parser)]
#[command(name = "filestore", version, about, propagate_version = true)]
pub struct Cli {
    /// The API's base URL.
    #[arg(
        long,
        global = true,
        env = "FILESTORE_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,

    /// Print the result as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an account, then log in to it.
    Signup(CredentialArgs),
    /// Log in and keep the token in the config directory.
    Login(CredentialArgs),
    /// Show the logged-in account and its usage.
    Whoami,
    /// List your files (every page).
    Ls,
    /// Rename a file.
    Mv { file_id: String, new_name: String },
    /// Delete a file.
    Rm { file_id: String },
}

impl Command {
    /// The name used in error reports (`<name> failed: ...`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Signup(_) => "signup",
            Self::Login(_) => "login",
            Self::Whoami => "whoami",
            Self::Ls => "ls",
            Self::Mv { .. } => "mv",
            Self::Rm { .. } => "rm",
        }
    }
}

#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// Prompted for when not given.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Visible to other local users in the process list: prefer FILESTORE_PASSWORD or the
    /// prompt.
    #[arg(short, long)]
    pub password: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli =
            Cli::try_parse_from(["filestore", "ls", "--json", "--server", "http://x:1"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.server, "http://x:1");
    }
}
