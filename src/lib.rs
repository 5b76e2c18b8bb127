//! `filestore-dev`: the whole system on one machine, no Docker. It installs and starts the
//! AWS emulator (moto), provisions the table and the buckets, and serves every Lambda handler on
//! one HTTP port exactly as API Gateway would deliver requests to them.
//!
//! The end-to-end tests start the same [`LocalSystem`] on free ports, so they run beside a
//! running local system and in parallel with each other.
//!
//! It keeps its data across restarts in [`Options::data_dir`] (the emulators' state and the
//! JWT key; the tests keep none), and [`LocalSystem::died`] tells when an emulator it started
//! exits unasked.
//!
//! # Layout
//! - [`emulator`]: install (project-local venv) and run moto's server, keeping its state in a
//!   directory if given, and watch it.
//! - [`provision`]: idempotent creation of the table and buckets.
//! - [`gateway`]: HTTP -> API Gateway v2 event -> handler -> HTTP.
//! - [`worker`]: SQS -> Lambda SQS event -> transfer handler, as the event source mapping does.
//! - [`cors`]: the API's CORS allow-list, as API Gateway's CORS configuration applies it.
//! - the web page (`web/dist/`) is served at `/` by the auth function (`filestore_auth::web`).
//! - [`venv`]: pinned Python tools from PyPI in project-local venvs (moto, schemathesis).

pub mod cors;
pub mod emulator;
pub mod gateway;
pub mod provision;
pub mod venv;
pub mod worker;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use filestore_shared::config::{Config, Secret};
use filestore_shared::{AppState, config::ConfigError};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::emulator::Emulator;
use crate::provision::{Provisioned, Resources, provision, provision_cold};

/// How to start the local system. Every field has a local default; see [`Options::from_env`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Port of the API (`0`: any free port).
    pub port: u16,
    /// Port for the emulator we start (`0`: any free port). Ignored with `emulator_url`.
    pub emulator_port: u16,
    /// Port for the second emulator that plays the cold store, when
    /// `FILESTORE_COLD_ENDPOINT_URL` does not name one (`0`: any free port).
    pub cold_emulator_port: u16,
    /// Use an already running S3/DynamoDB endpoint instead of starting one.
    pub emulator_url: Option<String>,
    /// Keep the hot bucket on this S3 endpoint instead (`FILESTORE_HOT_ENDPOINT_URL`, the
    /// local credentials): a fast S3 server, so that a benchmark measures the client and not
    /// the emulator. The table and the queues stay on the emulator. An endpoint that takes
    /// no CORS rule or event notifications (`s3s-fs`) gets none: browsers cannot send it
    /// parts, and no upload is transferred to the cold store (its files stay unverified).
    pub hot_endpoint_url: Option<String>,
    /// Name of the transfer queue (`FILESTORE_TRANSFER_QUEUE`, default `filestore-transfer`).
    pub transfer_queue: String,
    /// Whether to consume the transfer queue (tests that drive the handler themselves turn
    /// it off).
    pub run_worker: bool,
    /// Seconds between janitor sweeps (`FILESTORE_JANITOR_INTERVAL_SECS`, default 300), as
    /// the deployed schedule would run them.
    pub janitor_interval: std::time::Duration,
    /// Whether to sweep every `janitor_interval` (tests run each sweep themselves, as of the
    /// time they choose: one at a time they do not choose would race their assertions).
    pub run_janitor: bool,
    /// Origins allowed to call the API from a browser (`FILESTORE_CORS_ORIGINS`,
    /// comma-separated; default none: the page the runner serves is same-origin).
    pub cors: cors::Cors,
    /// Where the emulators keep their state and the JWT key lives, so that a restart finds
    /// every account, file and byte, and saved sessions stay valid (`FILESTORE_DATA_DIR`,
    /// default `.local/data`; empty: nothing is kept, everything is in memory).
    pub data_dir: Option<PathBuf>,
    /// Start from a clean slate: forget what `data_dir` holds (`--fresh`).
    pub fresh: bool,
    /// Whether `FILESTORE_JWT_SECRET` was given; if not, the key is kept in `data_dir`.
    pub jwt_secret_given: bool,
    pub config: Config,
}

fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The local default of `FILESTORE_TRANSFER_RETRY_SECS`.
pub const LOCAL_TRANSFER_RETRY_SECS: u64 = 60;
/// The local default of `FILESTORE_TRANSFER_RETRY_MAX_SECS`.
pub const LOCAL_TRANSFER_RETRY_MAX_SECS: u64 = 600;

/// The one origin an isolated system allows to call its API from a browser.
pub const TEST_ORIGIN: &str = "https://app.example.test";

impl Options {
    /// Local defaults, overridable by the same variables a deployed function reads, plus
    /// `FILESTORE_PORT` (8080), `FILESTORE_EMULATOR_PORT` (4566) and `FILESTORE_EMULATOR_URL`.
    ///
    /// # Errors
    /// A malformed variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`Options::from_env`] through a lookup function.
    ///
    /// # Errors
    /// A malformed variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let port = |name: &'static str, default: u16| match lookup(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                name,
                reason: format!("{v:?} is not a port number"),
            }),
        };
        let secret = random_secret();
        let config = Config::from_lookup(|k| {
            lookup(k).or_else(|| match k {
                "FILESTORE_TABLE" => Some("filestore".into()),
                "FILESTORE_HOT_BUCKET" => Some("filestore-hot".into()),
                "FILESTORE_JWT_SECRET" => Some(secret.clone()),
                "FILESTORE_COLD_BUCKET" => Some("filestore-cold".into()),
                // The local queue gives up on a message within a minute (5 receives, 2 s
                // apart), not 7.5 hours: its stranded transfers are asked for sooner.
                "FILESTORE_TRANSFER_RETRY_SECS" => Some(LOCAL_TRANSFER_RETRY_SECS.to_string()),
                "FILESTORE_TRANSFER_RETRY_MAX_SECS" => {
                    Some(LOCAL_TRANSFER_RETRY_MAX_SECS.to_string())
                }
                _ => None,
            })
        })?;
        let data_dir = match lookup("FILESTORE_DATA_DIR") {
            None => Some(emulator::local_dir().join("data")),
            Some(dir) if dir.is_empty() => None,
            Some(dir) => Some(PathBuf::from(dir)),
        };
        Ok(Self {
            data_dir,
            fresh: false,
            jwt_secret_given: lookup("FILESTORE_JWT_SECRET").is_some(),
            port: port("FILESTORE_PORT", 8080)?,
            emulator_port: port("FILESTORE_EMULATOR_PORT", 4566)?,
            cold_emulator_port: port("FILESTORE_COLD_EMULATOR_PORT", 4567)?,
            emulator_url: lookup("FILESTORE_EMULATOR_URL").filter(|v| !v.is_empty()),
            hot_endpoint_url: lookup("FILESTORE_HOT_ENDPOINT_URL").filter(|v| !v.is_empty()),
            run_worker: true,
            run_janitor: true,
            janitor_interval: std::time::Duration::from_secs(
                match lookup("FILESTORE_JANITOR_INTERVAL_SECS") {
                    None => 300,
                    Some(v) => v
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(ConfigError::Invalid {
                            name: "FILESTORE_JANITOR_INTERVAL_SECS",
                            reason: format!("{v:?} is not a positive whole number"),
                        })?,
                },
            ),
            cors: cors::Cors::parse(&lookup("FILESTORE_CORS_ORIGINS").unwrap_or_default())
                .map_err(|reason| ConfigError::Invalid {
                    name: "FILESTORE_CORS_ORIGINS",
                    reason,
                })?,
            transfer_queue: lookup("FILESTORE_TRANSFER_QUEUE")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "filestore-transfer".into()),
            config,
        })
    }

    /// Free ports and resource names of their own, for a test run beside anything else; no
    /// background janitor (a test sweeps as of the time it chooses).
    pub fn isolated() -> Self {
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let mut options = Self::from_lookup(|_| None).expect("defaults are valid");
        options.port = 0;
        options.emulator_port = 0;
        options.cold_emulator_port = 0;
        if let Some(cold) = options.config.cold.as_mut() {
            cold.bucket = format!("filestore-cold-{suffix}");
        }
        options.config.table = format!("filestore-{suffix}");
        options.config.hot_bucket = format!("filestore-hot-{suffix}");
        options.transfer_queue = format!("filestore-transfer-{suffix}");
        options.config.jwt_secret = Secret::new(random_secret());
        options.data_dir = None;
        options.run_janitor = false;
        options.cors = cors::Cors::parse(TEST_ORIGIN).expect("a valid origin");
        // Every test signs its users up from 127.0.0.1; the test of the limit itself runs a
        // gateway of its own with the default.
        options.config.signups_per_address_per_hour = u64::MAX;
        options
    }
}

