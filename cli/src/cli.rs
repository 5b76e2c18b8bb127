//! The command line: [`Cli`] and its subcommands, parsed by clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use filestore_contract::domain::{DownloadLimit, FileName, OnConflict, PartSize, ShareLifetime};

/// A client of the filestore API: accounts, parallel resumable uploads, downloads.
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

    /// Print the result as JSON on stdout (no progress bars).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// Wherever a command takes a FILE, FOLDER or TARGET, an argument starting with `/` is a path
/// (`/docs/a.pdf`, `/` is the root folder) and anything else is an id.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an account, then log in to it.
    Signup(CredentialArgs),
    /// Log in and keep the token in the config directory.
    Login(CredentialArgs),
    /// Show the logged-in account and its usage.
    Whoami,
    /// List a folder (folders first, then files, by name; every page), or show one file.
    Ls(LsArgs),
    /// Show a file or a folder (a folder with its path).
    Info { target: String },
    /// Create a folder at a path.
    Mkdir {
        /// Create missing parents too, and accept a folder already there.
        #[arg(short, long)]
        parents: bool,
        path: String,
    },
    /// Upload files; directories upload as folders, recursively. Re-run to resume: files
    /// already there with the same bytes are skipped.
    Upload(UploadArgs),
    /// Download a file; re-run an interrupted download to resume.
    Download(DownloadArgs),
    /// Rename and/or move a file or folder. DESTINATION: a new name (rename in place), or a
    /// path: into that folder when it ends in `/` or is a folder, else to that path.
    Mv { source: String, destination: String },
    /// Move a file (or with -r a folder and everything in it) to the trash.
    Rm {
        /// Remove a folder and everything below it.
        #[arg(short, long)]
        recursive: bool,
        target: String,
    },
    /// List the trash, newest first.
    Trash,
    /// Bring an item back from the trash: where it was, or into --to under --name.
    Restore {
        /// The trash entry's id (`filestore trash` lists them).
        id: String,
        /// The folder to restore into (a path or an id).
        #[arg(long)]
        to: Option<String>,
        /// The name to restore it under.
        #[arg(long, value_parser = FileName::parse)]
        name: Option<FileName>,
    },
    /// Delete an item of the trash for good (its space is freed), or the whole trash.
    Purge {
        /// The trash entry's id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Purge everything in the trash.
        #[arg(long)]
        all: bool,
    },
    /// Create a share link to a file: anyone with the link can download it until it expires.
    Share(ShareArgs),
    /// List a file's live share links (with download counts).
    Shares { file: String },
    /// Revoke a share link.
    Unshare { share_id: String },
    /// Change your password; every earlier token stops working, this one is replaced.
    Passwd,
}

impl Command {
    /// The name used in error reports (`<name> failed: ...`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Signup(_) => "signup",
            Self::Login(_) => "login",
            Self::Whoami => "whoami",
            Self::Ls(_) => "ls",
            Self::Info { .. } => "info",
            Self::Mkdir { .. } => "mkdir",
            Self::Upload(_) => "upload",
            Self::Download(_) => "download",
            Self::Mv { .. } => "mv",
            Self::Rm { .. } => "rm",
            Self::Trash => "trash",
            Self::Restore { .. } => "restore",
            Self::Purge { .. } => "purge",
            Self::Share(_) => "share",
            Self::Shares { .. } => "shares",
            Self::Unshare { .. } => "unshare",
            Self::Passwd => "passwd",
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

#[derive(Debug, Args)]
pub struct LsArgs {
    /// A folder or file (default: the root folder `/`).
    pub target: Option<String>,
    /// Every file in every folder, as one list (no folders).
    #[arg(long, conflicts_with = "target")]
    pub flat: bool,
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Files or directories.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Name on the server (a single file only; default: its file name).
    #[arg(long, value_parser = FileName::parse)]
    pub name: Option<FileName>,
    /// The folder to upload into (a path, made if missing, or a folder id).
    #[arg(long, default_value = "/")]
    pub to: String,
    /// When a name is taken in its folder: rename (the server picks `name (1).ext`),
    /// replace (the file there goes to the trash) or fail. Default: rename.
    #[arg(long, value_parser = OnConflict::parse)]
    pub on_conflict: Option<OnConflict>,
    /// Parts sent at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Part size to ask for, e.g. 16MiB (5MiB..5GiB; default: the server's choice).
    #[arg(long, value_parser = parse_part_size)]
    pub part_size: Option<PartSize>,
    /// Hash every file before sending, so instant upload is tried whatever its size (one
    /// more read of the file; by default only files up to 16 MiB, or known ones, are).
    #[arg(long)]
    pub hash_first: bool,
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// A file's path or id.
    pub file: String,
    /// Where to write (a directory keeps the file's name). Default: its name, here.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Replace a file already at that path.
    #[arg(short, long)]
    pub force: bool,
    /// Parts fetched at once, each by a ranged GET of its own (1: one stream).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Bytes per ranged GET, e.g. 16MiB (1MiB..5GiB; default 8MiB). A resumed download
    /// keeps the part size it started with.
    #[arg(long, value_parser = parse_download_part_size)]
    pub part_size: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ShareArgs {
    /// A file's path or id.
    pub file: String,
    /// How long the link works: seconds, or with a unit (90s, 15m, 12h, 7d); 1 minute to 30 days.
    #[arg(long, default_value = "1d", value_parser = parse_share_expiry)]
    pub expires: ShareLifetime,
    /// Stop after this many downloads (at most a million).
    #[arg(long, value_parser = parse_download_limit)]
    pub max_downloads: Option<DownloadLimit>,
}

/// A share link's lifetime: a [`parse_duration`] the contract allows, checked here so the
/// mistake is reported as the flag's, not as the server's refusal of a JSON field.
pub fn parse_share_expiry(s: &str) -> Result<ShareLifetime, String> {
    ShareLifetime::parse(parse_duration(s)?)
        .map_err(|_| format!("{s:?} is outside 1 minute to 30 days"))
}

/// A share link's download limit, as the contract bounds it.
pub fn parse_download_limit(s: &str) -> Result<DownloadLimit, String> {
    let n = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    DownloadLimit::parse(n)
}

/// The whole number a trimmed value starts with and the unit after it (trimmed, maybe empty).
fn number_and_unit<'a>(s: &'a str, what: &str) -> Result<(u64, &'a str), String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n = digits.parse().map_err(|_| format!("{s:?} is not {what}"))?;
    Ok((n, unit.trim()))
}

/// A duration in seconds from `90`, `90s`, `15m`, `12h` or `7d`.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (n, unit) = number_and_unit(s, "a duration such as 15m, 12h or 7d")?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        other => return Err(format!("unknown unit {other:?}; use s, m, h or d")),
    };
    n.checked_mul(seconds)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// A byte count with an optional unit: `5242880`, `5MiB`, `5M`, `512k`, `1GiB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (n, unit) = number_and_unit(s, "a size such as 8MiB")?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("unknown unit {unit:?}; use KiB, MiB or GiB")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// A part size the contract allows, from a [`parse_size`].
