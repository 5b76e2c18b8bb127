//! Creates the resources the system needs on an S3/DynamoDB/SQS endpoint: the table (with
//! TTL and the janitor's sparse index), the hot bucket (with CORS so browsers can PUT parts and read `ETag`), and the
//! transfer queue with its dead-letter queue. Idempotent: running it against already
//! provisioned resources changes nothing.

use anyhow::Context;
use aws_sdk_sqs::types::QueueAttributeName as Attr;
use filestore_shared::repo::Repo;
use filestore_shared::storage::Storage;

/// Names of what to create.
#[derive(Clone, Debug)]
pub struct Resources {
    /// The queue S3 events reach the transfer function through; `<name>-dlq` is its DLQ.
    pub transfer_queue: String,
}

/// What provisioning made that callers need to address.
#[derive(Clone, Debug)]
pub struct Provisioned {
    pub transfer_queue_url: String,
    pub transfer_queue_arn: String,
    pub dead_letter_queue_url: String,
}

/// Receives before a message is parked in the dead-letter queue, as the transfer function
/// counts them.
pub const MAX_RECEIVE_COUNT: u32 = filestore_transfer::MAX_RECEIVES;
/// Seconds a received message stays hidden: well above the transfer function's timeout
/// (AWS advises 6x), so a slow copy is not handed to a second worker.
pub const VISIBILITY_TIMEOUT_SECS: u32 = 900;

/// Creates every resource that does not exist yet.
///
/// # Errors
/// Any failure other than "already exists".
pub async fn provision(
    repo: &Repo,
    hot: &Storage,
    sqs: &aws_sdk_sqs::Client,
    resources: &Resources,
) -> anyhow::Result<Provisioned> {
    repo.create_table().await?;
    hot.create_bucket().await?;
    let queues = create_queues(sqs, &resources.transfer_queue).await?;
    hot.notify_created(&queues.transfer_queue_arn).await?;
    Ok(queues)
}

/// Creates the cold bucket on the cold store's endpoint, with instant upload's proof decoy in it.
///
/// # Errors
/// Any failure other than "already exists".
pub async fn provision_cold(cold: &Storage) -> anyhow::Result<()> {
    cold.create_bucket().await?;
    cold.ensure_decoy().await?;
    Ok(())
}

async fn create_queues(sqs: &aws_sdk_sqs::Client, name: &str) -> anyhow::Result<Provisioned> {
    // CreateQueue is idempotent for identical attributes.
    let dlq_url = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .attributes(Attr::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .context("creating the dead-letter queue")?
        .queue_url
        .context("no dead-letter queue URL")?;
    let dlq_arn = queue_arn(sqs, &dlq_url).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": MAX_RECEIVE_COUNT,
    });
    let queue_url = sqs
        .create_queue()
        .queue_name(name)
        .attributes(Attr::VisibilityTimeout, VISIBILITY_TIMEOUT_SECS.to_string())
        .attributes(Attr::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .context("creating the transfer queue")?
        .queue_url
        .context("no transfer queue URL")?;
    let queue_arn = queue_arn(sqs, &queue_url).await?;
    Ok(Provisioned {
        transfer_queue_url: queue_url,
        transfer_queue_arn: queue_arn,
        dead_letter_queue_url: dlq_url,
    })
}

/// The ARN of a queue, which SQS gives only as an attribute.
async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(Attr::QueueArn)
        .send()
        .await
        .with_context(|| format!("reading the ARN of {url}"))?
        .attributes
        .and_then(|mut a| a.remove(&Attr::QueueArn))
        .with_context(|| format!("no ARN for {url}"))
}