/// The origin (`scheme://host[:port]`, lowercase) of a URL.
fn origin_of(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    url[..end].to_ascii_lowercase()
}

/// The fixed credentials (access key id, secret) of the local emulator.
pub const LOCAL_CREDENTIALS: (&str, &str) = ("test", "test");

/// SDK configuration for a local endpoint: fixed test credentials, the configured region,
/// the functions' HTTPS client.
pub async fn local_sdk_config(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(filestore_shared::https::client(None).expect("compiled-in roots"))
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            LOCAL_CREDENTIALS.0,
            LOCAL_CREDENTIALS.1,
            None,
            None,
            "filestore-dev",
        ))
        .load()
        .await
}

/// A running local system: emulators (those we started), resources, the API and the
/// transfer worker.
pub struct LocalSystem {
    pub emulator: Option<Emulator>,
    pub cold_emulator: Option<Emulator>,
    pub state: Arc<AppState>,
    pub sdk: SdkConfig,
    pub queues: Provisioned,
    pub addr: SocketAddr,
    server: JoinHandle<()>,
    worker: JoinHandle<()>,
    janitor: JoinHandle<()>,
    data_dir: Option<PathBuf>,
    /// How the cold-store emulator we started was started, to start it again.
    cold_start: Option<ColdStart>,
}

/// What starting the cold-store emulator again needs: its port (the cold store's clients
/// point there), its state directory and its credentials.
#[derive(Clone, Debug)]
struct ColdStart {
    port: u16,
    state: Option<PathBuf>,
    credentials: (String, String),
    origins: Vec<String>,
}

impl LocalSystem {
    /// Starts everything and returns once the API accepts requests. Its lines carry the
    /// process's instance id, as a function's init does ([`filestore_shared::metrics::init`]).
    ///
    /// # Errors
    /// When the emulator cannot start, provisioning fails or the port is taken.
    pub async fn start(options: Options) -> anyhow::Result<Self> {
        filestore_shared::metrics::init("local", Self::start_system(options)).await
    }

