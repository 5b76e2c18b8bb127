//! `filestore-dev`: runs the whole system locally until Ctrl-C (`--fresh`: forget the data
//! kept from earlier runs first).

use filestore_dev::{LocalSystem, Options};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,aws_config=warn,aws_smithy_runtime=warn".into()),
        )
        .init();
    let mut options = Options::from_env()?;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--fresh" => options.fresh = true,
            _ => anyhow::bail!("unknown argument {arg:?} (the only one is --fresh)"),
        }
    }
    let system = LocalSystem::start(options.clone()).await?;
    let pid = |e: &Option<filestore_dev::emulator::Emulator>| {
        e.as_ref()
            .and_then(|e| e.pid())
            .map(|pid| format!(", pid {pid}"))
            .unwrap_or_default()
    };
    let data = match &options.data_dir {
        Some(dir) => format!(
            "{} (kept across restarts: a clean stop saves everything; if an emulator is \
             killed, the last {} s of changes are lost; --fresh starts empty)",
            dir.display(),
            filestore_dev::emulator::SNAPSHOT_SECS
        ),
        None => "in memory only (FILESTORE_DATA_DIR is empty): a stop loses everything".into(),
    };
    println!(
        "filestore is running.\n  web page:  {base}/\n  API:       {base}   (point clients here: FILESTORE_SERVER={base})\n  emulator:  {emu}   (S3, DynamoDB, SQS; AWS_ENDPOINT_URL={emu}{emu_pid})\n  cold store: {cold}{cold_pid}\n  table {table}, hot bucket {bucket}{hot}\n  transfer queue {queue}\n  data:      {data}\nPress Ctrl-C to stop.",
        base = system.base_url(),
        emu = system.endpoint_url(),
        emu_pid = pid(&system.emulator),
        cold = system
            .state
            .config
            .cold
            .as_ref()
            .and_then(|c| c.endpoint_url.clone())
            .unwrap_or_default(),
        cold_pid = pid(&system.cold_emulator),
        table = system.state.config.table,
        bucket = system.state.config.hot_bucket,
        hot = options
            .hot_endpoint_url
            .as_ref()
            .map(|url| format!(" on {url}"))
            .unwrap_or_default(),
        queue = system.queues.transfer_queue_url,
    );
    tokio::select! {
        stop = tokio::signal::ctrl_c() => stop?,
        account = system.died() => {
            eprintln!("filestore-dev: {account}; stopping");
            system.stop().await;
            std::process::exit(1);
        }
    }
    if options.data_dir.is_some() {
        eprintln!("stopping (saving the data)...");
    } else {
        eprintln!("stopping...");
    }
    system.stop().await;
    Ok(())
}
