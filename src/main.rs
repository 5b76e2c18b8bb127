//! `filestore-dev`: runs the whole system locally until Ctrl-C.

use filestore_dev::{LocalSystem, Options};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,aws_config=warn,aws_smithy_runtime=warn".into()),
        )
        .init();
    let system = LocalSystem::start(Options::from_env()?).await?;
    println!(
        "filestore is running.\n  web page:  {base}/\n  API:       {base}   (point clients here: FILESTORE_SERVER={base})\n  emulator:  {emu}   (S3, DynamoDB, SQS; AWS_ENDPOINT_URL={emu})\n  table {table}, hot bucket {bucket}\n  transfer queue {queue}\nPress Ctrl-C to stop.",
        base = system.base_url(),
        emu = system.endpoint_url(),
        table = system.state.config.table,
        bucket = system.state.config.hot_bucket,
        queue = system.queues.transfer_queue_url,
    );
    tokio::signal::ctrl_c().await?;
    eprintln!("stopping...");
    system.stop().await;
    Ok(())
}