    async fn start_system(mut options: Options) -> anyhow::Result<Self> {
        if let Some(dir) = &options.data_dir {
            prepare_data_dir(dir, options.fresh)?;
            if !options.jwt_secret_given {
                options.config.jwt_secret = kept_jwt_secret(dir)?;
            }
        }
        // Bound first: share links are built from the runner's own address unless
        // FILESTORE_PUBLIC_URL names another, and the emulators answer CORS only to the
        // page's origin (and the API's allow-list).
        let listener = TcpListener::bind(("127.0.0.1", options.port))
            .await
            .with_context(|| {
                format!(
                    "binding 127.0.0.1:{} (set FILESTORE_PORT to use another)",
                    options.port
                )
            })?;
        let addr = listener.local_addr()?;
        let public_url = options
            .config
            .public_url
            .get_or_insert_with(|| format!("http://{addr}"));
        let mut origins = vec![format!("http://{addr}"), origin_of(public_url)];
        origins.extend(options.cors.origins().iter().cloned());
        let hot_state = options.data_dir.as_ref().map(|d| d.join("hot"));
        let cold_state = options.data_dir.as_ref().map(|d| d.join("cold"));
        let (emulator, endpoint) = match options.emulator_url.clone() {
            Some(url) => (None, url),
            None => {
                let emulator = Emulator::start(options.emulator_port, hot_state.as_deref(), "emulator", LOCAL_CREDENTIALS, &origins).await.with_context(|| {
                    format!(
                        "starting the emulator on port {} (set FILESTORE_EMULATOR_PORT to use another)",
                        options.emulator_port
                    )
                })?;
                let url = emulator.url();
                (Some(emulator), url)
            }
        };
        options.config.endpoint_url = Some(endpoint.clone());
        // The cold store is another endpoint with credentials of its own: a second emulator
        // process unless FILESTORE_COLD_ENDPOINT_URL names one (MinIO, say).
        let mut cold_emulator = None;
        let mut cold_start = None;
        if let Some(cold) = options.config.cold.as_mut()
            && cold.endpoint_url.is_none()
        {
            let (id, secret) = cold
                .credentials
                .get_or_insert_with(|| ("cold".into(), Secret::new("cold-secret")));
            let emulator = Emulator::start(options.cold_emulator_port, cold_state.as_deref(), "cold-store emulator", (id, secret.expose()), &origins).await.with_context(|| {
                    format!(
                        "starting the cold-store emulator on port {} (set FILESTORE_COLD_EMULATOR_PORT to use another)",
                        options.cold_emulator_port
                    )
                })?;
            cold.endpoint_url = Some(emulator.url());
            cold.path_style = true;
            cold_start = Some(ColdStart {
                port: emulator.port(),
                state: cold_state.clone(),
                credentials: (id.clone(), secret.expose().to_string()),
                origins: origins.clone(),
            });
            cold_emulator = Some(emulator);
        }
        let sdk = local_sdk_config(&endpoint, &options.config.region).await;
        let mut state = AppState::new(options.config.clone(), &sdk);
        if let Some(url) = &options.hot_endpoint_url {
            let hot = local_sdk_config(url, &options.config.region).await;
            let s3 = aws_sdk_s3::config::Builder::from(&hot)
                .force_path_style(true)
                .build();
            state.storage = filestore_shared::storage::Storage::new(
                aws_sdk_s3::Client::from_conf(s3),
                options.config.hot_bucket.clone(),
            );
        }
        if let Some(cold) = &state.cold {
            provision_cold(cold)
                .await
                .context("provisioning the cold bucket")?;
        }
        let queues = provision(
            &state.repo,
            &state.storage,
            &aws_sdk_sqs::Client::new(&sdk),
            &Resources {
                transfer_queue: options.transfer_queue.clone(),
            },
        )
        .await
        .context("provisioning the table, bucket and queues")?;
        // The janitor asks the transfer queue for transfers that never verified their file.
        state.config.transfer_queue_url = Some(queues.transfer_queue_url.clone());
        state.transfer_queue = Some(filestore_shared::queue::TransferQueue::new(
            aws_sdk_sqs::Client::new(&sdk),
            &queues.transfer_queue_url,
        ));
        let state = Arc::new(state);
        let server = tokio::spawn(gateway::serve(
            listener,
            gateway::Functions::shared(state.clone()),
            Arc::new(options.cors.clone()),
        ));
        let worker = if options.run_worker {
            tokio::spawn(worker::run(
                state.clone(),
                aws_sdk_sqs::Client::new(&sdk),
                queues.clone(),
            ))
        } else {
            tokio::spawn(async {})
        };
        let janitor = if options.run_janitor {
            let (state, every) = (state.clone(), options.janitor_interval);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let now = time::OffsetDateTime::now_utc();
                    let request_id = uuid::Uuid::new_v4().to_string();
                    let sweep = filestore_janitor::sweep(&state, now);
                    let swept =
                        filestore_shared::metrics::invocation("janitor", &request_id, sweep).await;
                    if let Err(e) = swept {
                        tracing::warn!(error = format!("{e:#}"), "janitor sweep failed");
                    }
                }
            })
        } else {
            tokio::spawn(async {})
        };
        Ok(Self {
            emulator,
            cold_emulator,
            worker,
            janitor,
            state,
            sdk,
            queues,
            addr,
            server,
            data_dir: options.data_dir,
            cold_start,
        })
    }

    /// Stops the cold-store emulator we started (saving its state, if it keeps one), as an
    /// outage of the cold store would: every call to it fails until
    /// [`LocalSystem::start_cold_store`].
    pub async fn stop_cold_store(&mut self) {
        if let Some(emulator) = self.cold_emulator.take() {
            emulator.stop().await;
        }
    }

    /// Starts the cold-store emulator again on its port, with what it kept, and provisions
    /// its bucket (empty, if it keeps nothing).
    ///
    /// # Errors
    /// When we started no cold-store emulator, or it cannot start (its port taken meanwhile).
    pub async fn start_cold_store(&mut self) -> anyhow::Result<()> {
        let start = self
            .cold_start
            .clone()
            .context("this system did not start the cold store")?;
        if self.cold_emulator.is_some() {
            return Ok(());
        }
        let emulator = Emulator::start(
            start.port,
            start.state.as_deref(),
            "cold-store emulator",
            (&start.credentials.0, &start.credentials.1),
            &start.origins,
        )
        .await?;
        self.cold_emulator = Some(emulator);
        let cold = self.state.cold.as_ref().context("no cold store")?;
        provision_cold(cold)
            .await
            .context("provisioning the cold bucket")
    }

    /// Where clients point: `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The S3/DynamoDB endpoint in use.
    pub fn endpoint_url(&self) -> String {
        self.state.config.endpoint_url.clone().unwrap_or_default()
    }

    /// Resolves when an emulator we started exits without being asked to, with a one-line
    /// account of which and how; never if we started none.
    pub async fn died(&self) -> String {
        async fn died(emulator: Option<&Emulator>) -> String {
            match emulator {
                Some(emulator) => emulator.died().await,
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            account = died(self.emulator.as_ref()) => account,
            account = died(self.cold_emulator.as_ref()) => account,
        }
    }

    /// Stops the API, then the emulators we started (which save their state, if they keep one).
    pub async fn stop(self) {
        self.server.abort();
        self.worker.abort();
        self.janitor.abort();
        let _ = tokio::join!(self.server, self.worker, self.janitor);
        let stop = |emulator: Option<Emulator>| async move {
            if let Some(emulator) = emulator {
                emulator.stop().await;
            }
        };
        tokio::join!(stop(self.emulator), stop(self.cold_emulator));
        if let Some(dir) = self.data_dir {
            let _ = std::fs::remove_file(dir.join(RUNNER_FILE));
        }
    }
}

