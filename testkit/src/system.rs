//! One local system (emulator + provisioned resources + API) per test binary, on free ports
//! and with its own table and buckets, so the suite runs beside a running `filestore-dev`
//! and tests run in parallel.

use std::sync::OnceLock;

use filestore_dev::{LocalSystem, Options};

/// What tests need to know about the running system.
pub struct System {
    pub base_url: String,
    pub endpoint_url: String,
    pub region: String,
    pub table: String,
    pub hot_bucket: String,
    pub jwt_secret: String,
    pub cold_endpoint_url: String,
    pub cold_bucket: String,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
}

static SYSTEM: OnceLock<System> = OnceLock::new();

/// The variable naming a deployed API (e.g. `infra/local-cloud up`'s URL) that the tests which
/// only speak HTTP run against instead of the local system.
pub const DEPLOYED_URL_VAR: &str = "FILESTORE_E2E_URL";

/// The deployed API the tests run against, if `FILESTORE_E2E_URL` names one.
pub fn deployed_url() -> Option<&'static str> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        std::env::var(DEPLOYED_URL_VAR)
            .ok()
            .map(|url| url.trim_end_matches('/').to_string())
            .filter(|url| !url.is_empty())
    })
    .as_deref()
}

/// The API the tests speak HTTP to: the deployed one if `FILESTORE_E2E_URL` names one, else
/// the shared local system's.
pub fn base_url() -> &'static str {
    deployed_url().unwrap_or_else(|| &system().base_url)
}

/// The shared system, started on first use. It runs on a thread of its own, because each
/// test's runtime ends with the test; the emulator stops when the test process exits (it
/// watches its stdin).
///
/// # Panics
/// Against a deployed API (`FILESTORE_E2E_URL`): a test that reaches behind the API (the
/// emulator, the table, the queues, the functions' output) cannot run there, and belongs on
/// the local-only list of `tests/deployed.rs`.
pub fn system() -> &'static System {
    if let Some(url) = deployed_url() {
        panic!(
            "this test reaches into the in-process system, so it cannot run against the \
             deployed API {url}: list it as local-only in tests/deployed.rs"
        );
    }
    SYSTEM.get_or_init(|| {
        crate::output::capture();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("test runtime");
            runtime.block_on(async move {
                match LocalSystem::start(Options::isolated()).await {
                    Ok(sys) => {
                        let config = &sys.state.config;
                        let cold = config
                            .cold
                            .as_ref()
                            .expect("local systems have a cold store");
                        let _ = tx.send(Ok(System {
                            cold_endpoint_url: cold.endpoint_url.clone().unwrap_or_default(),
                            cold_bucket: cold.bucket.clone(),
                            queue_url: sys.queues.transfer_queue_url.clone(),
                            dead_letter_queue_url: sys.queues.dead_letter_queue_url.clone(),
                            base_url: sys.base_url(),
                            endpoint_url: sys.endpoint_url(),
                            region: config.region.clone(),
                            table: config.table.clone(),
                            hot_bucket: config.hot_bucket.clone(),
                            jwt_secret: config.jwt_secret.expose().to_string(),
                        }));
                        std::future::pending::<()>().await;
                        drop(sys);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format!("{e:#}")));
                    }
                }
            });
        });
        match rx.recv() {
            Ok(Ok(system)) => system,
            Ok(Err(e)) => panic!("the local system did not start: {e}"),
            Err(_) => panic!("the local system thread died"),
        }
    })
}