pub fn parse_part_size(s: &str) -> Result<PartSize, String> {
    PartSize::parse(parse_size(s)?)
}

/// A download's part size: 1 MiB to 5 GiB, from a [`parse_size`].
pub fn parse_download_part_size(s: &str) -> Result<u64, String> {
    let size = parse_size(s)?;
    if (1 << 20..=5 << 30).contains(&size) {
        Ok(size)
    } else {
        Err(format!("{s:?} is outside 1MiB to 5GiB"))
    }
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
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("12h"), Ok(43200));
        assert_eq!(parse_duration("7d"), Ok(604800));
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }

    #[test]
    fn share_links_last_a_minute_to_thirty_days() {
        let seconds = |s| parse_share_expiry(s).map(ShareLifetime::get);
        assert_eq!(seconds("1m"), Ok(60));
        assert_eq!(seconds("30d"), Ok(2_592_000));
        assert_eq!(
            seconds("59"),
            Err("\"59\" is outside 1 minute to 30 days".into())
        );
        assert!(parse_share_expiry("31d").is_err());
        assert!(parse_share_expiry("1y").is_err());
        assert!(Cli::try_parse_from(["filestore", "share", "f", "--expires", "10s"]).is_err());
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("5242880"), Ok(5 << 20));
        assert_eq!(parse_size("5MiB"), Ok(5 << 20));
        assert_eq!(parse_size("5m"), Ok(5 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }

    /// Values the server would refuse are refused as the flag's mistake, before any request.
    #[test]
    fn part_sizes_names_and_download_limits_follow_the_contract() {
        assert_eq!(parse_part_size("5MiB").map(PartSize::get), Ok(5 << 20));
        assert!(parse_part_size("1MiB").is_err());
        assert!(parse_part_size("6GiB").is_err());
        assert_eq!(parse_download_limit("3").map(DownloadLimit::get), Ok(3));
        assert!(parse_download_limit("0").is_err());
        assert!(parse_download_limit("1000001").is_err());
        assert!(parse_download_limit("many").is_err());
        for args in [
            &["filestore", "upload", "a", "--part-size", "1MiB"][..],
            &["filestore", "upload", "a", "--name", "a/b"],
            &["filestore", "restore", "f", "--name", ""],
            &["filestore", "upload", "a", "--on-conflict", "merge"],
            &["filestore", "purge"],
            &["filestore", "purge", "x", "--all"],
            &["filestore", "ls", "/docs", "--flat"],
            &["filestore", "share", "f", "--max-downloads", "0"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli =
            Cli::try_parse_from(["filestore", "ls", "--json", "--server", "http://x:1"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.server, "http://x:1");
        let cli = Cli::try_parse_from([
            "filestore",
            "upload",
            "a",
            "b",
            "--concurrency",
            "3",
            "--part-size",
            "5MiB",
        ])
        .unwrap();
        match cli.command {
            Command::Upload(args) => {
                assert_eq!(args.paths.len(), 2);
                assert_eq!(args.concurrency, 3);
                assert_eq!(args.part_size.map(PartSize::get), Some(5 << 20));
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["filestore", "upload", "a", "--concurrency", "0"]).is_err());
        match Cli::try_parse_from([
            "filestore",
            "download",
            "/a",
            "--concurrency",
            "16",
            "--part-size",
            "1MiB",
        ])
        .unwrap()
        .command
        {
            Command::Download(args) => {
                assert_eq!(args.concurrency, 16);
                assert_eq!(args.part_size, Some(1 << 20));
            }
            other => panic!("{other:?}"),
        }
        match Cli::try_parse_from(["filestore", "download", "/a"])
            .unwrap()
            .command
        {
            Command::Download(args) => assert_eq!((args.concurrency, args.part_size), (8, None)),
            other => panic!("{other:?}"),
        }
        assert!(parse_download_part_size("1023KiB").is_err());
        assert!(parse_download_part_size("6GiB").is_err());
        assert_eq!(parse_download_part_size("5GiB"), Ok(5 << 30));
    }
}