/// Creates the data directory; with `fresh`, first forgets what it holds (the emulators'
/// state and the JWT key).
fn prepare_data_dir(dir: &Path, fresh: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Two systems on one directory would overwrite each other's snapshots (and a --fresh
    // one would delete the bytes of the other's objects): the directory names its runner.
    let claim = dir.join(RUNNER_FILE);
    let comm = |pid: &str| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok();
    if let Ok(pid) = std::fs::read_to_string(&claim) {
        let pid = pid.trim();
        if pid != std::process::id().to_string() && comm(pid).is_some() && comm(pid) == comm("self")
        {
            anyhow::bail!(
                "another local system (pid {pid}) keeps its data in {}: stop it, or set \
                 FILESTORE_DATA_DIR to another directory",
                dir.display()
            );
        }
    }
    std::fs::write(&claim, std::process::id().to_string())
        .with_context(|| format!("writing {}", claim.display()))?;
    if fresh {
        for state in ["hot", "cold"] {
            match std::fs::remove_dir_all(dir.join(state)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e)
                        .with_context(|| format!("emptying {}", dir.join(state).display()));
                }
                _ => {}
            }
        }
        match std::fs::remove_file(dir.join(JWT_KEY_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).context("removing the kept JWT key");
            }
            _ => {}
        }
    }
    Ok(())
}

/// The file in the data directory that names the process using it.
const RUNNER_FILE: &str = "runner.pid";

/// The file in the data directory that holds the JWT key.
pub const JWT_KEY_FILE: &str = "jwt-secret";

/// The JWT key kept in the data directory, made (random, readable by the owner only) on
/// first use, so tokens a client saved stay valid across restarts.
fn kept_jwt_secret(dir: &Path) -> anyhow::Result<Secret> {
    let path = dir.join(JWT_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(key) if key.trim().len() >= 32 => return Ok(Secret::new(key.trim().to_string())),
        Ok(_) => anyhow::bail!("{} holds no key of 32 bytes or more", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let key = random_secret();
    let tmp = dir.join(format!("{JWT_KEY_FILE}.tmp"));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.write_all(key.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(Secret::new(key))
}
