//! Setting a bucket up, as the local runner does on an emulator (on AWS the deployment
//! template makes the buckets): creating it with the CORS rule browsers need, and sending its
//! object-created events to the transfer queue. Never called by a function.

use anyhow::Context;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    CorsConfiguration, CorsRule, Event, NotificationConfiguration, QueueConfiguration,
};

use super::Storage;

impl Storage {
    /// Creates the bucket unless it exists, and lets browsers PUT parts and read `ETag`.
    ///
    /// # Errors
    /// Any failure other than "already exists".
    pub async fn create_bucket(&self) -> anyhow::Result<()> {
        let bucket = &self.bucket;
        match self.client.create_bucket().bucket(bucket).send().await {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.code(),
                    Some("BucketAlreadyOwnedByYou") | Some("BucketAlreadyExists")
                ) => {}
            Err(e) => return Err(e).context(format!("creating bucket {bucket}")),
        }
        let rule = CorsRule::builder()
            .allowed_origins("*")
            .allowed_methods("GET")
            .allowed_methods("PUT")
            .allowed_methods("HEAD")
            .allowed_headers("*")
            .expose_headers("ETag")
            .max_age_seconds(3600)
            .build()?;
        self.client
            .put_bucket_cors()
            .bucket(bucket)
            .cors_configuration(CorsConfiguration::builder().cors_rules(rule).build()?)
            .send()
            .await
            .context("setting bucket CORS")?;
        Ok(())
    }

    /// Sends every `s3:ObjectCreated:*` event of the bucket to the queue `queue_arn`.
    ///
    /// # Errors
    /// S3 failures.
    pub async fn notify_created(&self, queue_arn: &str) -> anyhow::Result<()> {
        let rule = QueueConfiguration::builder()
            .id("transfer")
            .queue_arn(queue_arn)
            .events(Event::S3ObjectCreated)
            .build()?;
        self.client
            .put_bucket_notification_configuration()
            .bucket(&self.bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(rule)
                    .build(),
            )
            .send()
            .await
            .context("sending hot bucket events to the transfer queue")?;
        Ok(())
    }
}
